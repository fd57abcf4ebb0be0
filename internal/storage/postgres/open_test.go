package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/postgres"
	"github.com/ode-xmpp/ode/internal/storage/postgres/pgtest"
	"github.com/ode-xmpp/ode/internal/storage/storagetest"
)

func exec(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentOpen opens a new database from several goroutines at
// once, as nodes starting together do: the advisory lock lets one
// migrate, and every store works.
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.Shared(t).Schema(t)
	const n = 6
	stores := make([]*postgres.Store, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), dsn, postgres.Options{MaxConns: 2})
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	for i, s := range stores {
		if s == nil {
			continue
		}
		defer s.Close()
		applied, known, err := s.SchemaVersion(t.Context())
		if err != nil || applied != known {
			t.Errorf("store %d: schema %d of %d, %v", i, applied, known, err)
		}
		if err := s.CreateAccount(t.Context(), "user", "example.org", nil); i > 0 && !errors.Is(err, storage.ErrExists) {
			t.Errorf("store %d: CreateAccount = %v, want ErrExists (store 0 created it)", i, err)
		}
	}
	var rows int
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if _, known, _ := stores[0].SchemaVersion(t.Context()); rows != known {
		t.Errorf("schema_migrations has %d rows, want %d: each migration once", rows, known)
	}
}

func TestReopen(t *testing.T) {
	dsn := pgtest.Shared(t).Schema(t)
	s := open(t, dsn, postgres.Options{})
	if err := s.CreateAccount(t.Context(), "alice", "example.org", []storage.Credential{storagetest.Cred("SHA-256", "a")}); err != nil {
		t.Fatal(err)
	}
	again := open(t, dsn, postgres.Options{})
	if ok, err := again.AccountExists(t.Context(), "alice", "example.org"); err != nil || !ok {
		t.Errorf("after reopening AccountExists = %v, %v", ok, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.Shared(t).Schema(t)
	open(t, dsn, postgres.Options{})
	exec(t, dsn, `INSERT INTO schema_migrations (version) VALUES (9999)`)
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if !errors.Is(err, postgres.ErrSchemaTooNew) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open(newer schema) = %v, want ErrSchemaTooNew", err)
	}
	if _, err := postgres.Check(t.Context(), dsn, postgres.Options{}); !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Errorf("Check(newer schema) = %v, want ErrSchemaTooNew", err)
	}
}

// TestStatementTimeout checks that Options.StatementTimeout aborts a
// statement that waits too long (here for a row lock another transaction
// holds), with the lock holder unaffected.
func TestStatementTimeout(t *testing.T) {
	dsn := pgtest.Shared(t).Schema(t)
	s := open(t, dsn, postgres.Options{StatementTimeout: 200 * time.Millisecond})
	if err := s.CreateAccount(t.Context(), "alice", "example.org", nil); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `SELECT * FROM accounts FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.StoreOffline(t.Context(), "alice", "example.org", storage.OfflineMessage{Stanza: []byte("<message/>"), Stamp: time.Now()}, 10)
	if err == nil || !strings.Contains(err.Error(), "statement timeout") {
		t.Errorf("StoreOffline behind a lock = %v, want a statement timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the statement timeout took %v", d)
	}
}

// TestCancelWhileWaiting cancels a call that waits for a lock: it returns
// an error wrapping context.Canceled, and its write did not happen.
func TestCancelWhileWaiting(t *testing.T) {
	dsn := pgtest.Shared(t).Schema(t)
	s := open(t, dsn, postgres.Options{})
	if err := s.CreateAccount(t.Context(), "alice", "example.org", nil); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT * FROM accounts FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err = s.StoreOffline(ctx, "alice", "example.org", storage.OfflineMessage{Stanza: []byte("<message/>"), Stamp: time.Now()}, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("StoreOffline with its context ending = %v, want context.DeadlineExceeded", err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountOffline(t.Context(), "alice", "example.org"); err != nil || n != 0 {
		t.Errorf("CountOffline = %d, %v; want 0", n, err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, dsn := range []string{
		"postgres://ode:s3cret@127.0.0.1:1/ode?connect_timeout=2",
		"postgres://ode:s3cret@[::1/ode",
		"host=127.0.0.1 port=1 user=ode password=s3cret connect_timeout=2",
	} {
		s, err := postgres.Open(t.Context(), dsn, postgres.Options{ConnectTimeout: 2 * time.Second})
		if err == nil {
			s.Close()
			t.Errorf("Open(%s) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%s) error shows the password: %v", postgres.Redact(dsn), err)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://ode:s3cret@db.example.org/ode?sslmode=verify-full", "postgres://ode:xxxxx@db.example.org/ode?sslmode=verify-full"},
		{"postgresql://ode@db/ode", "postgresql://ode@db/ode"},
		{"postgres://db/ode?password=s3cret&sslmode=disable", "postgres://db/ode?password=xxxxx&sslmode=disable"},
		{"host=db user=ode password=s3cret dbname=ode", "host=db user=ode password=xxxxx dbname=ode"},
		{"host=db password='s3 \\'cret' dbname=ode", "host=db password=xxxxx dbname=ode"},
		{"host=/run/postgresql dbname=ode", "host=/run/postgresql dbname=ode"},
	} {
		if got := postgres.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	dsn := pgtest.Shared(t).Schema(t)
	info, err := postgres.Check(t.Context(), dsn, postgres.Options{})
	if err != nil || info.Applied != 0 || info.Known == 0 || info.User != "postgres" || !strings.HasPrefix(info.Server, "PostgreSQL") {
		t.Errorf("Check(new schema) = %+v, %v", info, err)
	}
	open(t, dsn, postgres.Options{})
	if info, err := postgres.Check(t.Context(), dsn, postgres.Options{}); err != nil || info.Applied != info.Known {
		t.Errorf("Check(migrated) = %+v, %v", info, err)
	}
}

// TestServerRestart restarts PostgreSQL under an open store: the pool's
// connections are gone, and the next calls open new ones.
func TestServerRestart(t *testing.T) {
	c := pgtest.Shared(t)
	s := open(t, c.Schema(t), postgres.Options{})
	if err := s.CreateAccount(t.Context(), "alice", "example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Writes run again on a new connection when theirs died with the
	// server.
	if err := s.SetLastActivity(t.Context(), "alice", "example.org", time.Now(), "bye"); err != nil {
		t.Errorf("SetLastActivity after a restart: %v", err)
	}
	if err := c.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreOffline(t.Context(), "alice", "example.org", storage.OfflineMessage{Stanza: []byte("<message/>"), Stamp: time.Now()}, 0); err != nil {
		t.Errorf("StoreOffline after a restart: %v", err)
	}
	// A read may meet a dead connection once (the pool pings only those
	// idle for over a second); the next one works.
	var err error
	for range 2 {
		var ok bool
		if ok, err = s.AccountExists(t.Context(), "alice", "example.org"); err == nil && ok {
			break
		}
	}
	if err != nil {
		t.Errorf("reads after a restart: %v", err)
	}
}
