package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// TCP is a client stream over a TCP connection (RFC 6120 §4): in the
// clear until STARTTLS, or over TLS from the first byte (XEP-0368, call
// StartTLS with no proceed before reading).
type TCP struct {
	tcp          net.Conn // the socket
	r            *xmlstream.Reader
	writeTimeout time.Duration
	tlsState     atomic.Pointer[tls.ConnectionState]

	mu       sync.Mutex // guards nc and deadline, serialises writes (and the TLS handshake)
	nc       net.Conn   // tcp, or the *tls.Conn over it
	deadline time.Time  // the write deadline set on nc

	beforeRead func() // called before each read from the connection
}

// connReader is what the parser reads from: the connection, with the
// transport's beforeRead hook in front of each read.
type connReader struct {
	t *TCP
	c net.Conn
}

func (r connReader) Read(p []byte) (int, error) {
	if f := r.t.beforeRead; f != nil {
		f()
	}
	return r.c.Read(p)
}

// SetBeforeRead makes the reader call f before each read from the
// connection, that is whenever what was read so far is handled and more
// must come from the client (c2s flushes its session.Batch there). Call it
// before the first read, from the reader's goroutine.
func (t *TCP) SetBeforeRead(f func()) { t.beforeRead = f }

var _ TLSStarter = (*TCP)(nil)

// NewTCP returns the transport of the stream on nc.
func NewTCP(nc net.Conn, opts Options) *TCP {
	t := &TCP{
		tcp:          nc,
		nc:           nc,
		writeTimeout: opts.WriteTimeout,
	}
	t.r = xmlstream.NewReader(connReader{t, nc}, xmlstream.Limits{MaxElementBytes: opts.MaxElementBytes})
	return t
}

// ReadOpen reads the client's <stream:stream> header.
func (t *TCP) ReadOpen() (Open, error) {
	start, err := t.r.ReadStart()
	if err != nil {
		return Open{}, err
	}
	h, err := stream.ParseHeader(start)
	return Open{Header: h, ContentNS: t.r.DefaultNS()}, err
}

// Next returns the next top-level element.
func (t *TCP) Next() (*xmlstream.Element, error) { return t.r.Next() }

// Restart makes the parser expect a new stream header.
func (t *TCP) Restart() { t.r.Reset(connReader{t, t.conn()}) }

// SetReadDeadline sets the socket's read deadline.
func (t *TCP) SetReadDeadline(d time.Time) error { return t.tcp.SetReadDeadline(d) }

// AppendOpen appends a <stream:stream> header for jabber:client.
func (t *TCP) AppendOpen(dst []byte, h stream.Header) []byte {
	return h.AppendXML(dst, stanza.NSClient)
}

// AppendClose appends </stream:stream>.
func (t *TCP) AppendClose(dst []byte) []byte { return append(dst, "</stream:stream>"...) }

// Write writes p to the connection.
func (t *TCP) Write(p []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.write(p)
}

// write writes p; t.mu is held. The write deadline moves only once less
// than three quarters of the timeout remain, so that a busy stream does
// not reset a runtime timer per write: each write still gets between 3/4
// of the timeout and all of it.
func (t *TCP) write(p []byte) error {
	if t.writeTimeout > 0 {
		if now := time.Now(); t.deadline.Sub(now) < t.writeTimeout*3/4 {
			t.deadline = now.Add(t.writeTimeout)
			_ = t.nc.SetWriteDeadline(t.deadline)
		}
	}
	_, err := t.nc.Write(p)
	return err
}

// Close closes the connection, with a TLS close_notify when TLS is on.
func (t *TCP) Close() { _ = t.conn().Close() }

// Kill closes the socket.
func (t *TCP) Kill() { _ = t.tcp.Close() }

// TLS returns the TLS state once StartTLS succeeded, else nil.
func (t *TCP) TLS() *tls.ConnectionState { return t.tlsState.Load() }

// RemoteAddr returns the socket's remote address.
func (t *TCP) RemoteAddr() net.Addr { return t.tcp.RemoteAddr() }

func (t *TCP) conn() net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nc
}

// StartTLS writes proceed and runs the server side of the TLS handshake;
// writes wait for it. ctx's deadline also bounds the socket's reads and
// writes during the handshake.
func (t *TCP) StartTLS(ctx context.Context, cfg *tls.Config, proceed []byte) error {
	if t.TLS() != nil {
		return errors.New("transport: TLS is already on")
	}
	if t.r.Buffered() > 0 {
		return ErrPipelined
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(proceed) > 0 {
		if err := t.write(proceed); err != nil {
			return fmt.Errorf("transport: write before the TLS handshake: %w", err)
		}
	}
	tc := tls.Server(t.tcp, cfg)
	if d, ok := ctx.Deadline(); ok {
		_ = t.tcp.SetDeadline(d)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("transport: tls handshake: %w", err)
	}
	_ = t.tcp.SetDeadline(time.Time{})
	t.deadline = time.Time{}
	st := tc.ConnectionState()
	t.tlsState.Store(&st)
	t.nc = tc
	t.r.Reset(connReader{t, tc})
	return nil
}
