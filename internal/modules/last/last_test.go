package last_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/last"
	"github.com/ode-xmpp/ode/internal/server"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// lastIQ asks to for its last activity and returns the seconds and text.
func lastIQ(t *testing.T, c *client.Client, to string) (int64, string, error) {
	t.Helper()
	res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, to, "", "").Append(xmlstream.NewElement(last.NS, "query")))
	if err != nil {
		return 0, "", err
	}
	q := res.Child(last.NS, "query")
	if q == nil {
		t.Fatalf("no query in %s", res)
	}
	secs, err := strconv.ParseInt(q.Attribute("seconds"), 10, 64)
	if err != nil {
		t.Fatalf("seconds in %s: %v", res, err)
	}
	return secs, q.Text(), nil
}

func wantCondition(t *testing.T, err error, cond stanza.Condition) {
	t.Helper()
	if !errors.Is(err, stanza.NewError(cond, "")) {
		t.Fatalf("got %v, want %s", err, cond)
	}
}

// available sends initial presence and waits until the server processed it.
func available(t *testing.T, c *client.Client) {
	t.Helper()
	if err := c.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "", "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping"))); err != nil {
		t.Fatal(err)
	}
}

func TestServerUptime(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	secs, text, err := lastIQ(t, c, srv.Domain)
	if err != nil {
		t.Fatal(err)
	}
	if secs < 0 || secs > 60 || text != "" {
		t.Errorf("uptime %d %q", secs, text)
	}
}

func TestAccountLastActivity(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	ctx := t.Context()
	juliet := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	romeo := srv.Dial(t, srv.AddUser(t, "romeo", "orchard"), "orchard")
	srv.AddUser(t, "nurse", "secret")
	tybalt := srv.Dial(t, srv.AddUser(t, "tybalt", "sword"), "sword")
	// Juliet is subscribed to Romeo's and the nurse's presence.
	for _, local := range []string{"romeo", "nurse"} {
		if _, err := srv.Store().PutRosterItem(ctx, local, srv.Domain,
			storage.RosterItem{Contact: "juliet@" + srv.Domain, Subscription: storage.SubBoth}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Store().SetLastActivity(ctx, "nurse", srv.Domain, time.Now().Add(-time.Hour), "Heading Home"); err != nil {
		t.Fatal(err)
	}

	t.Run("offline user", func(t *testing.T) {
		secs, text, err := lastIQ(t, juliet, "nurse@localhost")
		if err != nil {
			t.Fatal(err)
		}
		if secs < 3600 || secs > 3660 || text != "Heading Home" {
			t.Errorf("got %d %q, want about 3600 \"Heading Home\"", secs, text)
		}
	})
	t.Run("online but not available, never logged out", func(t *testing.T) {
		_, _, err := lastIQ(t, juliet, "romeo@localhost")
		wantCondition(t, err, stanza.ItemNotFound)
	})
	t.Run("available", func(t *testing.T) {
		available(t, romeo)
		secs, text, err := lastIQ(t, juliet, "romeo@localhost")
		if err != nil || secs != 0 || text != "" {
			t.Errorf("got %d %q %v, want 0", secs, text, err)
		}
	})
	t.Run("own account", func(t *testing.T) {
		available(t, juliet)
		for _, to := range []string{"", "juliet@localhost"} {
			if secs, _, err := lastIQ(t, juliet, to); err != nil || secs != 0 {
				t.Errorf("to %q: got %d %v, want 0", to, secs, err)
			}
		}
	})
	t.Run("not subscribed", func(t *testing.T) {
		_, _, err := lastIQ(t, tybalt, "nurse@localhost")
		wantCondition(t, err, stanza.Forbidden)
	})
	t.Run("subscription the other way", func(t *testing.T) {
		_, _, err := lastIQ(t, romeo, "juliet@localhost")
		wantCondition(t, err, stanza.Forbidden)
	})
	t.Run("no such account", func(t *testing.T) {
		_, _, err := lastIQ(t, juliet, "nobody@localhost")
		wantCondition(t, err, stanza.Forbidden)
	})
}

// TestLogoutRecorded: when the last session ends, the time is stored.
func TestLogoutRecorded(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	juliet := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	romeoJID := srv.AddUser(t, "romeo", "orchard")
	if _, err := srv.Store().PutRosterItem(t.Context(), "romeo", srv.Domain,
		storage.RosterItem{Contact: "juliet@" + srv.Domain, Subscription: storage.SubFrom}, 0); err != nil {
		t.Fatal(err)
	}
	first := srv.Dial(t, romeoJID, "orchard")
	second := srv.Dial(t, romeoJID, "orchard")
	first.Close()
	// The session-end hooks run after the connection is gone: poll.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && srv.Router().Count() > 2 {
		time.Sleep(5 * time.Millisecond)
	}
	_, _, err := lastIQ(t, juliet, "romeo@localhost")
	wantCondition(t, err, stanza.ItemNotFound) // one session is left

	second.Close()
	for {
		secs, text, err := lastIQ(t, juliet, "romeo@localhost")
		if err == nil {
			if secs > 5 || text != "" {
				t.Errorf("got %d %q, want about 0 and no text", secs, text)
			}
			return
		}
		wantCondition(t, err, stanza.ItemNotFound)
		if time.Now().After(deadline) {
			t.Fatal("logout not recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLogoutsWrittenAtShutdown: the logout times still waiting to be
// written when the server stops (the clients disconnect just before it
// does, and the streams still open end with it) are in storage after it
// stopped, read back through a store opened anew.
func TestLogoutsWrittenAtShutdown(t *testing.T) {
	const users = 20
	start := time.Now().Add(-time.Second)
	srv := xmpptest.Start(t, func(c *config.Config) { c.Server.DataDir = t.TempDir() })
	for i := range users {
		local := fmt.Sprint("user", i)
		c := srv.Dial(t, srv.AddUser(t, local, "pw"), "pw")
		if i%2 == 0 {
			c.Close() // ended before the shutdown; the others end with it
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// While the test's storage (a PostgreSQL schema, with ODE_TEST_POSTGRES)
	// is still there: xmpptest removes it when the test ends.
	store, err := server.OpenStore(ctx, srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for i := range users {
		at, _, err := store.LastActivity(ctx, fmt.Sprint("user", i), srv.Domain)
		if err != nil || at.Before(start) {
			t.Errorf("user%d: last activity %v, %v; want one after %v", i, at, err, start)
		}
	}
}
