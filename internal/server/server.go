// Package server wires ode together: config → storage → router → modules →
// listeners, started in that order and stopped in reverse.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/internal/bosh"
	"github.com/ode-xmpp/ode/internal/c2s"
	"github.com/ode-xmpp/ode/internal/certs"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/httpd"
	"github.com/ode-xmpp/ode/internal/metrics"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/s2s"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/postgres"
	"github.com/ode-xmpp/ode/internal/storage/sqlite"
	"github.com/ode-xmpp/ode/internal/transport"
)

// Server is a running ode instance.
type Server struct {
	cfg    atomic.Pointer[config.Config] // the configuration in effect (Reload replaces it)
	log    *slog.Logger
	store  storage.Store
	router *router.Router
	set    atomic.Pointer[modules.Set] // the running modules
	deps   module.Deps                 // what modules are built with
	c2s    *c2s.Server
	s2s    *s2s.Manager
	http   *httpd.Server
	bosh   *bosh.Handler
	certs  *certs.Manager
	tls    *tls.Config

	started  time.Time
	admins   atomic.Pointer[[]string] // server.admins
	reloadMu sync.Mutex               // one reload at a time; Shutdown waits for it
	source   func() (config.Config, error)
	control  *http.Server // the control socket's

	mu   sync.Mutex
	lns  []listener
	wg   sync.WaitGroup
	errs chan error
}

type listener struct {
	ln        net.Listener
	directTLS bool
	s2s       bool
	http      bool
}

// Start opens the store, prepares TLS and starts every listener. On error
// nothing is left running.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Server.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("server: data directory: %w", err)
	}
	store, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{log: log, store: store, errs: make(chan error, 8), started: time.Now()}
	s.cfg.Store(&cfg)
	s.admins.Store(&cfg.Server.Admins)
	s.router = router.New(cfg.Server.Domains, log.With("component", "router"))
	// What serves clients reads and writes through the timed store
	// (ode_storage_duration_seconds); s.store stays the backend itself.
	timed := metrics.Store(store)
	deps := module.Deps{Store: timed, Router: s.router, Log: log, Now: time.Now, DataDir: cfg.Server.DataDir, IsAdmin: s.isAdmin}
	if len(cfg.HTTP.Listen)+len(cfg.HTTP.ListenPlain) > 0 {
		hc := httpd.Config{
			Domains:        cfg.Server.Domains,
			PublicURL:      cfg.HTTP.PublicURL,
			TrustedProxies: cfg.HTTP.TrustedProxies,
			AllowedOrigins: cfg.HTTP.AllowedOrigins,
			Stream:         transport.Options{MaxElementBytes: cfg.C2S.MaxStanzaBytes, WriteTimeout: 30 * time.Second},
			Log:            log.With("component", "http"),
		}
		if cfg.Metrics.Enabled {
			hc.Metrics = metrics.Handler(log.With("component", "metrics"))
			hc.MetricsToken = cfg.Metrics.Token
		}
		if cfg.HTTP.WebSocket {
			hc.ServeStream = func(t transport.Transport) { s.c2s.ServeTransport(t) }
		}
		if cfg.HTTP.BOSH {
			s.bosh = bosh.New(bosh.Config{
				MaxWait:       time.Duration(cfg.HTTP.BOSHMaxWait),
				MaxInactivity: time.Duration(cfg.HTTP.BOSHMaxInactivity),
				MaxRequests:   cfg.HTTP.BOSHMaxRequests,
				MaxBodyBytes:  cfg.C2S.MaxStanzaBytes + 8<<10,
				Serve:         func(t transport.Transport) { s.c2s.ServeTransport(t) },
				Log:           log, // the handler adds component=bosh
				Secure:        httpd.Secure,
				RemoteAddr:    httpd.RemoteAddr,
			})
			hc.BOSH = s.bosh
		}
		if s.http, err = httpd.New(hc); err != nil {
			store.Close()
			return nil, fmt.Errorf("server: %w", err)
		}
		deps.HTTP = s.http
	}
	s.deps = deps
	set, err := modules.StartSet(deps, cfg)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	// After the modules, which add the services' sub-domains.
	cc, err := CertConfig(cfg, s.router.Services(), log)
	if err == nil {
		s.certs, err = certs.New(cc)
	}
	if err != nil {
		set.Stop()
		store.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	s.set.Store(set)
	s.tls = s.certs.TLSConfig()
	if h := s.Certs().HTTPHandler(); h != nil && s.http != nil {
		s.http.Handle(certs.ChallengePath, h)
	}
	s.c2s = c2s.NewServer(s.c2sConfig(cfg, set))
	if cfg.S2S.Enabled {
		roots, err := s2sRoots(cfg.S2S.CAFile)
		if err != nil {
			s.Shutdown(context.Background())
			return nil, err
		}
		s.s2s = s2s.New(s.s2sConfig(cfg, roots))
		s.router.SetRemote(s.s2s)
	}
	for _, l := range []struct {
		addrs          []string
		directTLS, s2s bool
	}{
		{cfg.C2S.Listen, false, false}, {cfg.C2S.DirectTLS, true, false},
		{cfg.S2S.Listen, false, true}, {cfg.S2S.DirectTLS, true, true},
	} {
		if l.s2s && s.s2s == nil {
			continue
		}
		for _, a := range l.addrs {
			if err := s.listen(a, l.directTLS, l.s2s); err != nil {
				s.Shutdown(context.Background())
				return nil, err
			}
		}
	}
	if s.http != nil {
		for _, l := range []struct {
			addrs []string
			tls   bool
		}{{cfg.HTTP.Listen, true}, {cfg.HTTP.ListenPlain, false}} {
			for _, a := range l.addrs {
				if err := s.listenHTTP(a, l.tls); err != nil {
					s.Shutdown(context.Background())
					return nil, err
				}
			}
		}
	}
	if err := s.startAdmin(cfg); err != nil {
		s.Shutdown(context.Background())
		return nil, err
	}
	s.Certs().Start() // with the listeners up: ACME's challenges come to them
	log.Info("ode started", "domains", cfg.Server.Domains, "data_dir", cfg.Server.DataDir, "storage", cfg.Storage.Driver)
	return s, nil
}

