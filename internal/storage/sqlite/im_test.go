package sqlite_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/sqlite"
	"github.com/ode-xmpp/ode/internal/storage/storagetest"
)

// TestReopenIM checks that what the IM stores hold is still there after the
// file is closed and opened again.
func TestReopenIM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ode.db")
	ctx := t.Context()
	const local, domain = "alice", "example.org"
	stamp := time.Date(2025, time.March, 1, 12, 0, 0, 250*int(time.Millisecond), time.UTC)
	juliet := storage.RosterItem{Contact: "juliet@example.com", Name: "J", Groups: []string{"b", "a"}, Subscription: storage.SubBoth}
	pending := storage.PendingSubscription{Contact: "romeo@example.net", Stanza: []byte("<presence type='subscribe'/>")}
	msgs := []storage.OfflineMessage{
		{Stanza: []byte("<message><body>1</body></message>"), Stamp: stamp},
		{Stanza: []byte("<message><body>2</body></message>"), Stamp: stamp.Add(time.Second)},
	}

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateAccount(ctx, local, domain, nil))
	_, err = s.PutRosterItem(ctx, local, domain, juliet, 0)
	must(err)
	_, err = s.PutRosterItem(ctx, local, domain, storage.RosterItem{Contact: "tybalt@example.com", Subscription: storage.SubNone}, 0)
	must(err)
	removedAt, err := s.DeleteRosterItem(ctx, local, domain, "tybalt@example.com")
	must(err)
	must(s.PutPendingSubscription(ctx, local, domain, pending))
	for _, m := range msgs {
		must(s.StoreOffline(ctx, local, domain, m, 0))
	}
	must(s.PutXML(ctx, local, domain, "vcard-temp", []byte("<vCard xmlns='vcard-temp'/>")))
	must(s.Block(ctx, local, domain, []string{"example.com", "romeo@example.net"}))
	must(s.SetLastActivity(ctx, local, domain, stamp, "bye"))
	must(s.Close())

	s = open(t, path)
	items, version, err := s.Roster(ctx, local, domain)
	must(err)
	juliet.Version = 1
	if diff := cmp.Diff([]storage.RosterItem{juliet}, items); diff != "" || version != removedAt {
		t.Errorf("Roster after reopening: version %d, want %d; mismatch (-want +got):\n%s", version, removedAt, diff)
	}
	changes, _, ok, err := s.RosterChanges(ctx, local, domain, 1)
	must(err)
	wantChanges := []storage.RosterChange{{Item: storage.RosterItem{Contact: "tybalt@example.com", Version: removedAt}, Removed: true}}
	if diff := cmp.Diff(wantChanges, changes); diff != "" || !ok {
		t.Errorf("RosterChanges after reopening: ok %v; mismatch (-want +got):\n%s", ok, diff)
	}
	ps, err := s.PendingSubscriptions(ctx, local, domain)
	must(err)
	if diff := cmp.Diff([]storage.PendingSubscription{pending}, ps); diff != "" {
		t.Errorf("PendingSubscriptions after reopening mismatch (-want +got):\n%s", diff)
	}
	got, err := s.OfflineMessages(ctx, local, domain)
	must(err)
	ignoreID := cmp.Transformer("ignoreID", func(m storage.OfflineMessage) storage.OfflineMessage { m.ID = 0; return m })
	if diff := cmp.Diff(msgs, got, ignoreID); diff != "" {
		t.Errorf("OfflineMessages after reopening mismatch (-want +got):\n%s", diff)
	}
	doc, err := s.GetXML(ctx, local, domain, "vcard-temp")
	if err != nil || string(doc) != "<vCard xmlns='vcard-temp'/>" {
		t.Errorf("GetXML after reopening = %q, %v", doc, err)
	}
	blocked, err := s.Blocklist(ctx, local, domain)
	if err != nil || strings.Join(blocked, " ") != "example.com romeo@example.net" {
		t.Errorf("Blocklist after reopening = %q, %v", blocked, err)
	}
	when, status, err := s.LastActivity(ctx, local, domain)
	if err != nil || !when.Equal(stamp) || status != "bye" {
		t.Errorf("LastActivity after reopening = %v, %q, %v", when, status, err)
	}

	// IDs keep increasing across the reopening.
	must(s.StoreOffline(ctx, local, domain, msgs[0], 0))
	after, err := s.OfflineMessages(ctx, local, domain)
	must(err)
	if len(after) != 3 || len(got) != 2 || after[2].ID <= got[1].ID {
		t.Errorf("after reopening, messages %v then %v: want a third with a higher ID", got, after)
	}
}

// killEnv names the database file of the child process of
// TestOfflineSurvivesKill.
const killEnv = "ODE_TEST_OFFLINE_KILL_DB"

