// Package c2s serves client-to-server XMPP streams: RFC 6120 §4 (streams),
// §5 (STARTTLS), §6 (SASL), §7 (resource binding), XEP-0368 (direct TLS),
// XEP-0440 (channel-binding types), XEP-0198 (stream management) and
// XEP-0352 (client state indication).
//
// A stream runs on a transport.Transport (TCP today). Negotiation is one
// ordered list of feature values (features.go), each offering its stream
// feature when the state allows and handling its own elements; binding or
// resuming attaches the stream to a session.Session.
//
// Each connection has one reader goroutine that owns parsing and the
// negotiation state; the session's queue, bounded in bytes, has a writer
// goroutine that runs only while there is something to write.
package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/internal/listen"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/transport"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Config is what the c2s server needs.
type Config struct {
	// TLS holds the server's certificates; MinVersion is raised to TLS 1.2.
	TLS *tls.Config
	// RequireTLS makes STARTTLS mandatory before SASL (RFC 6120 §5.3.1).
	RequireTLS bool
	// MaxStanzaBytes bounds one top-level element.
	MaxStanzaBytes int
	// AuthTimeout closes a stream not yet bound that is idle this long.
	AuthTimeout time.Duration
	// MaxAuthFailures is the number of failed SASL attempts after which the
	// stream is closed (RFC 6120 §6.4.5).
	MaxAuthFailures int
	// OutboundQueueBytes bounds each session's outbound queue.
	OutboundQueueBytes int
	// WriteTimeout bounds one write to a client's socket.
	WriteTimeout time.Duration
	// StrictChannelBinding refuses SCRAM's "y" flag while -PLUS is offered.
	StrictChannelBinding bool
	// ResumeTimeout is how long a detached stream-managed session waits
	// for its client (XEP-0198), unless the client asks for less;
	// MaxResumeTimeout caps what it may ask for.
	ResumeTimeout, MaxResumeTimeout time.Duration
	// MaxUnacked bounds the stanzas a stream-managed session has sent
	// without an acknowledgement.
	MaxUnacked int

	// Tokens, if set, stores XEP-0484 FAST tokens: SASL2 then offers
	// FAST. FASTLifetime is how long a token lasts (default 21 days);
	// a login with a token older than FASTRotateAfter (default a day)
	// gets a new one.
	Tokens                        storage.FASTTokens
	FASTLifetime, FASTRotateAfter time.Duration
	// Archive, if set, gives Bind2's <bound/> the XEP-0313 metadata of
	// the account's archive while the archive module runs.
	Archive storage.Archive

	Accounts storage.Accounts
	Router   *router.Router
	Log      *slog.Logger
	// PreAuth, if set, answers IQs sent before authentication (XEP-0077
	// in-band registration).
	PreAuth PreAuthHandler
}

// PreAuthHandler answers IQs that a client sends after TLS and before
// authentication: in-band registration (XEP-0077).
type PreAuthHandler interface {
	// PreAuthFeature returns the stream feature to announce before
	// authentication, or nil.
	PreAuthFeature() *xmlstream.Element
	// HandlePreAuth answers iq (whose payload is the handler's) from the
	// client at remote, for the hosted domain. It returns the result's
	// payload (nil for none) or a *stanza.Error.
	HandlePreAuth(ctx context.Context, remote net.Addr, domain string, iq *xmlstream.Element) (*xmlstream.Element, error)
}

// Server accepts client connections on any number of listeners.
type Server struct {
	cfg  atomic.Pointer[Config] // replaced whole by SetConfig
	tls  *tls.Config            // for STARTTLS
	dtls *tls.Config            // for direct TLS, with ALPN xmpp-client

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	wg        sync.WaitGroup
	closing   atomic.Bool
	nextID    atomic.Uint64

	// smMu guards the resumable sessions, the ended ones remembered for
	// late resumptions, and every binding's fields.
	smMu      sync.Mutex
	resumable map[string]*binding   // XEP-0198 id → session
	detached  map[string][]*binding // bare JID → its detached sessions, oldest first
	gone      map[string]goneSession
	goneOrder []string
}

