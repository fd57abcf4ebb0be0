package c2s

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ode-xmpp/ode/internal/metrics"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of the SASL2 family.
const (
	// NSSASL2 is XEP-0388's namespace (Extensible SASL Profile).
	NSSASL2 = "urn:xmpp:sasl:2"
	// NSBind2 is XEP-0386's namespace (Bind 2).
	NSBind2 = "urn:xmpp:bind:0"
	// NSFAST is XEP-0484's namespace (Fast Authentication Streamlining
	// Tokens).
	NSFAST = "urn:xmpp:fast:0"
)

// maxUserAgentID bounds the <user-agent id> kept for a client.
const maxUserAgentID = 256

// sasl2Feature is XEP-0388 SASL2: the same mechanisms as SASL, offered
// whether or not the stream header carries 'from' (ejabberd offered it
// only with one), with the inline features Bind2, stream-management
// resumption and FAST. Success needs no stream restart.
var sasl2Feature = feature{
	name: "sasl2",
	offer: func(c *conn) *xmlstream.Element {
		if !c.canAuth() {
			return nil
		}
		cfg := c.saslConfig()
		auth := xmlstream.NewElement(NSSASL2, "authentication")
		for _, m := range sasl.ServerMechanisms(cfg, c.secure()) {
			auth.Append(xmlstream.NewElement(NSSASL2, "mechanism").AppendText(m))
		}
		inline := xmlstream.NewElement(NSSASL2, "inline")
		inline.Append(c.bind2Offer())
		inline.Append(xmlstream.NewElement(session.NSSM, "sm"))
		if mechs := sasl.TokenMechanisms(cfg); len(mechs) > 0 {
			fast := xmlstream.NewElement(NSFAST, "fast")
			for _, m := range mechs {
				fast.Append(xmlstream.NewElement(NSFAST, "mechanism").AppendText(m))
			}
			inline.Append(fast)
		}
		return auth.Append(inline)
	},
	match: inSpace(NSSASL2),
	handle: func(ctx context.Context, c *conn, e *xmlstream.Element) error {
		if e.Name.Local == "authenticate" {
			return c.authenticate2(ctx, e)
		}
		// A response or abort outside an exchange.
		return c.saslAttemptFailed(NSSASL2, sasl.MalformedRequest, "", true)
	},
}

// sasl2Request is what a client's <authenticate/> asks for besides
// authentication.
type sasl2Request struct {
	mech     string
	clientID string // <user-agent id>, "" when absent
	software string // <user-agent><software/>
	bind     *xmlstream.Element
	resume   *xmlstream.Element
	fast     *xmlstream.Element // <fast/>: authenticating with a token
	// tokenMech is the mechanism of <request-token/>, if the server
	// offers it.
	tokenMech string
}

func parseSASL2Request(e *xmlstream.Element, tokenMechs []string) sasl2Request {
	r := sasl2Request{mech: e.Attribute("mechanism")}
	for _, ch := range e.Children {
		el := ch.Elem
		if el == nil {
			continue
		}
		switch el.Name {
		case xmlstream.Name{Space: NSSASL2, Local: "user-agent"}:
			if id := el.Attribute("id"); len(id) <= maxUserAgentID {
				r.clientID = id
			}
			if sw := el.Child(NSSASL2, "software"); sw != nil {
				r.software = sw.Text()
			}
		case xmlstream.Name{Space: NSBind2, Local: "bind"}:
			r.bind = el
		case xmlstream.Name{Space: session.NSSM, Local: "resume"}:
			r.resume = el
		case xmlstream.Name{Space: NSFAST, Local: "fast"}:
			r.fast = el
		case xmlstream.Name{Space: NSFAST, Local: "request-token"}:
			if m := el.Attribute("mechanism"); slices.Contains(tokenMechs, m) {
				r.tokenMech = m
			}
		}
	}
	return r
}

