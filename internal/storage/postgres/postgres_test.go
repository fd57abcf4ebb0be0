package postgres_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/postgres"
	"github.com/ode-xmpp/ode/internal/storage/postgres/pgtest"
	"github.com/ode-xmpp/ode/internal/storage/storagetest"
)

// TestMain starts one PostgreSQL server for the package's tests (see
// pgtest) and checks that they leave no goroutine behind.
func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{Durable: os.Getenv("ODE_PG_DURABLE") == "1"}, func() int {
		code := m.Run()
		if err := goleak.Find(); err != nil && code == 0 {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
		return code
	})
}

// open opens a store on dsn and closes it when t ends.
func open(t testing.TB, dsn string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, opts)
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

// openTemp opens a store on a new, empty schema.
func openTemp(t *testing.T) storage.Store {
	return open(t, pgtest.Shared(t).Schema(t), postgres.Options{})
}

func TestAccounts(t *testing.T)          { storagetest.TestAccounts(t, openTemp) }
func TestRosters(t *testing.T)           { storagetest.TestRosters(t, openTemp) }
func TestSubscriptions(t *testing.T)     { storagetest.TestSubscriptions(t, openTemp) }
func TestOffline(t *testing.T)           { storagetest.TestOffline(t, openTemp) }
func TestXMLStore(t *testing.T)          { storagetest.TestXMLStore(t, openTemp) }
func TestBlocklists(t *testing.T)        { storagetest.TestBlocklists(t, openTemp) }
func TestLastActivity(t *testing.T)      { storagetest.TestLastActivity(t, openTemp) }
func TestUploads(t *testing.T)           { storagetest.TestUploads(t, openTemp) }
func TestArchive(t *testing.T)           { storagetest.TestArchive(t, openTemp) }
func TestPushRegistrations(t *testing.T) { storagetest.TestPushRegistrations(t, openTemp) }
func TestPubSub(t *testing.T)            { storagetest.TestPubSub(t, openTemp) }
func TestRooms(t *testing.T)             { storagetest.TestRooms(t, openTemp) }
func TestRoomArchive(t *testing.T)       { storagetest.TestRoomArchive(t, openTemp) }
func TestFASTTokens(t *testing.T)        { storagetest.TestFASTTokens(t, openTemp) }
