package storagetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ode-xmpp/ode/internal/storage"
)

// TestPubSub runs the conformance tests of storage.PubSub. open must
// return a new, empty store for the test it is given and close it when
// that test ends (t.Cleanup).
func TestPubSub(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"Nodes", testPubSubNodes},
		{"NodeLimit", testPubSubNodeLimit},
		{"PublishAndItems", testPubSubPublish},
		{"Republish", testPubSubRepublish},
		{"MaxItems", testPubSubMaxItems},
		{"Configure", testPubSubConfigure},
		{"DeleteItemAndPurge", testPubSubDeleteItem},
		{"DeleteNode", testPubSubDeleteNode},
		{"NotFound", testPubSubNotFound},
		{"AccountDeleted", testPubSubAccountDeleted},
		{"ConcurrentPublish", testPubSubConcurrentPublish},
		{"CanceledContext", testPubSubCanceledContext},
	})
}

func psItem(id string, day int) storage.PubSubItem {
	return storage.PubSubItem{ID: id, Publisher: "alice@example.org/phone", Published: at(day, 7),
		Payload: []byte(`<geoloc xmlns="http://jabber.org/protocol/geoloc"><text>` + id + `</text></geoloc>`)}
}

func mustCreateNode(t *testing.T, s storage.Store, local, node string) storage.PubSubNode {
	t.Helper()
	n := storage.PubSubNode{Node: node, Config: []byte(`{"access_model":"presence"}`), Created: at(1, 3)}
	if err := s.CreatePubSubNode(t.Context(), local, home, n, 0); err != nil {
		t.Fatalf("CreatePubSubNode(%s %s): %v", local, node, err)
	}
	return n
}

func mustPublish(t *testing.T, s storage.Store, local, node string, it storage.PubSubItem, max int) []string {
	t.Helper()
	removed, err := s.PublishPubSubItem(t.Context(), local, home, node, it, max)
	if err != nil {
		t.Fatalf("PublishPubSubItem(%s %s %s): %v", local, node, it.ID, err)
	}
	return removed
}

func wantItems(t *testing.T, s storage.Store, local, node string, ids []string, max int, want ...storage.PubSubItem) {
	t.Helper()
	got, err := s.PubSubItems(t.Context(), local, home, node, ids, max)
	if err != nil {
		t.Fatalf("PubSubItems(%s %s %q %d): %v", local, node, ids, max, err)
	}
	for i := range got {
		if i < len(want) {
			wantTime(t, "Published", got[i].Published, want[i].Published)
			got[i].Published = want[i].Published
		}
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("PubSubItems(%s %s %q %d) (-want +got):\n%s", local, node, ids, max, diff)
	}
}

func wantNodes(t *testing.T, s storage.Store, local string, want ...storage.PubSubNode) {
	t.Helper()
	got, err := s.PubSubNodes(t.Context(), local, home)
	if err != nil {
		t.Fatalf("PubSubNodes(%s): %v", local, err)
	}
	for i := range got {
		if i < len(want) {
			wantTime(t, "Created", got[i].Created, want[i].Created)
			got[i].Created = want[i].Created
		}
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("PubSubNodes(%s) (-want +got):\n%s", local, diff)
	}
}

func testPubSubNodes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreateAliceBob(t, s)
	wantNodes(t, s, alice)
	b := mustCreateNode(t, s, alice, "urn:xmpp:b")
	a := mustCreateNode(t, s, alice, "urn:xmpp:a")
	other := mustCreateNode(t, s, bob, "urn:xmpp:a")
	wantNodes(t, s, alice, a, b)
	wantNodes(t, s, bob, other)
	got, err := s.PubSubNode(ctx, alice, home, "urn:xmpp:b")
	if err != nil {
		t.Fatalf("PubSubNode: %v", err)
	}
	wantTime(t, "Created", got.Created, b.Created)
	if got.Node != b.Node || string(got.Config) != string(b.Config) {
		t.Errorf("PubSubNode = %+v, want %+v", got, b)
	}
	err = s.CreatePubSubNode(ctx, alice, home, storage.PubSubNode{Node: "urn:xmpp:a", Config: []byte(`{}`), Created: at(2, 0)}, 0)
	wantErr(t, "CreatePubSubNode(existing)", err, storage.ErrExists)
	wantErr(t, "CreatePubSubNode(empty)", s.CreatePubSubNode(ctx, alice, home, storage.PubSubNode{Config: []byte(`{}`)}, 0), storage.ErrInvalid)
	wantErr(t, "CreatePubSubNode(no account)", s.CreatePubSubNode(ctx, "nobody", home, storage.PubSubNode{Node: "n"}, 0), storage.ErrNotFound)
	// The existing node was left as it was.
	wantNodes(t, s, alice, a, b)
	// Node names are compared byte for byte.
	A := mustCreateNode(t, s, alice, "urn:xmpp:A")
	wantNodes(t, s, alice, A, a, b)
}

