// Package server wires ode together: config → storage → router → modules →
// listeners, started in that order and stopped in reverse.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/c2s"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage/sqlite"
)

// Server is a running ode instance.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	store   *sqlite.Store
	router  *router.Router
	modules []module.Module
	c2s     *c2s.Server

	mu   sync.Mutex
	lns  []listener
	wg   sync.WaitGroup
	errs chan error
}

type listener struct {
	ln        net.Listener
	directTLS bool
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
	cert, err := loadOrCreateCert(cfg.TLS.Cert, cfg.TLS.Key, cfg.Server.DataDir, cfg.Server.Domains)
	if err != nil {
		store.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, store: store, errs: make(chan error, 8)}
	s.router = router.New(cfg.Server.Domains, log.With("component", "router"))
	s.modules, err = modules.Start(module.Deps{Store: store, Router: s.router, Log: log, Now: time.Now}, cfg)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	s.c2s = c2s.NewServer(c2s.Config{
		TLS:                &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		RequireTLS:         cfg.C2S.RequireTLS,
		MaxStanzaBytes:     cfg.C2S.MaxStanzaBytes,
		AuthTimeout:        time.Duration(cfg.C2S.AuthTimeout),
		MaxAuthFailures:    cfg.C2S.MaxAuthFailures,
		OutboundQueueBytes: cfg.C2S.OutboundQueueBytes,
		Accounts:           store,
		Router:             s.router,
		Log:                log,
		PreAuth:            preAuth(s.modules),
	})
	for _, a := range cfg.C2S.Listen {
		if err := s.listen(a, false); err != nil {
			s.Shutdown(context.Background())
			return nil, err
		}
	}
	for _, a := range cfg.C2S.DirectTLS {
		if err := s.listen(a, true); err != nil {
			s.Shutdown(context.Background())
			return nil, err
		}
	}
	log.Info("ode started", "domains", cfg.Server.Domains, "data_dir", cfg.Server.DataDir)
	return s, nil
}

// OpenStore opens the configured storage backend.
func OpenStore(ctx context.Context, cfg config.Config) (*sqlite.Store, error) {
	st, err := sqlite.Open(ctx, cfg.DataPath("ode.db"))
	if err != nil {
		return nil, fmt.Errorf("server: open storage: %w", err)
	}
	return st, nil
}

func (s *Server) listen(addr string, directTLS bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	s.lns = append(s.lns, listener{ln, directTLS})
	s.mu.Unlock()
	s.log.Info("listening", "component", "c2s", "addr", ln.Addr().String(), "direct_tls", directTLS)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.c2s.Serve(ln, directTLS); err != nil && !errors.Is(err, net.ErrClosed) {
			s.errs <- err
		}
	}()
	return nil
}

// Addrs returns the c2s listeners' addresses: STARTTLS ones then direct TLS.
func (s *Server) Addrs() (starttls, directTLS []net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lns {
		if l.directTLS {
			directTLS = append(directTLS, l.ln.Addr())
		} else {
			starttls = append(starttls, l.ln.Addr())
		}
	}
	return starttls, directTLS
}

// Router returns the server's router.
func (s *Server) Router() *router.Router { return s.router }

// Store returns the server's storage.
func (s *Server) Store() *sqlite.Store { return s.store }

// Errors reports listener failures after Start.
func (s *Server) Errors() <-chan error { return s.errs }

// Shutdown closes the listeners, ends every stream with system-shutdown
// and closes the store, within ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.c2s != nil {
		err = s.c2s.Shutdown(ctx)
	}
	s.wg.Wait()
	modules.Stop(s.modules)
	if s.store != nil {
		err = errors.Join(err, s.store.Close())
	}
	s.log.Info("ode stopped")
	return err
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
