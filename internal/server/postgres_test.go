package server_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/postgres"
	"github.com/ode-xmpp/ode/internal/storage/postgres/pgtest"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/xmlstream"
)

// TestMain starts one PostgreSQL server for the package's tests and checks
// that they leave no goroutine behind. With ODE_PG_DURABLE=1 the server
// commits durably (for the benchmarks).
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

// pgtestShared is pgtest.Shared, for benchmarks too.
func pgtestShared(t testing.TB) *pgtest.Cluster { return pgtest.Shared(t) }

// onPostgres returns a config edit that puts the server's data in a new
// schema of the shared PostgreSQL server.
func onPostgres(t *testing.T) func(*config.Config) {
	t.Helper()
	c := pgtest.Shared(t)
	return func(cfg *config.Config) {
		cfg.Storage.Driver = "postgres"
		cfg.Storage.Postgres.DSN = c.Schema(t)
		cfg.Storage.Postgres.MaxConns = 8
	}
}

// TestPostgresIM runs a server on PostgreSQL and uses what it stores
// there: two users log in, one adds the other to her roster and asks to
// subscribe while he is offline, sends him messages he gets from offline
// storage at login, blocks and unblocks a JID, and both query their
// message archives (XEP-0313).
func TestPostgresIM(t *testing.T) {
	srv := xmpptest.Start(t, onPostgres(t))
	if _, ok := srv.Store().(*postgres.Store); !ok {
		t.Fatalf("the server's store is a %T, want *postgres.Store", srv.Store())
	}
	srv.AddUser(t, "alice", "wonderland")
	srv.AddUser(t, "bob", "builder")
	bobJID := "bob@" + srv.Domain

	alice := srv.DialRaw(t)
	alice.Login("alice", "wonderland")
	alice.Bind("phone")
	alice.Send(`<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='` + bobJID + `' name='Bob'><group>Friends</group></item></query></iq>`)
	until(t, alice, "roster set result", func(e *xmlstream.Element) bool { return isResult(e, "r1") })
	alice.Send(`<presence/>`)
	alice.Send(`<presence to='` + bobJID + `' type='subscribe'/>`)
	for i := range 3 {
		alice.Send(fmt.Sprintf(`<message to='%s' type='chat' id='m%d'><body>offline %d</body></message>`, bobJID, i, i))
	}
	alice.Send(`<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='mallory@example.net'/></block></iq>`)
	until(t, alice, "block result", func(e *xmlstream.Element) bool { return isResult(e, "b1") })

	ctx := t.Context()
	st := srv.Store()
	if n, err := st.CountOffline(ctx, "bob", srv.Domain); err != nil || n != 3 {
		t.Fatalf("CountOffline(bob) = %d, %v; want 3", n, err)
	}
	items, _, err := st.Roster(ctx, "alice", srv.Domain)
	if err != nil || len(items) != 1 || items[0].Contact != bobJID || !items[0].AskOut || items[0].Groups[0] != "Friends" {
		t.Fatalf("alice's roster in PostgreSQL = %+v, %v", items, err)
	}
	if b, err := st.Blocklist(ctx, "alice", srv.Domain); err != nil || len(b) != 1 {
		t.Errorf("alice's block list = %q, %v", b, err)
	}

	bob := srv.DialRaw(t)
	bob.Login("bob", "builder")
	bob.Bind("laptop")
	bob.Send(`<presence/>`)
	var bodies []string
	sub := false
	until(t, bob, "the subscription request and three offline messages", func(e *xmlstream.Element) bool {
		switch {
		case e.Name.Local == "presence" && e.Attribute("type") == "subscribe":
			sub = true
		case e.Name.Local == "message":
			if e.Child(nsDelay, "delay") == nil {
				t.Errorf("offline message without a delay: %s", e)
			}
			bodies = append(bodies, bodyOf(e))
		}
		return sub && len(bodies) == 3
	})
	if strings.Join(bodies, ",") != "offline 0,offline 1,offline 2" {
		t.Errorf("offline messages in the order %q", bodies)
	}
	xmpptest.WaitFor(t, 10*time.Second, "the delivered offline messages to be deleted", func() bool {
		n, err := st.CountOffline(ctx, "bob", srv.Domain)
		return err == nil && n == 0
	})
	bob.Send(`<presence to='alice@` + srv.Domain + `' type='subscribed'/>`)
	bob.Send(`<message to='alice@` + srv.Domain + `/phone' type='chat' id='live'><body>live reply</body></message>`)
	until(t, alice, "bob's live reply", func(e *xmlstream.Element) bool {
		return e.Name.Local == "message" && bodyOf(e) == "live reply"
	})
	xmpptest.WaitFor(t, 10*time.Second, "alice's roster item for bob to have subscription to", func() bool {
		items, _, err = st.Roster(ctx, "alice", srv.Domain)
		return err == nil && len(items) == 1 && items[0].Subscription == storage.SubTo
	})

	// The latest messages of each archive, newest last.
	for _, c := range []struct {
		raw  *xmpptest.Raw
		want []string
	}{
		{alice, []string{"offline 1", "offline 2", "live reply"}},
		{bob, []string{"offline 1", "offline 2", "live reply"}},
	} {
		c.raw.Send(`<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='x'><set xmlns='http://jabber.org/protocol/rsm'><max>3</max><before/></set></query></iq>`)
		var got []string
		until(t, c.raw, "the archive's page", func(e *xmlstream.Element) bool {
			if r := e.Child("urn:xmpp:mam:2", "result"); e.Name.Local == "message" && r != nil {
				if f := r.Child("urn:xmpp:forward:0", "forwarded"); f != nil {
					if m := f.Child("jabber:client", "message"); m != nil {
						got = append(got, bodyOf(m))
					}
				}
			}
			return isResult(e, "q1")
		})
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("archive page = %q, want %q", got, c.want)
		}
	}
	p, err := st.QueryArchive(ctx, "bob", srv.Domain, storage.ArchiveQuery{Max: 10})
	if err != nil || len(p.Messages) != 4 {
		t.Errorf("bob's archive in PostgreSQL: %d messages, %v; want 4", len(p.Messages), err)
	}
	alice.Close()
	bob.Close()
}

// TestPostgresTranscripts plays the c2s conversation transcripts (stream
// negotiation, SASL, bind, stream management and resumption) against a
// server on PostgreSQL.
func TestPostgresTranscripts(t *testing.T) {
	xmpptest.RunTranscripts(t, "../c2s/testdata/*.xmpp", onPostgres(t))
}

const nsDelay = "urn:xmpp:delay"

func isResult(e *xmlstream.Element, id string) bool {
	return e.Name.Local == "iq" && e.Attribute("id") == id && (e.Attribute("type") == "result" || e.Attribute("type") == "error")
}

func bodyOf(e *xmlstream.Element) string {
	if b := e.Child("jabber:client", "body"); b != nil {
		return b.Text()
	}
	return ""
}

// until reads r's elements until done returns true for one.
func until(t *testing.T, r *xmpptest.Raw, what string, done func(*xmlstream.Element) bool) {
	t.Helper()
	for {
		e, err := r.NextErr()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if e.Name.Local == "iq" && e.Attribute("type") == "error" {
			t.Errorf("while waiting for %s: %s", what, e)
		}
		if done(e) {
			return
		}
	}
}
