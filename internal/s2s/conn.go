package s2s

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// streamConn is the transport of one server stream, inbound or outbound:
// the socket (TCP, then TLS over it), the XML reader, and serialised
// writes. The goroutine reading the stream owns r.
type streamConn struct {
	m   *Manager
	log *slog.Logger
	tcp net.Conn
	r   *xmlstream.Reader

	wmu   sync.Mutex // guards nc swaps and writes
	nc    net.Conn
	tlsOn bool
	state tls.ConnectionState // set by the handshake

	streamID  string      // outbound: the id the receiving server gave
	headerOut atomic.Bool // our header of the current stream was written
	closed    atomic.Bool
	local     atomic.Value // string: our domain, for a header in closeWith
}

func newStreamConn(m *Manager, tcp net.Conn, log *slog.Logger) *streamConn {
	return &streamConn{m: m, log: log, tcp: tcp, nc: tcp}
}

// write sends p to the peer within the write timeout.
func (c *streamConn) write(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return net.ErrClosed
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.m.conf().WriteTimeout))
	_, err := c.nc.Write(p)
	return err
}

// handshake runs TLS on the connection, as client (for domain) or server.
func (c *streamConn) handshake(ctx context.Context, cfg *tls.Config, client bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var t *tls.Conn
	if client {
		t = tls.Client(c.tcp, cfg)
	} else {
		t = tls.Server(c.tcp, cfg)
	}
	hctx, cancel := context.WithTimeout(ctx, c.m.conf().ConnectTimeout)
	defer cancel()
	if err := t.HandshakeContext(hctx); err != nil {
		return err
	}
	c.state = t.ConnectionState()
	c.nc = t
	c.tlsOn = true
	return nil
}

// writeHeader opens a stream from our domain to the peer's.
func (c *streamConn) writeHeader(from, to, id string) error {
	c.local.Store(from)
	h := stream.Header{From: from, To: to, ID: id, Version: "1.0", Dialback: true}
	if err := c.write(h.AppendXML(nil, stanza.NSServer)); err != nil {
		return err
	}
	c.headerOut.Store(true)
	return nil
}

// closeWith ends the stream, with the stream error se if not nil, and
// closes the connection. It is safe from any goroutine; only the first call
// does anything.
func (c *streamConn) closeWith(se *stream.Error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Swap(true) {
		return
	}
	var b []byte
	if se != nil {
		if !c.headerOut.Load() {
			local, _ := c.local.Load().(string)
			b = stream.Header{From: local, ID: newID(), Version: "1.0"}.AppendXML(b, stanza.NSServer)
		}
		b = se.AppendXML(b)
	}
	if c.headerOut.Load() || se != nil {
		b = append(b, "</stream:stream>"...)
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.nc.Write(b)
	c.nc.Close()
}

// kill closes the socket at once, even under a blocked write.
func (c *streamConn) kill() {
	c.closed.Store(true)
	c.tcp.Close()
}

// next reads the next element, failing after timeout (none if 0).
func (c *streamConn) next(timeout time.Duration) (*xmlstream.Element, error) {
	c.setReadTimeout(timeout)
	return c.r.Next()
}

func (c *streamConn) setReadTimeout(timeout time.Duration) {
	var t time.Time
	if timeout > 0 {
		t = time.Now().Add(timeout)
	}
	c.wmu.Lock()
	nc := c.nc
	c.wmu.Unlock()
	_ = nc.SetReadDeadline(t)
}

// newID returns a random stream id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// dialbackKey computes the dialback key of XEP-0185 §3:
// HMAC-SHA256(SHA256(secret), receiving ' ' originating ' ' streamID),
// in lower-case hex.
func (m *Manager) dialbackKey(receiving, originating, streamID string) string {
	k := sha256.Sum256(m.secret)
	h := hmac.New(sha256.New, k[:])
	h.Write([]byte(receiving + " " + originating + " " + streamID))
	return hex.EncodeToString(h.Sum(nil))
}

// appendDB appends a dialback element <db:name from to [id] [type]>text.
func appendDB(b []byte, name, from, to, id, typ, text string) []byte {
	b = append(b, "<db:"+name...)
	attr := func(k, v string) {
		if v != "" {
			b = append(b, " "+k+"='"...)
			b = xmlstream.AppendEscaped(b, v, true)
			b = append(b, '\'')
		}
	}
	attr("from", from)
	attr("to", to)
	attr("id", id)
	attr("type", typ)
	if text == "" {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = xmlstream.AppendEscaped(b, text, false)
	return append(b, "</db:"+name+">"...)
}

// isDB reports whether e is the dialback element name.
func isDB(e *xmlstream.Element, name string) bool {
	return e.Name.Space == NSDialback && e.Name.Local == name
}
