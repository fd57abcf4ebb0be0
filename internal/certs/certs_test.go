package certs_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/certs"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// logBuffer collects a logger's output for the test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func writePair(t *testing.T, dir string, certPEM, keyPEM []byte) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	// The key first, as an operator's tool would: the pair loads once
	// both are there.
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func serial(c *tls.Certificate) string { return c.Leaf.SerialNumber.String() }

// handshake connects to addr with name as SNI, trusting pool, and returns
// the leaf the server presented.
func handshake(t *testing.T, addr, name string, pool *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: pool})
	if err != nil {
		t.Fatalf("handshake with %s: %v", name, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func TestManualReload(t *testing.T) {
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM, keyPEM, err := ca.Issue("example.org", "conference.example.org")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writePair(t, dir, certPEM, keyPEM)
	var logs logBuffer
	m, err := certs.New(certs.Config{
		Domains:  []string{"example.org"},
		Services: []string{"conference.example.org", "upload.example.org"},
		CertFile: certFile, KeyFile: keyFile, DataDir: dir,
		CheckInterval: 10 * time.Millisecond,
		Log:           slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !strings.Contains(logs.String(), "missing=[upload.example.org]") {
		t.Errorf("no warning about upload.example.org, which the certificate does not cover; log:\n%s", logs.String())
	}
	first := m.Certificate("conference.example.org")
	if got := m.Certificate("example.org"); got != first {
		t.Fatalf("example.org and conference.example.org got different certificates")
	}

	// A live listener: a client connected before the swap keeps its
	// connection; the next one sees the new certificate.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { // echo
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	old, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "example.org", RootCAs: ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if got := old.ConnectionState().PeerCertificates[0].SerialNumber.String(); got != serial(first) {
		t.Fatalf("served serial %s, want %s", got, serial(first))
	}
	m.Start()

	// A broken file: the old certificate stays, and the error is logged.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the error about the broken file", func() bool {
		return strings.Contains(logs.String(), "certificate files do not load; the certificate in use stays")
	})
	if got := m.Certificate("example.org"); got != first {
		t.Fatalf("a broken file replaced the certificate")
	}
	if err := m.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Errorf("Reload with a broken file: %v, want an error naming %s", err, certFile)
	}

	// A new pair is picked up by the poll.
	certPEM2, keyPEM2, err := ca.Issue("example.org", "*.example.org")
	if err != nil {
		t.Fatal(err)
	}
	writePair(t, dir, certPEM2, keyPEM2)
	waitFor(t, "the new certificate", func() bool { return m.Certificate("example.org") != first })
	second := m.Certificate("upload.example.org")
	if serial(second) == serial(first) || serial(m.Certificate("example.org")) != serial(second) {
		t.Fatalf("upload.example.org is not covered by the new wildcard certificate")
	}
	if leaf := handshake(t, ln.Addr().String(), "upload.example.org", ca.Pool); leaf.SerialNumber.String() != serial(second) {
		t.Errorf("a new connection got serial %s, want the new %s", leaf.SerialNumber, serial(second))
	}
	// The connection from before the swap still works.
	if _, err := old.Write([]byte("ping")); err != nil {
		t.Fatalf("old connection: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := old.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("old connection read %q, %v", buf, err)
	}

	// An expired certificate is refused too.
	expiredCert, expiredKey := expired(t, ca)
	if err := os.WriteFile(keyFile, expiredKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, expiredCert, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Reload with an expired certificate: %v, want an error saying it expired", err)
	}
	if serial(m.Certificate("example.org")) != serial(second) {
		t.Errorf("an expired certificate replaced the valid one")
	}
	ln.Close()
	old.Close()
}

func expired(t *testing.T, ca *xmpptest.CA) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueValid(time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), "example.org")
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

func TestStartBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, []byte("not a certificate"), []byte("not a key"))
	_, err := certs.New(certs.Config{Domains: []string{"example.org"}, CertFile: certFile, KeyFile: keyFile, DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("New with broken files: %v, want an error naming %s", err, certFile)
	}
}

