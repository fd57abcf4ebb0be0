package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/certs"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// acmeSetup is pebble with a DNS server for its validation authority and
// the loopback ports it validates on.
type acmeSetup struct {
	dns               *xmpptest.DNS
	pebble            *xmpptest.Pebble
	httpAddr, tlsAddr string
}

func startACME(t *testing.T, names map[string]string) *acmeSetup {
	t.Helper()
	s := &acmeSetup{dns: xmpptest.StartDNS(t), httpAddr: xmpptest.FreeAddr(t), tlsAddr: xmpptest.FreeAddr(t)}
	for n, a := range names {
		s.dns.AddAddr(n, netip.MustParseAddr(a))
	}
	s.pebble = xmpptest.StartPebble(t, xmpptest.PebbleOptions{
		HTTPPort: port(t, s.httpAddr), TLSPort: port(t, s.tlsAddr), DNS: s.dns.Addr.String()})
	return s
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (s *acmeSetup) config(t *testing.T, challenge string, log *slog.Logger) certs.Config {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(s.pebble.CA.Cert)
	return certs.Config{
		Domains:  []string{"example.test"},
		Services: []string{"conference.example.test"},
		DataDir:  t.TempDir(),
		Log:      log,
		ACME: &certs.ACME{Directory: s.pebble.Directory, Email: "admin@example.test", Roots: roots,
			Challenge: challenge, Resolver: s.dns.Resolver(), Retry: time.Hour},
	}
}

// serveTLS accepts TLS connections on addr with m's configuration and
// completes their handshakes, as the server's listeners do, until the
// test ends.
func serveTLS(t *testing.T, addr string, m *certs.Manager) {
	t.Helper()
	ln, err := tls.Listen("tcp", addr, m.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
}

// serveHTTP answers HTTP-01 challenges on addr until the test ends.
func serveHTTP(t *testing.T, addr string, m *certs.Manager) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: m.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// TestACMETLSALPN obtains a certificate for a domain and its service
// from pebble, which checks each name with TLS-ALPN-01 on the manager's
// listener.
func TestACMETLSALPN(t *testing.T) {
	s := startACME(t, map[string]string{"example.test": "127.0.0.1", "conference.example.test": "127.0.0.1"})
	cfg := s.config(t, certs.TLSALPN01, nil)
	m, err := certs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	selfSigned := m.Certificate("example.test")
	serveTLS(t, s.tlsAddr, m)
	m.Start()
	waitFor(t, "the ACME certificate", func() bool { return m.Certificate("example.test") != selfSigned })
	roots := s.pebble.Roots(t)
	for _, name := range []string{"example.test", "conference.example.test"} {
		c := m.Certificate(name)
		inter := x509.NewCertPool()
		for _, der := range c.Certificate[1:] {
			ic, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			inter.AddCert(ic)
		}
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := m.LastError("example.test"); err != nil {
		t.Errorf("LastError: %v", err)
	}
	// Stored with safe permissions.
	dir := filepath.Join(cfg.DataDir, "acme")
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, mode %v; want 0700", dir, err, fi.Mode().Perm())
	}
	for _, f := range []string{"account.key", "example.test.key", "example.test.crt"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v; want mode 0600", f, err)
		}
	}
	// A domain added by a reload gets its certificate too.
	s.dns.AddAddr("example.net", netip.MustParseAddr("127.0.0.1"))
	more := cfg
	more.Domains = []string{"example.test", "example.net"}
	if err := m.Update(more); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the certificate of example.net", func() bool {
		leaf := m.Certificate("example.net").Leaf
		return leaf.VerifyHostname("example.net") == nil && !slices.Contains(leaf.Issuer.Organization, "ode self-signed")
	})
	if m.Certificate("example.net") == m.Certificate("example.test") {
		t.Errorf("example.net has example.test's certificate")
	}
	// A second manager on the same data uses the stored certificate.
	m2, err := certs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got, want := m2.Certificate("conference.example.test").Leaf.SerialNumber, m.Certificate("example.test").Leaf.SerialNumber; got.Cmp(want) != 0 {
		t.Errorf("restart: serial %s, want the stored %s", got, want)
	}
}

// TestACMEChallengeFails checks the error when the CA cannot reach the
// server: the CA's problem detail, and that DNS points elsewhere.
func TestACMEChallengeFails(t *testing.T) {
	// Nothing listens on 127.0.0.2: the validation's connection fails.
	s := startACME(t, map[string]string{"example.test": "127.0.0.2", "conference.example.test": "127.0.0.1"})
	var logs logBuffer
	m, err := certs.New(s.config(t, certs.HTTP01, slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	serveHTTP(t, s.httpAddr, m)
	err = m.Renew(t.Context(), "example.test")
	if err == nil {
		t.Fatal("Renew succeeded with DNS pointing elsewhere")
	}
	t.Logf("the error: %v", err)
	for _, want := range []string{
		"http-01 challenge for example.test failed",
		"the CA could not connect to this server",
		"DNS for example.test does not point here: it resolves to 127.0.0.2, which is not an address of this machine",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not say %q", err, want)
		}
	}
	if m.Certificate("example.test").Leaf.Issuer.Organization[0] != "ode self-signed" {
		t.Errorf("the self-signed stand-in was replaced")
	}
	if err := m.Renew(t.Context(), "example.org"); err == nil || !strings.Contains(err.Error(), "not a hosted domain") {
		t.Errorf("Renew of another domain: %v", err)
	}
	var plain *certs.Manager
	if plain, err = certs.New(certs.Config{Domains: []string{"example.test"}, DataDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if err := plain.Renew(t.Context(), "example.test"); err == nil || !strings.Contains(err.Error(), "ACME is off") {
		t.Errorf("Renew without ACME: %v", err)
	}
}
