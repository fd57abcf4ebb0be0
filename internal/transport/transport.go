// Package transport carries one XML stream between the server and a
// client: it yields the stream's top-level elements, writes bytes, and
// knows how the stream opens, restarts and closes on its carrier.
//
// TCP (RFC 6120 §4, with STARTTLS, §5, or direct TLS, XEP-0368) is the
// carrier implemented here. WebSocket (RFC 7395: one element per message,
// <open/> and <close/>) and BOSH (XEP-0206: elements in the bodies of HTTP
// requests) implement the same interface, so that stream negotiation and
// sessions (internal/c2s, internal/session) do not know which carrier a
// stream uses.
package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Transport is one stream's carrier, used by the stream's reader
// goroutine (ReadOpen, Next, Restart, SetReadDeadline, TLS, RemoteAddr)
// and by the writer of its outbound queue (Write, Close: a
// session.Writer). Kill, AppendOpen and AppendClose are safe from any
// goroutine.
type Transport interface {
	// ReadOpen reads the client's opening of a stream (over TCP the
	// <stream:stream> header; RFC 7395 §3.4: <open/>). Read and parse
	// errors are as for Next; a header in the wrong namespace is an
	// invalid-namespace *stream.Error.
	ReadOpen() (Open, error)
	// Next returns the next top-level element of the stream, skipping
	// whitespace keepalives. It returns xmlstream.ErrStreamEnd when the
	// client closed the stream (</stream:stream>, <close/>), an
	// *xmlstream.Error for bad XML (see stream.FromReadError), io.EOF or
	// another I/O error when the connection is gone, and an error
	// matching os.ErrDeadlineExceeded past the read deadline.
	Next() (*xmlstream.Element, error)
	// Restart makes the next ReadOpen read a new stream on the same
	// connection, after SASL success (RFC 6120 §6.4.6): the parser
	// forgets the current stream, and over TCP the client sends a new
	// header.
	Restart()
	// SetReadDeadline bounds the next reads (ReadOpen, Next); the zero
	// time removes the bound.
	SetReadDeadline(t time.Time) error

	// AppendOpen appends the server's opening of a stream with the
	// attributes h to dst: over TCP the <stream:stream> header declaring
	// jabber:client and the stream prefix, over WebSocket <open/>.
	AppendOpen(dst []byte, h stream.Header) []byte
	// AppendClose appends the server's closing of the stream to dst
	// (</stream:stream>, <close/>).
	AppendClose(dst []byte) []byte
	// Write writes p, with the transport's own write timeout. p holds
	// whole top-level elements, serialised as a TCP stream carries them:
	// jabber:client is the default namespace and "stream" is bound to
	// stream.NS (a transport whose messages are documents of their own,
	// RFC 7395, declares both on each element), and any of AppendOpen's
	// and AppendClose's bytes.
	Write(p []byte) error
	// Close closes the connection after the last Write, gracefully
	// (with a TLS close_notify when TLS is on).
	Close()
	// Kill closes the connection at once, also under a blocked Write.
	Kill()

	// TLS returns the state of the TLS connection the stream runs on,
	// for channel binding and SASL EXTERNAL, or nil if it runs in the
	// clear.
	TLS() *tls.ConnectionState
	// RemoteAddr returns the client's address.
	RemoteAddr() net.Addr
}

// TLSStarter is a Transport that can switch to TLS in the middle of the
// stream: TCP's STARTTLS (RFC 6120 §5). WebSocket and BOSH streams cannot;
// TLS is their HTTP server's business.
type TLSStarter interface {
	Transport
	// StartTLS writes proceed (the last bytes in the clear, <proceed/>,
	// or nothing for direct TLS), runs the server side of the TLS
	// handshake with cfg and restarts the stream over TLS (RFC 6120
	// §5.4.3.3), within ctx. Everything queued before proceed must have
	// been written already. If the client sent data after the element
	// that asked for TLS, it writes nothing and returns ErrPipelined.
	StartTLS(ctx context.Context, cfg *tls.Config, proceed []byte) error
}

// Open is a client's opening of a stream.
type Open struct {
	// Header holds the opening's attributes (to, from, version,
	// xml:lang).
	Header stream.Header
	// ContentNS is the namespace of the stream's stanzas: over TCP the
	// default namespace declared on the header (which must be
	// jabber:client for a client stream); jabber:client on transports
	// where it is implied.
	ContentNS string
}

// ErrPipelined is returned by StartTLS when the client sent more data
// after asking for TLS, before the server's answer (RFC 6120 §5.4.3.3).
var ErrPipelined = errors.New("transport: data sent before the TLS handshake")

// Options are the limits of a transport.
type Options struct {
	// MaxElementBytes bounds one top-level element (0: xmlstream's
	// default).
	MaxElementBytes int
	// WriteTimeout bounds one Write (0: none).
	WriteTimeout time.Duration
}
