package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSFraming is the namespace of RFC 7395's <open/> and <close/>.
const NSFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// WebSocketProtocol is the WebSocket subprotocol of XMPP (RFC 7395 §3.1).
const WebSocketProtocol = "xmpp"

// WebSocket is a client stream over a WebSocket connection (RFC 7395):
// each message is one XML element, the stream opens with <open/> and
// closes with <close/>, and TLS is the HTTP server's.
//
// The messages are read as one virtual XML stream (a <stream:stream>
// declaring jabber:client, then the messages' bytes), so one
// xmlstream.Reader parses them all with the limits and the small idle
// footprint of a TCP stream; an element spanning messages, or two in one
// message, is accepted (RFC 7395 §3.3.3 asks the client for one per
// message, and nothing depends on it).
type WebSocket struct {
	c            *websocket.Conn
	r            *xmlstream.Reader
	in           wsReader
	writeTimeout time.Duration
	tlsState     *tls.ConnectionState
	tlsCert      []byte
	remote       net.Addr
	secure       bool
	idle         *Idle
	started      bool
	// rmu is held by the reader goroutine inside ReadOpen and Next: the
	// library's close handshake reads too, so it runs under rmu (from
	// Close when no read is in progress, else from the reader, which
	// Close interrupts).
	rmu        sync.Mutex
	closing    atomic.Bool  // the virtual stream header was parsed
	lastRead   atomic.Int64 // Unix nanoseconds of the last message read
	writeStart atomic.Int64 // Unix nanoseconds when the Write in progress began, 0 when none

	mu  sync.Mutex // serialises Write
	buf []byte     // Write's message buffer
}

var _ Transport = (*WebSocket)(nil)

// WebSocketOptions describes one WebSocket stream's connection.
type WebSocketOptions struct {
	Options
	// TLS is the state of the HTTPS connection the WebSocket runs on,
	// nil for plain HTTP.
	TLS *tls.ConnectionState
	// TLSCertificate is the DER of the certificate the client of that
	// HTTPS connection holds (on a resumed session, the one its first
	// handshake presented), for tls-server-end-point; nil if unknown.
	TLSCertificate []byte
	// Secure is true when the connection is encrypted although TLS is
	// nil: a trusted reverse proxy terminated TLS (X-Forwarded-Proto).
	Secure bool
	// RemoteAddr is the client's address (as a trusted proxy tells it).
	RemoteAddr net.Addr
	// Idle, if set, is the connection under the WebSocket library's read
	// buffer: between messages the reader waits on it (a shallow call,
	// so that the runtime can shrink an idle stream's goroutine stack)
	// before asking the library for the next message.
	Idle *Idle
}

// Idle is the connection under a WebSocket library's read buffer Buf
// (Conn is what Buf reads), so that the stream's reader can wait for the
// next frame without being deep in the library.
type Idle struct {
	Conn *WaitConn
	Buf  interface{ Buffered() int }
}

// WaitConn is a connection whose reader can wait for data (Wait)
// without taking it from the next Read.
type WaitConn struct {
	net.Conn
	mu   sync.Mutex
	b    [1]byte
	have bool
}

// NewWaitConn returns nc with Wait.
func NewWaitConn(nc net.Conn) *WaitConn { return &WaitConn{Conn: nc} }

// Read reads, first the byte Wait read, if any.
func (c *WaitConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.have && len(p) > 0 {
		p[0] = c.b[0]
		c.have = false
		return 1, nil
	}
	return c.Conn.Read(p)
}

// Wait blocks until there is something to read, or an error.
func (c *WaitConn) Wait() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.have {
		return nil
	}
	n, err := c.Conn.Read(c.b[:])
	if n == 1 {
		c.have = true
		return nil
	}
	return err
}

