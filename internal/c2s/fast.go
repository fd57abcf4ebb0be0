package c2s

import (
	"context"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/xmlstream"
)

// FAST (XEP-0484): tokens that a client gets at a SASL2 login with
// <request-token/> and uses instead of its password on later ones, with
// an HT mechanism (sasl.HTSHA256None and the channel-binding variants).
// They are stored as their HMAC keys (storage.FASTTokens), per account
// and user-agent id, bound to the mechanism asked for; they last
// Config.FASTLifetime, and a login with one older than
// Config.FASTRotateAfter gets a new one while the old one stays valid
// until the new one is used. A password change, the account's deletion or
// `ode user logout` removes them: the next attempt fails with
// credentials-expired, as does any attempt with a token the server does
// not hold, and counts toward the authentication-failure limit.

// maxTokensPerAccount bounds the tokens stored for one account (the
// oldest go).
const maxTokensPerAccount = 100

// tokenAuth is one FAST authentication attempt: the client's stored
// tokens for the mechanism, and which one it proved.
type tokenAuth struct {
	c          *conn
	req        sasl2Request
	candidates []storage.FASTToken
	stored     int                // the client's tokens, for any mechanism
	token      *storage.FASTToken // the token that authenticated
}

// noTokens is the token lookup that makes sasl.TokenMechanisms list the
// HT mechanisms; each attempt sets its own (tokenAuth.lookup).
func noTokens(context.Context, string, string) ([][]byte, error) { return nil, nil }

// lookup is the attempt's sasl.TokenLookup: the client's valid tokens
// for the mechanism.
func (t *tokenAuth) lookup(ctx context.Context, username, mechanism string) ([][]byte, error) {
	u, err := jid.New(username, t.c.domain, "")
	if err != nil {
		return nil, nil
	}
	all, err := t.c.srv.conf().Tokens.FASTTokens(ctx, u.Local(), t.c.domain, t.req.clientID)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	t.stored = len(all)
	var keys [][]byte
	t.candidates = t.candidates[:0]
	for _, tok := range all {
		if tok.Mechanism == mechanism && now.Before(tok.Expires) {
			t.candidates = append(t.candidates, tok)
			keys = append(keys, tok.Key)
		}
	}
	return keys, nil
}

// use records a successful proof: the client's earlier tokens go (and
// this one with <fast invalidate='true'/>). A token removed meanwhile (a
// concurrent "log out everywhere") fails the attempt.
func (t *tokenAuth) use(ctx context.Context, srv sasl.Server) *sasl.Failure {
	ts, ok := srv.(sasl.TokenServer)
	if !ok || ts.Token() < 0 || ts.Token() >= len(t.candidates) {
		return &sasl.Failure{Condition: sasl.TemporaryAuthFailure}
	}
	tok := t.candidates[ts.Token()]
	invalidate := false
	if t.req.fast != nil {
		v := t.req.fast.Attribute("invalidate")
		invalidate = v == "1" || v == "true"
	}
	u, err := jid.New(srv.Username(), t.c.domain, "")
	if err != nil {
		return &sasl.Failure{Condition: sasl.CredentialsExpired}
	}
	if t.stored == 1 && !invalidate {
		// The client's only token: nothing to remove, no write.
		t.token = &tok
		return nil
	}
	found, err := t.c.srv.conf().Tokens.UseFASTToken(ctx, u.Local(), t.c.domain, tok.ClientID, tok.Key, invalidate)
	if err != nil {
		t.c.log.Error("fast token", "err", err)
		return &sasl.Failure{Condition: sasl.TemporaryAuthFailure}
	}
	if !found {
		return &sasl.Failure{Condition: sasl.CredentialsExpired, Text: "token invalidated meanwhile"}
	}
	if !invalidate {
		t.token = &tok
	}
	return nil
}

// issueToken returns the <token/> for <success/>, or nil: a new token
// when the client asked for one (<request-token/> with a mechanism the
// server offers), or when the token it logged in with is due for
// rotation (never after <fast invalidate/> without a request).
func (c *conn) issueToken(ctx context.Context, req sasl2Request, user jid.JID, tokens *tokenAuth) *xmlstream.Element {
	if c.srv.conf().Tokens == nil {
		return nil
	}
	mech := req.tokenMech
	var keep []byte
	if tokens != nil && tokens.token != nil {
		keep = tokens.token.Key
		if mech == "" && time.Since(tokens.token.Created) >= c.srv.conf().FASTRotateAfter {
			mech = tokens.token.Mechanism
		}
	}
	if mech == "" {
		return nil
	}
	token := sasl.NewToken()
	now := time.Now().UTC().Truncate(time.Millisecond)
	rec := storage.FASTToken{ClientID: req.clientID, Key: sasl.TokenKey(token), Mechanism: mech,
		Created: now, Expires: now.Add(c.srv.conf().FASTLifetime)}
	if err := c.srv.conf().Tokens.PutFASTToken(ctx, user.Local(), user.DomainString(), rec, keep, maxTokensPerAccount); err != nil {
		c.log.Error("fast token not issued", "err", err)
		return nil
	}
	c.log.Info("fast token issued", "mechanism", mech, "rotation", req.tokenMech == "", "expires", rec.Expires)
	return xmlstream.NewElement(NSFAST, "token").SetAttr("token", token).
		SetAttr("expiry", rec.Expires.Format(time.RFC3339))
}
