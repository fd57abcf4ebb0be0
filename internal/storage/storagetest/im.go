package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ode-xmpp/ode/internal/storage"
)

// Conformance tests of the IM aggregates (storage/im.go). Backends keep
// times to the millisecond at least, so the times used here have no finer
// part; a backend returns them in UTC.

// subtest is one named conformance test of a store.
type subtest struct {
	name string
	test func(t *testing.T, s storage.Store)
}

// run runs each test on a new store from open.
func run(t *testing.T, open func(t *testing.T) storage.Store, tests []subtest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open(t)) })
	}
}

// canceled returns a context that is already canceled.
func canceled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// wantErr checks that err wraps target (nil: no error).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s = %v, want %v", what, err, target)
	}
}

// at returns a time in a zone other than UTC, with milliseconds.
func at(day, ms int) time.Time {
	return time.Date(2025, time.March, day, 21, 30, 15, ms*int(time.Millisecond), time.FixedZone("CET", 3600))
}

// wantTime checks that got is want, in UTC.
func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s = %v, want %v in UTC", what, got, want.UTC())
	}
}

// The tests below use the accounts alice@home and bob@home.
const (
	alice, bob = "alice", "bob"
	home       = "example.org"
)

// mustCreateAliceBob creates bob and then alice: a backend that reuses the
// highest key then gives a recreated alice the key of the deleted one, so
// rows left behind by a missing cascade would show.
func mustCreateAliceBob(t *testing.T, s storage.Store) {
	t.Helper()
	mustCreate(t, s, bob, home, nil)
	mustCreate(t, s, alice, home, nil)
}

// recreate deletes the account local@home and creates it again.
func recreate(t *testing.T, s storage.Store, local string) {
	t.Helper()
	if err := s.DeleteAccount(t.Context(), local, home); err != nil {
		t.Fatalf("DeleteAccount(%s): %v", local, err)
	}
	mustCreate(t, s, local, home, nil)
}

// TestRosters runs the conformance tests of storage.Rosters. open must
// return a new, empty store for the test it is given and close it when that
// test ends (t.Cleanup).
func TestRosters(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"PutAndGet", testRosterPutAndGet},
		{"Groups", testRosterGroups},
		{"Invalid", testRosterInvalid},
		{"Delete", testRosterDelete},
		{"Changes", testRosterChanges},
		{"ChangesNotKnown", testRosterChangesNotKnown},
		{"Limit", testRosterLimit},
		{"Separate", testRosterSeparate},
		{"MissingAccount", testRosterMissingAccount},
		{"AccountDeleted", testRosterAccountDeleted},
		{"ConcurrentPuts", testRosterConcurrentPuts},
		{"CanceledContext", testRosterCanceledContext},
	})
}

// mustPut puts item into local's roster without a limit and returns the
// new version, which it checks is above the previous one.
func mustPut(t *testing.T, s storage.Store, local string, item storage.RosterItem) int64 {
	t.Helper()
	_, before, err := s.Roster(t.Context(), local, home)
	if err != nil {
		t.Fatalf("Roster: %v", err)
	}
	v, err := s.PutRosterItem(t.Context(), local, home, item, 0)
	if err != nil {
		t.Fatalf("PutRosterItem(%s): %v", item.Contact, err)
	}
	if v <= before {
		t.Errorf("PutRosterItem(%s) = version %d, want above %d", item.Contact, v, before)
	}
	return v
}

// mustRemove removes contact from the roster and returns the new version,
// which it checks is above the previous one.
func mustRemove(t *testing.T, s storage.Store, local, contact string) int64 {
	t.Helper()
	_, before, err := s.Roster(t.Context(), local, home)
	if err != nil {
		t.Fatalf("Roster: %v", err)
	}
	v, err := s.DeleteRosterItem(t.Context(), local, home, contact)
	if err != nil {
		t.Fatalf("DeleteRosterItem(%s): %v", contact, err)
	}
	if v <= before {
		t.Errorf("DeleteRosterItem(%s) = version %d, want above %d", contact, v, before)
	}
	return v
}

// wantRoster checks the whole roster of local and its version.
func wantRoster(t *testing.T, s storage.Store, local string, want []storage.RosterItem, version int64) {
	t.Helper()
	got, v, err := s.Roster(t.Context(), local, home)
	if err != nil {
		t.Fatalf("Roster(%s): %v", local, err)
	}
	if len(want) == 0 && len(got) == 0 {
		got = want
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Roster(%s) mismatch (-want +got):\n%s", local, diff)
	}
	if v != version {
		t.Errorf("Roster(%s) version = %d, want %d", local, v, version)
	}
}

// wantChanges checks RosterChanges(since).
func wantChanges(t *testing.T, s storage.Store, local string, since int64, want []storage.RosterChange, current int64, ok bool) {
	t.Helper()
	got, cur, gotOK, err := s.RosterChanges(t.Context(), local, home, since)
	if err != nil {
		t.Fatalf("RosterChanges(%s, %d): %v", local, since, err)
	}
	if cur != current || gotOK != ok {
		t.Errorf("RosterChanges(%s, %d) = current %d, ok %v; want %d, %v", local, since, cur, gotOK, current, ok)
	}
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RosterChanges(%s, %d) mismatch (-want +got):\n%s", local, since, diff)
	}
}

// item returns a roster item for contact with no subscription.
func item(contact string) storage.RosterItem {
	return storage.RosterItem{Contact: contact, Subscription: storage.SubNone}
}

func changed(it storage.RosterItem) storage.RosterChange { return storage.RosterChange{Item: it} }

func removed(contact string, v int64) storage.RosterChange {
	return storage.RosterChange{Item: storage.RosterItem{Contact: contact, Version: v}, Removed: true}
}

func testRosterPutAndGet(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	wantRoster(t, s, alice, nil, 0)

	juliet := storage.RosterItem{
		Contact: "juliet@example.com", Name: "Juliet", Groups: []string{"Friends"},
		Subscription: storage.SubBoth, Approved: true,
	}
	juliet.Version = mustPut(t, s, alice, juliet)
	nurse := storage.RosterItem{Contact: "nurse@example.com", Subscription: storage.SubNone, AskOut: true}
	nurse.Version = mustPut(t, s, alice, nurse)
	benvolio := storage.RosterItem{Contact: "benvolio@example.net", Subscription: storage.SubFrom, PendingIn: true}
	benvolio.Version = mustPut(t, s, alice, benvolio)
	wantRoster(t, s, alice, []storage.RosterItem{benvolio, juliet, nurse}, benvolio.Version)

	got, err := s.RosterItem(t.Context(), alice, home, juliet.Contact)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(juliet, got); diff != "" {
		t.Errorf("RosterItem mismatch (-want +got):\n%s", diff)
	}
	_, err = s.RosterItem(t.Context(), alice, home, "romeo@example.net")
	wantErr(t, "RosterItem(absent)", err, storage.ErrNotFound)

	// Put replaces the whole item; the Version passed in is ignored.
	nurse = storage.RosterItem{Contact: nurse.Contact, Name: "Nurse", Subscription: storage.SubTo, Version: 999}
	nurse.Version = mustPut(t, s, alice, nurse)
	wantRoster(t, s, alice, []storage.RosterItem{benvolio, juliet, nurse}, nurse.Version)

	// The same contact can be put again unchanged: still a new version.
	v := mustPut(t, s, alice, nurse)
	nurse.Version = v
	wantRoster(t, s, alice, []storage.RosterItem{benvolio, juliet, nurse}, v)
}

