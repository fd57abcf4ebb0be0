package httpd

import (
	"context"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/ode-xmpp/ode/internal/transport"
)

// websocket upgrades a request to an XMPP stream over WebSocket (RFC
// 7395 §3) and runs it until it ends.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	if !s.OriginAllowed(r.Header.Get("Origin")) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
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
		Options:    s.cfg.Stream,
		TLS:        r.TLS,
		Secure:     Secure(r),
		RemoteAddr: RemoteAddr(r),
	})
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		t.Kill()
		return
	}
	s.ws[t] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.ws, t)
		s.mu.Unlock()
	}()
	s.cfg.ServeStream(t)
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
