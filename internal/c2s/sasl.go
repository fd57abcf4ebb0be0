package c2s

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/ode-xmpp/ode/internal/metrics"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSSASLChannelBinding is XEP-0440's namespace for advertising channel-binding types.
const NSSASLChannelBinding = "urn:xmpp:sasl-cb:0"

// saslFeature is SASL authentication (RFC 6120 §6): the mechanisms this
// stream may use, and the exchange.
var saslFeature = feature{
	name: "sasl",
	offer: func(c *conn) *xmlstream.Element {
		if !c.canAuth() {
			return nil
		}
		mechs := xmlstream.NewElement(stream.NSSASL, "mechanisms")
		for _, m := range sasl.ServerMechanisms(c.saslConfig(), c.secure()) {
			mechs.Append(xmlstream.NewElement(stream.NSSASL, "mechanism").AppendText(m))
		}
		return mechs
	},
	match: inSpace(stream.NSSASL),
	handle: func(ctx context.Context, c *conn, e *xmlstream.Element) error {
		if e.Name.Local == "auth" {
			return c.auth(ctx, e)
		}
		// A response or abort outside an exchange.
		return c.saslFailure(sasl.MalformedRequest, "")
	},
}

// channelBindingFeature advertises the channel-binding types the TLS
// connection supports (XEP-0440), for the -PLUS mechanisms.
var channelBindingFeature = feature{
	name: "sasl-channel-binding",
	offer: func(c *conn) *xmlstream.Element {
		st := c.t.TLS()
		if !c.canAuth() || st == nil {
			return nil
		}
		types := sasl.ChannelBindingTypes(st)
		if len(types) == 0 {
			return nil
		}
		cb := xmlstream.NewElement(NSSASLChannelBinding, "sasl-channel-binding")
		for _, t := range types {
			cb.Append(xmlstream.NewElement(NSSASLChannelBinding, "channel-binding").SetAttr("type", t))
		}
		return cb
	},
}

func (c *conn) saslConfig() sasl.ServerConfig {
	st := c.t.TLS()
	cfg := sasl.ServerConfig{
		Lookup:               c.lookupCredential,
		TLS:                  st,
		StrictChannelBinding: c.srv.conf().StrictChannelBinding,
		Encrypted:            st == nil && c.secure(),
	}
	if c.srv.conf().Tokens != nil {
		cfg.Tokens = noTokens
	}
	if st != nil {
		if cert := c.serverCert(st); cert != nil {
			cfg.ServerCertificate = cert
		}
	}
	return cfg
}

// serverCert returns the DER of the leaf certificate this connection's
// TLS handshake (st) presented.
func (c *conn) serverCert(st *tls.ConnectionState) []byte {
	if c.tlsCert != nil {
		return c.tlsCert
	}
	// A transport whose TLS is its HTTP server's (WebSocket) knows what
	// that handshake presented.
	if p, ok := c.t.(interface{ TLSCertificate() []byte }); ok {
		if cert := p.TLSCertificate(); cert != nil {
			return cert
		}
	}
	tc := c.srv.tls
	if tc == nil {
		return nil
	}
	if tc.GetCertificate != nil {
		cert, err := tc.GetCertificate(&tls.ClientHelloInfo{ServerName: st.ServerName})
		if err == nil && cert != nil && len(cert.Certificate) > 0 {
			return cert.Certificate[0]
		}
	}
	if len(tc.Certificates) > 0 && len(tc.Certificates[0].Certificate) > 0 {
		return tc.Certificates[0].Certificate[0]
	}
	return nil
}

func (c *conn) lookupCredential(ctx context.Context, username string, h sasl.Hash) (sasl.Credential, error) {
	u, err := jid.New(username, c.domain, "")
	if err != nil {
		return sasl.Credential{}, fmt.Errorf("c2s: username: %w", sasl.ErrUnknownUser)
	}
	cr, err := c.srv.conf().Accounts.Credential(ctx, u.Local(), c.domain, string(h))
	if err != nil {
		if errors.Is(err, storageNotFound) {
			return sasl.Credential{}, fmt.Errorf("c2s: lookup %s: %w", username, sasl.ErrUnknownUser)
		}
		return sasl.Credential{}, err
	}
	return sasl.Credential{Hash: sasl.Hash(cr.Hash), Salt: cr.Salt, Iterations: cr.Iterations, StoredKey: cr.StoredKey, ServerKey: cr.ServerKey}, nil
}