func testRosterGroups(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	groups := []string{"Zeta", "Friends", "Ωμέγα", "a/b", "Family"}
	it := storage.RosterItem{Contact: "juliet@example.com", Groups: groups, Subscription: storage.SubNone}
	it.Version = mustPut(t, s, alice, it)
	wantRoster(t, s, alice, []storage.RosterItem{it}, it.Version)

	it.Groups = []string{"Family", "Zeta"}
	it.Version = mustPut(t, s, alice, it)
	wantRoster(t, s, alice, []storage.RosterItem{it}, it.Version)

	// No groups read back as nil, whether given as nil or empty.
	it.Groups = []string{}
	it.Version = mustPut(t, s, alice, it)
	it.Groups = nil
	wantRoster(t, s, alice, []storage.RosterItem{it}, it.Version)
}

func testRosterInvalid(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	ok := storage.RosterItem{Contact: "juliet@example.com", Subscription: storage.SubNone}
	ok.Version = mustPut(t, s, alice, ok)
	bad := map[string]storage.RosterItem{
		"no contact":         {Subscription: storage.SubNone},
		"no subscription":    {Contact: "nurse@example.com"},
		"other subscription": {Contact: "nurse@example.com", Subscription: "remove"},
		"empty group":        {Contact: "nurse@example.com", Subscription: storage.SubNone, Groups: []string{"a", ""}},
		"repeated group":     {Contact: "nurse@example.com", Subscription: storage.SubNone, Groups: []string{"a", "b", "a"}},
		"replace invalid":    {Contact: ok.Contact, Subscription: storage.SubTo, Groups: []string{"x", "x"}},
	}
	for name, it := range bad {
		_, err := s.PutRosterItem(t.Context(), alice, home, it, 0)
		wantErr(t, fmt.Sprintf("PutRosterItem(%s)", name), err, storage.ErrInvalid)
	}
	wantRoster(t, s, alice, []storage.RosterItem{ok}, ok.Version)
}

func testRosterDelete(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	a := item("a@example.com")
	a.Version = mustPut(t, s, alice, a)
	b := item("b@example.com")
	mustPut(t, s, alice, b)
	v := mustRemove(t, s, alice, b.Contact)
	wantRoster(t, s, alice, []storage.RosterItem{a}, v)
	_, err := s.RosterItem(t.Context(), alice, home, b.Contact)
	wantErr(t, "RosterItem(removed)", err, storage.ErrNotFound)

	for _, contact := range []string{b.Contact, "c@example.com"} {
		_, err := s.DeleteRosterItem(t.Context(), alice, home, contact)
		wantErr(t, "DeleteRosterItem("+contact+")", err, storage.ErrNotFound)
	}
	wantRoster(t, s, alice, []storage.RosterItem{a}, v) // failed deletes change nothing

	b.Version = mustPut(t, s, alice, b)
	wantRoster(t, s, alice, []storage.RosterItem{a, b}, b.Version)
}

// testRosterChanges follows a roster through adds, updates, removals and
// re-adds, and checks what RosterChanges reports after each version.
func testRosterChanges(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	wantChanges(t, s, alice, 0, nil, 0, true)

	a, b, c, d := item("a@example.com"), item("b@example.com"), item("c@example.com"), item("d@example.com")
	v1 := mustPut(t, s, alice, a)
	v2 := mustPut(t, s, alice, b)
	v3 := mustPut(t, s, alice, c)
	a.Name = "A"
	a.Version = mustPut(t, s, alice, a) // v4: update
	v5 := mustRemove(t, s, alice, b.Contact)
	v6 := mustRemove(t, s, alice, c.Contact)
	c.Subscription = storage.SubTo
	c.Version = mustPut(t, s, alice, c) // v7: re-add
	d.Version = mustPut(t, s, alice, d) // v8
	v9 := mustRemove(t, s, alice, d.Contact)
	current := v9

	tests := []struct {
		since int64
		want  []storage.RosterChange
	}{
		{0, []storage.RosterChange{changed(a), removed(b.Contact, v5), changed(c), removed(d.Contact, v9)}},
		{v1, []storage.RosterChange{changed(a), removed(b.Contact, v5), changed(c), removed(d.Contact, v9)}},
		{v2, []storage.RosterChange{changed(a), removed(b.Contact, v5), changed(c), removed(d.Contact, v9)}},
		{v3, []storage.RosterChange{changed(a), removed(b.Contact, v5), changed(c), removed(d.Contact, v9)}},
		{a.Version, []storage.RosterChange{removed(b.Contact, v5), changed(c), removed(d.Contact, v9)}},
		{v5, []storage.RosterChange{changed(c), removed(d.Contact, v9)}},
		{v6, []storage.RosterChange{changed(c), removed(d.Contact, v9)}},
		{c.Version, []storage.RosterChange{removed(d.Contact, v9)}},
		{d.Version, []storage.RosterChange{removed(d.Contact, v9)}},
		{v9, nil},
	}
	for _, tt := range tests {
		wantChanges(t, s, alice, tt.since, tt.want, current, true)
	}
	wantRoster(t, s, alice, []storage.RosterItem{a, c}, current)

	// Re-adding b replaces its removal by the new item.
	b.Version = mustPut(t, s, alice, b)
	wantChanges(t, s, alice, v3, []storage.RosterChange{changed(a), changed(c), removed(d.Contact, v9), changed(b)}, b.Version, true)
	wantChanges(t, s, alice, v9, []storage.RosterChange{changed(b)}, b.Version, true)
}

func testRosterChangesNotKnown(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	wantChanges(t, s, alice, 1, nil, 0, false)
	wantChanges(t, s, alice, -1, nil, 0, false)
	mustPut(t, s, alice, item("a@example.com"))
	v := mustPut(t, s, alice, item("b@example.com"))
	for _, since := range []int64{v + 1, v + 1000, -1, -v} {
		wantChanges(t, s, alice, since, nil, v, false)
	}
}