// NewWebSocket returns the transport of the stream on c, whose
// subprotocol must be "xmpp".
func NewWebSocket(c *websocket.Conn, opts WebSocketOptions) *WebSocket {
	t := &WebSocket{c: c, writeTimeout: opts.WriteTimeout, tlsState: opts.TLS, tlsCert: opts.TLSCertificate, remote: opts.RemoteAddr,
		secure: opts.Secure || opts.TLS != nil, idle: opts.Idle}
	limit := opts.MaxElementBytes
	if limit <= 0 {
		limit = 1 << 20
	}
	// A message holds one element: it is at most the element limit plus
	// white space.
	c.SetReadLimit(int64(limit) + 4096)
	t.in.t = t
	t.r = xmlstream.NewReader(&t.in, xmlstream.Limits{MaxElementBytes: opts.MaxElementBytes})
	t.lastRead.Store(time.Now().UnixNano())
	return t
}

// wsReader presents the messages as one byte stream behind a virtual
// stream header.
type wsReader struct {
	t        *WebSocket
	header   bool      // the virtual header was read
	msg      io.Reader // the current message
	head     [32]byte  // its first bytes, read to check them
	headLen  int
	headOff  int
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time
}

const virtualHeader = "<stream:stream xmlns='" + stanza.NSClient + "' xmlns:stream='" + stream.NS + "'>"

func (r *wsReader) Read(p []byte) (int, error) {
	if !r.header {
		r.header = true
		return copy(p, virtualHeader), nil
	}
	for {
		if r.headOff < r.headLen {
			n := copy(p, r.head[r.headOff:r.headLen])
			r.headOff += n
			return n, nil
		}
		if r.msg != nil {
			n, err := r.msg.Read(p)
			if err == io.EOF {
				r.endMessage()
				if n > 0 {
					return n, nil
				}
				continue
			}
			if err != nil {
				err = wsReadError(r.ctx, err)
				r.endMessage()
			}
			return n, err
		}
		if r.t.closing.Load() {
			return 0, r.t.closeHandshake()
		}
		if idle := r.t.idle; idle != nil && r.deadline.IsZero() && idle.Buf.Buffered() == 0 {
			// Wait for the next frame here rather than deep in the
			// library.
			if err := idle.Conn.Wait(); err != nil {
				if r.t.closing.Load() {
					return 0, r.t.closeHandshake()
				}
				return 0, wsReadError(context.Background(), err)
			}
			if r.t.closing.Load() {
				return 0, r.t.closeHandshake()
			}
		}
		// The message's context lives as long as its reader: past a
		// deadline, the library closes the connection.
		r.ctx, r.cancel = context.Background(), func() {}
		if !r.deadline.IsZero() {
			r.ctx, r.cancel = context.WithDeadline(context.Background(), r.deadline)
		}
		typ, msg, err := r.t.c.Reader(r.ctx)
		if err != nil {
			err = wsReadError(r.ctx, err)
			r.endMessage()
			if r.t.closing.Load() {
				return 0, r.t.closeHandshake()
			}
			return 0, err
		}
		r.t.lastRead.Store(time.Now().UnixNano())
		if typ != websocket.MessageText {
			r.endMessage()
			return 0, &stream.Error{Condition: stream.UnsupportedEncoding, Text: "XMPP over WebSocket is carried in text messages (RFC 7395 §3.2)"}
		}
		// A message starts an element of its own (RFC 7395 §3.3.3); a
		// client that frames the stream as over TCP gets a stream error
		// at once instead of a parser waiting for the element's end.
		n, err := io.ReadAtLeast(msg, r.head[:], 1)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			err = wsReadError(r.ctx, err)
			r.endMessage()
			return 0, err
		}
		r.headLen, r.headOff = n, 0
		if head := bytes.TrimLeft(r.head[:n], " \t\r\n"); bytes.HasPrefix(head, []byte("<?xml")) || bytes.HasPrefix(head, []byte("<stream:stream")) {
			r.endMessage()
			return 0, &stream.Error{Condition: stream.InvalidNamespace, Text: "a WebSocket stream opens with <open xmlns='" + NSFraming + "'/>, one element per message (RFC 7395)"}
		}
		r.msg = msg
	}
}

// endMessage forgets the current message and its context.
func (r *wsReader) endMessage() {
	r.msg = nil
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
}

