package xmpptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Pebble is a running pebble, Let's Encrypt's test ACME server (the
// Debian package pebble), on loopback.
type Pebble struct {
	// Directory is the URL of its ACME directory.
	Directory string
	// CAFile is the PEM file of the CA of its HTTPS certificate (for
	// acme.ca_file), and CA that CA.
	CAFile string
	CA     *CA
	mgmt   string
}

// PebbleOptions configure StartPebble.
type PebbleOptions struct {
	// HTTPPort and TLSPort are where its validation authority connects
	// for HTTP-01 and TLS-ALPN-01 challenges.
	HTTPPort, TLSPort int
	// DNS is the host:port of the DNS server it resolves names with
	// (StartDNS).
	DNS string
	// Validity is the lifetime of the certificates it issues (default
	// pebble's five years); whole seconds.
	Validity time.Duration
}

// StartPebble starts pebble with a fresh HTTPS certificate from a test
// CA; it stops when the test ends. Its challenges are checked for real,
// through the ports and the DNS server of opts. The test fails, saying
// how to install it, when pebble is missing.
func StartPebble(t testing.TB, opts PebbleOptions) *Pebble {
	t.Helper()
	bin, err := exec.LookPath("pebble")
	if err != nil {
		t.Fatalf("xmpptest: pebble (the test ACME server) is not installed: run test/interop/install-peers.sh (Debian package pebble)")
	}
	dir := t.TempDir()
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile, err := ca.WriteFiles(dir, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	listen, mgmt := FreeAddr(t), FreeAddr(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        mgmt,
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       opts.HTTPPort,
		"tlsPort":                        opts.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}}
	if opts.Validity > 0 {
		conf["pebble"].(map[string]any)["certificateValidityPeriod"] = int(opts.Validity / time.Second)
	}
	data, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-config", confFile}
	if opts.DNS != "" {
		args = append(args, "-dnsserver", opts.DNS)
	}
	cmd := exec.Command(bin, args...)
	// No random sleeps before validating; every order validates its
	// names again (no reuse of an earlier authorization).
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_AUTHZREUSE=0")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("xmpptest: start pebble: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() || os.Getenv("ODE_TEST_LOG") != "" {
			t.Logf("pebble output:\n%s", out.String())
		}
	})
	p := &Pebble{Directory: "https://" + listen + "/dir", CAFile: caFile, CA: ca, mgmt: "https://" + mgmt}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := p.get(t.Context(), p.Directory)
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("xmpptest: pebble did not answer at %s: %v\n%s", p.Directory, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Roots returns the pool of pebble's issuing root, which verifies the
// certificates it issues (a new one at each start).
func (p *Pebble) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	data, err := p.get(t.Context(), p.mgmt+"/roots/0")
	if err != nil {
		t.Fatalf("xmpptest: pebble root: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("xmpptest: pebble root: no PEM certificate in %q", data)
	}
	return pool
}

func (p *Pebble) get(ctx context.Context, url string) ([]byte, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.CA.Pool, MinVersion: tls.VersionTLS12}}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", url, res.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// lockedBuffer is a bytes.Buffer written by a process and read by the
// test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
