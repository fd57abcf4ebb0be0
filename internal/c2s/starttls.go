package c2s

import (
	"context"
	"errors"
	"io"

	"github.com/ode-xmpp/ode/internal/transport"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// startTLSFeature is STARTTLS (RFC 6120 §5), on transports that can
// (transport.TLSStarter).
var startTLSFeature = feature{
	name: "starttls",
	offer: func(c *conn) *xmlstream.Element {
		if !c.canStartTLS() {
			return nil
		}
		st := xmlstream.NewElement(stream.NSTLS, "starttls")
		if c.srv.conf().RequireTLS {
			st.Append(xmlstream.NewElement(stream.NSTLS, "required"))
		}
		return st
	},
	match: func(_ *conn, e *xmlstream.Element) bool {
		return e.Name.Space == stream.NSTLS && e.Name.Local == "starttls"
	},
	handle: func(ctx context.Context, c *conn, _ *xmlstream.Element) error { return c.upgrade(ctx) },
}

// canStartTLS reports whether STARTTLS is possible now.
func (c *conn) canStartTLS() bool {
	_, ok := c.t.(transport.TLSStarter)
	return ok && c.local == "" && !c.secure() && c.srv.tls != nil
}

// upgrade answers <starttls/> (RFC 6120 §5.4.2) and upgrades the stream.
func (c *conn) upgrade(ctx context.Context) error {
	if !c.canStartTLS() {
		// RFC 6120 §5.4.2.2: failure then close.
		_ = c.send([]byte("<failure xmlns='" + stream.NSTLS + "'/>"))
		return &stream.Error{Condition: stream.UnsupportedFeature}
	}
	// What was queued goes out in the clear first; <proceed/> is the
	// transport's last write before the handshake.
	if err := c.l().Flush(c.srv.conf().WriteTimeout); err != nil {
		return io.EOF
	}
	err := c.startTLS(ctx, c.srv.tls, []byte("<proceed xmlns='"+stream.NSTLS+"'/>"))
	switch {
	case errors.Is(err, transport.ErrPipelined):
		// The client sent data before our <proceed/>: it must not (§5.4.3.3).
		return &stream.Error{Condition: stream.PolicyViolation, Text: "data sent before TLS negotiation"}
	case err != nil:
		c.reason.CompareAndSwap(nil, err.Error())
		c.l().Close(nil)
		return io.EOF
	}
	c.state = stateTLS
	c.sent = false
	return nil
}
