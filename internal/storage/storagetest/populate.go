package storagetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ode-xmpp/ode/internal/storage"
)

// Fixture names what Populate stored that a store cannot list: XML
// document keys and upload ids.
type Fixture struct {
	XMLKeys []string
	Uploads []string
}

// populated is how many accounts and archived messages Populate stores in
// bulk: more than one batch of the tools that copy stores.
const populated = 1200

// Populate fills an empty store with something of every aggregate, for
// tests of tools that copy or convert stores (ode migrate): accounts in
// two domains, with and without credentials; rosters with groups and a
// removed item; pending subscriptions; offline messages, some delivered;
// vCards and private XML; block lists; last activity; uploads; archives;
// push registrations; FAST tokens; pubsub nodes and items; rooms.
func Populate(t testing.TB, s storage.Store) Fixture {
	t.Helper()
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("Populate: %s: %v", what, err)
		}
	}
	for _, a := range []struct{ local, domain string }{{"alice", home}, {"bob", home}, {"carol", home}, {"alice", "example.net"}} {
		must("CreateAccount", s.CreateAccount(ctx, a.local, a.domain, creds(a.local+"@"+a.domain)))
	}
	must("CreateAccount", s.CreateAccount(ctx, "nocreds", home, nil))
	_, err := s.CreateAccounts(ctx, Accounts(populated, "bulk", home))
	must("CreateAccounts", err)

	for _, it := range []storage.RosterItem{
		{Contact: "bob@example.org", Name: "Bob", Groups: []string{"Friends", "Work"}, Subscription: storage.SubBoth},
		{Contact: "carol@example.org", Subscription: storage.SubTo, AskOut: true},
		{Contact: "dave@example.com", Name: "Dave ☺", Subscription: storage.SubNone, PendingIn: true, Approved: true},
		{Contact: "eve@example.com", Subscription: storage.SubFrom},
	} {
		_, err := s.PutRosterItem(ctx, alice, home, it, 0)
		must("PutRosterItem", err)
	}
	_, err = s.DeleteRosterItem(ctx, alice, home, "eve@example.com")
	must("DeleteRosterItem", err)
	_, err = s.PutRosterItem(ctx, bob, home, storage.RosterItem{Contact: "alice@example.org", Subscription: storage.SubBoth}, 0)
	must("PutRosterItem", err)

	for _, c := range []string{"mallory@example.com", "trent@example.com"} {
		must("PutPendingSubscription", s.PutPendingSubscription(ctx, "carol", home,
			storage.PendingSubscription{Contact: c, Stanza: fmt.Appendf(nil, "<presence from='%s' type='subscribe'/>", c)}))
	}

	for i := range 6 {
		must("StoreOffline", s.StoreOffline(ctx, bob, home, message(fmt.Sprint("for bob ", i), at(1, i)), 0))
	}
	ms, err := s.OfflineMessages(ctx, bob, home)
	must("OfflineMessages", err)
	must("DeleteOffline", s.DeleteOffline(ctx, bob, home, ms[1].ID)) // the first two were delivered
	for i := range 3 {
		must("StoreOffline", s.StoreOffline(ctx, "carol", home, message(fmt.Sprint("for carol ", i), at(2, i)), 0))
	}
	_, err = s.TakeOffline(ctx, "carol", home) // the highest ids are gone
	must("TakeOffline", err)

	f := Fixture{XMLKeys: []string{"vcard-temp", "private:storage:bookmarks storage"}}
	must("PutXML", s.PutXML(ctx, alice, home, f.XMLKeys[0], []byte("<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>")))
	must("PutXML", s.PutXML(ctx, bob, home, f.XMLKeys[1], []byte("<storage xmlns='storage:bookmarks'/>")))
	must("Block", s.Block(ctx, alice, home, []string{"example.com", "mallory@example.com", "trent@example.com/x"}))
	must("SetLastActivity", s.SetLastActivity(ctx, bob, home, at(3, 250), "gone fishing"))
	must("SetLastActivity", s.SetLastActivity(ctx, alice, "example.net", at(3, 0), ""))

	f.Uploads = []string{"up-1", "up-2"}
	must("ReserveUpload", s.ReserveUpload(ctx, storage.Upload{ID: "up-1", Local: alice, Domain: home, Filename: "cat.jpg",
		ContentType: "image/jpeg", Size: 12345, Created: at(4, 1)}, storage.UploadQuota{}))
	must("ReserveUpload", s.ReserveUpload(ctx, storage.Upload{ID: "up-2", Local: bob, Domain: home, Filename: "notes ü.txt",
		Size: 0, Created: at(4, 2)}, storage.UploadQuota{}))
	must("MarkUploadStored", s.MarkUploadStored(ctx, "up-1"))

	var msgs []storage.ArchivedMessage
	for i := range populated {
		with := []string{"bob@example.org/phone", "carol@example.com"}[i%2]
		m := archived(alice, i, with, i%2 == 1)
		m.ID = fmt.Sprintf("a%05d", i)
		msgs = append(msgs, m)
	}
	for i := range 10 {
		msgs = append(msgs, archived(bob, i, "alice@example.org/home", i%3 == 0))
	}
	n, err := s.AppendArchive(ctx, msgs)
	must("AppendArchive", err)
	if n != len(msgs) {
		t.Fatalf("Populate: AppendArchive stored %d of %d", n, len(msgs))
	}

	_, err = s.PutPushRegistration(ctx, alice, home, pushReg("push.example.com", "device-1", 5), 0)
	must("PutPushRegistration", err)
	noOptions := pushReg("push.example.net", "device-2", 6)
	noOptions.Options = nil
	_, err = s.PutPushRegistration(ctx, alice, home, noOptions, 0)
	must("PutPushRegistration", err)

	must("PutFASTToken", s.PutFASTToken(ctx, alice, home, fastToken("phone", 1, 1, 20), nil, 0))
	must("PutFASTToken", s.PutFASTToken(ctx, alice, home, fastToken("", 2, 0, 21), nil, 0))

	must("CreatePubSubNode", s.CreatePubSubNode(ctx, alice, home, storage.PubSubNode{Node: "urn:xmpp:avatar:metadata",
		Config: []byte(`{"access_model":"open"}`), Created: at(5, 1)}, 0))
	must("CreatePubSubNode", s.CreatePubSubNode(ctx, alice, home, storage.PubSubNode{Node: "empty", Config: []byte(`{}`), Created: at(5, 2)}, 0))
	for i := range 3 {
		_, err = s.PublishPubSubItem(ctx, alice, home, "urn:xmpp:avatar:metadata", psItem(fmt.Sprint("item-", i), 5), 0)
		must("PublishPubSubItem", err)
	}
	_, err = s.PublishPubSubItem(ctx, alice, home, "urn:xmpp:avatar:metadata", psItem("item-0", 6), 0) // now the newest
	must("PublishPubSubItem", err)

	must("PutRoom", s.PutRoom(ctx, storage.Room{JID: "lobby@" + RoomService, Config: []byte(`{"name":"Lobby"}`),
		Subject: []byte(`<message xmlns="jabber:client" type="groupchat"><subject>hi</subject></message>`), Created: at(3, 0)}))
	must("PutRoom", s.PutRoom(ctx, storage.Room{JID: "quiet@" + RoomService, Config: []byte(`{}`), Created: at(4, 0)}))
	must("SetRoomAffiliation", s.SetRoomAffiliation(ctx, "lobby@"+RoomService, "alice@example.org", "owner"))
	must("SetRoomAffiliation", s.SetRoomAffiliation(ctx, "lobby@"+RoomService, "eve@example.net", "outcast"))
	var roomMsgs []storage.ArchivedMessage
	for i := range 3 {
		roomMsgs = append(roomMsgs, roomMsg("lobby@"+RoomService, i+1, "alice"))
	}
	_, err = s.AppendRoomArchive(ctx, roomMsgs)
	must("AppendRoomArchive", err)
	return f
}

