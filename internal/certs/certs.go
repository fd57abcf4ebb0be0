// Package certs holds the server's TLS certificates and serves them by
// name (SNI) to every listener through one tls.Config: the operator's
// certificate files, reloaded when they change; certificates obtained and
// renewed from an ACME certificate authority (RFC 8555, with the HTTP-01
// challenge of §8.3 and the TLS-ALPN-01 challenge of RFC 8737); or a
// self-signed certificate generated in the data directory.
//
// A new certificate replaces the old one for the handshakes that follow;
// connections already up keep the one they negotiated. A file or an
// issuance that fails leaves the certificate in use in place, and the
// error is returned and logged.
package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says which certificates a Manager serves and where they come
// from.
type Config struct {
	// Domains are the hosted domains; the first one's certificate goes to
	// clients that send no server name.
	Domains []string
	// Services are the service sub-domains (conference.example.org),
	// each under one of Domains. With ACME, each hosted domain gets one
	// certificate for itself and its services.
	Services []string
	// CertFile and KeyFile are the operator's PEM certificate chain and
	// key. Both empty (and no ACME) means a self-signed certificate in
	// DataDir.
	CertFile, KeyFile string
	// CheckInterval is how often CertFile and KeyFile are checked for
	// changes (default one minute).
	CheckInterval time.Duration
	// DataDir holds the self-signed certificate and the ACME account and
	// certificates (in DataDir/acme, mode 0700).
	DataDir string
	// ACME, when set, obtains and renews the certificates from a CA.
	ACME *ACME
	// Log receives the manager's lifecycle messages and errors.
	Log *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Manager serves the certificates of Config and replaces them when their
// files change or ACME renews them. Its methods are safe for concurrent
// use.
type Manager struct {
	cfg   Config // DataDir, CheckInterval, Log, Now; the rest is in scope
	log   *slog.Logger
	scope atomic.Pointer[scope]
	table atomic.Pointer[table]

	updateMu sync.Mutex      // serialises Updates
	fileMu   sync.Mutex      // serialises loads of the operator's files
	files    fileStamp       // of the pair in use
	failed   fileStamp       // of the last pair that failed to load, not retried until it changes
	acme     *acmeState      // nil without ACME
	ctx      context.Context // the manager's lifetime: ends on Close
	cancel   context.CancelFunc
	stop     chan struct{}
	wake     chan struct{}
	started  bool
	wg       sync.WaitGroup
	stopped  sync.Once
}

// scope is what Update may change: the names and the files, replaced
// whole.
type scope struct {
	domains, services []string
	certFile, keyFile string
}

// table is an immutable set of certificates, swapped whole.
type table struct {
	byName map[string]*tls.Certificate // exact DNS names and "*.parent" wildcards
	def    *tls.Certificate            // for handshakes without a known name
	all    []*tls.Certificate          // distinct certificates, default first
}

// New loads the certificates Config names (creating the self-signed one
// when needed). With ACME, certificates stored in DataDir by an earlier
// run are loaded and a self-signed one stands in for the names that have
// none until Start obtains them.
func New(cfg Config) (*Manager, error) {
	if len(cfg.Domains) == 0 {
		return nil, errors.New("certs: no domain")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = time.Minute
	}
	m := &Manager{cfg: cfg, log: cfg.Log, stop: make(chan struct{}), wake: make(chan struct{}, 1)}
	m.scope.Store(&scope{domains: slices.Clone(cfg.Domains), services: slices.Sorted(slices.Values(cfg.Services)),
		certFile: cfg.CertFile, keyFile: cfg.KeyFile})
	m.ctx, m.cancel = context.WithCancel(context.Background())
	switch {
	case cfg.ACME != nil:
		a, err := newACMEState(m, *cfg.ACME)
		if err != nil {
			return nil, err
		}
		m.acme = a
		if err := a.loadStored(); err != nil {
			return nil, err
		}
	case cfg.CertFile != "" || cfg.KeyFile != "":
		if err := m.loadFiles(cfg.CertFile, cfg.KeyFile, true); err != nil {
			return nil, err
		}
	default:
		cert, err := loadOrCreateSelfSigned(cfg.DataDir, m.Names(), cfg.Now())
		if err != nil {
			return nil, err
		}
		m.set([]*tls.Certificate{cert})
	}
	return m, nil
}

// Names returns every name the server needs a certificate for: the
// hosted domains, then the services.
func (m *Manager) Names() []string {
	sc := m.scope.Load()
	return append(slices.Clone(sc.domains), sc.services...)
}

// domains returns the hosted domains.
func (m *Manager) domains() []string { return m.scope.Load().domains }

// Start runs what keeps the certificates current until Close: the check
// of the operator's files every CheckInterval, or ACME issuance and
// renewal.
func (m *Manager) Start() {
	if m.started {
		return
	}
	m.started = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if m.acme != nil {
			m.acme.run()
			return
		}
		m.watchFiles()
	}()
}

// Close stops what Start started and waits for it.
func (m *Manager) Close() {
	m.stopped.Do(func() {
		close(m.stop)
		m.cancel()
	})
	m.wg.Wait()
	if m.acme != nil {
		m.acme.http.CloseIdleConnections()
	}
}

// Reload loads the certificate files again when they changed, or with
// ACME checks at once for certificates due for renewal (the renewal runs
// in the background). On error the certificates in use stay.
func (m *Manager) Reload(ctx context.Context) error {
	if m.acme != nil {
		select {
		case m.wake <- struct{}{}:
		default:
		}
		return nil
	}
	sc := m.scope.Load()
	if sc.certFile == "" {
		return nil
	}
	return m.loadFiles(sc.certFile, sc.keyFile, true)
}