// authenticate2 runs a SASL2 exchange (XEP-0388 §2.3-2.6) and, once
// authenticated, what the request asked for inline: resumption, Bind2,
// FAST tokens. Then <success/> and the stream features of the
// authenticated stream, without a restart.
func (c *conn) authenticate2(ctx context.Context, e *xmlstream.Element) error {
	c.mech = e.Attribute("mechanism")
	if c.local != "" || c.state != stateTLS && !c.mustStartTLS() {
		return c.saslAttemptFailed(NSSASL2, sasl.MalformedRequest, "", true)
	}
	if c.mustStartTLS() {
		return c.saslAttemptFailed(NSSASL2, sasl.EncryptionRequired, "", true)
	}
	cfg := c.saslConfig()
	mechs := sasl.ServerMechanisms(cfg, c.secure())
	tokenMechs := sasl.TokenMechanisms(cfg)
	req := parseSASL2Request(e, tokenMechs)
	var tokens *tokenAuth
	switch {
	case slices.Contains(mechs, req.mech):
		cfg.SSDP = c.ssdp(mechs)
	case slices.Contains(tokenMechs, req.mech):
		tokens = &tokenAuth{c: c, req: req}
		cfg.Tokens = tokens.lookup
	default:
		return c.saslAttemptFailed(NSSASL2, sasl.InvalidMechanism, "", true)
	}
	srv, err := sasl.NewServer(req.mech, cfg)
	if err != nil {
		return c.saslAttemptFailed(NSSASL2, sasl.InvalidMechanism, "", true)
	}
	resp := []byte(nil)
	if ir := e.Child(NSSASL2, "initial-response"); ir != nil {
		var ok bool
		if resp, ok = decodeSASL(strings.TrimSpace(ir.Text()), false); !ok {
			return c.saslAttemptFailed(NSSASL2, sasl.IncorrectEncoding, "", true)
		}
	}
	final, f, err := c.exchange(ctx, srv, resp, NSSASL2)
	if err != nil {
		return err
	}
	if f == nil && tokens != nil {
		f = tokens.use(ctx, srv)
	}
	if f != nil {
		return c.authFailed(NSSASL2, req.mech, f)
	}
	u, err := jid.New(srv.Username(), c.domain, "")
	if err != nil {
		return c.saslAttemptFailed(NSSASL2, sasl.NotAuthorized, "", true)
	}
	if z := srv.AuthzID(); z != "" {
		if zj, err := jid.Parse(z); err != nil || !zj.Equal(u) {
			return c.saslAttemptFailed(NSSASL2, sasl.InvalidAuthzID, "", true)
		}
	}
	c.local = u.Local()
	c.state = stateAuthed
	c.client = clientName(req.software)
	c.log.Info("authenticated", "jid", u.String(), "mechanism", srv.Mechanism(), "profile", "sasl2")
	metrics.Login(metrics.SASL2, srv.Mechanism())
	return c.sasl2Success(ctx, req, u, final, tokens)
}

// sasl2Success builds and sends <success/> with what was done inline
// (a FAST token, a resumption or its failure, Bind2's <bound/>), followed
// by the stream features, in one write. A resumption or a Bind2 that
// enables stream management writes it as the counting starts
// (resumeWith, startSM), so that no stanza is counted before it.
func (c *conn) sasl2Success(ctx context.Context, req sasl2Request, user jid.JID, final []byte, tokens *tokenAuth) error {
	succ := xmlstream.NewElement(NSSASL2, "success")
	if len(final) > 0 {
		succ.Append(xmlstream.NewElement(NSSASL2, "additional-data").AppendText(encodeBase64(final)))
	}
	authzid := xmlstream.NewElement(NSSASL2, "authorization-identifier").AppendText(user.String())
	succ.Append(authzid)
	if tok := c.issueToken(ctx, req, user, tokens); tok != nil {
		succ.Append(tok)
	}
	// The bytes of <success/> and the stream features after it, once
	// the inline features added their results and set the state
	// (XEP-0388 §2.6.1: features follow, with no restart).
	wrap := func(results ...*xmlstream.Element) []byte {
		for _, r := range results {
			if r != nil {
				succ.Append(r)
			}
		}
		if !c.full.IsZero() {
			authzid.Children = nil
			authzid.AppendText(c.full.String())
		}
		return c.appendFeatures(succ.AppendXML(nil, stanza.NSClient))
	}
	var smResult *xmlstream.Element
	if req.resume != nil {
		failed, err := c.resumeWith(ctx, req.resume, func(resumed *xmlstream.Element) []byte { return wrap(resumed) })
		if err != nil || failed == nil {
			return err // resumed, or the stream ends
		}
		// XEP-0386 §3: the failure goes with the bind that follows.
		smResult = failed
	}
	if req.bind != nil {
		return c.bind2(ctx, req, smResult, wrap)
	}
	return c.send(wrap(smResult))
}

// maxClientName bounds the software name kept for administrators.
const maxClientName = 64

// clientName returns the user-agent's software name as kept: trimmed, at
// most maxClientName bytes of printable characters.
func clientName(s string) string {
	s = strings.TrimSpace(s)
	out := make([]rune, 0, len(s))
	n := 0
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			continue
		}
		if n += utf8.RuneLen(r); n > maxClientName {
			break
		}
		out = append(out, r)
	}
	return string(out)
}

// encodeBase64 is the text of <additional-data/>.
func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// deadlineOff removes the authentication timeout once bound.
func (c *conn) deadlineOff() { _ = c.t.SetReadDeadline(time.Time{}) }
