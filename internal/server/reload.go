package server

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/ode-xmpp/ode/internal/admin"
	"github.com/ode-xmpp/ode/internal/certs"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/logging"
	"github.com/ode-xmpp/ode/internal/modules"
	"github.com/ode-xmpp/ode/internal/s2s"
)

// notLive are the settings that only a restart applies: what was bound
// or opened at start (listeners, the store, the socket) and what the
// HTTP listener and BOSH were built with. Reload keeps their running
// values and reports each one that changed.
var notLive = []struct {
	key string
	get func(*config.Config) any
}{
	{"server.data_dir", func(c *config.Config) any { return &c.Server.DataDir }},
	{"c2s.listen", func(c *config.Config) any { return &c.C2S.Listen }},
	{"c2s.direct_tls", func(c *config.Config) any { return &c.C2S.DirectTLS }},
	{"s2s.enabled", func(c *config.Config) any { return &c.S2S.Enabled }},
	{"s2s.listen", func(c *config.Config) any { return &c.S2S.Listen }},
	{"s2s.direct_tls", func(c *config.Config) any { return &c.S2S.DirectTLS }},
	{"http", func(c *config.Config) any { return &c.HTTP }},
	{"storage", func(c *config.Config) any { return &c.Storage }},
	{"admin.socket", func(c *config.Config) any { return &c.Admin.Socket }},
	{"metrics", func(c *config.Config) any { return &c.Metrics }},
}

// Reload applies cfg (already validated, as config.Load returns it)
// without a restart and without ending a session: the log level and
// format, the limits of client and server streams, the s2s settings,
// the certificates (ReloadCertificates: the settings of [tls] and [acme]
// and the files read again), the administrators and the admin token, the
// hosted domains, and the modules (each kept, built again with its new
// settings, turned on or off). The settings only a restart applies stay
// as they run and are listed in the result's NotLive.
//
// Reload is all or nothing: if a module cannot be built or a certificate
// not loaded, it returns the error and the server runs on as before.
func (s *Server) Reload(ctx context.Context, cfg config.Config) (admin.ReloadResult, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	res, err := s.reload(ctx, cfg)
	if err != nil {
		s.log.Error("reload refused; the running configuration stays", "err", err)
		return admin.ReloadResult{}, err
	}
	s.log.Info("configuration reloaded", "applied", strings.Join(res.Applied, "; "), "not_live", strings.Join(res.NotLive, "; "))
	return res, nil
}

func (s *Server) reload(ctx context.Context, cfg config.Config) (admin.ReloadResult, error) {
	old := s.Config()
	if s.c2s == nil {
		return admin.ReloadResult{}, errors.New("server: reload of a server that did not start")
	}
	var res admin.ReloadResult
	for _, n := range notLive {
		running, next := n.get(&old), n.get(&cfg)
		if !reflect.DeepEqual(reflect.ValueOf(running).Elem().Interface(), reflect.ValueOf(next).Elem().Interface()) {
			res.NotLive = append(res.NotLive, n.key+" changed: it applies at the next restart")
			reflect.ValueOf(next).Elem().Set(reflect.ValueOf(running).Elem())
		}
	}
	if cfg.Modules.Settings == nil {
		cfg.Modules.Settings = map[string]any{}
	}

	// Build everything that can fail before anything changes.
	domainsChanged := !slices.Equal(old.Server.Domains, cfg.Server.Domains)
	staged := s.router.Stage(cfg.Server.Domains)
	set, retired, ch, err := s.set.Load().Reload(s.deps, staged, cfg, domainsChanged)
	if err != nil {
		return res, fmt.Errorf("server: reload: %w", err)
	}
	abort := func(err error) (admin.ReloadResult, error) {
		set.Discard(s.set.Load())
		return admin.ReloadResult{}, err
	}
	c2sCfg := s.c2sConfig(cfg, set)
	var s2sCfg s2s.Config
	if s.s2s != nil {
		roots, err := s2sRoots(cfg.S2S.CAFile)
		if err != nil {
			return abort(fmt.Errorf("server: reload: %w", err))
		}
		s2sCfg = s.s2sConfig(cfg, roots)
	}

	// The certificates: their settings and the files, read again. What
	// cannot change live (ACME turned on or off) is reported; a broken
	// file refuses the reload and the certificates in use stay.
	switch err := s.ReloadCertificates(ctx, cfg); {
	case errors.Is(err, certs.ErrRestart):
		res.NotLive = append(res.NotLive, err.Error())
	case err != nil:
		return abort(fmt.Errorf("server: reload: %w", err))
	default:
		res.Applied = append(res.Applied, "certificates")
	}
	// Commit: from here on the reload is applied.
	if err := s.router.Commit(ctx, staged); err != nil {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			return abort(fmt.Errorf("server: reload: %w", err))
		}
		s.log.Warn("reload: modules replaced while calls still ran in the old ones", "err", err)
	}
	s.set.Store(set)
	modules.HandOver(ctx, retired, set) // MUC's rooms go on in the rebuilt module
	modules.Stop(retired)
	s.c2s.SetConfig(c2sCfg)
	res.Applied = append(res.Applied, "c2s limits", "admins")
	if s.s2s != nil {
		s.s2s.SetConfig(s2sCfg)
		res.Applied = append(res.Applied, "s2s settings")
	}
	s.admins.Store(&cfg.Server.Admins)
	s.handleAdminHTTP(cfg)
	if sw, ok := s.log.Handler().(*logging.Switch); ok {
		if err := sw.Set(cfg.Log.Format, cfg.Log.Level); err != nil {
			res.NotLive = append(res.NotLive, "log: "+err.Error())
		} else {
			res.Applied = append(res.Applied, "log: format "+cfg.Log.Format+", level "+cfg.Log.Level)
		}
	} else if old.Log != cfg.Log {
		res.NotLive = append(res.NotLive, "log changed: this server's logger is not reloadable")
	}
	if domainsChanged {
		res.Applied = append(res.Applied, "domains: "+strings.Join(cfg.Server.Domains, ", "))
	}
	for _, part := range []struct {
		what  string
		names []string
	}{{"modules rebuilt", ch.Rebuilt}, {"modules turned on", ch.Added}, {"modules turned off", ch.Removed}} {
		if len(part.names) > 0 {
			res.Applied = append(res.Applied, part.what+": "+strings.Join(part.names, ", "))
		}
	}
	s.cfg.Store(&cfg)
	return res, nil
}
