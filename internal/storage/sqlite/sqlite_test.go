package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/sqlite"
	"github.com/ode-xmpp/ode/internal/storage/storagetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// open opens a store on path and closes it when t ends.
func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openTemp opens a new store in a temporary directory.
func openTemp(t *testing.T) storage.Store {
	return open(t, filepath.Join(t.TempDir(), "ode.db"))
}

func TestAccounts(t *testing.T)          { storagetest.TestAccounts(t, openTemp) }
func TestRosters(t *testing.T)           { storagetest.TestRosters(t, openTemp) }
func TestSubscriptions(t *testing.T)     { storagetest.TestSubscriptions(t, openTemp) }
func TestOffline(t *testing.T)           { storagetest.TestOffline(t, openTemp) }
func TestXMLStore(t *testing.T)          { storagetest.TestXMLStore(t, openTemp) }
func TestBlocklists(t *testing.T)        { storagetest.TestBlocklists(t, openTemp) }
func TestLastActivity(t *testing.T)      { storagetest.TestLastActivity(t, openTemp) }
func TestUploads(t *testing.T)           { storagetest.TestUploads(t, openTemp) }
func TestPushRegistrations(t *testing.T) { storagetest.TestPushRegistrations(t, openTemp) }
func TestPubSub(t *testing.T)            { storagetest.TestPubSub(t, openTemp) }
func TestRooms(t *testing.T)             { storagetest.TestRooms(t, openTemp) }
func TestRoomArchive(t *testing.T)       { storagetest.TestRoomArchive(t, openTemp) }
func TestFASTTokens(t *testing.T)        { storagetest.TestFASTTokens(t, openTemp) }

// raw opens the file with the driver directly, as an operator's sqlite3 would.
func raw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func schemaVersions(t *testing.T, path string) []int {
	t.Helper()
	rows, err := raw(t, path).QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ode.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(t.Context(), "alice", "example.org", []storage.Credential{storagetest.Cred("SHA-256", "a")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	first := schemaVersions(t, path)
	if len(first) == 0 || first[0] != 1 {
		t.Fatalf("schema_migrations = %v after Open, want 1, 2, …", first)
	}

	for range 2 {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		ok, err := s.AccountExists(t.Context(), "alice", "example.org")
		if err != nil || !ok {
			t.Errorf("after reopen AccountExists = %v, %v", ok, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if again := schemaVersions(t, path); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("schema_migrations = %v after reopening, want %v", again, first)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ode.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := raw(t, path)
	if _, err := db.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 'future')`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = sqlite.Open(t.Context(), path)
	if !errors.Is(err, sqlite.ErrSchemaTooNew) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open(newer schema) = %v, want ErrSchemaTooNew", err)
	}
}

// TestTwoHandles opens the file twice, as the server and `ode user add` do,
// and checks that each sees the other's writes and that concurrent writes
// through both wait for each other instead of failing.
func TestTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ode.db")
	server, cli := open(t, path), open(t, path)
	ctx := t.Context()

	if err := cli.CreateAccount(ctx, "alice", "example.org", nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := server.AccountExists(ctx, "alice", "example.org"); err != nil || !ok {
		t.Errorf("server sees alice: %v, %v", ok, err)
	}
	if err := server.SetCredentials(ctx, "alice", "example.org", []storage.Credential{storagetest.Cred("SHA-1", "x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Credential(ctx, "alice", "example.org", "SHA-1"); err != nil {
		t.Errorf("cli sees the server's credential: %v", err)
	}
	if err := cli.DeleteAccount(ctx, "alice", "example.org"); err != nil {
		t.Fatal(err)
	}
	if ok, err := server.AccountExists(ctx, "alice", "example.org"); err != nil || ok {
		t.Errorf("server still sees alice: %v, %v", ok, err)
	}

	var wg sync.WaitGroup
	for i, s := range []*sqlite.Store{server, cli} {
		wg.Go(func() {
			for j := range 50 {
				local := fmt.Sprintf("h%d-%d", i, j)
				if err := s.CreateAccount(ctx, local, "example.org", nil); err != nil {
					t.Errorf("CreateAccount(%s): %v", local, err)
				}
			}
		})
		wg.Go(func() {
			_, err := s.CreateAccounts(ctx, storagetest.Accounts(500, fmt.Sprintf("bulk%d", i), "example.org"))
			if err != nil {
				t.Errorf("CreateAccounts: %v", err)
			}
		})
	}
	wg.Wait()
	for _, s := range []*sqlite.Store{server, cli} {
		names, err := s.ListAccounts(ctx, "example.org")
		if err != nil || len(names) != 1100 {
			t.Errorf("ListAccounts = %d names, %v; want 1100", len(names), err)
		}
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ode.db")
	open(t, path)
	for _, name := range []string{path, path + "-wal"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(name), mode)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := sqlite.Open(t.Context(), filepath.Join(dir, "missing", "ode.db")); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, []byte("this is not a database, just some text that is long enough"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(t.Context(), notDB); err == nil {
		t.Error("Open of a text file succeeded")
	}
}

func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?#%", "ode.db")
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s := open(t, path)
	if err := s.CreateAccount(t.Context(), "alice", "example.org", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %q: %v", path, err)
	}
}

func BenchmarkCreateAccounts(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "ode.db"))
	const n = 10000
	b.ReportAllocs()
	round := 0
	for b.Loop() {
		b.StopTimer()
		accounts := storagetest.Accounts(n, fmt.Sprintf("r%d", round), "example.org")
		round++
		b.StartTimer()
		if _, err := s.CreateAccounts(b.Context(), accounts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/account")
}

// BenchmarkSetLastActivities: the last module's batch of one logout, as
// it writes after a login at a time (a FAST reconnect's logout).
func BenchmarkSetLastActivities(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "ode.db"))
	accounts := storagetest.Accounts(100, "u", "example.org")
	if _, err := s.CreateAccounts(b.Context(), accounts); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a := accounts[i%len(accounts)]
		i++
		rec := []storage.LastActivityRecord{{Local: a.Local, Domain: a.Domain, At: time.Unix(int64(i), 0), Status: "gone"}}
		if err := s.SetLastActivities(b.Context(), rec); err != nil {
			b.Fatal(err)
		}
	}
}