func testPubSubNodeLimit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreateAliceBob(t, s)
	for i := range 3 {
		if err := s.CreatePubSubNode(ctx, alice, home, storage.PubSubNode{Node: fmt.Sprint("n", i), Config: []byte(`{}`), Created: at(1, 0)}, 3); err != nil {
			t.Fatalf("CreatePubSubNode %d: %v", i, err)
		}
	}
	err := s.CreatePubSubNode(ctx, alice, home, storage.PubSubNode{Node: "n3", Config: []byte(`{}`), Created: at(1, 0)}, 3)
	wantErr(t, "CreatePubSubNode past the limit", err, storage.ErrLimit)
	// Another account has its own count.
	if err := s.CreatePubSubNode(ctx, bob, home, storage.PubSubNode{Node: "n3", Config: []byte(`{}`), Created: at(1, 0)}, 3); err != nil {
		t.Errorf("CreatePubSubNode(bob): %v", err)
	}
	// Deleting a node makes room.
	if err := s.DeletePubSubNode(ctx, alice, home, "n0"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePubSubNode(ctx, alice, home, storage.PubSubNode{Node: "n3", Config: []byte(`{}`), Created: at(1, 0)}, 3); err != nil {
		t.Errorf("CreatePubSubNode after a delete: %v", err)
	}
}

func testPubSubPublish(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustCreateNode(t, s, alice, "geo")
	mustCreateNode(t, s, bob, "geo")
	wantItems(t, s, alice, "geo", nil, 0)
	i1, i2, i3 := psItem("1", 1), psItem("2", 2), psItem("3", 1) // seq orders, not the time
	i3.Payload = nil                                             // an item without a payload
	i3.Publisher = "alice@example.org"
	for _, it := range []storage.PubSubItem{i1, i2, i3} {
		if removed := mustPublish(t, s, alice, "geo", it, 0); len(removed) != 0 {
			t.Errorf("publish %s removed %q", it.ID, removed)
		}
	}
	mustPublish(t, s, bob, "geo", psItem("b", 1), 0)
	wantItems(t, s, alice, "geo", nil, 0, i3, i2, i1)
	wantItems(t, s, alice, "geo", nil, 2, i3, i2)
	wantItems(t, s, alice, "geo", []string{"1", "3", "missing"}, 0, i3, i1)
	wantItems(t, s, alice, "geo", []string{"1", "2", "3"}, 1, i3)
	wantItems(t, s, bob, "geo", nil, 0, psItem("b", 1))
	_, err := s.PublishPubSubItem(t.Context(), alice, home, "geo", storage.PubSubItem{Publisher: "x", Published: at(1, 0)}, 0)
	wantErr(t, "PublishPubSubItem(no id)", err, storage.ErrInvalid)
}

func testPubSubRepublish(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustCreateNode(t, s, alice, "geo")
	mustPublish(t, s, alice, "geo", psItem("1", 1), 0)
	mustPublish(t, s, alice, "geo", psItem("2", 2), 0)
	again := psItem("1", 3)
	again.Payload = []byte(`<geoloc xmlns="http://jabber.org/protocol/geoloc"><text>new</text></geoloc>`)
	again.Publisher = "alice@example.org/laptop"
	mustPublish(t, s, alice, "geo", again, 0)
	// The republished item replaced the first and is now the newest.
	wantItems(t, s, alice, "geo", nil, 0, again, psItem("2", 2))
}

