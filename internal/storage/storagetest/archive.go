package storagetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ode-xmpp/ode/internal/storage"
)

// TestArchive runs the conformance tests of storage.Archive. open must
// return a new, empty store for the test it is given and close it when
// that test ends (t.Cleanup).
func TestArchive(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"AppendAndQuery", testArchiveAppendAndQuery},
		{"Skipped", testArchiveSkipped},
		{"Filters", testArchiveFilters},
		{"Paging", testArchivePaging},
		{"UnknownIDs", testArchiveUnknownIDs},
		{"Bounds", testArchiveBounds},
		{"DeleteArchived", testArchiveDeleteArchived},
		{"AccountDeleted", testArchiveAccountDeleted},
		{"CanceledContext", testArchiveCanceledContext},
	})
}

// archived returns message i of local's archive: id "m<i>" (two digits,
// so ids sort as i), stamped i minutes after at(1, 0), with with (a bare
// JID, or bare/resource).
func archived(local string, i int, with string, outgoing bool) storage.ArchivedMessage {
	bare, res, _ := cutResource(with)
	return storage.ArchivedMessage{
		Local: local, Domain: home,
		ID:   fmt.Sprintf("m%02d", i),
		With: bare, WithResource: res,
		Stamp:    at(1, 0).Add(time.Duration(i) * time.Minute),
		Outgoing: outgoing,
		Stanza:   fmt.Appendf(nil, "<message><body>%d ☺</body></message>", i),
	}
}

func cutResource(j string) (bare, res string, ok bool) {
	for i := range len(j) {
		if j[i] == '/' {
			return j[:i], j[i+1:], true
		}
	}
	return j, "", false
}

func mustAppend(t *testing.T, s storage.Store, want int, msgs ...storage.ArchivedMessage) {
	t.Helper()
	n, err := s.AppendArchive(t.Context(), msgs)
	if err != nil || n != want {
		t.Fatalf("AppendArchive(%d messages) = %d, %v; want %d", len(msgs), n, err, want)
	}
}

// ids returns the ids of a page's messages.
func ids(p storage.ArchivePage) []string {
	out := []string{}
	for _, m := range p.Messages {
		out = append(out, m.ID)
	}
	return out
}

func wantPage(t *testing.T, s storage.Store, local string, q storage.ArchiveQuery, wantIDs []string, complete bool) storage.ArchivePage {
	t.Helper()
	p, err := s.QueryArchive(t.Context(), local, home, q)
	if err != nil {
		t.Fatalf("QueryArchive(%s, %+v): %v", local, q, err)
	}
	if wantIDs == nil {
		wantIDs = []string{}
	}
	if got := ids(p); !slices.Equal(got, wantIDs) || p.Complete != complete {
		t.Errorf("QueryArchive(%s, %+v) = %q complete %v, want %q complete %v", local, q, got, p.Complete, wantIDs, complete)
	}
	return p
}

// fill appends to alice's archive n messages, alternating between
// bob@example.org/phone (received) and carol@example.com (sent).
func fill(t *testing.T, s storage.Store, n int) []storage.ArchivedMessage {
	t.Helper()
	var msgs []storage.ArchivedMessage
	for i := range n {
		if i%2 == 0 {
			msgs = append(msgs, archived(alice, i, "bob@example.org/phone", false))
		} else {
			msgs = append(msgs, archived(alice, i, "carol@example.com", true))
		}
	}
	mustAppend(t, s, n, msgs...)
	return msgs
}

func idList(is ...int) []string {
	out := []string{}
	for _, i := range is {
		out = append(out, fmt.Sprintf("m%02d", i))
	}
	return out
}

func testArchiveAppendAndQuery(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	want := fill(t, s, 3)
	mustAppend(t, s, 1, archived(bob, 0, "alice@example.org/home", true))
	p := wantPage(t, s, alice, storage.ArchiveQuery{Max: 10}, idList(0, 1, 2), true)
	for i := range p.Messages {
		wantTime(t, "Stamp", p.Messages[i].Stamp, want[i].Stamp)
		p.Messages[i].Stamp = want[i].Stamp
	}
	if diff := cmp.Diff(want, p.Messages); diff != "" {
		t.Errorf("QueryArchive (-want +got):\n%s", diff)
	}
	wantPage(t, s, bob, storage.ArchiveQuery{Max: 10}, idList(0), true)
	wantPage(t, s, "nobody", storage.ArchiveQuery{Max: 10}, nil, true)
	// Appending in several batches keeps the id order.
	mustAppend(t, s, 1, archived(alice, 5, "bob@example.org", false))
	mustAppend(t, s, 1, archived(alice, 4, "bob@example.org", false))
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 10}, idList(0, 1, 2, 4, 5), true)
}

