package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrRestart is returned by Update for a change that needs a restart.
var ErrRestart = errors.New("needs a restart")

// mode names where certificates come from.
func (c Config) mode() string {
	switch {
	case c.ACME != nil:
		return "ACME"
	case c.CertFile != "" || c.KeyFile != "":
		return "certificate files"
	}
	return "a self-signed certificate"
}

// Update applies a new configuration while the server runs (a config
// reload): other domains and services, other certificate files, another
// renew_before. The new certificates are in place when it returns
// (with ACME, the missing ones are requested in the background, a
// self-signed one standing in meanwhile). On error nothing changed.
// Switching between ACME, files and self-signed, another data_dir or ACME
// directory, account or challenge returns an error wrapping ErrRestart.
func (m *Manager) Update(cfg Config) error {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	cur := m.cfg
	old := m.scope.Load()
	curMode := Config{ACME: cur.ACME, CertFile: old.certFile, KeyFile: old.keyFile}.mode()
	switch {
	case len(cfg.Domains) == 0:
		return errors.New("certs: no domain")
	case cfg.mode() != curMode:
		return fmt.Errorf("certs: switching from %s to %s %w", curMode, cfg.mode(), ErrRestart)
	case cfg.DataDir != cur.DataDir:
		return fmt.Errorf("certs: another data_dir %w", ErrRestart)
	case cfg.ACME != nil && (cfg.ACME.Directory != cur.ACME.Directory || cfg.ACME.Email != cur.ACME.Email ||
		cfg.ACME.Challenge != cur.ACME.Challenge):
		return fmt.Errorf("certs: another ACME directory, email or challenge %w", ErrRestart)
	}
	next := &scope{domains: slices.Clone(cfg.Domains), services: slices.Sorted(slices.Values(cfg.Services)),
		certFile: cfg.CertFile, keyFile: cfg.KeyFile}
	sameNames := slices.Equal(old.domains, next.domains) && slices.Equal(old.services, next.services)
	switch {
	case cfg.ACME != nil:
		m.acme.renewBefore.Store(int64(cfg.ACME.RenewBefore))
		if err := m.acme.update(next); err != nil {
			return err
		}
		m.log.Info("certificates updated", "component", "certs", "domains", next.domains, "services", next.services)
		select {
		case m.wake <- struct{}{}:
		default:
		}
		return nil
	case cfg.CertFile != "":
		if next.certFile == old.certFile && next.keyFile == old.keyFile {
			m.scope.Store(next)
			return m.Reload(m.ctx)
		}
		return m.updateFiles(next)
	}
	if sameNames {
		return nil
	}
	ss, err := loadOrCreateSelfSigned(cur.DataDir, append(slices.Clone(next.domains), next.services...), cur.Now())
	if err != nil {
		return err
	}
	m.scope.Store(next)
	m.set([]*tls.Certificate{ss})
	return nil
}

// updateFiles loads another pair of files, then makes it the one watched.
func (m *Manager) updateFiles(next *scope) error {
	m.fileMu.Lock()
	defer m.fileMu.Unlock()
	st, err := stampFiles(next.certFile, next.keyFile)
	var pair *tls.Certificate
	if err == nil {
		pair, err = readPair(next.certFile, next.keyFile, m.cfg.Now())
	}
	if err != nil {
		return fmt.Errorf("certs: load %s and %s: %w", next.certFile, next.keyFile, err)
	}
	m.scope.Store(next)
	m.set([]*tls.Certificate{pair})
	m.files, m.failed = st, fileStamp{}
	m.log.Info("certificate files changed", "component", "certs", "cert", next.certFile,
		"names", pair.Leaf.DNSNames, "not_after", pair.Leaf.NotAfter.UTC().Format(time.DateTime))
	m.warnUncovered(next.certFile, pair.Leaf)
	return nil
}

// update takes other names: the certificates of removed domains go, and
// the self-signed stand-in covers the new names until they are obtained.
func (a *acmeState) update(next *scope) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	names := append(slices.Clone(next.domains), next.services...)
	if a.selfSigned == nil || len(uncovered(a.selfSigned.Leaf, names)) > 0 {
		ss, err := loadOrCreateSelfSigned(a.m.cfg.DataDir, names, a.m.cfg.Now())
		if err != nil {
			return err
		}
		a.selfSigned = ss
	}
	a.m.scope.Store(next)
	for d, c := range a.certs {
		if !slices.Contains(next.domains, d) || len(uncovered(c.Leaf, a.names(d))) > 0 {
			delete(a.certs, d) // gone, or a new service: a new order
		}
	}
	a.install()
	return nil
}