// auth runs a SASL exchange (RFC 6120 §6.4).
func (c *conn) auth(ctx context.Context, e *xmlstream.Element) error {
	c.mech = e.Attribute("mechanism")
	if c.local != "" {
		return c.saslFailure(sasl.MalformedRequest, "")
	}
	if c.mustStartTLS() {
		return c.saslFailure(sasl.EncryptionRequired, "")
	}
	if c.state != stateTLS {
		return c.saslFailure(sasl.MalformedRequest, "")
	}
	mech := e.Attribute("mechanism")
	cfg := c.saslConfig()
	mechs := sasl.ServerMechanisms(cfg, c.secure())
	if !slices.Contains(mechs, mech) {
		if mech == "PLAIN" && !c.secure() {
			return c.saslFailure(sasl.EncryptionRequired, "")
		}
		return c.saslFailure(sasl.InvalidMechanism, "")
	}
	cfg.SSDP = c.ssdp(mechs)
	srv, err := sasl.NewServer(mech, cfg)
	if err != nil {
		return c.saslFailure(sasl.InvalidMechanism, "")
	}
	resp, ok := decodeSASL(e.Text(), true)
	if !ok {
		return c.saslFailure(sasl.IncorrectEncoding, "")
	}
	final, f, err := c.exchange(ctx, srv, resp, stream.NSSASL)
	switch {
	case err != nil:
		return err
	case f != nil:
		return c.authFailed(stream.NSSASL, mech, f)
	}
	return c.authenticated(srv, final)
}

// exchange runs srv from the client's initial response resp to the end,
// with challenges and responses in namespace ns (RFC 6120 SASL or
// XEP-0388 SASL2, whose elements have the same shape). It returns the
// additional data of success, or the failure to report; an error ends
// the stream.
func (c *conn) exchange(ctx context.Context, srv sasl.Server, resp []byte, ns string) (final []byte, f *sasl.Failure, err error) {
	for {
		chal, done, err := srv.Next(ctx, resp)
		if err != nil {
			if errors.As(err, &f) {
				return nil, f, nil
			}
			c.log.Error("sasl", "mechanism", srv.Mechanism(), "err", err)
			return nil, &sasl.Failure{Condition: sasl.TemporaryAuthFailure}, nil
		}
		if done {
			return chal, nil, nil
		}
		if err := c.send(appendSASLData(nil, ns, "challenge", chal)); err != nil {
			return nil, nil, err
		}
		next, err := c.t.Next()
		if err != nil {
			return nil, nil, err
		}
		switch {
		case next.Name.Space == ns && next.Name.Local == "response":
			var ok bool
			if resp, ok = decodeSASL(next.Text(), false); !ok {
				return nil, &sasl.Failure{Condition: sasl.IncorrectEncoding}, nil
			}
		case next.Name.Space == ns && next.Name.Local == "abort":
			return nil, &sasl.Failure{Condition: sasl.Aborted}, nil
		default:
			return nil, &sasl.Failure{Condition: sasl.MalformedRequest}, nil
		}
	}
}

// authFailed reports a failed exchange with mechanism mech in namespace
// ns and counts it.
func (c *conn) authFailed(ns, mech string, f *sasl.Failure) error {
	if errors.Is(f, sasl.ErrChannelBinding) {
		// No credential was tried: say why, and do not count it as a
		// failed login. Clients such as slixmpp try each -PLUS
		// mechanism with a binding type they know before falling back.
		c.log.Info("sasl channel binding not negotiated", "mechanism", mech, "why", f.Text)
		return c.saslAttemptFailed(ns, f.Condition, f.Text, false)
	}
	c.log.Info("sasl failure", "mechanism", mech, "condition", string(f.Condition), "why", f.Text)
	return c.saslAttemptFailed(ns, f.Condition, "", f.Condition != sasl.Aborted)
}

