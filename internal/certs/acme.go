package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
)

// Challenge types (RFC 8555 §8.3, RFC 8737).
const (
	HTTP01    = "http-01"
	TLSALPN01 = "tls-alpn-01"
)

// ACME configures certificates from an ACME certificate authority.
type ACME struct {
	// Directory is the URL of the CA's directory.
	Directory string
	// Email is the account's contact address; empty for none.
	Email string
	// Roots verifies the ACME server's HTTPS certificate; nil means the
	// system's roots.
	Roots *x509.CertPool
	// Challenge is HTTP01 (answered by HTTPHandler) or TLSALPN01
	// (answered by TLSConfig's listeners).
	Challenge string
	// RenewBefore is how long before expiry a certificate is renewed
	// (default 30 days; a third of the lifetime of a certificate valid
	// for less).
	RenewBefore time.Duration
	// Retry is the first wait after a failed issuance, doubled after each
	// failure up to an hour (default one minute).
	Retry time.Duration
	// Resolver looks up the names whose challenge failed, to say where
	// their DNS points (nil: net.DefaultResolver).
	Resolver *net.Resolver
	// PublicAddrs are the addresses the names should resolve to, besides
	// this machine's own (a NAT's public address).
	PublicAddrs []net.IP
}

// acmeState is the ACME side of a Manager.
type acmeState struct {
	m    *Manager
	cfg  ACME
	dir  string // DataDir/acme
	http *http.Client

	renewBefore atomic.Int64 // a time.Duration; Update may change it
	obtainMu    sync.Mutex   // one order at a time
	mu          sync.Mutex
	client      *acme.Client // with the account key, registered once
	registered  bool
	certs       map[string]*tls.Certificate // by hosted domain
	selfSigned  *tls.Certificate            // stands in for domains without one
	due         map[string]time.Time        // next attempt after a failure, by domain
	failures    map[string]int
	lastErr     map[string]error

	tokens sync.Map // HTTP-01: token → key authorization
	alpn   sync.Map // TLS-ALPN-01: name → *tls.Certificate
}

func newACMEState(m *Manager, cfg ACME) (*acmeState, error) {
	if cfg.Directory == "" {
		return nil, errors.New("certs: acme: no directory URL")
	}
	if cfg.Challenge != HTTP01 && cfg.Challenge != TLSALPN01 {
		return nil, fmt.Errorf("certs: acme: unknown challenge %q", cfg.Challenge)
	}
	if cfg.RenewBefore <= 0 {
		cfg.RenewBefore = 30 * 24 * time.Hour
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Minute
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.Roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12}
	}
	a := &acmeState{m: m, cfg: cfg, dir: filepath.Join(m.cfg.DataDir, "acme"),
		http:  &http.Client{Transport: tr, Timeout: 60 * time.Second},
		certs: make(map[string]*tls.Certificate), due: make(map[string]time.Time),
		failures: make(map[string]int), lastErr: make(map[string]error)}
	a.renewBefore.Store(int64(cfg.RenewBefore))
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: acme: %w", err)
	}
	if err := os.Chmod(a.dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: acme: %w", err)
	}
	return a, nil
}