// NewServer returns a server for cfg, with defaults for zero limits.
func NewServer(cfg Config) *Server {
	cfg = withDefaults(cfg)
	s := &Server{listeners: make(map[net.Listener]struct{}), conns: make(map[*conn]struct{}),
		resumable: make(map[string]*binding), gone: make(map[string]goneSession),
		detached: make(map[string][]*binding)}
	s.cfg.Store(&cfg)
	if cfg.TLS != nil {
		s.tls = cfg.TLS.Clone()
		if s.tls.MinVersion < tls.VersionTLS12 {
			s.tls.MinVersion = tls.VersionTLS12
		}
		s.dtls = s.tls.Clone()
		s.dtls.NextProtos = []string{"xmpp-client"}
	}
	return s
}

// conf returns the configuration in effect.
func (s *Server) conf() *Config { return s.cfg.Load() }

// SetConfig replaces the limits and settings of cfg for the streams and
// sessions that follow and for the checks that open ones make from now
// on (a reload); what is bound already (sessions, their queues) is kept.
// cfg.TLS is not used: the certificates stay those of NewServer's
// tls.Config, which reads them per handshake.
func (s *Server) SetConfig(cfg Config) {
	cfg = withDefaults(cfg)
	cfg.TLS = s.conf().TLS
	s.cfg.Store(&cfg)
}

// withDefaults fills in the zero limits of cfg.
func withDefaults(cfg Config) Config {
	if cfg.MaxStanzaBytes == 0 {
		cfg.MaxStanzaBytes = 256 << 10
	}
	if cfg.AuthTimeout == 0 {
		cfg.AuthTimeout = 60 * time.Second
	}
	if cfg.MaxAuthFailures == 0 {
		cfg.MaxAuthFailures = 3
	}
	if cfg.OutboundQueueBytes == 0 {
		cfg.OutboundQueueBytes = 1 << 20
	}
	if cfg.ResumeTimeout == 0 {
		cfg.ResumeTimeout = 300 * time.Second
	}
	if cfg.MaxResumeTimeout < cfg.ResumeTimeout {
		cfg.MaxResumeTimeout = cfg.ResumeTimeout
	}
	if cfg.MaxUnacked == 0 {
		cfg.MaxUnacked = 10000
	}
	if cfg.FASTLifetime == 0 {
		cfg.FASTLifetime = 21 * 24 * time.Hour
	}
	if cfg.FASTRotateAfter == 0 {
		cfg.FASTRotateAfter = 24 * time.Hour
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Serve accepts connections on ln until ln is closed or Shutdown is called.
// With directTLS the TLS handshake starts at once (XEP-0368); otherwise the
// stream starts in the clear and offers STARTTLS.
func (s *Server) Serve(ln net.Listener, directTLS bool) error {
	if directTLS && s.dtls == nil {
		return errors.New("c2s: direct TLS without a certificate")
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	return listen.Accept(ln, s.conf().Log.With("component", "c2s"), s.closing.Load, func(nc net.Conn) {
		c := newConn(s, transport.NewTCP(nc, transport.Options{MaxElementBytes: s.conf().MaxStanzaBytes, WriteTimeout: s.conf().WriteTimeout}), directTLS)
		s.mu.Lock()
		if s.closing.Load() {
			// Shutdown closed ln: the next Accept ends the loop.
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	})
}

// ServeTransport runs one client stream carried by t (WebSocket, BOSH:
// transports whose listener is not c2s's) on the calling goroutine, and
// returns when it has ended. t's TLS state must already be set (the HTTP
// server's); STARTTLS is offered only on a transport.TLSStarter.
func (s *Server) ServeTransport(t transport.Transport) {
	c := newConn(s, t, false)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		t.Kill()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	c.serve()
}

// Shutdown stops accepting, sends every stream a system-shutdown stream
// error and waits for the connections to close or ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close(&stream.Error{Condition: stream.SystemShutdown})
	}
	// Detached sessions end now: what they hold goes to offline storage.
	s.endDetached()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.kill()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// Count returns the number of open connections.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
