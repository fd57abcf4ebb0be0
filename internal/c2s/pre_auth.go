package c2s

import (
	"context"
	"errors"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// preAuthFeature hands the IQs a client sends after TLS and before
// authentication to Config.PreAuth (XEP-0077 in-band registration), which
// also gives the feature to advertise.
var preAuthFeature = feature{
	name: "pre-auth",
	offer: func(c *conn) *xmlstream.Element {
		if p := c.srv.conf().PreAuth; p != nil && c.canAuth() {
			return p.PreAuthFeature()
		}
		return nil
	},
	match: func(c *conn, e *xmlstream.Element) bool {
		return c.state == stateTLS && c.srv.conf().PreAuth != nil && e.Name.Space == stanza.NSClient && e.Name.Local == "iq"
	},
	handle: func(ctx context.Context, c *conn, e *xmlstream.Element) error { return c.preAuthIQ(ctx, e) },
}

// preAuthIQ answers an IQ sent before authentication through the PreAuth
// handler; anything but an IQ get or set goes unanswered.
func (c *conn) preAuthIQ(ctx context.Context, iq *xmlstream.Element) error {
	if err := stanza.ValidateIQ(iq); err != nil {
		return c.reply(stanza.ErrorReply(iq, asStanzaError(err)))
	}
	typ := stanza.Type(iq)
	if typ != stanza.IQGet && typ != stanza.IQSet {
		return nil
	}
	// No addresses before authentication: the reply carries only the id.
	iq.RemoveAttr("from")
	iq.RemoveAttr("to")
	res, err := c.srv.conf().PreAuth.HandlePreAuth(ctx, c.t.RemoteAddr(), c.domain, iq)
	if err != nil {
		var se *stanza.Error
		if !errors.As(err, &se) {
			c.log.Error("pre-auth iq", "err", err)
			se = stanza.NewError(stanza.InternalServerError, "")
		}
		return c.reply(stanza.ErrorReply(iq, se))
	}
	reply := stanza.NewIQ(stanza.NSClient, stanza.IQResult, "", "", stanza.ID(iq))
	if res != nil {
		reply.Append(res)
	}
	return c.reply(reply)
}