// c2sConfig returns the client streams' configuration for cfg, with the
// modules of set.
func (s *Server) c2sConfig(cfg config.Config, set *modules.Set) c2s.Config {
	return c2s.Config{
		TLS:                  s.tls,
		RequireTLS:           cfg.C2S.RequireTLS,
		MaxStanzaBytes:       cfg.C2S.MaxStanzaBytes,
		AuthTimeout:          time.Duration(cfg.C2S.AuthTimeout),
		MaxAuthFailures:      cfg.C2S.MaxAuthFailures,
		OutboundQueueBytes:   cfg.C2S.OutboundQueueBytes,
		StrictChannelBinding: cfg.C2S.StrictChannelBinding,
		ResumeTimeout:        time.Duration(cfg.C2S.ResumeTimeout),
		MaxResumeTimeout:     time.Duration(cfg.C2S.MaxResumeTimeout),
		MaxUnacked:           cfg.C2S.MaxUnacked,
		Accounts:             s.deps.Store,
		Tokens:               fastTokens(cfg.C2S, s.deps.Store),
		Archive:              s.deps.Store,
		FASTLifetime:         time.Duration(cfg.C2S.FASTTokenLifetime),
		FASTRotateAfter:      time.Duration(cfg.C2S.FASTTokenRotateAfter),
		Router:               s.router,
		Log:                  s.log,
		PreAuth:              preAuth(set.Modules()),
	}
}

// s2sConfig returns the federation's configuration for cfg.
func (s *Server) s2sConfig(cfg config.Config, roots *x509.CertPool) s2s.Config {
	return s2s.Config{
		Certificate:    s.certs.Certificate,
		Roots:          roots,
		Dialback:       cfg.S2S.Dialback,
		Refuse:         cfg.S2S.Refuse,
		Hosts:          cfg.S2S.Hosts,
		ConnectTimeout: time.Duration(cfg.S2S.ConnectTimeout),
		IdleTimeout:    time.Duration(cfg.S2S.IdleTimeout),
		QueueBytes:     cfg.S2S.QueueBytes,
		MaxStanzaBytes: cfg.S2S.MaxStanzaBytes,
		Router:         s.router,
		Log:            s.log,
	}
}

