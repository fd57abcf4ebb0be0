package storagetest

import (
	"fmt"
	"slices"
	"strings"
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

// TestRoomArchive runs the conformance tests of storage.RoomArchive.
// open must return a new, empty store for the test it is given and close
// it when that test ends (t.Cleanup).
func TestRoomArchive(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"AppendAndQuery", testRoomArchiveAppendAndQuery},
		{"GoesWithTheRoom", testRoomArchiveGoesWithTheRoom},
	})
}

func roomMsg(room string, i int, nick string) storage.ArchivedMessage {
	local, domain, _ := strings.Cut(room, "@")
	return storage.ArchivedMessage{Local: local, Domain: domain, ID: fmt.Sprintf("%026d", i), With: room, WithResource: nick,
		Stamp: at(1, i), Stanza: fmt.Appendf(nil, `<message xmlns="jabber:client" type="groupchat" from="%s/%s"><body>%d</body></message>`, room, nick, i)}
}

func testRoomArchiveAppendAndQuery(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const room = "lobby@conference.example.org"
	mustPutRoom(t, s, storage.Room{JID: room, Config: []byte(`{}`), Created: at(1, 0)})
	var msgs []storage.ArchivedMessage
	for i := 1; i <= 10; i++ {
		nick := "alice"
		if i%2 == 0 {
			nick = "bob"
		}
		msgs = append(msgs, roomMsg(room, i, nick))
	}
	msgs = append(msgs, roomMsg("gone@conference.example.org", 11, "x"), msgs[0]) // not stored; a duplicate
	n, err := s.AppendRoomArchive(ctx, msgs)
	if err != nil || n != 10 {
		t.Fatalf("AppendRoomArchive = %d, %v; want 10", n, err)
	}
	ids := func(p storage.ArchivePage) []string {
		var out []string
		for _, m := range p.Messages {
			out = append(out, strings.TrimLeft(m.ID, "0"))
		}
		return out
	}
	for _, tt := range []struct {
		name     string
		q        storage.ArchiveQuery
		want     []string
		complete bool
	}{
		{"latest", storage.ArchiveQuery{Max: 3, Last: true}, []string{"8", "9", "10"}, false},
		{"first", storage.ArchiveQuery{Max: 3}, []string{"1", "2", "3"}, false},
		{"nick", storage.ArchiveQuery{Max: 10, With: room, WithResource: "bob"}, []string{"2", "4", "6", "8", "10"}, true},
		{"after", storage.ArchiveQuery{Max: 10, AfterID: fmt.Sprintf("%026d", 7)}, []string{"8", "9", "10"}, true},
		{"before", storage.ArchiveQuery{Max: 2, BeforeID: fmt.Sprintf("%026d", 4), Last: true}, []string{"2", "3"}, false},
		{"ids", storage.ArchiveQuery{Max: 10, IDs: []string{fmt.Sprintf("%026d", 5), fmt.Sprintf("%026d", 1)}}, []string{"1", "5"}, true},
		{"time", storage.ArchiveQuery{Max: 10, Start: at(1, 9), End: at(1, 10)}, []string{"9", "10"}, true},
	} {
		p, err := s.QueryRoomArchive(ctx, room, tt.q)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := ids(p); !slices.Equal(got, tt.want) || p.Complete != tt.complete {
			t.Errorf("%s: %v complete=%v, want %v complete=%v", tt.name, got, p.Complete, tt.want, tt.complete)
		}
	}
	p, _ := s.QueryRoomArchive(ctx, room, storage.ArchiveQuery{Max: 1})
	if len(p.Messages) != 1 || p.Messages[0].Local != "lobby" || p.Messages[0].Domain != "conference.example.org" ||
		string(p.Messages[0].Stanza) != string(msgs[0].Stanza) {
		t.Errorf("first message %+v", p.Messages)
	}
	wantTime(t, "Stamp", p.Messages[0].Stamp, msgs[0].Stamp)
	tomb := []byte(`<message xmlns="jabber:client" type="groupchat"><retracted xmlns="urn:xmpp:message-retract:1"/></message>`)
	if err := s.ReplaceRoomArchived(ctx, room, msgs[2].ID, tomb); err != nil {
		t.Fatalf("ReplaceRoomArchived: %v", err)
	}
	p, _ = s.QueryRoomArchive(ctx, room, storage.ArchiveQuery{Max: 1, IDs: []string{msgs[2].ID}})
	if len(p.Messages) != 1 || string(p.Messages[0].Stanza) != string(tomb) {
		t.Errorf("after ReplaceRoomArchived: %+v", p.Messages)
	}
	wantErr(t, "ReplaceRoomArchived(unknown id)", s.ReplaceRoomArchived(ctx, room, "nope", tomb), storage.ErrNotFound)
	_, err = s.QueryRoomArchive(ctx, room, storage.ArchiveQuery{Max: 10, AfterID: "nope"})
	wantErr(t, "QueryRoomArchive(unknown after-id)", err, storage.ErrNotFound)
	p, err = s.QueryRoomArchive(ctx, "other@conference.example.org", storage.ArchiveQuery{Max: 10})
	if err != nil || len(p.Messages) != 0 || !p.Complete {
		t.Errorf("a room not stored: %+v, %v", p, err)
	}
}

func testRoomArchiveGoesWithTheRoom(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const room = "lobby@conference.example.org"
	mustPutRoom(t, s, storage.Room{JID: room, Config: []byte(`{}`), Created: at(1, 0)})
	if _, err := s.AppendRoomArchive(ctx, []storage.ArchivedMessage{roomMsg(room, 1, "a")}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	mustPutRoom(t, s, storage.Room{JID: room, Config: []byte(`{}`), Created: at(2, 0)})
	p, err := s.QueryRoomArchive(ctx, room, storage.ArchiveQuery{Max: 10})
	if err != nil || len(p.Messages) != 0 {
		t.Errorf("a recreated room's archive: %+v, %v", p.Messages, err)
	}
}