func testArchiveSkipped(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustAppend(t, s, 1, archived(alice, 1, "bob@example.org", false))
	// An id already in alice's archive, an account that does not exist:
	// skipped; the same id in bob's archive is stored.
	dup := archived(alice, 1, "carol@example.com", true)
	mustAppend(t, s, 2, dup, archived("nobody", 2, "bob@example.org", false), archived(bob, 1, "alice@example.org", true), archived(alice, 3, "x@example.com", false))
	p := wantPage(t, s, alice, storage.ArchiveQuery{Max: 10}, idList(1, 3), true)
	if p.Messages[0].With != "bob@example.org" {
		t.Errorf("a duplicate id replaced the first message: %+v", p.Messages[0])
	}
	wantPage(t, s, bob, storage.ArchiveQuery{Max: 10}, idList(1), true)
	mustAppend(t, s, 0)
}

func testArchiveFilters(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	fill(t, s, 10)
	mustAppend(t, s, 1, archived(alice, 10, "bob@example.org/laptop", true))
	even := idList(0, 2, 4, 6, 8)
	for _, tt := range []struct {
		name string
		q    storage.ArchiveQuery
		want []string
	}{
		{"with bare", storage.ArchiveQuery{With: "bob@example.org"}, append(slices.Clone(even), "m10")},
		{"with full", storage.ArchiveQuery{With: "bob@example.org", WithResource: "phone"}, even},
		{"with other", storage.ArchiveQuery{With: "carol@example.com"}, idList(1, 3, 5, 7, 9)},
		{"with nobody", storage.ArchiveQuery{With: "dave@example.com"}, nil},
		{"resource alone ignored", storage.ArchiveQuery{WithResource: "phone"}, idList(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)},
		{"start inclusive", storage.ArchiveQuery{Start: archived(alice, 7, "", false).Stamp}, idList(7, 8, 9, 10)},
		{"end inclusive", storage.ArchiveQuery{End: archived(alice, 2, "", false).Stamp}, idList(0, 1, 2)},
		{"start and end", storage.ArchiveQuery{Start: archived(alice, 3, "", false).Stamp.Add(-time.Second), End: archived(alice, 5, "", false).Stamp.Add(time.Second)}, idList(3, 4, 5)},
		{"after", storage.ArchiveQuery{AfterID: "m07"}, idList(8, 9, 10)},
		{"before", storage.ArchiveQuery{BeforeID: "m02"}, idList(0, 1)},
		{"between", storage.ArchiveQuery{AfterID: "m02", BeforeID: "m06"}, idList(3, 4, 5)},
		{"ids", storage.ArchiveQuery{IDs: idList(9, 3, 3)}, idList(3, 9)},
		{"ids and with", storage.ArchiveQuery{IDs: idList(9, 4), With: "carol@example.com"}, idList(9)},
		{"with and after", storage.ArchiveQuery{With: "carol@example.com", AfterID: "m04"}, idList(5, 7, 9)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Max = 100
			wantPage(t, s, alice, tt.q, tt.want, true)
		})
	}
}

func testArchivePaging(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	fill(t, s, 10)
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 4}, idList(0, 1, 2, 3), false)
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 4, AfterID: "m03"}, idList(4, 5, 6, 7), false)
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 4, AfterID: "m07"}, idList(8, 9), true)
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 2, AfterID: "m07"}, idList(8, 9), true)
	// Backwards from the end.
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 4, Last: true}, idList(6, 7, 8, 9), false)
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 4, Last: true, BeforeID: "m06"}, idList(2, 3, 4, 5), false)
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 4, Last: true, BeforeID: "m02"}, idList(0, 1), true)
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 4, Last: true, With: "carol@example.com"}, idList(3, 5, 7, 9), false)
	// Max 0 tells only whether anything matches.
	wantPage(t, s, alice, storage.ArchiveQuery{}, nil, false)
	wantPage(t, s, alice, storage.ArchiveQuery{AfterID: "m09"}, nil, true)
}