// OpenStore opens the configured storage backend: the SQLite file ode.db
// in the data directory, or the PostgreSQL database of [storage.postgres].
func OpenStore(ctx context.Context, cfg config.Config) (storage.Store, error) {
	var (
		st  storage.Store
		err error
	)
	switch cfg.Storage.Driver {
	case "postgres":
		p := cfg.Storage.Postgres
		st, err = postgres.Open(ctx, p.DSN, postgres.Options{
			MaxConns:         int32(p.MaxConns),
			StatementTimeout: time.Duration(p.StatementTimeout),
			ConnectTimeout:   time.Duration(p.ConnectTimeout),
		})
	case "sqlite", "":
		st, err = sqlite.Open(ctx, cfg.DataPath("ode.db"))
	default:
		err = fmt.Errorf("unknown driver %q", cfg.Storage.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("server: open storage: %w", err)
	}
	return st, nil
}

func (s *Server) listen(addr string, directTLS, isS2S bool) error {
	component := "c2s"
	if isS2S {
		component = "s2s"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: %s listen on %s: %w", component, addr, err)
	}
	s.mu.Lock()
	s.lns = append(s.lns, listener{ln: ln, directTLS: directTLS, s2s: isS2S})
	s.mu.Unlock()
	s.log.Info("listening", "component", component, "addr", ln.Addr().String(), "direct_tls", directTLS)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if isS2S {
			err = s.s2s.Serve(ln, directTLS)
		} else {
			err = s.c2s.Serve(ln, directTLS)
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			s.errs <- err
		}
	}()
	return nil
}

func (s *Server) listenHTTP(addr string, useTLS bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: http listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	s.lns = append(s.lns, listener{ln: ln, directTLS: useTLS, http: true})
	s.mu.Unlock()
	s.log.Info("listening", "component", "http", "addr", ln.Addr().String(), "tls", useTLS)
	var tc *tls.Config
	if useTLS {
		tc = s.tls
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln, tc); err != nil {
			s.errs <- err
		}
	}()
	return nil
}

// HTTPAddrs returns the HTTP listeners' addresses: HTTPS ones, then
// plain ones.
func (s *Server) HTTPAddrs() (https, plain []net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lns {
		switch {
		case !l.http:
		case l.directTLS:
			https = append(https, l.ln.Addr())
		default:
			plain = append(plain, l.ln.Addr())
		}
	}
	return https, plain
}

// HTTP returns the HTTP listener, or nil when none is configured.
func (s *Server) HTTP() *httpd.Server { return s.http }

// S2SAddrs returns the s2s listeners' addresses: STARTTLS ones then
// direct TLS.
func (s *Server) S2SAddrs() (starttls, directTLS []net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lns {
		switch {
		case !l.s2s:
		case l.directTLS:
			directTLS = append(directTLS, l.ln.Addr())
		default:
			starttls = append(starttls, l.ln.Addr())
		}
	}
	return starttls, directTLS
}

// S2S returns the federation manager, or nil when federation is off.
func (s *Server) S2S() *s2s.Manager { return s.s2s }

// Addrs returns the c2s listeners' addresses: STARTTLS ones then direct TLS.
func (s *Server) Addrs() (starttls, directTLS []net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lns {
		if l.s2s || l.http {
			continue
		}
		if l.directTLS {
			directTLS = append(directTLS, l.ln.Addr())
		} else {
			starttls = append(starttls, l.ln.Addr())
		}
	}
	return starttls, directTLS
}

// Certs returns the server's certificates: Reload loads changed
// certificate files (or checks ACME renewals) without a restart.
func (s *Server) Certs() *certs.Manager { return s.certs }

// ReloadCertificates applies the certificate settings of cfg (a reloaded
// configuration: [tls], [acme], the domains and their services) without a
// restart, and loads changed certificate files; streams that are up keep
// theirs. On error the certificates in use stay; a change that needs a
// restart (ACME on or off, another data_dir) wraps certs.ErrRestart.
func (s *Server) ReloadCertificates(ctx context.Context, cfg config.Config) error {
	cc, err := CertConfig(cfg, modules.ServiceDomains(cfg), s.log)
	if err != nil {
		return err
	}
	if err := s.certs.Update(cc); err != nil {
		return fmt.Errorf("server: certificates: %w", err)
	}
	return s.certs.Reload(ctx)
}

// Router returns the server's router.
func (s *Server) Router() *router.Router { return s.router }