// RoomService is the MUC service whose rooms Populate stores.
const RoomService = "conference.example.org"

// WantSame checks that b holds the same data as a, read through the
// storage interfaces: every account and its credentials, roster (items,
// version and changes), pending subscriptions, offline messages (with
// their ids), the documents and uploads f names, block list, last
// activity, archive, push registrations and FAST tokens, and the rooms
// of RoomService.
func WantSame(t testing.TB, a, b storage.Store, f Fixture) {
	t.Helper()
	ctx := t.Context()
	same := func(what string, x, y any, errs ...error) {
		t.Helper()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("WantSame: %s: %v", what, err)
			}
		}
		if diff := cmp.Diff(x, y, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("WantSame: %s differs (-first +second):\n%s", what, diff)
		}
	}
	accounts, err := a.ListAccounts(ctx, "")
	other, err2 := b.ListAccounts(ctx, "")
	same("ListAccounts", accounts, other, err, err2)
	for _, acct := range accounts {
		local, domain, _ := strings.Cut(acct, "@")
		// The bulk accounts only by their credentials, for speed.
		for _, hash := range []string{"SHA-1", "SHA-256", "SHA-512"} {
			ca, errA := a.Credential(ctx, local, domain, hash)
			cb, errB := b.Credential(ctx, local, domain, hash)
			if (errA == nil) != (errB == nil) {
				t.Errorf("WantSame: %s credential %s: %v and %v", acct, hash, errA, errB)
			}
			same(acct+" credential "+hash, ca, cb)
		}
		if strings.HasPrefix(local, "bulk-") {
			continue
		}
		ra, va, errA := a.Roster(ctx, local, domain)
		rb, vb, errB := b.Roster(ctx, local, domain)
		same(acct+" roster", ra, rb, errA, errB)
		same(acct+" roster version", va, vb)
		cha, _, oka, errA := a.RosterChanges(ctx, local, domain, 0)
		chb, _, okb, errB := b.RosterChanges(ctx, local, domain, 0)
		same(acct+" roster changes", cha, chb, errA, errB)
		same(acct+" roster changes ok", oka, okb)
		pa, errA := a.PendingSubscriptions(ctx, local, domain)
		pb, errB := b.PendingSubscriptions(ctx, local, domain)
		same(acct+" pending subscriptions", pa, pb, errA, errB)
		oa, errA := a.OfflineMessages(ctx, local, domain)
		ob, errB := b.OfflineMessages(ctx, local, domain)
		same(acct+" offline messages", oa, ob, errA, errB)
		for _, key := range f.XMLKeys {
			xa, errA := a.GetXML(ctx, local, domain, key)
			xb, errB := b.GetXML(ctx, local, domain, key)
			if (errA == nil) != (errB == nil) {
				t.Errorf("WantSame: %s document %q: %v and %v", acct, key, errA, errB)
			}
			same(acct+" document "+key, xa, xb)
		}
		ba, errA := a.Blocklist(ctx, local, domain)
		bb, errB := b.Blocklist(ctx, local, domain)
		same(acct+" block list", ba, bb, errA, errB)
		la, sa, errA := a.LastActivity(ctx, local, domain)
		lb, sb, errB := b.LastActivity(ctx, local, domain)
		if (errA == nil) != (errB == nil) {
			t.Errorf("WantSame: %s last activity: %v and %v", acct, errA, errB)
		}
		same(acct+" last activity", [2]any{la, sa}, [2]any{lb, sb})
		qa, errA := a.QueryArchive(ctx, local, domain, storage.ArchiveQuery{Max: 2 * populated})
		qb, errB := b.QueryArchive(ctx, local, domain, storage.ArchiveQuery{Max: 2 * populated})
		same(acct+" archive", qa, qb, errA, errB)
		pra, errA := a.PushRegistrations(ctx, local, domain)
		prb, errB := b.PushRegistrations(ctx, local, domain)
		same(acct+" push registrations", pra, prb, errA, errB)
		na, errA := a.PubSubNodes(ctx, local, domain)
		nb, errB := b.PubSubNodes(ctx, local, domain)
		same(acct+" pubsub nodes", na, nb, errA, errB)
		for _, n := range na {
			ia, errA := a.PubSubItems(ctx, local, domain, n.Node, nil, 0)
			ib, errB := b.PubSubItems(ctx, local, domain, n.Node, nil, 0)
			same(acct+" pubsub items of "+n.Node, ia, ib, errA, errB)
		}
		for _, client := range []string{"phone", ""} {
			fa, errA := a.FASTTokens(ctx, local, domain, client)
			fb, errB := b.FASTTokens(ctx, local, domain, client)
			same(acct+" FAST tokens of "+client, fa, fb, errA, errB)
		}
	}
	ra, errA := a.Rooms(ctx, RoomService)
	rb, errB := b.Rooms(ctx, RoomService)
	same("rooms", ra, rb, errA, errB)
	raa, errA := a.QueryRoomArchive(ctx, "lobby@"+RoomService, storage.ArchiveQuery{Max: 100})
	rab, errB := b.QueryRoomArchive(ctx, "lobby@"+RoomService, storage.ArchiveQuery{Max: 100})
	same("room archive", raa, rab, errA, errB)
	for _, id := range f.Uploads {
		ua, errA := a.Upload(ctx, id)
		ub, errB := b.Upload(ctx, id)
		same("upload "+id, ua, ub, errA, errB)
	}
}
