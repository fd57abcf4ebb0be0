package c2s

import (
	"context"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// feature is one part of stream negotiation (RFC 6120 §4.3), as a value:
// what it offers in <stream:features/> in the stream's current state,
// which top-level elements are its own, and what it does with them
// (changing the state). Stream negotiation is the list features; a new
// feature is one more value in it.
type feature struct {
	name string // for tests and logs
	// offer returns the feature's element for <stream:features/> in c's
	// current state, or nil when it is not offered now. Nil for a
	// feature that is never advertised.
	offer func(c *conn) *xmlstream.Element
	// match reports whether e, read in c's current state, is the
	// feature's to handle. Nil for an advertisement without elements.
	match func(c *conn, e *xmlstream.Element) bool
	// handle handles e; an error ends the stream (see conn.fail: a
	// *stream.Error is sent as it is).
	handle func(ctx context.Context, c *conn, e *xmlstream.Element) error
}

// features is stream negotiation: the features in the order they are
// offered; the first whose match accepts an element handles it. After
// authentication the modules' own stream features (Router.StreamFeatures:
// roster versioning, pre-approval, entity capabilities) follow. It is set
// in init: SASL2 writes the features that follow its success.
var features []feature

func init() {
	features = []feature{
		startTLSFeature,       // RFC 6120 §5
		saslFeature,           // RFC 6120 §6
		sasl2Feature,          // XEP-0388, with XEP-0386 Bind2 and XEP-0484 FAST inline
		preAuthFeature,        // XEP-0077 in-band registration, through Config.PreAuth
		channelBindingFeature, // XEP-0440, after pre-auth's feature as on the wire before
		bindFeature,           // RFC 6120 §7
		sessionFeature,        // RFC 3921 §3, RFC 6121 Appendix E
		smFeature,             // XEP-0198
		csiFeature,            // XEP-0352
	}
}

// appendFeatures writes <stream:features> for the current state.
func (c *conn) appendFeatures(b []byte) []byte {
	b = append(b, "<stream:features>"...)
	for _, f := range features {
		if f.offer == nil {
			continue
		}
		if e := f.offer(c); e != nil {
			b = e.AppendXML(b, stanza.NSClient)
		}
	}
	if c.local != "" {
		for _, e := range c.srv.conf().Router.StreamFeatures() {
			b = e.AppendXML(b, stanza.NSClient)
		}
	}
	return append(b, "</stream:features>"...)
}

// handle processes one top-level element: a feature's, or else a stanza.
func (c *conn) handle(ctx context.Context, e *xmlstream.Element) error {
	for i := range features {
		if f := &features[i]; f.match != nil && f.match(c, e) {
			return f.handle(ctx, c, e)
		}
	}
	if c.state < stateTLS {
		// RFC 6120 §5.3.1: nothing but STARTTLS before TLS when it is required.
		return &stream.Error{Condition: stream.PolicyViolation, Text: "STARTTLS is required"}
	}
	if !stanza.IsStanza(e) || e.Name.Space != stanza.NSClient {
		return &stream.Error{Condition: stream.UnsupportedStanzaType}
	}
	switch c.state {
	case stateTLS:
		// RFC 6120 §6.4.1: no stanzas before authentication.
		return &stream.Error{Condition: stream.NotAuthorized}
	case stateAuthed:
		return c.beforeBind(e)
	}
	return c.stanza(ctx, e)
}

// inSpace returns a match for the elements in namespace space.
func inSpace(space string) func(*conn, *xmlstream.Element) bool {
	return func(_ *conn, e *xmlstream.Element) bool { return e.Name.Space == space }
}

// isIQ reports whether e is an IQ of type typ whose first child is
// {space}local.
func isIQ(e *xmlstream.Element, typ, space, local string) bool {
	if e.Name.Space != stanza.NSClient || e.Name.Local != "iq" || stanza.Type(e) != typ {
		return false
	}
	p := e.FirstChild()
	return p != nil && p.Name.Space == space && p.Name.Local == local
}

// mustStartTLS reports whether the client has to start TLS before
// anything else (RFC 6120 §5.3.1).
func (c *conn) mustStartTLS() bool {
	return !c.secure() && c.srv.tls != nil && c.srv.conf().RequireTLS
}

// canAuth reports whether authentication is offered: not done yet, and
// TLS is on or not required.
func (c *conn) canAuth() bool { return c.local == "" && !c.mustStartTLS() }