// TLSConfig returns the configuration for the server side of every
// listener: certificates by server name, and the ACME TLS-ALPN-01
// challenge answered (protocol acme-tls/1, RFC 8737 §3). Listeners may
// clone it and set their own NextProtos.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetCertificate:     m.GetCertificate,
		GetConfigForClient: m.alpnChallenge,
	}
}

// GetCertificate returns the certificate for the handshake's server name:
// the one whose names cover it, or the first domain's.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.Certificate(hello.ServerName), nil
}

// Certificate returns the certificate for name (the first domain's when
// none covers it), for the client side of server-to-server streams and
// for channel bindings.
func (m *Manager) Certificate(name string) *tls.Certificate {
	t := m.table.Load()
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if c := t.byName[name]; c != nil {
		return c
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c := t.byName["*."+parent]; c != nil {
			return c
		}
	}
	return t.def
}

// Leaves returns the leaf certificate of each certificate in use, the
// default one first.
func (m *Manager) Leaves() []*x509.Certificate {
	t := m.table.Load()
	out := make([]*x509.Certificate, 0, len(t.all))
	for _, c := range t.all {
		out = append(out, c.Leaf)
	}
	return out
}

// set installs certs (each with Leaf set), the first for the first
// domain's.
func (m *Manager) set(certs []*tls.Certificate) {
	t := &table{byName: make(map[string]*tls.Certificate)}
	for _, c := range certs {
		if c == nil || slices.Contains(t.all, c) {
			continue
		}
		t.all = append(t.all, c)
		for _, n := range c.Leaf.DNSNames {
			n = strings.ToLower(n)
			if _, ok := t.byName[n]; !ok {
				t.byName[n] = c
			}
		}
		for _, ip := range c.Leaf.IPAddresses {
			if _, ok := t.byName[ip.String()]; !ok {
				t.byName[ip.String()] = c
			}
		}
	}
	if len(t.all) > 0 {
		t.def = t.all[0]
		if c := t.byName[strings.ToLower(m.domains()[0])]; c != nil {
			t.def = c
		}
	}
	m.table.Store(t)
}

// uncovered returns the names that leaf does not cover.
func uncovered(leaf *x509.Certificate, names []string) []string {
	var out []string
	for _, n := range names {
		if leaf.VerifyHostname(n) != nil {
			out = append(out, n)
		}
	}
	return out
}

// parsePair parses a PEM chain and key, checking that they match and
// that the leaf is usable now.
func parsePair(certPEM, keyPEM []byte, now time.Time) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, err
		}
	}
	if now.After(pair.Leaf.NotAfter) {
		return nil, fmt.Errorf("the certificate expired on %s", pair.Leaf.NotAfter.UTC().Format(time.DateTime))
	}
	return &pair, nil
}

// readPair reads and parses a PEM certificate chain and key.
func readPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	return parsePair(certPEM, keyPEM, now)
}

// fileStamp is what tells that a file changed without reading it.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func stampFiles(certFile, keyFile string) (fileStamp, error) {
	ci, err := os.Stat(certFile)
	if err != nil {
		return fileStamp{}, err
	}
	ki, err := os.Stat(keyFile)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{certMod: ci.ModTime(), keyMod: ki.ModTime(), certSize: ci.Size(), keySize: ki.Size()}, nil
}

// loadFiles loads the operator's pair when it changed since the last
// load (or always, with force). A pair that fails is reported once, until
// it changes again.
func (m *Manager) loadFiles(certFile, keyFile string, force bool) error {
	m.fileMu.Lock()
	defer m.fileMu.Unlock()
	st, err := stampFiles(certFile, keyFile)
	if err == nil && !force && (st == m.files || st == m.failed) {
		return nil
	}
	first := m.table.Load() == nil
	changed := false
	if err == nil {
		changed, err = m.readFiles(certFile, keyFile)
	}
	if err != nil {
		err = fmt.Errorf("certs: load %s and %s: %w", certFile, keyFile, err)
		m.failed = st
		if !first {
			m.log.Error("certificate files do not load; the certificate in use stays", "component", "certs",
				"cert", certFile, "key", keyFile, "err", err)
		}
		return err
	}
	m.files, m.failed = st, fileStamp{}
	if !changed {
		return nil
	}
	leaf := m.table.Load().def.Leaf
	if !first {
		m.log.Info("certificate reloaded", "component", "certs", "cert", certFile,
			"names", leaf.DNSNames, "not_after", leaf.NotAfter)
	}
	m.warnUncovered(certFile, leaf)
	return nil
}

func (m *Manager) warnUncovered(certFile string, leaf *x509.Certificate) {
	if missing := uncovered(leaf, m.Names()); len(missing) > 0 {
		m.log.Warn("the certificate does not cover every name the server hosts", "component", "certs",
			"cert", certFile, "missing", missing, "names", leaf.DNSNames)
	}
}

// readFiles loads the operator's pair and reports whether it differs
// from the one in use.
func (m *Manager) readFiles(certFile, keyFile string) (changed bool, err error) {
	pair, err := readPair(certFile, keyFile, m.cfg.Now())
	if err != nil {
		return false, err
	}
	if t := m.table.Load(); t != nil && t.def != nil && slices.EqualFunc(t.def.Certificate, pair.Certificate, bytes.Equal) {
		return false, nil // touched, not changed
	}
	m.set([]*tls.Certificate{pair})
	return true, nil
}

// watchFiles checks the operator's files every CheckInterval.
func (m *Manager) watchFiles() {
	if m.scope.Load().certFile == "" {
		return // self-signed
	}
	t := time.NewTicker(m.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			sc := m.scope.Load()
			_ = m.loadFiles(sc.certFile, sc.keyFile, false) // logged
		case <-m.wake:
		}
	}
}
