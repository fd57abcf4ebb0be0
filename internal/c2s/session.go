package c2s

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	"github.com/ode-xmpp/ode/internal/metrics"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

var storageNotFound = storage.ErrNotFound

var _ router.Session = (*session.Session)(nil)

// bindFeature is resource binding (RFC 6120 §7): after authentication,
// an IQ set with <bind/> creates the session.
var bindFeature = feature{
	name: "bind",
	offer: func(c *conn) *xmlstream.Element {
		if c.state != stateAuthed {
			// Before authentication, or bound (by Bind2) already.
			return nil
		}
		return xmlstream.NewElement(stream.NSBind, "bind")
	},
	match: func(c *conn, e *xmlstream.Element) bool {
		return c.state == stateAuthed && isIQ(e, stanza.IQSet, stream.NSBind, "bind")
	},
	handle: func(ctx context.Context, c *conn, e *xmlstream.Element) error {
		if err := stanza.ValidateIQ(e); err != nil {
			return c.reply(stanza.ErrorReply(e, asStanzaError(err)))
		}
		return c.bind(ctx, e, e.FirstChild())
	},
}

// sessionFeature is RFC 3921's session establishment, a no-op kept for
// old clients and advertised as optional (RFC 6121 Appendix E). Once
// bound, the IQ is a stanza like any other, answered in conn.stanza.
var sessionFeature = feature{
	name: "session",
	offer: func(c *conn) *xmlstream.Element {
		if c.state != stateAuthed {
			return nil
		}
		return xmlstream.NewElement(stream.NSSession, "session").Append(xmlstream.NewElement(stream.NSSession, "optional"))
	},
	match: func(c *conn, e *xmlstream.Element) bool {
		return c.state == stateAuthed && isSession(e)
	},
	handle: func(_ context.Context, c *conn, e *xmlstream.Element) error {
		if err := stanza.ValidateIQ(e); err != nil {
			return c.reply(stanza.ErrorReply(e, asStanzaError(err)))
		}
		return c.reply(stanza.IQResultFor(e))
	},
}

// isSession reports whether iq is the RFC 3921 session establishment.
func isSession(iq *xmlstream.Element) bool {
	return isIQ(iq, stanza.IQSet, stream.NSSession, "session")
}

// beforeBind handles the stanzas between SASL and resource binding that
// no feature took: only binding (and the legacy session) is allowed
// (RFC 6120 §7.1).
func (c *conn) beforeBind(e *xmlstream.Element) error {
	if e.Name.Local != "iq" {
		return &stream.Error{Condition: stream.NotAuthorized, Text: "bind a resource first"}
	}
	if err := stanza.ValidateIQ(e); err != nil {
		return c.reply(stanza.ErrorReply(e, asStanzaError(err)))
	}
	return c.reply(stanza.ErrorReply(e, stanza.NewError(stanza.NotAuthorized, "")))
}

// bind binds the client's or a generated resource (RFC 6120 §7.6, §7.7).
func (c *conn) bind(ctx context.Context, iq, b *xmlstream.Element) error {
	bare, err := jid.New(c.local, c.domain, "")
	if err != nil {
		return &stream.Error{Condition: stream.InternalServerError}
	}
	res := ""
	if r := b.Child(stream.NSBind, "resource"); r != nil {
		res = strings.Trim(r.Text(), " \t\r\n") // XML white space only
	}
	if res == "" {
		res = generateResource()
	}
	full, err := bare.WithResource(res)
	if err != nil {
		// RFC 6120 §7.7.2.1: a resourcepart that cannot be processed.
		return c.reply(stanza.ErrorReply(iq, stanza.NewError(stanza.BadRequest, "invalid resource")))
	}
	c.full = full
	c.state = stateBound
	metrics.SessionBound(c.tr)
	c.b = c.srv.newBinding(c, full)
	if old := c.srv.conf().Router.Bind(c.b.sess); old != nil {
		// RFC 6120 §7.7.2.2: the new session overrides the old one.
		old.Close(&stream.Error{Condition: stream.Conflict, Text: "replaced by a new connection"})
	}
	_ = c.t.SetReadDeadline(time.Time{})
	c.log = c.log.With("jid", full.String())
	c.log.Info("resource bound")
	res0 := stanza.IQResultFor(iq)
	res0.RemoveAttr("from")
	res0.RemoveAttr("to")
	res0.Append(xmlstream.NewElement(stream.NSBind, "bind").Append(
		xmlstream.NewElement(stream.NSBind, "jid").AppendText(full.String())))
	return c.reply(res0)
}

func generateResource() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "ode-" + hex.EncodeToString(b[:])
}

// reply enqueues an element for this client; nil is a no-op. Once bound
// it goes through the session's queue, counted like any stanza.
func (c *conn) reply(e *xmlstream.Element) error {
	if e == nil {
		return nil
	}
	if c.b != nil {
		err := c.b.sess.Deliver(e)
		if err == session.ErrClosed {
			return nil // the session is ending
		}
		return err
	}
	return c.sendElement(e)
}

func asStanzaError(err error) *stanza.Error {
	if se, ok := err.(*stanza.Error); ok {
		return se
	}
	return stanza.NewError(stanza.BadRequest, "")
}

// stanza handles a stanza from a bound client (RFC 6120 §8.1.2.1, §10).
func (c *conn) stanza(ctx context.Context, e *xmlstream.Element) error {
	kind := e.Name.Local
	metrics.C2SIn(kind)
	if c.sm {
		// XEP-0198 §4: the stanza is handled once processing it began;
		// a stream error for it ends the session anyway.
		c.b.sess.Handled()
	}
	if from := e.Attribute("from"); from != "" {
		f, err := jid.Parse(from)
		if err != nil || !(f.Equal(c.full) || f.Equal(c.full.Bare())) {
			return &stream.Error{Condition: stream.InvalidFrom}
		}
	}
	e.SetAttr("from", c.full.String())
	switch e.Name.Local {
	case "iq":
		if err := stanza.ValidateIQ(e); err != nil {
			return c.reply(stanza.ErrorReply(e, asStanzaError(err)))
		}
		if isSession(e) && (e.Attribute("to") == "" || e.Attribute("to") == c.domain) {
			return c.reply(stanza.IQResultFor(e))
		}
	case "presence":
		if e.Attribute("to") == "" {
			c.b.sess.UpdatePresence(e)
		}
	}
	c.timer.Start()
	c.srv.conf().Router.RouteFrom(ctx, c.b.sess, e)
	c.timer.C2SDone(kind)
	return nil
}