func testRosterLimit(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	put := func(it storage.RosterItem, maxItems int) (int64, error) {
		return s.PutRosterItem(t.Context(), alice, home, it, maxItems)
	}
	a, b, c, d := item("a@example.com"), item("b@example.com"), item("c@example.com"), item("d@example.com")
	var err error
	for _, it := range []*storage.RosterItem{&a, &b} {
		if it.Version, err = put(*it, 2); err != nil {
			t.Fatalf("PutRosterItem(%s, max 2): %v", it.Contact, err)
		}
	}
	_, err = put(c, 2)
	wantErr(t, "PutRosterItem(third, max 2)", err, storage.ErrLimit)
	wantRoster(t, s, alice, []storage.RosterItem{a, b}, b.Version)

	// Replacing an item does not count against the limit, even when the
	// roster already holds more.
	a.Name = "A"
	if a.Version, err = put(a, 2); err != nil {
		t.Errorf("PutRosterItem(replace, max 2): %v", err)
	}
	if a.Version, err = put(a, 1); err != nil {
		t.Errorf("PutRosterItem(replace, max 1): %v", err)
	}
	for _, maxItems := range []int{0, -1} {
		_, err := put(c, maxItems)
		wantErr(t, fmt.Sprintf("PutRosterItem(max %d)", maxItems), err, nil)
	}
	_, err = put(d, 3)
	wantErr(t, "PutRosterItem(fourth, max 3)", err, storage.ErrLimit)

	// Removed items do not count.
	mustRemove(t, s, alice, a.Contact)
	if _, err := put(d, 3); err != nil {
		t.Errorf("PutRosterItem(after a removal, max 3): %v", err)
	}

	// Other rosters do not count either.
	if _, err := s.PutRosterItem(t.Context(), bob, home, a, 1); err != nil {
		t.Errorf("PutRosterItem(bob, max 1): %v", err)
	}
}

func testRosterSeparate(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustCreate(t, s, alice, "example.net", nil)
	a := item("a@example.com")
	a.Version = mustPut(t, s, alice, a)
	mustPut(t, s, alice, item("b@example.com"))
	aliceVersion := mustRemove(t, s, alice, "b@example.com")

	forBob := item("a@example.com")
	forBob.Name = "Bob's"
	forBob.Version = mustPut(t, s, bob, forBob)
	wantRoster(t, s, bob, []storage.RosterItem{forBob}, forBob.Version)
	wantChanges(t, s, bob, 0, []storage.RosterChange{changed(forBob)}, forBob.Version, true)

	wantRoster(t, s, alice, []storage.RosterItem{a}, aliceVersion)
	if _, err := s.DeleteRosterItem(t.Context(), bob, home, "b@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteRosterItem(bob, alice's removed item) = %v, want ErrNotFound", err)
	}
	got, ver, err := s.Roster(t.Context(), alice, "example.net")
	if err != nil || len(got) != 0 || ver != 0 {
		t.Errorf("Roster(alice@example.net) = %v, %d, %v; want empty", got, ver, err)
	}
}

func testRosterMissingAccount(t *testing.T, s storage.Store) {
	mustCreate(t, s, bob, home, nil)
	_, err := s.PutRosterItem(t.Context(), alice, home, item("a@example.com"), 0)
	wantErr(t, "PutRosterItem(no account)", err, storage.ErrNotFound)
	_, err = s.DeleteRosterItem(t.Context(), alice, home, "a@example.com")
	wantErr(t, "DeleteRosterItem(no account)", err, storage.ErrNotFound)
	_, err = s.RosterItem(t.Context(), alice, home, "a@example.com")
	wantErr(t, "RosterItem(no account)", err, storage.ErrNotFound)
	wantRoster(t, s, alice, nil, 0)
	wantChanges(t, s, alice, 0, nil, 0, true)
	wantChanges(t, s, alice, 1, nil, 0, false)
}

func testRosterAccountDeleted(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustPut(t, s, alice, item("a@example.com"))
	mustPut(t, s, alice, item("b@example.com"))
	mustRemove(t, s, alice, "b@example.com")
	b := item("b@example.com")
	b.Version = mustPut(t, s, bob, b)

	recreate(t, s, alice)
	wantRoster(t, s, alice, nil, 0)
	wantChanges(t, s, alice, 0, nil, 0, true)
	wantRoster(t, s, bob, []storage.RosterItem{b}, b.Version)

	// The new roster starts afresh, without the old one's removals.
	c := item("c@example.com")
	c.Version = mustPut(t, s, alice, c)
	wantChanges(t, s, alice, 0, []storage.RosterChange{changed(c)}, c.Version, true)
}

// testRosterConcurrentPuts changes one roster from several goroutines: every
// change must get its own version.
func testRosterConcurrentPuts(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	const workers, each = 8, 10
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions []int64
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				contact := fmt.Sprintf("w%d-%d@example.com", w, i)
				v, err := s.PutRosterItem(t.Context(), alice, home, item(contact), 0)
				if err != nil {
					t.Errorf("PutRosterItem(%s): %v", contact, err)
					return
				}
				if i%2 == 1 {
					v, err = s.DeleteRosterItem(t.Context(), alice, home, contact)
					if err != nil {
						t.Errorf("DeleteRosterItem(%s): %v", contact, err)
						return
					}
				}
				mu.Lock()
				versions = append(versions, v)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(versions)
	if n := len(slices.Compact(slices.Clone(versions))); n != len(versions) {
		t.Errorf("%d changes got %d distinct versions", len(versions), n)
	}
	items, v, err := s.Roster(t.Context(), alice, home)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != workers*each/2 || v != versions[len(versions)-1] {
		t.Errorf("Roster = %d items at version %d, want %d at %d", len(items), v, workers*each/2, versions[len(versions)-1])
	}
	changes, _, ok, err := s.RosterChanges(t.Context(), alice, home, 0)
	if err != nil || !ok || len(changes) != workers*each {
		t.Errorf("RosterChanges(0) = %d changes, %v, %v; want %d", len(changes), ok, err, workers*each)
	}
}

func testRosterCanceledContext(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	a := item("a@example.com")
	a.Version = mustPut(t, s, alice, a)
	ctx := canceled(t)

	_, err := s.PutRosterItem(ctx, alice, home, item("b@example.com"), 0)
	wantErr(t, "PutRosterItem", err, context.Canceled)
	_, err = s.DeleteRosterItem(ctx, alice, home, a.Contact)
	wantErr(t, "DeleteRosterItem", err, context.Canceled)
	_, _, err = s.Roster(ctx, alice, home)
	wantErr(t, "Roster", err, context.Canceled)
	_, err = s.RosterItem(ctx, alice, home, a.Contact)
	wantErr(t, "RosterItem", err, context.Canceled)
	_, _, _, err = s.RosterChanges(ctx, alice, home, 0)
	wantErr(t, "RosterChanges", err, context.Canceled)

	wantRoster(t, s, alice, []storage.RosterItem{a}, a.Version)
}

// TestSubscriptions runs the conformance tests of storage.Subscriptions;
// open is as for TestRosters.
func TestSubscriptions(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"PutAndList", testPendingPutAndList},
		{"Invalid", testPendingInvalid},
		{"Separate", testPendingSeparate},
		{"MissingAccount", testPendingMissingAccount},
		{"AccountDeleted", testPendingAccountDeleted},
		{"CanceledContext", testPendingCanceledContext},
	})
}

