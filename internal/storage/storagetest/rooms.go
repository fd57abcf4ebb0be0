package storagetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ode-xmpp/ode/internal/storage"
)

// TestRooms runs the conformance tests of storage.Rooms. open must return
// a new, empty store for the test it is given and close it when that test
// ends (t.Cleanup).
func TestRooms(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"PutAndList", testRoomsPutAndList},
		{"Affiliations", testRoomAffiliations},
		{"Delete", testRoomDelete},
		{"Invalid", testRoomInvalid},
		{"CanceledContext", testRoomCanceledContext},
	})
}

func wantRooms(t *testing.T, s storage.Store, service string, want ...storage.Room) {
	t.Helper()
	got, err := s.Rooms(t.Context(), service)
	if err != nil {
		t.Fatalf("Rooms(%s): %v", service, err)
	}
	for i := range got {
		if i < len(want) {
			wantTime(t, "Created", got[i].Created, want[i].Created)
			got[i].Created = want[i].Created
		}
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Rooms(%s) (-want +got):\n%s", service, diff)
	}
}

func mustPutRoom(t *testing.T, s storage.Store, r storage.Room) {
	t.Helper()
	if err := s.PutRoom(t.Context(), r); err != nil {
		t.Fatalf("PutRoom(%s): %v", r.JID, err)
	}
}

func testRoomsPutAndList(t *testing.T, s storage.Store) {
	wantRooms(t, s, "conference.example.org")
	b := storage.Room{JID: "b@conference.example.org", Config: []byte(`{"name":"B"}`), Created: at(2, 0)}
	a := storage.Room{JID: "a@conference.example.org", Config: []byte(`{}`), Subject: []byte(`<message/>`), Created: at(1, 5)}
	other := storage.Room{JID: "a@muc.example.net", Config: []byte(`{}`), Created: at(1, 0)}
	mustPutRoom(t, s, b)
	mustPutRoom(t, s, a)
	mustPutRoom(t, s, other)
	wantRooms(t, s, "conference.example.org", a, b)
	wantRooms(t, s, "muc.example.net", other)
	// An update changes config and subject, not the creation time.
	b2 := b
	b2.Config, b2.Subject, b2.Created = []byte(`{"name":"B2"}`), []byte(`<message><subject>x</subject></message>`), at(9, 0)
	mustPutRoom(t, s, b2)
	b2.Created = b.Created
	wantRooms(t, s, "conference.example.org", a, b2)
}

func testRoomAffiliations(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := storage.Room{JID: "r@conference.example.org", Config: []byte(`{}`), Created: at(1, 0)}
	mustPutRoom(t, s, r)
	for jid, aff := range map[string]string{"alice@example.org": "owner", "bob@example.org": "member", "eve@example.net": "outcast"} {
		if err := s.SetRoomAffiliation(ctx, r.JID, jid, aff); err != nil {
			t.Fatalf("SetRoomAffiliation(%s): %v", jid, err)
		}
	}
	if err := s.SetRoomAffiliation(ctx, r.JID, "bob@example.org", "admin"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoomAffiliation(ctx, r.JID, "eve@example.net", ""); err != nil {
		t.Fatal(err)
	}
	// PutRoom leaves the affiliations alone.
	mustPutRoom(t, s, storage.Room{JID: r.JID, Config: []byte(`{"x":1}`), Created: r.Created, Affiliations: map[string]string{"z@example.org": "owner"}})
	r.Config = []byte(`{"x":1}`)
	r.Affiliations = map[string]string{"alice@example.org": "owner", "bob@example.org": "admin"}
	wantRooms(t, s, "conference.example.org", r)
	err := s.SetRoomAffiliation(ctx, "missing@conference.example.org", "alice@example.org", "owner")
	wantErr(t, "SetRoomAffiliation(missing room)", err, storage.ErrNotFound)
}

func testRoomDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := storage.Room{JID: "r@conference.example.org", Config: []byte(`{}`), Created: at(1, 0)}
	mustPutRoom(t, s, r)
	if err := s.SetRoomAffiliation(ctx, r.JID, "alice@example.org", "owner"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoom(ctx, r.JID); err != nil {
		t.Fatal(err)
	}
	wantRooms(t, s, "conference.example.org")
	if err := s.DeleteRoom(ctx, r.JID); err != nil {
		t.Errorf("DeleteRoom of a room not stored: %v", err)
	}
	// Recreated: no affiliation comes back.
	mustPutRoom(t, s, r)
	wantRooms(t, s, "conference.example.org", r)
}

func testRoomInvalid(t *testing.T, s storage.Store) {
	for _, j := range []string{"", "conference.example.org", "@conference.example.org", "r@"} {
		err := s.PutRoom(t.Context(), storage.Room{JID: j, Config: []byte(`{}`)})
		wantErr(t, "PutRoom("+j+")", err, storage.ErrInvalid)
	}
}

func testRoomCanceledContext(t *testing.T, s storage.Store) {
	ctx := canceled(t)
	if err := s.PutRoom(ctx, storage.Room{JID: "r@c.example.org", Config: []byte(`{}`)}); err == nil {
		t.Error("PutRoom with a canceled context succeeded")
	}
	if _, err := s.Rooms(ctx, "c.example.org"); err == nil {
		t.Error("Rooms with a canceled context succeeded")
	}
	if err := s.DeleteRoom(ctx, "r@c.example.org"); err == nil {
		t.Error("DeleteRoom with a canceled context succeeded")
	}
}