func TestSelfSigned(t *testing.T) {
	dir := t.TempDir()
	cfg := certs.Config{Domains: []string{"example.org", "example.net"}, Services: []string{"conference.example.org"}, DataDir: dir}
	m, err := certs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Certificate("")
	for _, n := range []string{"example.org", "conference.example.org", "example.net", "upload.example.net"} {
		if err := m.Certificate(n).Leaf.VerifyHostname(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	// The second start reuses the stored certificate.
	m2, err := certs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if serial(m2.Certificate("")) != serial(c) {
		t.Errorf("the self-signed certificate was made again")
	}
	// A new domain makes a new one.
	cfg.Domains = append(cfg.Domains, "example.com")
	m3, err := certs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m3.Certificate("example.com").Leaf.VerifyHostname("example.com"); err != nil {
		t.Errorf("after adding example.com: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "selfsigned.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("selfsigned.key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}

// TestSNI checks that each name gets the certificate that covers it, and
// a name none covers the first domain's.
func TestSNI(t *testing.T) {
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM, keyPEM, err := ca.Issue("example.org", "*.example.org")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writePair(t, dir, certPEM, keyPEM)
	m, err := certs.New(certs.Config{Domains: []string{"example.org"}, CertFile: certFile, KeyFile: keyFile, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	def := m.Certificate("")
	for _, n := range []string{"EXAMPLE.org.", "conference.example.org", "other.example"} {
		if m.Certificate(n) != def {
			t.Errorf("%s: not the one certificate", n)
		}
	}
	got, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "upload.example.org"})
	if err != nil || got != def {
		t.Errorf("GetCertificate: %v", err)
	}
	if leaves := m.Leaves(); len(leaves) != 1 || leaves[0] != def.Leaf {
		t.Errorf("Leaves: %d certificates", len(leaves))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUpdate applies reloaded configurations: other files, other
// domains, and changes that need a restart.
func TestUpdate(t *testing.T) {
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("example.org", "*.example.org")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writePair(t, t.TempDir(), certPEM, keyPEM)
	dataDir := t.TempDir()
	cfg := certs.Config{Domains: []string{"example.org"}, CertFile: certFile, KeyFile: keyFile, DataDir: dataDir}
	m, err := certs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	first := m.Certificate("example.org")

	// Other files that do not load: refused, nothing changes.
	broken := cfg
	broken.CertFile = filepath.Join(t.TempDir(), "missing.crt")
	if err := m.Update(broken); err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Errorf("Update to a missing file: %v", err)
	}
	if m.Certificate("example.org") != first {
		t.Fatal("a failed Update changed the certificate")
	}
	// Other files and another domain.
	certPEM2, keyPEM2, err := ca.Issue("example.org", "example.net")
	if err != nil {
		t.Fatal(err)
	}
	next := cfg
	next.CertFile, next.KeyFile = writePair(t, t.TempDir(), certPEM2, keyPEM2)
	next.Domains = []string{"example.org", "example.net"}
	if err := m.Update(next); err != nil {
		t.Fatal(err)
	}
	if serial(m.Certificate("example.net")) == serial(first) || m.Leaves()[0].VerifyHostname("example.net") != nil {
		t.Errorf("after Update: not the new certificate")
	}
	if got := m.Names(); !slices.Equal(got, []string{"example.org", "example.net"}) {
		t.Errorf("Names: %v", got)
	}
	// Changes that need a restart.
	selfSigned := certs.Config{Domains: next.Domains, DataDir: dataDir}
	if err := m.Update(selfSigned); !errors.Is(err, certs.ErrRestart) {
		t.Errorf("switching to self-signed: %v, want ErrRestart", err)
	}
	other := next
	other.DataDir = t.TempDir()
	if err := m.Update(other); !errors.Is(err, certs.ErrRestart) {
		t.Errorf("another data_dir: %v, want ErrRestart", err)
	}

	// Self-signed: a new domain gets a certificate that covers it.
	s, err := certs.New(selfSigned)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	selfSigned.Domains = append(selfSigned.Domains, "example.com")
	selfSigned.Services = []string{"conference.example.com"}
	if err := s.Update(selfSigned); err != nil {
		t.Fatal(err)
	}
	if err := s.Certificate("conference.example.com").Leaf.VerifyHostname("conference.example.com"); err != nil {
		t.Errorf("after adding example.com: %v", err)
	}
}