// request returns a pending subscription from contact.
func request(contact, status string) storage.PendingSubscription {
	return storage.PendingSubscription{
		Contact: contact,
		Stanza:  fmt.Appendf(nil, `<presence from='%s' type='subscribe'><status>%s</status></presence>`, contact, status),
	}
}

func mustPutPending(t *testing.T, s storage.Store, local string, p storage.PendingSubscription) {
	t.Helper()
	if err := s.PutPendingSubscription(t.Context(), local, home, p); err != nil {
		t.Fatalf("PutPendingSubscription(%s): %v", p.Contact, err)
	}
}

func wantPending(t *testing.T, s storage.Store, local string, want []storage.PendingSubscription) {
	t.Helper()
	got, err := s.PendingSubscriptions(t.Context(), local, home)
	if err != nil {
		t.Fatalf("PendingSubscriptions(%s): %v", local, err)
	}
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PendingSubscriptions(%s) mismatch (-want +got):\n%s", local, diff)
	}
}

func testPendingPutAndList(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	wantPending(t, s, alice, nil)
	romeo, nurse, tybalt := request("romeo@example.net", "hi"), request("nurse@example.com", ""), request("tybalt@example.com", "")
	for _, p := range []storage.PendingSubscription{romeo, nurse, tybalt} {
		mustPutPending(t, s, alice, p)
	}
	wantPending(t, s, alice, []storage.PendingSubscription{romeo, nurse, tybalt})

	// A replaced request counts as the newest.
	romeo = request("romeo@example.net", "me again")
	mustPutPending(t, s, alice, romeo)
	wantPending(t, s, alice, []storage.PendingSubscription{nurse, tybalt, romeo})

	for _, contact := range []string{nurse.Contact, nurse.Contact, "absent@example.com"} {
		if err := s.DeletePendingSubscription(t.Context(), alice, home, contact); err != nil {
			t.Errorf("DeletePendingSubscription(%s): %v", contact, err)
		}
	}
	wantPending(t, s, alice, []storage.PendingSubscription{tybalt, romeo})
	mustPutPending(t, s, alice, nurse)
	wantPending(t, s, alice, []storage.PendingSubscription{tybalt, romeo, nurse})
}

func testPendingInvalid(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	for name, p := range map[string]storage.PendingSubscription{
		"no contact": {Stanza: []byte("<presence/>")},
		"no stanza":  {Contact: "romeo@example.net"},
	} {
		err := s.PutPendingSubscription(t.Context(), alice, home, p)
		wantErr(t, "PutPendingSubscription("+name+")", err, storage.ErrInvalid)
	}
	wantPending(t, s, alice, nil)
}

func testPendingSeparate(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	forAlice, forBob := request("romeo@example.net", "alice?"), request("romeo@example.net", "bob?")
	mustPutPending(t, s, alice, forAlice)
	mustPutPending(t, s, bob, forBob)
	wantPending(t, s, alice, []storage.PendingSubscription{forAlice})
	if err := s.DeletePendingSubscription(t.Context(), bob, home, forBob.Contact); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s, bob, nil)
	wantPending(t, s, alice, []storage.PendingSubscription{forAlice})
}

func testPendingMissingAccount(t *testing.T, s storage.Store) {
	mustCreate(t, s, bob, home, nil)
	err := s.PutPendingSubscription(t.Context(), alice, home, request("romeo@example.net", ""))
	wantErr(t, "PutPendingSubscription(no account)", err, storage.ErrNotFound)
	err = s.DeletePendingSubscription(t.Context(), alice, home, "romeo@example.net")
	wantErr(t, "DeletePendingSubscription(no account)", err, nil)
	wantPending(t, s, alice, nil)
}

func testPendingAccountDeleted(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	p := request("romeo@example.net", "")
	mustPutPending(t, s, alice, p)
	mustPutPending(t, s, bob, p)
	recreate(t, s, alice)
	wantPending(t, s, alice, nil)
	wantPending(t, s, bob, []storage.PendingSubscription{p})
}

func testPendingCanceledContext(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	p := request("romeo@example.net", "")
	mustPutPending(t, s, alice, p)
	ctx := canceled(t)
	wantErr(t, "PutPendingSubscription", s.PutPendingSubscription(ctx, alice, home, request("nurse@example.com", "")), context.Canceled)
	wantErr(t, "DeletePendingSubscription", s.DeletePendingSubscription(ctx, alice, home, p.Contact), context.Canceled)
	_, err := s.PendingSubscriptions(ctx, alice, home)
	wantErr(t, "PendingSubscriptions", err, context.Canceled)
	wantPending(t, s, alice, []storage.PendingSubscription{p})
}

// TestOffline runs the conformance tests of storage.Offline; open is as for
// TestRosters.
func TestOffline(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"StoreAndRead", testOfflineStoreAndRead},
		{"IDsNotReused", testOfflineIDsNotReused},
		{"Quota", testOfflineQuota},
		{"Invalid", testOfflineInvalid},
		{"Separate", testOfflineSeparate},
		{"MissingAccount", testOfflineMissingAccount},
		{"AccountDeleted", testOfflineAccountDeleted},
		{"ConcurrentStores", testOfflineConcurrentStores},
		{"ConcurrentQuota", testOfflineConcurrentQuota},
		{"Take", testOfflineTake},
		{"ConcurrentTakes", testOfflineConcurrentTakes},
		{"CanceledContext", testOfflineCanceledContext},
	})
}

// message returns an offline message with body and stamp.
func message(body string, stamp time.Time) storage.OfflineMessage {
	return storage.OfflineMessage{
		Stanza: fmt.Appendf(nil, `<message from='romeo@example.net/orchard' type='chat'><body>%s</body></message>`, body),
		Stamp:  stamp,
	}
}

func mustStore(t *testing.T, s storage.Store, local string, m storage.OfflineMessage) {
	t.Helper()
	if err := s.StoreOffline(t.Context(), local, home, m, 0); err != nil {
		t.Fatalf("StoreOffline(%s): %v", local, err)
	}
}

// wantOffline checks the stored messages against want, whose IDs are
// ignored, and their count; it returns the messages read.
func wantOffline(t *testing.T, s storage.Store, local string, want []storage.OfflineMessage) []storage.OfflineMessage {
	t.Helper()
	got, err := s.OfflineMessages(t.Context(), local, home)
	if err != nil {
		t.Fatalf("OfflineMessages(%s): %v", local, err)
	}
	for i, m := range got {
		if i > 0 && m.ID <= got[i-1].ID {
			t.Errorf("OfflineMessages(%s): ID %d after %d", local, m.ID, got[i-1].ID)
		}
		if m.Stamp.Location() != time.UTC {
			t.Errorf("OfflineMessages(%s): stamp %v not in UTC", local, m.Stamp)
		}
	}
	if len(want) != 0 || len(got) != 0 {
		ignoreID := cmp.Transformer("ignoreID", func(m storage.OfflineMessage) storage.OfflineMessage {
			m.ID = 0
			return m
		})
		if diff := cmp.Diff(want, got, ignoreID); diff != "" {
			t.Errorf("OfflineMessages(%s) mismatch (-want +got):\n%s", local, diff)
		}
	}
	if n, err := s.CountOffline(t.Context(), local, home); err != nil || n != len(want) {
		t.Errorf("CountOffline(%s) = %d, %v; want %d", local, n, err, len(want))
	}
	return got
}