func testPubSubMaxItems(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustCreateNode(t, s, alice, "geo")
	for i := 1; i <= 3; i++ {
		mustPublish(t, s, alice, "geo", psItem(fmt.Sprint(i), i), 0)
	}
	removed := mustPublish(t, s, alice, "geo", psItem("4", 4), 2)
	if diff := cmp.Diff([]string{"1", "2"}, removed, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	wantItems(t, s, alice, "geo", nil, 0, psItem("4", 4), psItem("3", 3))
	// Republishing the oldest keeps it and removes the other.
	removed = mustPublish(t, s, alice, "geo", psItem("3", 5), 1)
	if diff := cmp.Diff([]string{"4"}, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	wantItems(t, s, alice, "geo", nil, 0, psItem("3", 5))
}

func testPubSubConfigure(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreateAliceBob(t, s)
	n := mustCreateNode(t, s, alice, "geo")
	for i := 1; i <= 4; i++ {
		mustPublish(t, s, alice, "geo", psItem(fmt.Sprint(i), i), 0)
	}
	removed, err := s.ConfigurePubSubNode(ctx, alice, home, "geo", []byte(`{"access_model":"open"}`), 0)
	if err != nil || len(removed) != 0 {
		t.Fatalf("ConfigurePubSubNode = %q, %v", removed, err)
	}
	n.Config = []byte(`{"access_model":"open"}`)
	wantNodes(t, s, alice, n)
	wantItems(t, s, alice, "geo", nil, 0, psItem("4", 4), psItem("3", 3), psItem("2", 2), psItem("1", 1))
	removed, err = s.ConfigurePubSubNode(ctx, alice, home, "geo", []byte(`{"max_items":2}`), 2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1", "2"}, removed, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	wantItems(t, s, alice, "geo", nil, 0, psItem("4", 4), psItem("3", 3))
	_, err = s.ConfigurePubSubNode(ctx, alice, home, "missing", []byte(`{}`), 0)
	wantErr(t, "ConfigurePubSubNode(missing)", err, storage.ErrNotFound)
}

func testPubSubDeleteItem(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreateAliceBob(t, s)
	mustCreateNode(t, s, alice, "geo")
	mustCreateNode(t, s, alice, "mood")
	mustPublish(t, s, alice, "geo", psItem("1", 1), 0)
	mustPublish(t, s, alice, "geo", psItem("2", 2), 0)
	mustPublish(t, s, alice, "mood", psItem("1", 1), 0)
	if err := s.DeletePubSubItem(ctx, alice, home, "geo", "1"); err != nil {
		t.Fatalf("DeletePubSubItem: %v", err)
	}
	wantErr(t, "DeletePubSubItem(again)", s.DeletePubSubItem(ctx, alice, home, "geo", "1"), storage.ErrNotFound)
	wantItems(t, s, alice, "geo", nil, 0, psItem("2", 2))
	wantItems(t, s, alice, "mood", nil, 0, psItem("1", 1))
	if err := s.PurgePubSubNode(ctx, alice, home, "geo"); err != nil {
		t.Fatalf("PurgePubSubNode: %v", err)
	}
	wantItems(t, s, alice, "geo", nil, 0)
	wantItems(t, s, alice, "mood", nil, 0, psItem("1", 1))
	// A purged node still exists.
	mustPublish(t, s, alice, "geo", psItem("3", 3), 0)
	wantItems(t, s, alice, "geo", nil, 0, psItem("3", 3))
}

func testPubSubDeleteNode(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreateAliceBob(t, s)
	mustCreateNode(t, s, alice, "geo")
	mood := mustCreateNode(t, s, alice, "mood")
	mustPublish(t, s, alice, "geo", psItem("1", 1), 0)
	if err := s.DeletePubSubNode(ctx, alice, home, "geo"); err != nil {
		t.Fatalf("DeletePubSubNode: %v", err)
	}
	wantErr(t, "DeletePubSubNode(again)", s.DeletePubSubNode(ctx, alice, home, "geo"), storage.ErrNotFound)
	wantNodes(t, s, alice, mood)
	// A node created again under the name starts empty.
	mustCreateNode(t, s, alice, "geo")
	wantItems(t, s, alice, "geo", nil, 0)
}

func testPubSubNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreateAliceBob(t, s)
	mustCreateNode(t, s, bob, "geo") // bob's node is not alice's
	_, err := s.PubSubNode(ctx, alice, home, "geo")
	wantErr(t, "PubSubNode", err, storage.ErrNotFound)
	_, err = s.PubSubItems(ctx, alice, home, "geo", nil, 0)
	wantErr(t, "PubSubItems", err, storage.ErrNotFound)
	_, err = s.PublishPubSubItem(ctx, alice, home, "geo", psItem("1", 1), 0)
	wantErr(t, "PublishPubSubItem", err, storage.ErrNotFound)
	wantErr(t, "DeletePubSubItem", s.DeletePubSubItem(ctx, alice, home, "geo", "1"), storage.ErrNotFound)
	wantErr(t, "PurgePubSubNode", s.PurgePubSubNode(ctx, alice, home, "geo"), storage.ErrNotFound)
	wantErr(t, "DeletePubSubNode", s.DeletePubSubNode(ctx, alice, home, "geo"), storage.ErrNotFound)
	_, err = s.PubSubNode(ctx, "nobody", home, "geo")
	wantErr(t, "PubSubNode(no account)", err, storage.ErrNotFound)
	nodes, err := s.PubSubNodes(ctx, "nobody", home)
	if err != nil || len(nodes) != 0 {
		t.Errorf("PubSubNodes(no account) = %v, %v", nodes, err)
	}
	wantItems(t, s, bob, "geo", nil, 0)
}

func testPubSubAccountDeleted(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustCreateNode(t, s, alice, "geo")
	mustPublish(t, s, alice, "geo", psItem("1", 1), 0)
	bobs := mustCreateNode(t, s, bob, "geo")
	mustPublish(t, s, bob, "geo", psItem("b", 1), 0)
	recreate(t, s, alice)
	wantNodes(t, s, alice)
	_, err := s.PubSubItems(t.Context(), alice, home, "geo", nil, 0)
	wantErr(t, "PubSubItems after the account was deleted", err, storage.ErrNotFound)
	// A new node of the new account has no items of the old one.
	mustCreateNode(t, s, alice, "geo")
	wantItems(t, s, alice, "geo", nil, 0)
	wantNodes(t, s, bob, bobs)
	wantItems(t, s, bob, "geo", nil, 0, psItem("b", 1))
}

// testPubSubConcurrentPublish publishes from several goroutines to one
// node with max_items: every publish commits and the newest max stay.
func testPubSubConcurrentPublish(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustCreateNode(t, s, alice, "geo")
	const n, max = 16, 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.PublishPubSubItem(t.Context(), alice, home, "geo", psItem(fmt.Sprint(i), 1), max)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent publish: %v", err)
		}
	}
	got, err := s.PubSubItems(t.Context(), alice, home, "geo", nil, 0)
	if err != nil || len(got) != max {
		t.Fatalf("PubSubItems = %d items, %v; want %d", len(got), err, max)
	}
}

func testPubSubCanceledContext(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustCreateNode(t, s, alice, "geo")
	ctx := canceled(t)
	if err := s.CreatePubSubNode(ctx, alice, home, storage.PubSubNode{Node: "x", Config: []byte(`{}`)}, 0); err == nil {
		t.Error("CreatePubSubNode with a canceled context succeeded")
	}
	if _, err := s.PublishPubSubItem(ctx, alice, home, "geo", psItem("1", 1), 0); err == nil {
		t.Error("PublishPubSubItem with a canceled context succeeded")
	}
	if _, err := s.PubSubItems(ctx, alice, home, "geo", nil, 0); err == nil {
		t.Error("PubSubItems with a canceled context succeeded")
	}
	if _, err := s.PubSubNodes(ctx, alice, home); err == nil {
		t.Error("PubSubNodes with a canceled context succeeded")
	}
	if err := s.DeletePubSubNode(ctx, alice, home, "geo"); err == nil {
		t.Error("DeletePubSubNode with a canceled context succeeded")
	}
	wantItems(t, s, alice, "geo", nil, 0)
}
