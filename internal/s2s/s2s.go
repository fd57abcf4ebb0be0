// Package s2s implements server-to-server streams (RFC 6120 §4-§6, §13.7):
// outbound streams to other domains, found through DNS SRV records
// (RFC 6120 §3.2, XEP-0368) or configured host overrides, secured with
// STARTTLS or direct TLS, and authenticated with SASL EXTERNAL on a
// verified certificate (XEP-0178, RFC 7590) or with Server Dialback
// (XEP-0220, keys per XEP-0185); and inbound streams from other servers on
// their own listeners, whose stanzas are accepted only from the domains
// authenticated on that stream.
//
// A Manager is the router's Remote: the router hands it every stanza for a
// domain the server does not host, and routes what inbound streams carry
// like any other stanza. The server's services (sub-domains such as
// conference.example.org) federate under their own names, as hosted
// domains do. One outbound stream serves each pair of local and remote
// domain; stanzas queue (bounded) while it is set up and bounce with
// remote-server-not-found or remote-server-timeout if it cannot be.
package s2s

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/internal/listen"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of Server Dialback (XEP-0220).
const (
	// NSDialback is the namespace of <db:result/> and <db:verify/>.
	NSDialback = stream.NSDialback
	// NSDialbackFeature is the stream feature that announces dialback.
	NSDialbackFeature = "urn:xmpp:features:dialback"
)

// Config configures a Manager.
type Config struct {
	// Certificates are the server's own, presented on both ends of a
	// stream, when Certificate is nil.
	Certificates []tls.Certificate
	// Certificate, when set, returns the certificate for a local domain
	// (or service), presented as the server of inbound streams (by the
	// name the peer asked for) and as the client of outbound ones; it
	// lets certificates be replaced while the server runs.
	Certificate func(name string) *tls.Certificate
	// Roots verifies peers' certificates; nil means the system's roots.
	Roots *x509.CertPool
	// Dialback allows Server Dialback when SASL EXTERNAL cannot be used.
	Dialback bool
	// Refuse lists domains never connected to nor accepted.
	Refuse []string
	// Hosts maps a domain to the host:port to connect to instead of
	// resolving its SRV records.
	Hosts map[string]string
	// Resolver looks up SRV records; nil means net.DefaultResolver.
	Resolver SRVResolver
	// ConnectTimeout bounds the setup of an outbound stream, and the
	// negotiation of an inbound one.
	ConnectTimeout time.Duration
	// IdleTimeout closes a stream that carried nothing for that long.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a peer (default 30 s).
	WriteTimeout time.Duration
	// QueueBytes bounds what is queued for one outbound stream.
	QueueBytes int
	// MaxStanzaBytes is the largest element a peer may send.
	MaxStanzaBytes int
	// Router delivers inbound stanzas and bounces.
	Router *router.Router
	// Log receives the streams' events.
	Log *slog.Logger
	// Secret is the dialback secret (XEP-0185); empty means a random one
	// for this process.
	Secret []byte
}

// SRVResolver is the part of *net.Resolver the manager uses.
type SRVResolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// Manager owns the server's outbound and inbound server-to-server
// streams.
type Manager struct {
	cfg    atomic.Pointer[Config] // replaced whole by SetConfig
	log    *slog.Logger
	secret []byte

	ctx    context.Context // cancelled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup

	servicesOnce sync.Once
	services     map[string]bool // the router's services, read at first use

	mu     sync.Mutex
	out    map[pair]*outStream
	in     map[*inStream]struct{}
	lns    []net.Listener
	closed bool
}

// pair names an outbound stream: from a local domain to a remote one.
type pair struct{ local, remote string }

// New returns a Manager; Shutdown releases it.
func New(cfg Config) *Manager {
	cfg = withDefaults(cfg)
	secret := cfg.Secret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		log: cfg.Log.With("component", "s2s"), secret: secret,
		ctx: ctx, cancel: cancel,
		out: make(map[pair]*outStream), in: make(map[*inStream]struct{}),
	}
	m.cfg.Store(&cfg)
	return m
}

// conf returns the configuration in effect.
func (m *Manager) conf() *Config { return m.cfg.Load() }

// SetConfig replaces the settings of cfg (a reload): dialback, refused
// domains, hosts, timeouts and limits apply to the streams set up from
// now on and to the checks open streams make from now on. The dialback
// secret stays.
func (m *Manager) SetConfig(cfg Config) {
	cfg = withDefaults(cfg)
	m.cfg.Store(&cfg)
}

// withDefaults fills in the zero settings of cfg.
func withDefaults(cfg Config) Config {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 1 << 20
	}
	if cfg.MaxStanzaBytes <= 0 {
		cfg.MaxStanzaBytes = 262144
	}
	return cfg
}

// refused reports whether the configuration refuses domain.
func (m *Manager) refused(domain string) bool { return slices.Contains(m.conf().Refuse, domain) }

// hosts reports whether domain is one of the server's, or one of its
// services (such as conference.example.org): the domains our side of a
// stream may be, as the 'from' of what we send and the 'to' of what we
// accept.
func (m *Manager) hosts(domain string) bool {
	if m.conf().Router.Hosts(domain) {
		return true
	}
	// Services are registered before the listeners start, so before
	// any stream or stanza asks.
	m.servicesOnce.Do(func() {
		m.services = make(map[string]bool)
		for _, d := range m.conf().Router.Services() {
			m.services[d] = true
		}
	})
	return m.services[domain]
}