func testOfflineStoreAndRead(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	wantOffline(t, s, alice, nil)
	ms := []storage.OfflineMessage{
		message("one", at(1, 0)),
		message("two", at(1, 1)),
		message("three", at(1, 1)), // the same stamp
		message("four", at(2, 999)),
		message("five", at(1, 500)), // stamps need not increase
		message("<&>'\"ü", at(3, 123)),
	}
	for _, m := range ms {
		mustStore(t, s, alice, m)
	}
	got := wantOffline(t, s, alice, ms)

	if err := s.DeleteOffline(t.Context(), alice, home, got[2].ID); err != nil {
		t.Fatal(err)
	}
	wantOffline(t, s, alice, ms[3:])
	if err := s.DeleteOffline(t.Context(), alice, home, got[2].ID); err != nil {
		t.Errorf("DeleteOffline again: %v", err)
	}
	if err := s.DeleteOffline(t.Context(), alice, home, 0); err != nil {
		t.Errorf("DeleteOffline(0): %v", err)
	}
	extra := message("six", at(4, 0))
	mustStore(t, s, alice, extra)
	after := wantOffline(t, s, alice, append(slices.Clone(ms[3:]), extra))
	if last := after[len(after)-1].ID; last <= got[len(got)-1].ID {
		t.Errorf("new message has ID %d, not above %d", last, got[len(got)-1].ID)
	}
	if err := s.DeleteOffline(t.Context(), alice, home, after[len(after)-1].ID); err != nil {
		t.Fatal(err)
	}
	wantOffline(t, s, alice, nil)
}

// testOfflineIDsNotReused checks that IDs keep increasing once every
// message was deleted, so that a DeleteOffline with an old ID cannot delete
// a newer message.
func testOfflineIDsNotReused(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustStore(t, s, alice, message("one", at(1, 0)))
	mustStore(t, s, alice, message("two", at(1, 0)))
	first := wantOffline(t, s, alice, []storage.OfflineMessage{message("one", at(1, 0)), message("two", at(1, 0))})
	last := first[1].ID
	if err := s.DeleteOffline(t.Context(), alice, home, last); err != nil {
		t.Fatal(err)
	}
	mustStore(t, s, alice, message("three", at(1, 0)))
	if err := s.DeleteOffline(t.Context(), alice, home, last); err != nil {
		t.Fatal(err)
	}
	got := wantOffline(t, s, alice, []storage.OfflineMessage{message("three", at(1, 0))})
	if got[0].ID <= last {
		t.Errorf("ID %d after deleting up to %d", got[0].ID, last)
	}
}

func testOfflineQuota(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	store := func(body string, quota int) error {
		return s.StoreOffline(t.Context(), alice, home, message(body, at(1, 0)), quota)
	}
	for i := range 3 {
		if err := store(fmt.Sprint(i), 3); err != nil {
			t.Fatalf("StoreOffline(%d, quota 3): %v", i, err)
		}
	}
	wantErr(t, "StoreOffline(fourth, quota 3)", store("3", 3), storage.ErrLimit)
	wantErr(t, "StoreOffline(fourth, quota 2)", store("3", 2), storage.ErrLimit)
	if n, err := s.CountOffline(t.Context(), alice, home); err != nil || n != 3 {
		t.Errorf("CountOffline = %d, %v; want 3", n, err)
	}
	// Other users' messages do not count.
	if err := s.StoreOffline(t.Context(), bob, home, message("b", at(1, 0)), 1); err != nil {
		t.Errorf("StoreOffline(bob, quota 1): %v", err)
	}
	for _, quota := range []int{0, -1, 6} {
		wantErr(t, fmt.Sprintf("StoreOffline(quota %d)", quota), store("more", quota), nil)
	}
	wantErr(t, "StoreOffline(quota 6)", store("last", 6), storage.ErrLimit)

	ms, err := s.OfflineMessages(t.Context(), alice, home)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOffline(t.Context(), alice, home, ms[0].ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "StoreOffline(after a delivery, quota 6)", store("last", 6), nil)
}

func testOfflineInvalid(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	for _, stanza := range [][]byte{nil, {}} {
		err := s.StoreOffline(t.Context(), alice, home, storage.OfflineMessage{Stanza: stanza, Stamp: at(1, 0)}, 0)
		wantErr(t, "StoreOffline(empty)", err, storage.ErrInvalid)
	}
	wantOffline(t, s, alice, nil)
}

func testOfflineSeparate(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustCreate(t, s, alice, "example.net", nil)
	forAlice, forBob := message("alice", at(1, 0)), message("bob", at(1, 0))
	mustStore(t, s, alice, forAlice)
	mustStore(t, s, bob, forBob)
	if err := s.StoreOffline(t.Context(), alice, "example.net", message("net", at(1, 0)), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOffline(t.Context(), bob, home, 1<<62); err != nil {
		t.Fatal(err)
	}
	wantOffline(t, s, bob, nil)
	wantOffline(t, s, alice, []storage.OfflineMessage{forAlice})
	if n, err := s.CountOffline(t.Context(), alice, "example.net"); err != nil || n != 1 {
		t.Errorf("CountOffline(alice@example.net) = %d, %v; want 1", n, err)
	}
}

func testOfflineMissingAccount(t *testing.T, s storage.Store) {
	mustCreate(t, s, bob, home, nil)
	err := s.StoreOffline(t.Context(), alice, home, message("hi", at(1, 0)), 0)
	wantErr(t, "StoreOffline(no account)", err, storage.ErrNotFound)
	wantErr(t, "DeleteOffline(no account)", s.DeleteOffline(t.Context(), alice, home, 10), nil)
	wantOffline(t, s, alice, nil)
}

func testOfflineAccountDeleted(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	m := message("hi", at(1, 0))
	mustStore(t, s, alice, m)
	mustStore(t, s, alice, m)
	mustStore(t, s, bob, m)
	recreate(t, s, alice)
	wantOffline(t, s, alice, nil)
	wantOffline(t, s, bob, []storage.OfflineMessage{m})
}

// testOfflineConcurrentStores stores messages for one user from many
// goroutines: each gets its own ID, and each goroutine's messages keep
// the order it stored them in.
func testOfflineConcurrentStores(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	const workers, each = 16, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m := message(fmt.Sprintf("%d/%d", w, i), at(1, 0))
				if err := s.StoreOffline(t.Context(), alice, home, m, 0); err != nil {
					t.Errorf("StoreOffline(%d, %d): %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	ms, err := s.OfflineMessages(t.Context(), alice, home)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != workers*each {
		t.Fatalf("%d messages, want %d", len(ms), workers*each)
	}
	next := make([]int, workers)
	for i, m := range ms {
		if i > 0 && m.ID <= ms[i-1].ID {
			t.Errorf("ID %d after %d", m.ID, ms[i-1].ID)
		}
		var w, n int
		_, body, _ := bytes.Cut(m.Stanza, []byte("<body>"))
		if _, err := fmt.Sscanf(string(body), "%d/%d</body>", &w, &n); err != nil {
			t.Fatalf("message %d: %q: %v", i, m.Stanza, err)
		}
		if n != next[w] {
			t.Errorf("message %d of worker %d follows %d", n, w, next[w]-1)
		}
		next[w] = n + 1
	}
}

// testOfflineConcurrentQuota stores messages from many goroutines with a
// quota: exactly the quota is stored.
func testOfflineConcurrentQuota(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	const workers, each, quota = 8, 10, 25
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		stored int
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				err := s.StoreOffline(t.Context(), alice, home, message(fmt.Sprintf("%d %d", w, i), at(1, 0)), quota)
				switch {
				case err == nil:
					mu.Lock()
					stored++
					mu.Unlock()
				case !errors.Is(err, storage.ErrLimit):
					t.Errorf("StoreOffline: %v", err)
				}
			}
		})
	}
	wg.Wait()
	n, err := s.CountOffline(t.Context(), alice, home)
	if err != nil || n != quota || stored != quota {
		t.Errorf("%d accepted, CountOffline = %d, %v; want %d", stored, n, err, quota)
	}
}