// names returns the names of domain's certificate: the domain and its
// services.
func (a *acmeState) names(domain string) []string {
	out := []string{domain}
	for _, s := range a.m.scope.Load().services {
		if strings.HasSuffix(s, "."+domain) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (a *acmeState) certPath(domain string) string { return filepath.Join(a.dir, domain+".crt") }
func (a *acmeState) keyPath(domain string) string  { return filepath.Join(a.dir, domain+".key") }

// loadStored loads the certificates of an earlier run that still cover
// their names, and installs them with a self-signed stand-in for the
// others.
func (a *acmeState) loadStored() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.m.cfg.Now()
	for _, d := range a.m.domains() {
		certPEM, err := os.ReadFile(a.certPath(d))
		if err != nil {
			continue
		}
		keyPEM, err := os.ReadFile(a.keyPath(d))
		if err != nil {
			continue
		}
		pair, err := parsePair(certPEM, keyPEM, now)
		if err != nil || len(uncovered(pair.Leaf, a.names(d))) > 0 {
			a.m.log.Info("stored ACME certificate not used; a new one is requested", "component", "certs", "domain", d, "err", err)
			continue
		}
		a.certs[d] = pair
	}
	if len(a.certs) < len(a.m.domains()) {
		ss, err := loadOrCreateSelfSigned(a.m.cfg.DataDir, a.m.Names(), now)
		if err != nil {
			return err
		}
		a.selfSigned = ss
	}
	a.install()
	return nil
}

// install puts the current certificates in the manager's table; called
// with a.mu held.
func (a *acmeState) install() {
	var list []*tls.Certificate
	for _, d := range a.m.domains() {
		if c := a.certs[d]; c != nil {
			list = append(list, c)
		}
	}
	if len(list) < len(a.m.domains()) {
		list = append(list, a.selfSigned)
	}
	a.m.set(list)
}

// renewAt returns when the certificate should be renewed.
func (a *acmeState) renewAt(leaf *x509.Certificate) time.Time {
	before := time.Duration(a.renewBefore.Load())
	if life := leaf.NotAfter.Sub(leaf.NotBefore); before >= life {
		before = life / 3
	}
	return leaf.NotAfter.Add(-before)
}

// run obtains the missing certificates and renews the others before they
// expire, until the manager stops.
func (a *acmeState) run() {
	for {
		next := a.pass(a.m.ctx)
		wait := time.Until(next)
		if wait > time.Hour {
			wait = time.Hour // a clock that jumps, a file changed by hand
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-a.m.stop:
			t.Stop()
			return
		case <-a.m.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// pass obtains each certificate that is missing or due and whose retry
// time has come, and returns when the next one is due.
func (a *acmeState) pass(ctx context.Context) time.Time {
	now := a.m.cfg.Now()
	next := now.Add(time.Hour)
	for _, d := range a.m.domains() {
		a.mu.Lock()
		c, retry := a.certs[d], a.due[d]
		a.mu.Unlock()
		at := now
		if c != nil {
			at = a.renewAt(c.Leaf)
		}
		if at.Before(retry) {
			at = retry
		}
		if at.After(now) {
			if at.Before(next) {
				next = at
			}
			continue
		}
		if err := a.obtain(ctx, d); err != nil {
			if ctx.Err() != nil {
				return next
			}
			retry := a.failed(d, err)
			if retry.Before(next) {
				next = retry
			}
			continue
		}
		a.mu.Lock()
		at = a.renewAt(a.certs[d].Leaf)
		a.mu.Unlock()
		if at.Before(next) {
			next = at
		}
	}
	return next
}

// failed records a failed issuance for domain and returns when to try
// again: after Retry, doubled per failure up to an hour, or when the CA's
// rate limit says.
func (a *acmeState) failed(domain string, err error) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failures[domain]++
	wait := a.cfg.Retry << min(a.failures[domain]-1, 10)
	wait = min(wait, time.Hour)
	var ae *acme.Error
	if errors.As(err, &ae) && ae.ProblemType == problemRateLimited && ae.Header != nil {
		if s := ae.Header.Get("Retry-After"); s != "" {
			if t, perr := http.ParseTime(s); perr == nil {
				wait = max(time.Until(t), wait)
			} else if d, perr := time.ParseDuration(s + "s"); perr == nil {
				wait = max(d, wait)
			}
		}
	}
	at := a.m.cfg.Now().Add(wait)
	a.due[domain] = at
	a.lastErr[domain] = err
	a.m.log.Error("ACME certificate not obtained", "component", "certs", "domain", domain,
		"names", a.names(domain), "err", err, "retry_at", at.UTC().Format(time.DateTime))
	return at
}

// Renew obtains a new certificate for domain (a hosted domain) now,
// whether or not it is due, and installs it. Handshakes that follow
// present it; connections already up keep theirs.
func (m *Manager) Renew(ctx context.Context, domain string) error {
	if m.acme == nil {
		return errors.New("certs: renew: ACME is off")
	}
	if !slices.Contains(m.domains(), domain) {
		return fmt.Errorf("certs: renew: %s is not a hosted domain", domain)
	}
	return m.acme.obtain(ctx, domain)
}

// LastError returns the error of the last failed issuance for domain
// since its last success, or nil.
func (m *Manager) LastError(domain string) error {
	if m.acme == nil {
		return nil
	}
	m.acme.mu.Lock()
	defer m.acme.mu.Unlock()
	return m.acme.lastErr[domain]
}

// account returns the ACME client with the account key (created in
// DataDir/acme/account.key on first use) and registers the account once.
func (a *acmeState) account(ctx context.Context) (*acme.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client == nil {
		key, err := loadOrCreateKey(filepath.Join(a.dir, "account.key"))
		if err != nil {
			return nil, fmt.Errorf("certs: acme account key: %w", err)
		}
		a.client = &acme.Client{Key: key, DirectoryURL: a.cfg.Directory, HTTPClient: a.http,
			UserAgent: "ode", RetryBackoff: backoff}
	}
	if !a.registered {
		acct := &acme.Account{}
		if a.cfg.Email != "" {
			acct.Contact = []string{"mailto:" + a.cfg.Email}
		}
		_, err := a.client.Register(ctx, acct, acme.AcceptTOS)
		if err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
			return nil, fmt.Errorf("certs: acme: register account at %s: %w", a.cfg.Directory, explain(err))
		}
		a.registered = true
	}
	return a.client, nil
}

// backoff retries the ACME server's transient failures (bad nonces,
// 5xx) a few times, but not a rate limit: that is reported, and retried
// at the time the CA gives.
func backoff(n int, _ *http.Request, res *http.Response) time.Duration {
	if res != nil && res.StatusCode == http.StatusTooManyRequests || n > 5 {
		return 0
	}
	return time.Duration(1<<(n-1)) * 500 * time.Millisecond
}

// obtain runs one order for domain's names and installs the certificate.
func (a *acmeState) obtain(ctx context.Context, domain string) error {
	a.obtainMu.Lock()
	defer a.obtainMu.Unlock()
	names := a.names(domain)
	client, err := a.account(ctx)
	if err != nil {
		return err
	}
	a.m.log.Info("requesting an ACME certificate", "component", "certs", "domain", domain, "names", names,
		"challenge", a.cfg.Challenge, "directory", a.cfg.Directory)
	order, err := client.AuthorizeOrder(ctx, acme.DomainIDs(names...))
	if err != nil {
		return fmt.Errorf("certs: acme: new order for %s: %w", strings.Join(names, ", "), explain(err))
	}
	for _, u := range order.AuthzURLs {
		if err := a.authorize(ctx, client, u); err != nil {
			return err
		}
	}
	if order, err = client.WaitOrder(ctx, order.URI); err != nil {
		return fmt.Errorf("certs: acme: order for %s: %w", strings.Join(names, ", "), explain(err))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certs: acme: key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: domain}, DNSNames: names}, key)
	if err != nil {
		return fmt.Errorf("certs: acme: request: %w", err)
	}
	der, _, err := client.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	if err != nil {
		return fmt.Errorf("certs: acme: finalize order for %s: %w", strings.Join(names, ", "), explain(err))
	}
	pair, certPEM, keyPEM, err := assemble(der, key, a.m.cfg.Now())
	if err != nil {
		return fmt.Errorf("certs: acme: certificate for %s: %w", domain, err)
	}
	if missing := uncovered(pair.Leaf, names); len(missing) > 0 {
		return fmt.Errorf("certs: acme: the CA's certificate for %s does not cover %s", domain, strings.Join(missing, ", "))
	}
	if err := writeFile(a.keyPath(domain), keyPEM); err != nil {
		return err
	}
	if err := writeFile(a.certPath(domain), certPEM); err != nil {
		return err
	}
	a.mu.Lock()
	a.certs[domain] = pair
	delete(a.due, domain)
	delete(a.failures, domain)
	delete(a.lastErr, domain)
	a.install()
	a.mu.Unlock()
	a.m.log.Info("ACME certificate installed", "component", "certs", "domain", domain, "names", names,
		"not_after", pair.Leaf.NotAfter.UTC().Format(time.DateTime), "issuer", pair.Leaf.Issuer.CommonName)
	return nil
}

