package offline_test

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/storage/postgres/pgtest"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/xmlstream"
)

// TestMain starts a PostgreSQL server for the tests of two ode servers
// sharing one database, and checks that the tests leave no goroutine
// behind.
func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{}, func() int {
		code := m.Run()
		if err := goleak.Find(); err != nil && code == 0 {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
		return code
	})
}

// TestDeliveredOnce stores messages for bob, then brings two of his
// resources online at once, each on its own server, both servers using
// the same database (one SQLite file, or one PostgreSQL database, as
// cluster nodes would): every message reaches exactly one of them.
func TestDeliveredOnce(t *testing.T) {
	for _, tt := range []struct {
		name  string
		share func(t *testing.T) (first, second func(*config.Config))
	}{
		{"sqlite", func(t *testing.T) (first, second func(*config.Config)) {
			dir := t.TempDir()
			same := func(c *config.Config) {
				c.Server.DataDir = dir
				c.Storage.Driver = "sqlite" // even when xmpptest.PostgresEnv is set
			}
			return same, same
		}},
		{"postgres", func(t *testing.T) (first, second func(*config.Config)) {
			dsn := pgtest.Shared(t).Schema(t)
			same := func(c *config.Config) {
				c.Storage.Driver = "postgres"
				c.Storage.Postgres.DSN = dsn
			}
			return same, same
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			first, second := tt.share(t)
			srv1 := xmpptest.Start(t, first)
			srv2 := xmpptest.StartWithCA(t, srv1.CA, second)
			testDeliveredOnce(t, srv1, srv2)
		})
	}
}

func testDeliveredOnce(t *testing.T, srv1, srv2 *xmpptest.Server) {
	const n = 60
	srv1.AddUser(t, "alice", "wonderland")
	srv1.AddUser(t, "bob", "builder")
	bob := "bob@" + srv1.Domain
	alice := srv1.DialRaw(t)
	alice.Login("alice", "wonderland")
	alice.Bind("phone")
	for i := range n {
		alice.Send(fmt.Sprintf(`<message to='%s' type='chat' id='m%d'><body>%d</body></message>`, bob, i, i))
	}
	alice.Send(`<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
	readUntil(t, alice, func(e *xmlstream.Element) bool { return e.Attribute("id") == "sync" })
	if got, err := srv2.Store().CountOffline(t.Context(), "bob", srv1.Domain); err != nil || got != n {
		t.Fatalf("the second server sees %d offline messages, %v; want %d", got, err, n)
	}

	b1, b2 := srv1.DialRaw(t), srv2.DialRaw(t)
	for i, b := range []*xmpptest.Raw{b1, b2} {
		b.Login("bob", "builder")
		b.Bind(fmt.Sprint("r", i))
	}
	b1.Send(`<presence/>`)
	b2.Send(`<presence/>`)
	xmpptest.WaitFor(t, 10*time.Second, "the offline messages to be taken", func() bool {
		got, err := srv1.Store().CountOffline(t.Context(), "bob", srv1.Domain)
		return err == nil && got == 0
	})
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for _, b := range []*xmpptest.Raw{b1, b2} {
		b.Send(`<iq type='get' id='done'><ping xmlns='urn:xmpp:ping'/></iq>`)
		wg.Go(func() {
			readUntil(t, b, func(e *xmlstream.Element) bool {
				if e.Name.Local == "message" {
					if body := e.Child("jabber:client", "body"); body != nil {
						mu.Lock()
						seen[body.Text()]++
						mu.Unlock()
					}
				}
				return e.Attribute("id") == "done"
			})
		})
	}
	wg.Wait()
	for i := range n {
		if c := seen[fmt.Sprint(i)]; c != 1 {
			t.Errorf("message %d delivered %d times", i, c)
		}
	}
}

// readUntil reads r's elements until done returns true for one.
func readUntil(t *testing.T, r *xmpptest.Raw, done func(*xmlstream.Element) bool) {
	t.Helper()
	for {
		e, err := r.NextErr()
		if err != nil {
			t.Errorf("read: %v", err)
			return
		}
		if done(e) {
			return
		}
	}
}