func testOfflineCanceledContext(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	m := message("hi", at(1, 0))
	mustStore(t, s, alice, m)
	ctx := canceled(t)
	wantErr(t, "StoreOffline", s.StoreOffline(ctx, alice, home, m, 0), context.Canceled)
	wantErr(t, "DeleteOffline", s.DeleteOffline(ctx, alice, home, 1<<62), context.Canceled)
	_, err := s.OfflineMessages(ctx, alice, home)
	wantErr(t, "OfflineMessages", err, context.Canceled)
	_, err = s.CountOffline(ctx, alice, home)
	wantErr(t, "CountOffline", err, context.Canceled)
	_, err = s.TakeOffline(ctx, alice, home)
	wantErr(t, "TakeOffline", err, context.Canceled)
	wantOffline(t, s, alice, []storage.OfflineMessage{m})
}

func testOfflineTake(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	if ms, err := s.TakeOffline(t.Context(), alice, home); err != nil || len(ms) != 0 {
		t.Errorf("TakeOffline(none stored) = %v, %v", ms, err)
	}
	if ms, err := s.TakeOffline(t.Context(), "nobody", home); err != nil || len(ms) != 0 {
		t.Errorf("TakeOffline(no account) = %v, %v", ms, err)
	}
	want := []storage.OfflineMessage{message("one", at(1, 0)), message("two", at(1, 500)), message("three", at(1, 1))}
	for _, m := range want {
		mustStore(t, s, alice, m)
	}
	mustStore(t, s, bob, message("bob's", at(1, 0)))
	stored := wantOffline(t, s, alice, want)
	got, err := s.TakeOffline(t.Context(), alice, home)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		wantTime(t, "TakeOffline stamp", got[i].Stamp, want[i].Stamp)
	}
	if diff := cmp.Diff(stored, got); diff != "" {
		t.Errorf("TakeOffline mismatch (-stored +taken):\n%s", diff)
	}
	wantOffline(t, s, alice, nil)
	wantOffline(t, s, bob, []storage.OfflineMessage{message("bob's", at(1, 0))})
	if ms, err := s.TakeOffline(t.Context(), alice, home); err != nil || len(ms) != 0 {
		t.Errorf("second TakeOffline = %v, %v", ms, err)
	}
}

// testOfflineConcurrentTakes takes messages from many goroutines while
// others store them: each message is taken exactly once, and each taker
// gets its messages in order.
func testOfflineConcurrentTakes(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	const stores, takers = 100, 4
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		taken = map[string]int{}
		done  = make(chan struct{})
	)
	take := func() {
		ms, err := s.TakeOffline(t.Context(), alice, home)
		if err != nil {
			t.Errorf("TakeOffline: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for i, m := range ms {
			if i > 0 && m.ID <= ms[i-1].ID {
				t.Errorf("TakeOffline: ID %d after %d", m.ID, ms[i-1].ID)
			}
			taken[string(m.Stanza)]++
		}
	}
	for range takers {
		wg.Go(func() {
			for {
				select {
				case <-done:
					take()
					return
				default:
					take()
				}
			}
		})
	}
	for i := range stores {
		mustStore(t, s, alice, message(fmt.Sprint(i), at(1, 0)))
	}
	close(done)
	wg.Wait()
	take()
	if len(taken) != stores {
		t.Errorf("%d messages taken, want %d", len(taken), stores)
	}
	for m, n := range taken {
		if n != 1 {
			t.Errorf("%s taken %d times", m, n)
		}
	}
}

// TestXMLStore runs the conformance tests of storage.XMLStore; open is as
// for TestRosters.
func TestXMLStore(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"PutAndGet", testXMLPutAndGet},
		{"Invalid", testXMLInvalid},
		{"Separate", testXMLSeparate},
		{"MissingAccount", testXMLMissingAccount},
		{"AccountDeleted", testXMLAccountDeleted},
		{"CanceledContext", testXMLCanceledContext},
		{"Keys", testXMLKeys},
	})
}

func testXMLKeys(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	keys := func(local, prefix string) []string {
		t.Helper()
		ks, err := s.XMLKeys(t.Context(), local, home, prefix)
		if err != nil {
			t.Fatalf("XMLKeys(%s, %q): %v", local, prefix, err)
		}
		return ks
	}
	if ks := keys(alice, ""); len(ks) != 0 {
		t.Errorf("XMLKeys of an account without documents = %q", ks)
	}
	for _, k := range []string{bookmarkKey, vcardKey, "private:é b", "private:Z a", "privatex"} {
		mustPutXML(t, s, alice, k, "<x/>")
	}
	mustPutXML(t, s, bob, "private:bob b", "<x/>")
	if got, want := keys(alice, ""), []string{"private:Z a", bookmarkKey, "private:é b", "privatex", vcardKey}; !slices.Equal(got, want) {
		t.Errorf("XMLKeys(alice, \"\") = %q, want %q", got, want)
	}
	if got, want := keys(alice, "private:"), []string{"private:Z a", bookmarkKey, "private:é b"}; !slices.Equal(got, want) {
		t.Errorf("XMLKeys(alice, private:) = %q, want %q", got, want)
	}
	if got, want := keys(alice, "private:é"), []string{"private:é b"}; !slices.Equal(got, want) {
		t.Errorf("XMLKeys(alice, private:é) = %q, want %q", got, want)
	}
	if ks := keys("nobody", ""); len(ks) != 0 {
		t.Errorf("XMLKeys of no account = %q", ks)
	}
}

