package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ode-xmpp/ode/internal/storage"
)

// TestUploads runs the conformance tests of storage.Uploads. open must
// return a new, empty store for the test it is given and close it when
// that test ends (t.Cleanup).
func TestUploads(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"ReserveAndGet", testUploadReserveAndGet},
		{"Invalid", testUploadInvalid},
		{"MarkStored", testUploadMarkStored},
		{"AccountQuota", testUploadAccountQuota},
		{"TotalQuota", testUploadTotalQuota},
		{"Delete", testUploadDelete},
		{"AccountDeleted", testUploadAccountDeleted},
		{"CanceledContext", testUploadCanceledContext},
	})
}

func upload(id, local string, size int64, created time.Time) storage.Upload {
	return storage.Upload{ID: id, Local: local, Domain: home, Filename: id + ".jpg", ContentType: "image/jpeg", Size: size, Created: created}
}

func mustReserve(t *testing.T, s storage.Store, u storage.Upload, q storage.UploadQuota) {
	t.Helper()
	if err := s.ReserveUpload(t.Context(), u, q); err != nil {
		t.Fatalf("ReserveUpload(%s): %v", u.ID, err)
	}
}

// wantUpload checks slot id; a zero want means none (ErrNotFound).
func wantUpload(t *testing.T, s storage.Store, id string, want storage.Upload) {
	t.Helper()
	got, err := s.Upload(t.Context(), id)
	if want.ID == "" {
		wantErr(t, "Upload("+id+")", err, storage.ErrNotFound)
		return
	}
	if err != nil {
		t.Fatalf("Upload(%s): %v", id, err)
	}
	wantTime(t, "Upload("+id+").Created", got.Created, want.Created)
	got.Created = want.Created
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Upload(%s) (-want +got):\n%s", id, diff)
	}
}

func testUploadReserveAndGet(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	a := upload("a1", alice, 1000, at(1, 250))
	a.Stored = true // ignored: a new slot is not stored
	mustReserve(t, s, a, storage.UploadQuota{})
	a.Stored = false
	wantUpload(t, s, "a1", a)
	b := storage.Upload{ID: "b1", Local: bob, Domain: home, Filename: "ünïcode ☺.txt", Created: at(2, 0)}
	mustReserve(t, s, b, storage.UploadQuota{})
	wantUpload(t, s, "b1", b)
	wantUpload(t, s, "nope", storage.Upload{})
	err := s.ReserveUpload(t.Context(), upload("a1", bob, 1, at(3, 0)), storage.UploadQuota{})
	wantErr(t, "ReserveUpload(same id)", err, storage.ErrExists)
	wantUpload(t, s, "a1", a)
	err = s.ReserveUpload(t.Context(), upload("c1", "carol", 1, at(3, 0)), storage.UploadQuota{})
	wantErr(t, "ReserveUpload(no account)", err, storage.ErrNotFound)
	wantUpload(t, s, "c1", storage.Upload{})
}

func testUploadInvalid(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	for _, u := range []storage.Upload{upload("", alice, 1, at(1, 0)), upload("neg", alice, -1, at(1, 0))} {
		err := s.ReserveUpload(t.Context(), u, storage.UploadQuota{})
		wantErr(t, "ReserveUpload(id "+u.ID+")", err, storage.ErrInvalid)
	}
	wantUpload(t, s, "neg", storage.Upload{})
}

func testUploadMarkStored(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	a := upload("a1", alice, 10, at(1, 0))
	mustReserve(t, s, a, storage.UploadQuota{})
	if err := s.MarkUploadStored(t.Context(), "a1"); err != nil {
		t.Fatalf("MarkUploadStored: %v", err)
	}
	a.Stored = true
	wantUpload(t, s, "a1", a)
	wantErr(t, "second MarkUploadStored", s.MarkUploadStored(t.Context(), "a1"), storage.ErrExists)
	wantErr(t, "MarkUploadStored(none)", s.MarkUploadStored(t.Context(), "nope"), storage.ErrNotFound)
}

// wantQuota checks that err is a *QuotaError for the total or the account
// quota with the given Frees.
func wantQuota(t *testing.T, what string, err error, total bool, frees time.Time) {
	t.Helper()
	var qe *storage.QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, storage.ErrLimit) {
		t.Fatalf("%s = %v, want a QuotaError wrapping ErrLimit", what, err)
	}
	if qe.Total != total || !qe.Frees.Equal(frees) {
		t.Errorf("%s = %+v, want Total %v, Frees %v", what, qe, total, frees)
	}
}