// authorize proves control of one authorization's name with the
// configured challenge.
func (a *acmeState) authorize(ctx context.Context, client *acme.Client, url string) error {
	z, err := client.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("certs: acme: authorization: %w", explain(err))
	}
	name := z.Identifier.Value
	if z.Status == acme.StatusValid {
		return nil
	}
	var chal *acme.Challenge
	var offered []string
	for _, c := range z.Challenges {
		offered = append(offered, c.Type)
		if c.Type == a.cfg.Challenge {
			chal = c
		}
	}
	if chal == nil {
		return fmt.Errorf("certs: acme: the CA offers no %s challenge for %s (it offers %s): set acme.challenge to one of those",
			a.cfg.Challenge, name, strings.Join(offered, ", "))
	}
	switch a.cfg.Challenge {
	case HTTP01:
		ka, err := client.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return fmt.Errorf("certs: acme: %w", err)
		}
		a.tokens.Store(chal.Token, ka)
		defer a.tokens.Delete(chal.Token)
	case TLSALPN01:
		cert, err := client.TLSALPN01ChallengeCert(chal.Token, name)
		if err != nil {
			return fmt.Errorf("certs: acme: %w", err)
		}
		a.alpn.Store(name, &cert)
		defer a.alpn.Delete(name)
	}
	if _, err := client.Accept(ctx, chal); err != nil {
		return fmt.Errorf("certs: acme: accept the %s challenge for %s: %w", chal.Type, name, explain(err))
	}
	if _, err := client.WaitAuthorization(ctx, z.URI); err != nil {
		return a.challengeFailed(ctx, name, err)
	}
	return nil
}