const (
	vcardKey    = "vcard-temp"
	bookmarkKey = "private:storage:bookmarks storage"
)

func mustPutXML(t *testing.T, s storage.Store, local, key, doc string) {
	t.Helper()
	if err := s.PutXML(t.Context(), local, home, key, []byte(doc)); err != nil {
		t.Fatalf("PutXML(%s, %s): %v", local, key, err)
	}
}

// wantXML checks a document; "" means none (ErrNotFound).
func wantXML(t *testing.T, s storage.Store, local, key, want string) {
	t.Helper()
	got, err := s.GetXML(t.Context(), local, home, key)
	if want == "" {
		wantErr(t, fmt.Sprintf("GetXML(%s, %s)", local, key), err, storage.ErrNotFound)
		return
	}
	if err != nil || string(got) != want {
		t.Errorf("GetXML(%s, %s) = %q, %v; want %q", local, key, got, err, want)
	}
}

func testXMLPutAndGet(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	wantXML(t, s, alice, vcardKey, "")
	vcard := `<vCard xmlns='vcard-temp'><FN>Alice Ångström</FN></vCard>`
	bookmarks := `<storage xmlns='storage:bookmarks'><conference jid='room@muc.example.org'/></storage>`
	mustPutXML(t, s, alice, vcardKey, vcard)
	mustPutXML(t, s, alice, bookmarkKey, bookmarks)
	wantXML(t, s, alice, vcardKey, vcard)
	wantXML(t, s, alice, bookmarkKey, bookmarks)
	wantXML(t, s, alice, "private:storage:rosternotes storage", "")

	vcard = `<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>`
	mustPutXML(t, s, alice, vcardKey, vcard)
	wantXML(t, s, alice, vcardKey, vcard)

	// An empty document deletes, also when there is none.
	for _, doc := range [][]byte{nil, {}} {
		if err := s.PutXML(t.Context(), alice, home, vcardKey, doc); err != nil {
			t.Errorf("PutXML(empty): %v", err)
		}
		wantXML(t, s, alice, vcardKey, "")
	}
	wantXML(t, s, alice, bookmarkKey, bookmarks)
}

func testXMLInvalid(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	err := s.PutXML(t.Context(), alice, home, "", []byte("<x/>"))
	wantErr(t, "PutXML(empty key)", err, storage.ErrInvalid)
	wantXML(t, s, alice, "", "")
}

func testXMLSeparate(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustPutXML(t, s, alice, vcardKey, "<vCard xmlns='vcard-temp'>alice</vCard>")
	mustPutXML(t, s, bob, vcardKey, "<vCard xmlns='vcard-temp'>bob</vCard>")
	mustPutXML(t, s, bob, vcardKey, "")
	wantXML(t, s, bob, vcardKey, "")
	wantXML(t, s, alice, vcardKey, "<vCard xmlns='vcard-temp'>alice</vCard>")
}

func testXMLMissingAccount(t *testing.T, s storage.Store) {
	mustCreate(t, s, bob, home, nil)
	err := s.PutXML(t.Context(), alice, home, vcardKey, []byte("<vCard xmlns='vcard-temp'/>"))
	wantErr(t, "PutXML(no account)", err, storage.ErrNotFound)
	err = s.PutXML(t.Context(), alice, home, vcardKey, nil)
	wantErr(t, "PutXML(no account, empty)", err, storage.ErrNotFound)
	wantXML(t, s, alice, vcardKey, "")
}

func testXMLAccountDeleted(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustPutXML(t, s, alice, vcardKey, "<vCard xmlns='vcard-temp'/>")
	mustPutXML(t, s, alice, bookmarkKey, "<storage xmlns='storage:bookmarks'/>")
	mustPutXML(t, s, bob, vcardKey, "<vCard xmlns='vcard-temp'/>")
	recreate(t, s, alice)
	wantXML(t, s, alice, vcardKey, "")
	wantXML(t, s, alice, bookmarkKey, "")
	wantXML(t, s, bob, vcardKey, "<vCard xmlns='vcard-temp'/>")
}

func testXMLCanceledContext(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustPutXML(t, s, alice, vcardKey, "<vCard xmlns='vcard-temp'/>")
	ctx := canceled(t)
	wantErr(t, "PutXML", s.PutXML(ctx, alice, home, vcardKey, []byte("<x/>")), context.Canceled)
	wantErr(t, "PutXML(empty)", s.PutXML(ctx, alice, home, vcardKey, nil), context.Canceled)
	_, err := s.GetXML(ctx, alice, home, vcardKey)
	wantErr(t, "GetXML", err, context.Canceled)
	wantXML(t, s, alice, vcardKey, "<vCard xmlns='vcard-temp'/>")
}

// TestBlocklists runs the conformance tests of storage.Blocklists; open is
// as for TestRosters.
func TestBlocklists(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"BlockAndUnblock", testBlockAndUnblock},
		{"Invalid", testBlockInvalid},
		{"Separate", testBlockSeparate},
		{"MissingAccount", testBlockMissingAccount},
		{"AccountDeleted", testBlockAccountDeleted},
		{"CanceledContext", testBlockCanceledContext},
	})
}

func mustBlock(t *testing.T, s storage.Store, local string, jids ...string) {
	t.Helper()
	if err := s.Block(t.Context(), local, home, jids); err != nil {
		t.Fatalf("Block(%s, %v): %v", local, jids, err)
	}
}

func wantBlocklist(t *testing.T, s storage.Store, local string, want ...string) {
	t.Helper()
	got, err := s.Blocklist(t.Context(), local, home)
	if err != nil {
		t.Fatalf("Blocklist(%s): %v", local, err)
	}
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Blocklist(%s) mismatch (-want +got):\n%s", local, diff)
	}
}

func testBlockAndUnblock(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	wantBlocklist(t, s, alice)
	mustBlock(t, s, alice, "romeo@example.net", "example.com", "tybalt@example.com/sword", "Zed@example.com", "zoë@example.com")
	wantBlocklist(t, s, alice, "Zed@example.com", "example.com", "romeo@example.net", "tybalt@example.com/sword", "zoë@example.com")

	mustBlock(t, s, alice, "example.com", "nurse@example.com", "nurse@example.com")
	mustBlock(t, s, alice)
	wantBlocklist(t, s, alice, "Zed@example.com", "example.com", "nurse@example.com", "romeo@example.net", "tybalt@example.com/sword", "zoë@example.com")

	if err := s.Unblock(t.Context(), alice, home, []string{"example.com", "tybalt@example.com", "absent@example.com", "Zed@example.com"}); err != nil {
		t.Fatal(err)
	}
	wantBlocklist(t, s, alice, "nurse@example.com", "romeo@example.net", "tybalt@example.com/sword", "zoë@example.com")

	for _, none := range [][]string{nil, {}} {
		if err := s.Unblock(t.Context(), alice, home, none); err != nil {
			t.Fatalf("Unblock(%#v): %v", none, err)
		}
		wantBlocklist(t, s, alice)
	}
}