func testUploadAccountQuota(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	q := storage.UploadQuota{Since: at(2, 0), Account: 100}
	mustReserve(t, s, upload("old", alice, 100, at(1, 0)), q) // before the window
	mustReserve(t, s, upload("a1", alice, 30, at(2, 0)), q)   // at Since: in the window
	mustReserve(t, s, upload("a2", alice, 30, at(3, 0)), q)
	mustReserve(t, s, upload("a3", alice, 40, at(4, 0)), q) // exactly full
	mustReserve(t, s, upload("b1", bob, 100, at(4, 0)), q)  // bob has his own
	err := s.ReserveUpload(t.Context(), upload("a4", alice, 50, at(5, 0)), q)
	wantQuota(t, "ReserveUpload(a4: 50 bytes over)", err, false, at(3, 0)) // a1 and a2 must leave
	err = s.ReserveUpload(t.Context(), upload("a5", alice, 1, at(5, 0)), q)
	wantQuota(t, "ReserveUpload(a5: 1 byte over)", err, false, at(2, 0))
	err = s.ReserveUpload(t.Context(), upload("a6", alice, 101, at(5, 0)), q)
	wantQuota(t, "ReserveUpload(a6: larger than the quota)", err, false, time.Time{})
	wantUpload(t, s, "a4", storage.Upload{})
	// Empty files always fit; a later window makes room.
	mustReserve(t, s, upload("empty", alice, 0, at(5, 0)), q)
	mustReserve(t, s, upload("a7", alice, 60, at(5, 0)), storage.UploadQuota{Since: at(3, 1), Account: 100})
}

func testUploadTotalQuota(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	q := storage.UploadQuota{Since: at(1, 0), Account: 1000, Total: 100}
	mustReserve(t, s, upload("a1", alice, 50, at(1, 0)), q)
	mustReserve(t, s, upload("b1", bob, 50, at(2, 0)), q)
	err := s.ReserveUpload(t.Context(), upload("a2", alice, 10, at(3, 0)), q)
	wantQuota(t, "ReserveUpload(over the total)", err, true, at(1, 0))
	err = s.ReserveUpload(t.Context(), upload("a3", alice, 60, at(3, 0)), q)
	wantQuota(t, "ReserveUpload(over the total)", err, true, at(2, 0))
	if _, err := s.DeleteUploads(t.Context(), at(2, 0), time.Time{}); err != nil {
		t.Fatal(err)
	}
	mustReserve(t, s, upload("a2", alice, 50, at(3, 0)), q)
}

func testUploadDelete(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	for _, u := range []storage.Upload{
		upload("old-stored", alice, 1, at(1, 0)),
		upload("new-stored", alice, 1, at(3, 0)),
		upload("old-unstored", bob, 1, at(2, 0)),
		upload("new-unstored", bob, 1, at(4, 0)),
	} {
		mustReserve(t, s, u, storage.UploadQuota{})
	}
	for _, id := range []string{"old-stored", "new-stored"} {
		if err := s.MarkUploadStored(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteUploads(t.Context(), at(2, 0), at(3, 0))
	if err != nil || n != 2 {
		t.Fatalf("DeleteUploads = %d, %v; want 2", n, err)
	}
	wantUpload(t, s, "old-stored", storage.Upload{})
	wantUpload(t, s, "old-unstored", storage.Upload{})
	want := upload("new-stored", alice, 1, at(3, 0))
	want.Stored = true
	wantUpload(t, s, "new-stored", want)
	wantUpload(t, s, "new-unstored", upload("new-unstored", bob, 1, at(4, 0)))
	if n, err := s.DeleteUploads(t.Context(), time.Time{}, time.Time{}); err != nil || n != 0 {
		t.Errorf("DeleteUploads(zero times) = %d, %v; want 0", n, err)
	}
}

func testUploadAccountDeleted(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustReserve(t, s, upload("a1", alice, 100, at(1, 0)), storage.UploadQuota{})
	mustReserve(t, s, upload("b1", bob, 1, at(1, 0)), storage.UploadQuota{})
	recreate(t, s, alice)
	wantUpload(t, s, "a1", storage.Upload{})
	wantUpload(t, s, "b1", upload("b1", bob, 1, at(1, 0)))
	// The recreated account starts with an empty quota.
	mustReserve(t, s, upload("a2", alice, 100, at(1, 0)), storage.UploadQuota{Since: at(1, 0), Account: 100})
}

func testUploadCanceledContext(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	ctx := canceled(t)
	wantErr(t, "ReserveUpload", s.ReserveUpload(ctx, upload("a1", alice, 1, at(1, 0)), storage.UploadQuota{}), context.Canceled)
	_, err := s.Upload(ctx, "a1")
	wantErr(t, "Upload", err, context.Canceled)
	wantErr(t, "MarkUploadStored", s.MarkUploadStored(ctx, "a1"), context.Canceled)
	_, err = s.DeleteUploads(ctx, at(2, 0), at(2, 0))
	wantErr(t, "DeleteUploads", err, context.Canceled)
	wantUpload(t, s, "a1", storage.Upload{})
}