// Send queues st for the domain of its 'to' address; it never blocks on
// the network. What cannot be sent is bounced to the sender.
func (m *Manager) Send(ctx context.Context, st *xmlstream.Element) {
	to, err1 := jid.Parse(stanza.To(st))
	from, err2 := jid.Parse(stanza.From(st))
	if err1 != nil || err2 != nil || !m.hosts(from.DomainString()) {
		// Only the server's own users and services send to other
		// domains; c2s stamped 'from'.
		m.log.Warn("dropping stanza to a remote domain without a local sender", "from", stanza.From(st), "to", stanza.To(st))
		return
	}
	remote := to.DomainString()
	if m.refused(remote) {
		m.conf().Router.Bounce(ctx, st, stanza.NewError(stanza.RemoteServerNotFound, "federation with this domain is refused"))
		return
	}
	for range 2 {
		o := m.outFor(pair{from.DomainString(), remote})
		if o == nil {
			m.conf().Router.Bounce(ctx, st, stanza.NewError(stanza.RemoteServerNotFound, ""))
			return
		}
		if o.send(ctx, st) {
			return
		}
		// The stream closed between the lookup and the send: retry
		// once with a new one.
	}
	m.conf().Router.Bounce(ctx, st, stanza.NewError(stanza.RemoteServerNotFound, ""))
}

// outFor returns the outbound stream for p, starting it if needed; nil
// after Shutdown.
func (m *Manager) outFor(p pair) *outStream {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	if o := m.out[p]; o != nil {
		return o
	}
	o := newOutStream(m, p)
	m.out[p] = o
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		o.run()
	}()
	return o
}

// forget removes o from the table of outbound streams.
func (m *Manager) forget(o *outStream) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.out[o.pair] == o {
		delete(m.out, o.pair)
	}
}

// Serve accepts inbound server streams on ln until it is closed, then
// returns nil; a failed accept such as EMFILE is retried after a pause
// (listen.Accept). With directTLS the streams start with TLS (XEP-0368).
func (m *Manager) Serve(ln net.Listener, directTLS bool) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return net.ErrClosed
	}
	m.lns = append(m.lns, ln)
	m.mu.Unlock()
	return listen.Accept(ln, m.log, m.isClosed, func(nc net.Conn) {
		s := newInStream(m, nc, directTLS)
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			nc.Close()
			return
		}
		m.in[s] = struct{}{}
		m.wg.Add(1)
		m.mu.Unlock()
		go func() {
			defer m.wg.Done()
			s.serve()
			m.mu.Lock()
			delete(m.in, s)
			m.mu.Unlock()
		}()
	})
}

// isClosed reports whether Shutdown was called.
func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Shutdown closes the listeners and ends every stream with a
// system-shutdown stream error, waiting for them within ctx.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	lns := m.lns
	var outs []*outStream
	for _, o := range m.out {
		outs = append(outs, o)
	}
	var ins []*inStream
	for s := range m.in {
		ins = append(ins, s)
	}
	m.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	m.cancel()
	for _, o := range outs {
		o.close(&stream.Error{Condition: stream.SystemShutdown})
	}
	for _, s := range ins {
		s.c.closeWith(&stream.Error{Condition: stream.SystemShutdown})
	}
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, s := range ins {
			s.c.kill()
		}
		for _, o := range outs {
			o.kill()
		}
		return ctx.Err()
	}
}

// OutboundCount returns the number of outbound streams (set up or being
// set up), for tests and statistics.
func (m *Manager) OutboundCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.out)
}

// clientTLS returns the TLS configuration for connecting from local to
// domain. The certificate is checked after the handshake (verifyPeer), so
// that an unverifiable one can still lead to dialback.
func (m *Manager) clientTLS(local, domain string, directTLS bool) *tls.Config {
	c := &tls.Config{
		ServerName:         domain,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified by VerifyPeer after the handshake
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := m.certificate(local); c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil
		},
	}
	if directTLS {
		c.NextProtos = []string{"xmpp-server"}
	}
	return c
}

// serverTLS returns the TLS configuration for inbound streams: the peer's
// certificate is requested, and checked for the domain it claims.
func (m *Manager) serverTLS(directTLS bool) *tls.Config {
	c := &tls.Config{
		Certificates: m.conf().Certificates,
		MinVersion:   tls.VersionTLS12,
		ClientAuth:   tls.RequestClientCert,
	}
	if m.conf().Certificate != nil {
		c.Certificates = nil
		c.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return m.conf().Certificate(h.ServerName), nil
		}
	}
	if directTLS {
		c.NextProtos = []string{"xmpp-server"}
	}
	return c
}

// certificate returns the certificate for the local name, or nil.
func (m *Manager) certificate(name string) *tls.Certificate {
	if m.conf().Certificate != nil {
		return m.conf().Certificate(name)
	}
	if len(m.conf().Certificates) == 0 {
		return nil
	}
	return &m.conf().Certificates[0]
}