func testBlockInvalid(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	err := s.Block(t.Context(), alice, home, []string{"romeo@example.net", ""})
	wantErr(t, "Block(empty JID)", err, storage.ErrInvalid)
	wantBlocklist(t, s, alice)
}

func testBlockSeparate(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustBlock(t, s, alice, "romeo@example.net", "example.com")
	mustBlock(t, s, bob, "romeo@example.net")
	if err := s.Unblock(t.Context(), bob, home, nil); err != nil {
		t.Fatal(err)
	}
	wantBlocklist(t, s, bob)
	wantBlocklist(t, s, alice, "example.com", "romeo@example.net")
}

func testBlockMissingAccount(t *testing.T, s storage.Store) {
	mustCreate(t, s, bob, home, nil)
	wantErr(t, "Block(no account)", s.Block(t.Context(), alice, home, []string{"romeo@example.net"}), storage.ErrNotFound)
	wantErr(t, "Block(no account, none)", s.Block(t.Context(), alice, home, nil), storage.ErrNotFound)
	wantErr(t, "Unblock(no account)", s.Unblock(t.Context(), alice, home, []string{"romeo@example.net"}), nil)
	wantErr(t, "Unblock(no account, all)", s.Unblock(t.Context(), alice, home, nil), nil)
	wantBlocklist(t, s, alice)
}

func testBlockAccountDeleted(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustBlock(t, s, alice, "romeo@example.net", "example.com")
	mustBlock(t, s, bob, "romeo@example.net")
	recreate(t, s, alice)
	wantBlocklist(t, s, alice)
	wantBlocklist(t, s, bob, "romeo@example.net")
}

func testBlockCanceledContext(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustBlock(t, s, alice, "romeo@example.net")
	ctx := canceled(t)
	wantErr(t, "Block", s.Block(ctx, alice, home, []string{"example.com"}), context.Canceled)
	wantErr(t, "Unblock", s.Unblock(ctx, alice, home, nil), context.Canceled)
	_, err := s.Blocklist(ctx, alice, home)
	wantErr(t, "Blocklist", err, context.Canceled)
	wantBlocklist(t, s, alice, "romeo@example.net")
}

// TestLastActivity runs the conformance tests of storage.LastActivity; open
// is as for TestRosters.
func TestLastActivity(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"SetAndGet", testLastSetAndGet},
		{"Separate", testLastSeparate},
		{"MissingAccount", testLastMissingAccount},
		{"AccountDeleted", testLastAccountDeleted},
		{"CanceledContext", testLastCanceledContext},
		{"Batch", testLastBatch},
	})
}

func testLastBatch(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustSetLast(t, s, bob, at(1, 0), "old")
	err := s.SetLastActivities(t.Context(), []storage.LastActivityRecord{
		{Local: alice, Domain: home, At: at(2, 5), Status: "a"},
		{Local: bob, Domain: home, At: at(3, 0)},
		{Local: "nobody", Domain: home, At: at(3, 0)}, // skipped
	})
	if err != nil {
		t.Fatalf("SetLastActivities: %v", err)
	}
	for _, w := range []struct {
		local, status string
		when          time.Time
	}{{alice, "a", at(2, 5)}, {bob, "", at(3, 0)}} {
		got, status, err := s.LastActivity(t.Context(), w.local, home)
		if err != nil || status != w.status {
			t.Errorf("LastActivity(%s) = %v, %q, %v", w.local, got, status, err)
		}
		wantTime(t, "LastActivity("+w.local+")", got, w.when)
	}
	if err := s.SetLastActivities(t.Context(), nil); err != nil {
		t.Errorf("SetLastActivities(none): %v", err)
	}
}

func mustSetLast(t *testing.T, s storage.Store, local string, when time.Time, status string) {
	t.Helper()
	if err := s.SetLastActivity(t.Context(), local, home, when, status); err != nil {
		t.Fatalf("SetLastActivity(%s): %v", local, err)
	}
}

// wantLast checks the last activity; a zero want means none (ErrNotFound).
func wantLast(t *testing.T, s storage.Store, local string, want time.Time, status string) {
	t.Helper()
	got, gotStatus, err := s.LastActivity(t.Context(), local, home)
	if want.IsZero() {
		wantErr(t, "LastActivity("+local+")", err, storage.ErrNotFound)
		return
	}
	if err != nil {
		t.Fatalf("LastActivity(%s): %v", local, err)
	}
	wantTime(t, "LastActivity("+local+")", got, want)
	if gotStatus != status {
		t.Errorf("LastActivity(%s) status = %q, want %q", local, gotStatus, status)
	}
}

func testLastSetAndGet(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	wantLast(t, s, alice, time.Time{}, "")
	mustSetLast(t, s, alice, at(1, 250), "Gone to the balcony")
	wantLast(t, s, alice, at(1, 250), "Gone to the balcony")
	mustSetLast(t, s, alice, at(2, 0), "")
	wantLast(t, s, alice, at(2, 0), "")
	// An earlier time replaces a later one: the caller decides.
	mustSetLast(t, s, alice, at(1, 1), "back in time ☺")
	wantLast(t, s, alice, at(1, 1), "back in time ☺")
}

func testLastSeparate(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustSetLast(t, s, alice, at(1, 0), "alice")
	wantLast(t, s, bob, time.Time{}, "")
	mustSetLast(t, s, bob, at(2, 0), "bob")
	wantLast(t, s, alice, at(1, 0), "alice")
	wantLast(t, s, bob, at(2, 0), "bob")
}

func testLastMissingAccount(t *testing.T, s storage.Store) {
	mustCreate(t, s, bob, home, nil)
	err := s.SetLastActivity(t.Context(), alice, home, at(1, 0), "")
	wantErr(t, "SetLastActivity(no account)", err, storage.ErrNotFound)
	wantLast(t, s, alice, time.Time{}, "")
}

func testLastAccountDeleted(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustSetLast(t, s, alice, at(1, 0), "alice")
	mustSetLast(t, s, bob, at(2, 0), "bob")
	recreate(t, s, alice)
	wantLast(t, s, alice, time.Time{}, "")
	wantLast(t, s, bob, at(2, 0), "bob")
}

func testLastCanceledContext(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustSetLast(t, s, alice, at(1, 0), "alice")
	ctx := canceled(t)
	wantErr(t, "SetLastActivity", s.SetLastActivity(ctx, alice, home, at(2, 0), "later"), context.Canceled)
	_, _, err := s.LastActivity(ctx, alice, home)
	wantErr(t, "LastActivity", err, context.Canceled)
	wantLast(t, s, alice, at(1, 0), "alice")
}