// wsReadError maps a failed read to what Next documents: the deadline,
// a closed connection (io.EOF), or the error.
func wsReadError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("transport: websocket read: %w", errDeadline)
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return io.EOF
	}
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return &stream.Error{Condition: stream.PolicyViolation, Text: "message larger than the stanza limit"}
	}
	return fmt.Errorf("transport: websocket read: %w", err)
}

// errDeadline matches os.ErrDeadlineExceeded for stream.FromReadError.
var errDeadline = deadlineError{}

type deadlineError struct{}

func (deadlineError) Error() string   { return "i/o timeout" }
func (deadlineError) Timeout() bool   { return true }
func (deadlineError) Temporary() bool { return true }
func (deadlineError) Is(target error) bool {
	return target == os.ErrDeadlineExceeded
}

// ReadOpen reads the client's <open/> (RFC 7395 §3.4).
func (t *WebSocket) ReadOpen() (Open, error) {
	t.rmu.Lock()
	defer t.rmu.Unlock()
	if !t.started {
		// The virtual stream header: no message is read for it.
		t.started = true
		if _, err := t.r.ReadStart(); err != nil {
			return Open{}, err
		}
	}
	e, err := t.r.Next()
	if err != nil {
		return Open{}, err
	}
	if e.Name.Space != NSFraming || e.Name.Local != "open" {
		return Open{}, &stream.Error{Condition: stream.InvalidNamespace, Text: "a WebSocket stream opens with <open xmlns='" + NSFraming + "'/>"}
	}
	h := stream.Header{To: e.Attribute("to"), From: e.Attribute("from"), ID: e.Attribute("id"), Version: e.Attribute("version")}
	h.Lang, _ = e.LookupAttr(xmlstream.NSXML, "lang")
	return Open{Header: h, ContentNS: stanza.NSClient}, nil
}

// Next returns the next element; <close/> ends the stream.
func (t *WebSocket) Next() (*xmlstream.Element, error) {
	t.rmu.Lock()
	defer t.rmu.Unlock()
	e, err := t.r.Next()
	if err != nil {
		return nil, err
	}
	if e.Name.Space == NSFraming {
		if e.Name.Local == "close" {
			return nil, xmlstream.ErrStreamEnd
		}
		return nil, &stream.Error{Condition: stream.NotAuthorized, Text: "<" + e.Name.Local + "/> in the middle of a stream"}
	}
	return e, nil
}

// Restart does nothing to the parser: after SASL success the client
// sends a new <open/> as the next message (RFC 7395 §3.5), which
// ReadOpen reads.
func (t *WebSocket) Restart() {}

// SetReadDeadline bounds the next reads. Past it the WebSocket
// connection is closed (the library's reads cannot be resumed).
func (t *WebSocket) SetReadDeadline(d time.Time) error {
	t.in.deadline = d
	return nil
}

// AppendOpen appends <open/> with the stream's attributes.
func (t *WebSocket) AppendOpen(dst []byte, h stream.Header) []byte {
	dst = append(dst, "<open xmlns='"+NSFraming+"'"...)
	attr := func(name, v string) {
		if v != "" {
			dst = append(dst, ' ')
			dst = append(dst, name...)
			dst = append(dst, "='"...)
			dst = xmlstream.AppendEscaped(dst, v, true)
			dst = append(dst, '\'')
		}
	}
	attr("from", h.From)
	attr("to", h.To)
	attr("id", h.ID)
	attr("version", h.Version)
	attr("xml:lang", h.Lang)
	return append(dst, "/>"...)
}

// AppendClose appends <close/>.
func (t *WebSocket) AppendClose(dst []byte) []byte {
	return append(dst, "<close xmlns='"+NSFraming+"'/>"...)
}