// ACME problem types (RFC 8555 §6.7) that get an explanation.
const (
	problemPrefix      = "urn:ietf:params:acme:error:"
	problemRateLimited = problemPrefix + "rateLimited"
)

// challengeFailed explains a failed challenge: the CA's problem detail,
// and where the name's DNS points when that is not here.
func (a *acmeState) challengeFailed(ctx context.Context, name string, err error) error {
	detail := explain(err).Error()
	var ze *acme.AuthorizationError
	if errors.As(err, &ze) && len(ze.Errors) > 0 {
		var parts []string
		for _, e := range ze.Errors {
			parts = append(parts, explain(e).Error())
		}
		detail = strings.Join(parts, "; ")
	}
	port := "80"
	if a.cfg.Challenge == TLSALPN01 {
		port = "443"
	}
	msg := fmt.Sprintf("certs: acme: %s challenge for %s failed: %s", a.cfg.Challenge, name, detail)
	if hint := a.dnsHint(ctx, name); hint != "" {
		return errors.New(msg + "; " + hint)
	}
	return fmt.Errorf("%s; check that port %s of %s reaches ode", msg, port, name)
}

// dnsHint says where name's DNS points when that is not this machine (or
// a public address of the configuration), or "".
func (a *acmeState) dnsHint(ctx context.Context, name string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := a.cfg.Resolver.LookupIPAddr(ctx, name)
	if err != nil || len(addrs) == 0 {
		return fmt.Sprintf("DNS for %s does not point here: it has no A or AAAA record (%v); add one with this server's public address", name, err)
	}
	local := LocalAddrs()
	local = append(local, a.cfg.PublicAddrs...)
	var found []string
	for _, ad := range addrs {
		found = append(found, ad.IP.String())
		if slices.ContainsFunc(local, ad.IP.Equal) {
			return ""
		}
	}
	return fmt.Sprintf("DNS for %s does not point here: it resolves to %s, which is not an address of this machine; fix its A/AAAA records",
		name, strings.Join(found, ", "))
}

