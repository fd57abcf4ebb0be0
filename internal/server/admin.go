package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/ode-xmpp/ode/internal/admin"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/muc"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/jid"
)

// Version is the server's version, shown by the admin API's stats; the
// command line sets it.
var Version = "0.1.0-dev"

// Config returns the configuration in effect.
func (s *Server) Config() config.Config { return *s.cfg.Load() }

// SetConfigSource sets where Reload without a configuration (SIGHUP,
// `ode reload`, the admin API) reads the configuration from: the file
// the server was started with. Without one, those reloads are refused.
func (s *Server) SetConfigSource(load func() (config.Config, error)) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.source = load
}

// ReloadFromSource reads the configuration from the source set by
// SetConfigSource and applies it (Reload). A configuration that does not
// load is refused with an *admin.ConfigError naming each problem with
// file:line, and the running one stays.
func (s *Server) ReloadFromSource(ctx context.Context) (admin.ReloadResult, error) {
	s.reloadMu.Lock()
	load := s.source
	s.reloadMu.Unlock()
	if load == nil {
		return admin.ReloadResult{}, fmt.Errorf("%w: the server runs without a configuration source to reload from", admin.ErrUnsupported)
	}
	cfg, err := load()
	if err != nil {
		s.log.Error("reload refused: the configuration is invalid; the running one stays", "err", err)
		return admin.ReloadResult{}, &admin.ConfigError{Err: err}
	}
	return s.Reload(ctx, cfg)
}

// isAdmin reports whether bare is listed in server.admins.
func (s *Server) isAdmin(bare jid.JID) bool {
	return slices.Contains(*s.admins.Load(), bare.Bare().String())
}

// startAdmin opens the control socket and puts the admin API on the
// HTTP listeners when a token is configured.
func (s *Server) startAdmin(cfg config.Config) error {
	s.handleAdminHTTP(cfg)
	path := cfg.SocketPath()
	if path == "" {
		return nil
	}
	if err := admin.SocketDir(path); err != nil {
		return fmt.Errorf("server: control socket: %w", err)
	}
	ln, err := admin.Listen(path, s.log.With("component", "admin"))
	if errors.Is(err, admin.ErrSocketInUse) {
		// Nodes sharing a data directory: the first one has it.
		s.log.Warn("this server runs without a control socket", "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.control = &http.Server{
		Handler: admin.Handler(backend{s}, admin.Options{RemotePaths: true, BackupDir: cfg.DataPath("backups"),
			Log: s.log.With("component", "admin", "via", "socket")}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	s.log.Info("listening", "component", "admin", "socket", path)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.control.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errs <- fmt.Errorf("server: control socket: %w", err)
		}
	}()
	return nil
}

// handleAdminHTTP serves the admin API under /admin/ on the HTTP
// listeners with the token of cfg, or nothing (404) without one.
func (s *Server) handleAdminHTTP(cfg config.Config) {
	if s.http == nil {
		return
	}
	if cfg.Admin.Token == "" {
		s.http.Handle("/admin/", nil)
		return
	}
	s.http.Handle("/admin/", admin.Handler(backend{s}, admin.Options{Token: cfg.Admin.Token, BackupDir: cfg.DataPath("backups"),
		Log: s.log.With("component", "admin", "via", "https")}))
}

// backend is the server as the admin API sees it.
type backend struct{ s *Server }

var _ admin.Server = backend{}

func (b backend) Accounts() admin.Accounts {
	return admin.Accounts{Store: b.s.store, Router: b.s.router, Domains: b.s.router.Domains()}
}

func (b backend) Router() *router.Router { return b.s.router }

// muc returns the running MUC module, or nil.
func (s *Server) muc() *muc.Module {
	for _, m := range s.set.Load().Modules() {
		if mm, ok := m.(*muc.Module); ok {
			return mm
		}
	}
	return nil
}

func (b backend) Rooms() ([]admin.Room, error) {
	m := b.s.muc()
	if m == nil {
		return nil, fmt.Errorf("%w: the muc module is off (modules.disabled)", admin.ErrUnsupported)
	}
	var out []admin.Room
	for _, r := range m.Rooms() {
		out = append(out, admin.Room(r))
	}
	return out, nil
}

func (b backend) DestroyRoom(ctx context.Context, room jid.JID, reason string) error {
	m := b.s.muc()
	if m == nil {
		return fmt.Errorf("%w: the muc module is off (modules.disabled)", admin.ErrUnsupported)
	}
	if err := m.DestroyRoom(ctx, room, reason); err != nil {
		if errors.Is(err, muc.ErrNoRoom) {
			return fmt.Errorf("room %s: %w", room, admin.ErrNotFound)
		}
		return err
	}
	return nil
}

func (b backend) Stats(ctx context.Context) (admin.Stats, error) {
	s := b.s
	st := admin.Stats{ByTransport: map[string]int{}, Version: Version,
		UptimeSeconds: int64(time.Since(s.started) / time.Second), Goroutines: runtime.NumGoroutine()}
	online := map[string]bool{}
	s.router.Each(func(rs router.Session) {
		st.Sessions++
		online[rs.JID().Bare().String()] = true
		t := "unknown"
		if is, ok := rs.(interface{ Info() session.Info }); ok && is.Info().Transport != "" {
			t = is.Info().Transport
		}
		st.ByTransport[t]++
	})
	st.OnlineUsers = len(online)
	n, err := b.Accounts().Count(ctx, "")
	if err != nil {
		return st, err
	}
	st.Users = n
	if m := s.muc(); m != nil {
		st.Rooms = len(m.Rooms())
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.HeapBytes, st.SysBytes = ms.HeapAlloc, ms.Sys
	return st, nil
}

func (b backend) Reload(ctx context.Context) (admin.ReloadResult, error) {
	return b.s.ReloadFromSource(ctx)
}

func (b backend) Backup(ctx context.Context, path string) error { return b.s.Backup(ctx, path) }

// Backup writes a consistent copy of the SQLite database to path (a file
// that must not exist) while the server runs. With PostgreSQL it returns
// an error saying to use pg_dump.
func (s *Server) Backup(ctx context.Context, path string) error {
	return Backup(ctx, s.store, path)
}

// Backup writes a consistent copy of store's database to path, when the
// backend can (SQLite); PostgreSQL's is pg_dump's job.
func Backup(ctx context.Context, store any, path string) error {
	b, ok := store.(interface {
		Backup(ctx context.Context, path string) error
	})
	if !ok {
		return fmt.Errorf("%w: the PostgreSQL store is backed up with its own tools: pg_dump -Fc (see docs/operating.md)", admin.ErrUnsupported)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%w: backup: %s exists already", admin.ErrExists, path)
	}
	return b.Backup(ctx, path)
}