// TestOfflineSurvivesKill runs a process that stores offline messages and
// reports each one StoreOffline accepted, kills it (SIGKILL on Unix, without
// closing the database), and checks that every accepted message is stored.
func TestOfflineSurvivesKill(t *testing.T) {
	if path := os.Getenv(killEnv); path != "" {
		storeUntilKilled(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "ode.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestOfflineSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), killEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const acked = 50
	last := -1
	sc := bufio.NewScanner(out)
	for last < acked && sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "stored "); ok {
			if last, err = strconv.Atoi(n); err != nil {
				t.Fatalf("child: %q", sc.Text())
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() // killed: an error
	if last < acked {
		t.Fatalf("child stopped after %d messages: %v", last+1, sc.Err())
	}

	s := open(t, path)
	ms, err := s.OfflineMessages(t.Context(), "alice", "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) <= last {
		t.Fatalf("%d messages after the kill, want at least %d", len(ms), last+1)
	}
	for i, m := range ms[:last+1] {
		if want := fmt.Sprintf("<message><body>%d</body></message>", i); string(m.Stanza) != want {
			t.Errorf("message %d = %q, want %q", i, m.Stanza, want)
		}
	}
}

// storeUntilKilled is the child process of TestOfflineSurvivesKill: it
// stores messages and prints "stored N" once message N is accepted.
func storeUntilKilled(t *testing.T, path string) {
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(t.Context(), "alice", "example.org", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 100000 { // the parent kills us long before
		m := storage.OfflineMessage{Stanza: fmt.Appendf(nil, "<message><body>%d</body></message>", i), Stamp: time.Now()}
		if err := s.StoreOffline(t.Context(), "alice", "example.org", m, 0); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(os.Stdout, "stored %d\n", i)
	}
	s.Close()
}

// TestDeleteAccountLeavesNothing fills every table for one account, deletes
// the account and checks that no table holds a row any more: every table
// must refer to accounts ON DELETE CASCADE, including tables added later.
func TestDeleteAccountLeavesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ode.db")
	s := open(t, path)
	ctx := t.Context()
	const local, domain = "alice", "example.org"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateAccount(ctx, local, domain, []storage.Credential{storagetest.Cred("SHA-256", "a")}))
	for _, c := range []string{"a@example.com", "b@example.com"} {
		_, err := s.PutRosterItem(ctx, local, domain, storage.RosterItem{Contact: c, Subscription: storage.SubNone}, 0)
		must(err)
	}
	_, err := s.DeleteRosterItem(ctx, local, domain, "b@example.com")
	must(err)
	must(s.PutPendingSubscription(ctx, local, domain, storage.PendingSubscription{Contact: "c@example.com", Stanza: []byte("<presence/>")}))
	must(s.StoreOffline(ctx, local, domain, storage.OfflineMessage{Stanza: []byte("<message/>"), Stamp: time.Now()}, 0))
	must(s.PutXML(ctx, local, domain, "vcard-temp", []byte("<vCard xmlns='vcard-temp'/>")))
	must(s.Block(ctx, local, domain, []string{"example.com"}))
	must(s.SetLastActivity(ctx, local, domain, time.Now(), ""))
	must(s.ReserveUpload(ctx, storage.Upload{ID: "u1", Local: local, Domain: domain, Filename: "a.txt", Size: 1, Created: time.Now()}, storage.UploadQuota{}))
	_, err = s.AppendArchive(ctx, []storage.ArchivedMessage{{Local: local, Domain: domain, ID: "a1", With: "b@example.com", Stamp: time.Now(), Stanza: []byte("<message/>")}})
	must(err)
	_, err = s.PutPushRegistration(ctx, local, domain, storage.PushRegistration{Service: "push.example.com", Node: "n", Created: time.Now()}, 0)
	must(err)
	must(s.PutFASTToken(ctx, local, domain, storage.FASTToken{ClientID: "c", Key: []byte("k"), Mechanism: "HT-SHA-256-NONE",
		Created: time.Now(), Expires: time.Now().Add(time.Hour)}, nil, 0))
	must(s.CreatePubSubNode(ctx, local, domain, storage.PubSubNode{Node: "urn:xmpp:avatar:data", Config: []byte(`{}`), Created: time.Now()}, 0))
	_, err = s.PublishPubSubItem(ctx, local, domain, "urn:xmpp:avatar:data", storage.PubSubItem{ID: "1", Publisher: "alice@example.org", Published: time.Now()}, 0)
	must(err)

	db := raw(t, path)
	tables := func() map[string]int {
		t.Helper()
		rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema
			WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations'`)
		must(err)
		var names []string
		for rows.Next() {
			var name string
			must(rows.Scan(&name))
			names = append(names, name)
		}
		must(rows.Err())
		rows.Close()
		counts := make(map[string]int)
		for _, name := range names {
			var n int
			must(db.QueryRowContext(ctx, `SELECT COUNT(*) FROM "`+name+`"`).Scan(&n))
			counts[name] = n
		}
		return counts
	}
	// Rooms belong to no account.
	notAccounts := map[string]bool{"rooms": true, "room_affiliations": true, "room_archive": true}
	for name, n := range tables() {
		if n == 0 && !notAccounts[name] {
			t.Errorf("table %s is empty: fill it in this test", name)
		}
	}
	must(s.DeleteAccount(ctx, local, domain))
	for name, n := range tables() {
		if n != 0 {
			t.Errorf("table %s holds %d rows after the only account was deleted", name, n)
		}
	}
}