// LocalAddrs returns the addresses of this machine's interfaces.
func LocalAddrs() []net.IP {
	var out []net.IP
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range ifaddrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP)
		}
	}
	return out
}

// explain adds to an ACME problem what the operator can do about it.
func explain(err error) error {
	var ae *acme.Error
	if !errors.As(err, &ae) {
		return err
	}
	detail := ae.Detail
	if detail == "" {
		detail = ae.ProblemType
	}
	for _, sp := range ae.Subproblems {
		if sp.Identifier != nil {
			detail += fmt.Sprintf("; %s: %s", sp.Identifier.Value, sp.Detail)
		} else {
			detail += "; " + sp.Detail
		}
	}
	switch strings.TrimPrefix(ae.ProblemType, problemPrefix) {
	case "rateLimited":
		retry := ""
		if ae.Header != nil && ae.Header.Get("Retry-After") != "" {
			retry = " (the CA says retry after " + ae.Header.Get("Retry-After") + ")"
		}
		return fmt.Errorf("rate limited by the CA%s: %s; ode retries later, and a test CA (acme.directory) avoids the limits while you set up", retry, detail)
	case "dns":
		return fmt.Errorf("the CA could not look the name up in DNS: %s", detail)
	case "connection":
		return fmt.Errorf("the CA could not connect to this server: %s", detail)
	case "unauthorized":
		return fmt.Errorf("the CA did not get the expected answer: %s", detail)
	case "rejectedIdentifier":
		return fmt.Errorf("the CA will not issue for this name: %s", detail)
	case "caa":
		return fmt.Errorf("a CAA record forbids this CA: %s", detail)
	}
	return fmt.Errorf("%s (%s)", detail, ae.ProblemType)
}

// HTTPHandler answers the CA's HTTP-01 requests at
// /.well-known/acme-challenge/<token> (RFC 8555 §8.3); it is nil when
// ACME is off or uses TLS-ALPN-01.
func (m *Manager) HTTPHandler() http.Handler {
	if m.acme == nil || m.acme.cfg.Challenge != HTTP01 {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, ChallengePath)
		if ka, found := m.acme.tokens.Load(token); ok && found {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(ka.(string)))
			return
		}
		http.NotFound(w, r)
	})
}

// ChallengePath is the path prefix of HTTP-01 requests.
const ChallengePath = "/.well-known/acme-challenge/"

// alpnChallenge is the GetConfigForClient of TLSConfig: a handshake that
// offers only acme-tls/1 (RFC 8737 §3) gets the challenge certificate of
// its server name, or fails.
func (m *Manager) alpnChallenge(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if m.acme == nil || !slices.Contains(hello.SupportedProtos, acme.ALPNProto) {
		return nil, nil
	}
	c, ok := m.acme.alpn.Load(strings.ToLower(hello.ServerName))
	if !ok {
		return nil, fmt.Errorf("certs: no acme-tls/1 challenge pending for %q", hello.ServerName)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{acme.ALPNProto},
		Certificates: []tls.Certificate{*c.(*tls.Certificate)},
	}, nil
}

// assemble turns the CA's DER chain and the key into a certificate and
// its PEM files.
func assemble(der [][]byte, key crypto.Signer, now time.Time) (*tls.Certificate, []byte, []byte, error) {
	if len(der) == 0 {
		return nil, nil, nil, errors.New("no certificate in the CA's answer")
	}
	var certPEM []byte
	for _, b := range der {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b})...)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	pair, err := parsePair(certPEM, keyPEM, now)
	return pair, certPEM, keyPEM, err
}

// loadOrCreateKey reads a PEM ECDSA key, or creates one (mode 0600).
func loadOrCreateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		b, _ := pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s: no PEM key in it", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: not a signing key", path)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})); err != nil {
		return nil, err
	}
	return key, nil
}

// writeFile replaces path with data (mode 0600) through a temporary file,
// so that a crash leaves the old or the new file, never half of one.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
