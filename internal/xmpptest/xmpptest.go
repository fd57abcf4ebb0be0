// Package xmpptest starts a real ode server on 127.0.0.1 for tests, with a
// temporary data directory, a test CA and accounts, and dials it with the
// client package (Dial), by hand (DialRaw, a Raw stream that sends any
// text and reads parsed elements) or through conversation transcripts
// ("alice sends: ...", "alice receives: ..."; see RunTranscript).
package xmpptest

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/server"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
)

// Server is a running test server.
type Server struct {
	*server.Server
	Config config.Config
	Domain string
	// Addr is the STARTTLS listener, DirectAddr the direct TLS one.
	Addr, DirectAddr string
	// S2SAddr is the server-to-server listener (STARTTLS), when
	// federation is on.
	S2SAddr string
	// HTTPAddr is the HTTPS listener (WebSocket, BOSH, host-meta,
	// upload), when there is one.
	HTTPAddr string
	// CA signed the server's certificate; CAFile is its PEM file.
	CA     *CA
	CAFile string
}

// Start starts a server for domain "localhost" on loopback ports chosen by
// the kernel and stops it when the test ends. edit, if not nil, may change
// the configuration first.
func Start(t testing.TB, edit func(*config.Config)) *Server {
	t.Helper()
	ca, err := NewCA()
	if err != nil {
		t.Fatalf("xmpptest: CA: %v", err)
	}
	return StartWithCA(t, ca, edit)
}

// StartWithCA is Start with a certificate from ca, which the server also
// trusts for server-to-server streams (unless edit sets s2s.ca_file):
// servers started with the same CA federate with verified certificates.
// The certificate names the domains and, with a wildcard, their services.
// Federation listens on a loopback port; remote domains are found through
// s2s.hosts, which edit sets.
func StartWithCA(t testing.TB, ca *CA, edit func(*config.Config)) *Server {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Server.DataDir = dir
	cfg.C2S.Listen = []string{"127.0.0.1:0"}
	cfg.C2S.DirectTLS = []string{"127.0.0.1:0"}
	cfg.S2S.Listen = []string{"127.0.0.1:0"}
	cfg.HTTP.Listen = []string{"127.0.0.1:0"}
	cfg.S2S.ConnectTimeout = config.Duration(10 * time.Second)
	if dsn := os.Getenv(PostgresEnv); dsn != "" {
		cfg.Storage.Driver = "postgres"
		cfg.Storage.Postgres.DSN = postgresSchema(t, dsn)
	}
	if edit != nil {
		edit(&cfg)
	}
	cert, key, caFile, err := ca.WriteFiles(dir, certNames(cfg.Server.Domains)...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.Cert == "" && !cfg.ACME.Enabled {
		cfg.TLS.Cert, cfg.TLS.Key = cert, key
	}
	if cfg.S2S.CAFile == "" {
		cfg.S2S.CAFile = caFile
	}
	level := slog.LevelWarn
	if os.Getenv("ODE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	srv, err := server.Start(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("xmpptest: start server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("xmpptest: shutdown: %v", err)
		}
	})
	s := &Server{Server: srv, Config: cfg, Domain: cfg.Server.Domains[0], CA: ca, CAFile: caFile}
	st, dt := srv.Addrs()
	if len(st) > 0 {
		s.Addr = st[0].String()
	}
	if len(dt) > 0 {
		s.DirectAddr = dt[0].String()
	}
	if st, _ := srv.S2SAddrs(); len(st) > 0 {
		s.S2SAddr = st[0].String()
	}
	if hs, _ := srv.HTTPAddrs(); len(hs) > 0 {
		s.HTTPAddr = hs[0].String()
	}
	return s
}

// certNames are the names the server's certificate is issued for: each
// domain, its sub-domains (the services, such as conference.<domain>,
// which federate under their own names) and 127.0.0.1.
func certNames(domains []string) []string {
	var names []string
	for _, d := range domains {
		names = append(names, d, "*."+d)
	}
	return append(names, "127.0.0.1")
}

// PostgresEnv names the environment variable that runs the servers of
// tests on PostgreSQL: the superuser's DSN of a server (CI starts one with
// internal/storage/postgres/pgtest/pgserve); each server gets its own
// schema there, dropped when its test ends. Unset, servers use SQLite.
const PostgresEnv = "ODE_TEST_POSTGRES"

var schemas atomic.Int64

// postgresSchema creates an empty schema for t at the server dsn names
// and returns a DSN whose search_path is that schema.
func postgresSchema(t testing.TB, dsn string) string {
	t.Helper()
	name := fmt.Sprintf("xt%d_%d", os.Getpid(), schemas.Add(1))
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + name); err != nil {
		t.Fatalf("xmpptest: %s: %v", PostgresEnv, err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + name + " CASCADE"); err != nil {
			t.Errorf("xmpptest: drop schema %s: %v", name, err)
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + name
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// AddUser creates the account local@domain with password.
func (s *Server) AddUser(t testing.TB, local, password string) jid.JID {
	t.Helper()
	j, err := jid.New(local, s.Domain, "")
	if err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	cs, err := sasl.NewCredentials(password, 0)
	if err != nil {
		t.Fatalf("xmpptest: credentials: %v", err)
	}
	creds := make([]storage.Credential, len(cs))
	for i, c := range cs {
		creds[i] = storage.Credential{Hash: string(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	}
	if err := s.Store().CreateAccount(context.Background(), j.Local(), j.DomainString(), creds); err != nil {
		t.Fatalf("xmpptest: create account: %v", err)
	}
	return j
}

// ReplaceCertificate issues the server a new certificate from the test
// CA for the same names (the domain, its sub-domains, 127.0.0.1 and
// localhost), writes it over the configured files and reloads it, as an
// operator's renewal would.
func (s *Server) ReplaceCertificate(t testing.TB) {
	t.Helper()
	certPEM, keyPEM, err := s.CA.Issue(s.Domain, "*."+s.Domain, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Config.TLS.Key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Config.TLS.Cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadCertificates(t.Context(), s.Config); err != nil {
		t.Fatal(err)
	}
}

// TLSConfig trusts the test CA.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CA.Pool, ServerName: s.Domain, MinVersion: tls.VersionTLS12}
}

// ClientConfig returns a client configuration for account j over STARTTLS.
func (s *Server) ClientConfig(j jid.JID, password string) client.Config {
	return client.Config{JID: j, Password: password, Addr: s.Addr, TLS: s.TLSConfig()}
}

// Dial logs in as j and closes the client when the test ends.
func (s *Server) Dial(t testing.TB, j jid.JID, password string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.ClientConfig(j, password))
	if err != nil {
		t.Fatalf("xmpptest: dial %s: %v", j, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Raw opens a plain TCP connection to the STARTTLS listener.
func (s *Server) Raw(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
