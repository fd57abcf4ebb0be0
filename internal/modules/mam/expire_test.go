package mam_test

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules/mam"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/sqlite"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// TestExpire: with expire_after, messages older than that go, at start
// and then hourly; the clock is the module's (deps.Now).
func TestExpire(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ode.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.CreateAccount(ctx, "alice", "localhost", nil); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC)
	var msgs []storage.ArchivedMessage
	for i, age := range []time.Duration{72 * time.Hour, 25 * time.Hour, 23 * time.Hour, time.Minute} {
		msgs = append(msgs, storage.ArchivedMessage{Local: "alice", Domain: "localhost", ID: string(rune('a' + i)),
			With: "bob@localhost", Stamp: now.Add(-age), Stanza: []byte("<message/>")})
	}
	if _, err := store.AppendArchive(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	deps := module.Deps{Store: store, Router: router.New([]string{"localhost"}, log), Log: log, Now: func() time.Time { return now }}
	m, err := mam.New(deps, mam.Config{Default: mam.Always, ExpireAfter: config.Duration(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	left := func() int {
		p, err := store.QueryArchive(ctx, "alice", "localhost", storage.ArchiveQuery{Max: 10})
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Messages)
	}
	m.Register(deps.Router) // the first sweep runs at start
	xmpptest.WaitFor(t, 10*time.Second, "the first sweep", func() bool { return left() == 2 })
	m.Stop()
	now = now.Add(23 * time.Hour)
	if n, err := m.Expire(ctx); n != 1 || err != nil || left() != 1 {
		t.Errorf("Expire a day later = %d, %v; %d left, want 1 deleted, 1 left", n, err, left())
	}
	m2, _ := mam.New(deps, mam.Config{Default: mam.Always})
	if n, err := m2.Expire(ctx); n != 0 || err != nil {
		t.Errorf("Expire without expire_after = %d, %v", n, err)
	}
}