// ssdp returns what XEP-0474 protects on this stream: the SASL mechanisms
// mechs (as advertised in the profile the client uses) and the XEP-0440
// channel-binding types when they were advertised.
func (c *conn) ssdp(mechs []string) *sasl.SSDP {
	d := &sasl.SSDP{Mechanisms: mechs}
	if st := c.t.TLS(); st != nil {
		if types := sasl.ChannelBindingTypes(st); len(types) > 0 {
			d.ChannelBindings = types
		}
	}
	return d
}

// authenticated finishes a successful exchange: checks the authzid, sends
// <success/> and expects a stream restart (RFC 6120 §6.4.6).
func (c *conn) authenticated(srv sasl.Server, final []byte) error {
	u, err := jid.New(srv.Username(), c.domain, "")
	if err != nil {
		return c.saslFailure(sasl.NotAuthorized, "")
	}
	if z := srv.AuthzID(); z != "" {
		zj, err := jid.Parse(z)
		if err != nil || !zj.Equal(u) {
			return c.saslFailure(sasl.InvalidAuthzID, "")
		}
	}
	if err := c.send(appendSASLData(nil, stream.NSSASL, "success", final)); err != nil {
		return err
	}
	c.local = u.Local()
	c.state = stateAuthed
	c.t.Restart()
	c.sent = false
	c.log.Info("authenticated", "jid", u.String(), "mechanism", srv.Mechanism())
	metrics.Login(metrics.SASL, srv.Mechanism())
	return nil
}

// maxSASLAttempts bounds the SASL attempts of one stream, whatever their
// outcome.
const maxSASLAttempts = 10

// saslFailure sends <failure/> and counts it; too many failures close the
// stream with not-authorized (RFC 6120 §6.4.5).
func (c *conn) saslFailure(cond sasl.Condition, text string) error {
	return c.saslAttemptFailed(stream.NSSASL, cond, text, cond != sasl.Aborted)
}

// saslAttemptFailed sends <failure/> in namespace ns (RFC 6120 SASL, or
// XEP-0388 SASL2 with the condition still in the RFC 6120 namespace);
// credential failures count toward the configured limit, every attempt
// toward maxSASLAttempts.
func (c *conn) saslAttemptFailed(ns string, cond sasl.Condition, text string, credential bool) error {
	f := xmlstream.NewElement(ns, "failure")
	f.Append(xmlstream.NewElement(stream.NSSASL, string(cond)))
	if text != "" {
		f.Append(xmlstream.NewElement(ns, "text").AppendText(text))
	}
	if err := c.sendElement(f); err != nil {
		return err
	}
	profile := metrics.SASL
	if ns == NSSASL2 {
		profile = metrics.SASL2
	}
	metrics.LoginFailed(profile, c.mech, string(cond))
	c.attempts++
	if credential {
		c.failures++
	}
	if c.failures >= c.srv.conf().MaxAuthFailures || c.attempts >= maxSASLAttempts {
		return &stream.Error{Condition: stream.NotAuthorized, Text: "too many failed authentication attempts"}
	}
	return nil
}

// decodeSASL decodes the base64 payload of auth/response: "" is no data
// (nil) for auth, "=" is an empty response.
func decodeSASL(text string, initial bool) ([]byte, bool) {
	switch text {
	case "":
		if initial {
			return nil, true
		}
		return []byte{}, true
	case "=":
		return []byte{}, true
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, false
	}
	return b, true
}

// appendSASLData appends <name xmlns=ns> with data in base64.
func appendSASLData(b []byte, ns, name string, data []byte) []byte {
	b = append(b, "<"+name+" xmlns='"+ns+"'"...)
	if len(data) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = base64.StdEncoding.AppendEncode(b, data)
	return append(b, "</"+name+">"...)
}
