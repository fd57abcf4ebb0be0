package httpd

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/ode-xmpp/ode/internal/transport"
)

// websocket upgrades a request to an XMPP stream over WebSocket (RFC
// 7395 §3) and starts it.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	if !s.OriginAllowed(r.Header.Get("Origin")) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	hj := &smallBuffers{ResponseWriter: w}
	c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
		Subprotocols: []string{transport.WebSocketProtocol},
		// The Origin was checked above: any origin may be allowed, as
		// the credentials travel in SASL, not in a cookie.
		InsecureSkipVerify: true,
	})
	if err != nil {
		s.cfg.Log.Debug("websocket upgrade failed", "remote", RemoteAddr(r).String(), "err", err)
		return // Accept answered the request
	}
	if c.Subprotocol() != transport.WebSocketProtocol {
		// RFC 7395 §3.2: without the xmpp subprotocol there is no
		// XMPP stream.
		_ = c.Close(websocket.StatusProtocolError, "the xmpp subprotocol is required")
		return
	}
	t := transport.NewWebSocket(c, transport.WebSocketOptions{
		Options:        s.cfg.Stream,
		TLS:            r.TLS,
		TLSCertificate: tlsCertificate(r),
		Secure:         Secure(r),
		RemoteAddr:     RemoteAddr(r),
		Idle:           hj.idle,
	})
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		t.Kill()
		return
	}
	s.ws[t] = struct{}{}
	s.mu.Unlock()
	// The stream runs on a goroutine of its own and this handler
	// returns: the connection is hijacked, and net/http then lets go of
	// the request, its headers and its goroutine's stack (about 12 KiB
	// of an idle session).
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.ws, t)
			s.mu.Unlock()
		}()
		s.cfg.ServeStream(t)
	}()
}

// smallBuffers hijacks the connection with 1 KiB buffers instead of
// net/http's 4 KiB ones: the WebSocket library keeps them for the
// connection's life, and an idle XMPP session needs neither (its own
// parser buffers what it reads). Bytes net/http already buffered are
// kept.
type smallBuffers struct {
	http.ResponseWriter
	idle *transport.Idle // set by Hijack unless net/http had buffered bytes
}

// wsBufferSize is the size of a WebSocket connection's read and write
// buffers; a larger frame is read and written through them.
const wsBufferSize = 1024

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	br := brw.Reader
	if br.Buffered() == 0 {
		wc := transport.NewWaitConn(nc)
		br = bufio.NewReaderSize(wc, wsBufferSize)
		w.idle = &transport.Idle{Conn: wc, Buf: br}
		nc = wc
	}
	if err := brw.Writer.Flush(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, bufio.NewReadWriter(br, bufio.NewWriterSize(nc, wsBufferSize)), nil
}

// keepAlive pings the WebSocket streams that have been silent for
// KeepAlive, so that dead connections are found and NATs keep the
// mapping (a ping runs in its own goroutine only while it waits), and
// kills those whose write is stuck past the write timeout.
func (s *Server) keepAlive() {
	defer s.loop.Done()
	tick := time.NewTicker(s.cfg.KeepAlive / 2)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		var idle, stuck []*transport.WebSocket
		for t := range s.ws {
			switch {
			case t.Stuck():
				stuck = append(stuck, t)
			case t.Idle() >= s.cfg.KeepAlive:
				idle = append(idle, t)
			}
		}
		s.mu.Unlock()
		for _, t := range stuck {
			s.cfg.Log.Warn("websocket write timed out, closing", "remote", t.RemoteAddr().String())
			t.Kill()
		}
		for _, t := range idle {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), s.cfg.KeepAlive/2)
				defer cancel()
				_ = t.Ping(ctx)
			}()
		}
	}
}