func testArchiveUnknownIDs(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	fill(t, s, 3)
	mustAppend(t, s, 1, archived(bob, 7, "alice@example.org", false))
	for _, q := range []storage.ArchiveQuery{
		{AfterID: "m07"}, {BeforeID: "nope"}, {IDs: idList(1, 7)}, {AfterID: "m01", BeforeID: "m07"},
	} {
		q.Max = 10
		_, err := s.QueryArchive(t.Context(), alice, home, q)
		wantErr(t, fmt.Sprintf("QueryArchive(%+v)", q), err, storage.ErrNotFound)
	}
	_, err := s.QueryArchive(t.Context(), "nobody", home, storage.ArchiveQuery{AfterID: "m01", Max: 1})
	wantErr(t, "QueryArchive(nobody, after)", err, storage.ErrNotFound)
}

func testArchiveBounds(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	_, _, err := s.ArchiveBounds(t.Context(), alice, home)
	wantErr(t, "ArchiveBounds(empty)", err, storage.ErrNotFound)
	_, _, err = s.ArchiveBounds(t.Context(), "nobody", home)
	wantErr(t, "ArchiveBounds(nobody)", err, storage.ErrNotFound)
	msgs := fill(t, s, 4)
	first, last, err := s.ArchiveBounds(t.Context(), alice, home)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got, want storage.ArchivedMessage
	}{{first, msgs[0]}, {last, msgs[3]}} {
		wantTime(t, "bound", c.got.Stamp, c.want.Stamp)
		c.want.Stamp, c.want.Stanza = c.got.Stamp, nil
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("ArchiveBounds (-want +got):\n%s", diff)
		}
	}
}

func testArchiveDeleteArchived(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	fill(t, s, 6)
	mustAppend(t, s, 2, archived(bob, 1, "alice@example.org", true), archived(bob, 4, "alice@example.org", false))
	n, err := s.DeleteArchived(t.Context(), archived(alice, 3, "", false).Stamp)
	if err != nil || n != 4 {
		t.Fatalf("DeleteArchived = %d, %v; want 4 (m00-m02 of alice, m01 of bob)", n, err)
	}
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 10}, idList(3, 4, 5), true)
	wantPage(t, s, bob, storage.ArchiveQuery{Max: 10}, idList(4), true)
	// Deleted ids are unknown now.
	_, err = s.QueryArchive(t.Context(), alice, home, storage.ArchiveQuery{AfterID: "m01", Max: 1})
	wantErr(t, "QueryArchive(after a deleted id)", err, storage.ErrNotFound)
}

func testArchiveAccountDeleted(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	fill(t, s, 3)
	mustAppend(t, s, 1, archived(bob, 1, "alice@example.org", true))
	recreate(t, s, alice)
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 10}, nil, true)
	wantPage(t, s, bob, storage.ArchiveQuery{Max: 10}, idList(1), true)
	_, _, err := s.ArchiveBounds(t.Context(), alice, home)
	wantErr(t, "ArchiveBounds(recreated)", err, storage.ErrNotFound)
}

func testArchiveCanceledContext(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	ctx := canceled(t)
	_, err := s.AppendArchive(ctx, []storage.ArchivedMessage{archived(alice, 1, "bob@example.org", false)})
	wantErr(t, "AppendArchive", err, context.Canceled)
	_, err = s.QueryArchive(ctx, alice, home, storage.ArchiveQuery{Max: 1})
	wantErr(t, "QueryArchive", err, context.Canceled)
	_, _, err = s.ArchiveBounds(ctx, alice, home)
	wantErr(t, "ArchiveBounds", err, context.Canceled)
	_, err = s.DeleteArchived(ctx, at(9, 0))
	wantErr(t, "DeleteArchived", err, context.Canceled)
	wantPage(t, s, alice, storage.ArchiveQuery{Max: 10}, nil, true)
}