// Write sends each top-level element of p as one text message, with the
// namespace declarations a message of its own needs (RFC 7395 §3.3.3).
func (t *WebSocket) Write(p []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	// No context deadline per write (it costs four allocations a
	// message): the listener's keepalive loop kills a stream whose write
	// is stuck past the write timeout (Stuck).
	ctx := context.Background()
	t.writeStart.Store(time.Now().UnixNano())
	defer t.writeStart.Store(0)
	for len(p) > 0 {
		kind, el, rest, err := NextPiece(p)
		if err == nil && el != nil && kind != PieceElement {
			err = fmt.Errorf("%w: %q is not an element", errSplit, el)
		}
		if err != nil {
			return fmt.Errorf("transport: websocket write: %w", err)
		}
		if el == nil {
			break // white space only
		}
		p = rest
		t.buf = appendMessage(t.buf[:0], el)
		if err := t.c.Write(ctx, websocket.MessageText, t.buf); err != nil {
			return fmt.Errorf("transport: websocket write: %w", err)
		}
	}
	if cap(t.buf) > 64<<10 {
		t.buf = nil
	}
	return nil
}

// Close closes the WebSocket with a normal closure after the last Write.
func (t *WebSocket) Close() {
	if !t.closing.CompareAndSwap(false, true) {
		return
	}
	if t.rmu.TryLock() {
		// No read in progress: the close handshake may read.
		go func() {
			defer t.rmu.Unlock()
			_ = t.c.Close(websocket.StatusNormalClosure, "")
		}()
		return
	}
	// The reader is waiting: wake it, and it runs the handshake.
	if t.idle != nil {
		_ = t.idle.Conn.SetReadDeadline(time.Now())
		return
	}
	go func() { _ = t.c.Close(websocket.StatusNormalClosure, "") }()
}

// closeHandshake closes the WebSocket from the reader goroutine, after
// Close woke it, and returns io.EOF for the read in progress.
func (t *WebSocket) closeHandshake() error {
	if t.idle != nil {
		_ = t.idle.Conn.SetReadDeadline(time.Time{})
	}
	_ = t.c.Close(websocket.StatusNormalClosure, "")
	return io.EOF
}

// Kill closes the connection at once.
func (t *WebSocket) Kill() { _ = t.c.CloseNow() }

// TLS returns the HTTPS connection's TLS state, or nil.
func (t *WebSocket) TLS() *tls.ConnectionState { return t.tlsState }

// TLSCertificate returns the DER of the certificate the client of the
// HTTPS connection holds (WebSocketOptions.TLSCertificate), or nil.
func (t *WebSocket) TLSCertificate() []byte { return t.tlsCert }

// Secure reports whether the connection is encrypted: over HTTPS, or
// behind a trusted proxy that terminated TLS.
func (t *WebSocket) Secure() bool { return t.secure }

// RemoteAddr returns the client's address.
func (t *WebSocket) RemoteAddr() net.Addr { return t.remote }

// Kind names the transport in logs.
func (t *WebSocket) Kind() string { return "websocket" }

// Idle returns how long ago the client sent its last message, for
// keepalive pings.
func (t *WebSocket) Idle() time.Duration { return time.Since(time.Unix(0, t.lastRead.Load())) }

// Stuck reports whether a Write has been blocked for longer than the
// write timeout (a client that stopped reading).
func (t *WebSocket) Stuck() bool {
	start := t.writeStart.Load()
	return t.writeTimeout > 0 && start != 0 && time.Since(time.Unix(0, start)) > t.writeTimeout
}

// Ping sends a WebSocket ping and waits for the pong, within ctx; a
// connection that does not answer is killed.
func (t *WebSocket) Ping(ctx context.Context) error {
	if err := t.c.Ping(ctx); err != nil {
		t.Kill()
		return err
	}
	t.lastRead.Store(time.Now().UnixNano())
	return nil
}

// appendMessage appends el, a whole element of a jabber:client stream, as
// a message of its own: stream: elements declare the stream prefix,
// others jabber:client unless they declare a default namespace.
func appendMessage(dst, el []byte) []byte {
	name := TagName(el)
	if !bytes.HasPrefix(name, []byte("stream:")) {
		return AppendClientElement(dst, el)
	}
	n := 1 + len(name)
	dst = append(dst, el[:n]...)
	dst = append(dst, " xmlns:stream='"+stream.NS+"'"...)
	return append(dst, el[n:]...)
}