// Module returns the running module named name, or nil (for tests and
// benchmarks that look at a module's own state).
func (s *Server) Module(name string) module.Module {
	for _, m := range s.set.Load().Modules() {
		if m.Name() == name {
			return m
		}
	}
	return nil
}

// Store returns the server's storage.
func (s *Server) Store() storage.Store { return s.store }

// Errors reports listener failures after Start.
func (s *Server) Errors() <-chan error { return s.errs }

// Shutdown closes the listeners, ends every stream with system-shutdown
// and closes the store, within ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	s.reloadMu.Lock() // a reload in progress finishes first
	defer s.reloadMu.Unlock()
	var err error
	if s.control != nil {
		err = s.control.Shutdown(ctx)
	}
	if cm := s.Certs(); cm != nil {
		cm.Close() // ends an ACME order in flight
	}
	if set := s.set.Load(); set != nil {
		for _, m := range set.Modules() {
			if d, ok := m.(module.Drainer); ok {
				d.Drain(ctx) // before the streams end, so that what it sends arrives
			}
		}
	}
	if s.c2s != nil {
		err = s.c2s.Shutdown(ctx)
	}
	// After c2s, which ended the WebSocket streams: the requests in
	// flight.
	if s.bosh != nil {
		err = errors.Join(err, s.bosh.Shutdown(ctx))
	}
	if s.http != nil {
		err = errors.Join(err, s.http.Shutdown(ctx))
	}
	// After c2s: the unavailable presence of the sessions that ended is
	// flushed to remote contacts.
	if s.s2s != nil {
		err = errors.Join(err, s.s2s.Shutdown(ctx))
	}
	s.wg.Wait()
	if set := s.set.Load(); set != nil {
		set.Stop()
	}
	if s.store != nil {
		err = errors.Join(err, s.store.Close())
	}
	s.log.Info("ode stopped")
	return err
}

// CertConfig returns the certificate manager's configuration for cfg:
// the hosted domains and the services' sub-domains, the certificate files
// or ACME.
func CertConfig(cfg config.Config, services []string, log *slog.Logger) (certs.Config, error) {
	cc := certs.Config{
		Domains:       cfg.Server.Domains,
		Services:      services,
		CertFile:      cfg.TLS.Cert,
		KeyFile:       cfg.TLS.Key,
		CheckInterval: time.Duration(cfg.TLS.CheckInterval),
		DataDir:       cfg.Server.DataDir,
		Log:           log,
	}
	if !cfg.ACME.Enabled {
		return cc, nil
	}
	a := &certs.ACME{
		Directory:   cfg.ACME.Directory,
		Email:       cfg.ACME.Email,
		Challenge:   cfg.ACME.Challenge,
		RenewBefore: time.Duration(cfg.ACME.RenewBefore),
		PublicAddrs: publicAddrs(cfg.Server.PublicAddresses),
	}
	if cfg.ACME.CAFile != "" {
		pool, err := caPool(cfg.ACME.CAFile, "acme.ca_file")
		if err != nil {
			return certs.Config{}, err
		}
		a.Roots = pool
	}
	cc.ACME = a
	return cc, nil
}

func publicAddrs(list []string) []net.IP {
	var out []net.IP
	for _, a := range list {
		if ip := net.ParseIP(a); ip != nil {
			out = append(out, ip)
		}
	}
	return out
}

// s2sRoots returns the trust anchors for peers' certificates: the
// system's, plus caFile's when set.
func s2sRoots(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	return caPool(caFile, "s2s.ca_file")
}

// caPool returns the system's roots plus the PEM certificates of caFile
// (the config key).
func caPool(caFile, key string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("server: %s: %w", key, err)
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("server: %s %s: no PEM certificate in it", key, caFile)
	}
	return pool, nil
}

// preAuth returns the enabled module that answers IQs before
// authentication (in-band registration), or nil.
func preAuth(ms []module.Module) c2s.PreAuthHandler {
	for _, m := range ms {
		if h, ok := m.(interface {
			c2s.PreAuthHandler
			Enabled() bool
		}); ok && h.Enabled() {
			return h
		}
	}
	return nil
}

// fastTokens returns the store of FAST tokens when c2s.fast is on, else
// nil (no FAST).
func fastTokens(c config.C2S, store storage.Store) storage.FASTTokens {
	if !c.FAST {
		return nil
	}
	return store
}
