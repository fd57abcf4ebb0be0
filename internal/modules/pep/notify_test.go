package pep_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// TestCapsNotifications: notifications go to the owner's resources and
// to subscribed contacts' resources whose verified caps want the node;
// not to others, strangers or resources without +notify.
func TestCapsNotifications(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone").online()
	bob := login(t, srv, "bob", "pc")
	bobMobile := login(t, srv, "bob", "mobile")
	carol := login(t, srv, "carol", "pc")
	subscribe(t, srv, "alice", "bob")
	subscribe(t, srv, "alice", "carol", "Work")
	aliceBare := alice.jid.Bare().String()
	// The contacts' presence reaches alice's account with their caps.
	bob.online(nsGeo + "+notify").awaitQuery()
	bobMobile.online("urn:example:other+notify").awaitQuery()
	carol.online(nsGeo + "+notify")                               // the same caps as bob's: no query
	dave := login(t, srv, "dave", "pc").online(nsGeo + "+notify") // no subscription
	dave.r.Send(`<presence to='` + aliceBare + `'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='` + capsNode + `' ver='` + dave.ver() + `'/></presence>`)
	alice.barrier()
	m := srv.Module("pep").(*pep.Module)
	waitInterested(t, m, alice, nsGeo, 3) // bob/pc, carol, dave
	// bob, carol and dave announced one hash: queried once; mobile another.
	waitQueries(t, m, 2)

	alice.publish("", nsGeo, "1", geo("here"))
	ev := bob.expect("bob's notification", isEvent(aliceBare, nsGeo))
	if stanza.Type(ev) != "headline" || ev.Attribute("to") != bob.jid.String() {
		t.Errorf("notification %s", ev)
	}
	if it := eventItems(ev).Child(nsEvent, "item"); it == nil || it.Attribute("id") != "1" || it.Child(nsGeo, "geoloc") == nil {
		t.Errorf("notification payload: %s", ev)
	}
	carol.expect("carol's notification", isEvent(aliceBare, nsGeo))
	alice.expect("the owner's own notification", isEvent(aliceBare, nsGeo))
	bobMobile.noEvent(aliceBare, nsGeo) // no +notify for it
	dave.noEvent(aliceBare, nsGeo)      // no subscription (presence access)

	// The roster model admits carol (group Work), not bob.
	alice.mustIQ("set", "", configureXML(nsGeo, "pubsub#access_model", "roster", "pubsub#roster_groups_allowed", "Work"))
	alice.publish("", nsGeo, "2", geo("there"))
	carol.expect("carol's notification", isEvent(aliceBare, nsGeo))
	bob.noEvent(aliceBare, nsGeo)
	// Open: dave too.
	alice.mustIQ("set", "", configureXML(nsGeo, "pubsub#access_model", "open"))
	alice.publish("", nsGeo, "3", geo("everywhere"))
	dave.expect("dave's notification", isEvent(aliceBare, nsGeo))
	bob.expect("bob's notification", isEvent(aliceBare, nsGeo))
	// Gone offline: no more.
	bob.r.Send(`<presence type='unavailable'/>`)
	bob.barrier()
	alice.publish("", nsGeo, "4", geo("gone"))
	carol.expect("carol's notification", isEvent(aliceBare, nsGeo))
	bob.noEvent(aliceBare, nsGeo)
}

// waitInterested waits until n resources of others want the owner's
// node (their capabilities are known).
func waitInterested(t *testing.T, m *pep.Module, owner *client, node string, n int) {
	t.Helper()
	xmpptest.WaitFor(t, 20*time.Second, "capabilities learnt", func() bool {
		return len(m.Interested(owner.jid.Bare(), node)) == n
	})
}

func waitQueries(t *testing.T, m *pep.Module, n int64) {
	t.Helper()
	if got := m.CapsStats().Queries; got != n {
		t.Errorf("caps queries = %d, want %d", got, n)
	}
}

// TestLastItemOnPresence: a contact coming online with +notify gets the
// last item of each node it wants (with a delay), the owner's new
// resource too; never for nodes that send on no presence or that the
// contact may not see.
func TestLastItemOnPresence(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone")
	subscribe(t, srv, "alice", "bob")
	aliceBare := alice.jid.Bare().String()
	alice.publish("", nsGeo, "g1", geo("old"))
	alice.publish("", nsGeo, "g2", geo("current"))
	alice.publish("", "urn:example:quiet", "q", geo("q"), "pubsub#send_last_published_item", "never")
	alice.publish("", "urn:example:private", "p", geo("p"), "pubsub#access_model", "whitelist")

	bob := login(t, srv, "bob", "pc").online(nsGeo+"+notify", "urn:example:quiet+notify", "urn:example:private+notify").awaitQuery()
	ev := bob.expect("the last item", isEvent(aliceBare, nsGeo))
	if it := eventItems(ev).Child(nsEvent, "item"); it == nil || it.Attribute("id") != "g2" || !strings.Contains(it.String(), "current") {
		t.Errorf("last item: %s", ev)
	}
	if d := ev.Child(stanza.NSDelay, "delay"); d == nil || d.Attribute("stamp") == "" {
		t.Errorf("no delay in %s", ev)
	}
	bob.noEvent(aliceBare, "urn:example:quiet")
	bob.noEvent(aliceBare, "urn:example:private")
	// A status change with the same caps sends nothing again.
	bob.r.Send(`<presence><show>away</show><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='` + capsNode + `' ver='` + bob.ver() + `'/></presence>`)
	bob.noEvent(aliceBare, nsGeo)

	// The owner's own new resource, by its caps.
	laptop := login(t, srv, "alice", "laptop").online(nsGeo + "+notify")
	laptop.expect("own last item", isEvent(aliceBare, nsGeo))
	// A stranger coming online gets nothing (presence access).
	carol := login(t, srv, "carol", "pc").online(nsGeo + "+notify")
	carol.r.Send(`<presence to='` + aliceBare + `'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='` + capsNode + `' ver='` + carol.ver() + `'/></presence>`)
	carol.noEvent(aliceBare, nsGeo)
}

// TestLastItemOnSubscription: a contact whose presence alice already
// receives gets the last items once alice approves its subscription.
func TestLastItemOnSubscription(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone").online()
	aliceBare := alice.jid.Bare().String()
	alice.publish("", nsGeo, "g", geo("here"))
	// alice is subscribed to bob's presence, not bob to alice's.
	bob := login(t, srv, "bob", "pc")
	bobBare := bob.jid.Bare().String()
	alice.r.Send(`<presence type='subscribe' to='` + bobBare + `'/>`)
	bob.online()
	bob.expect("alice's request", func(e *xmlstream.Element) bool { return stanza.Type(e) == stanza.PresenceSubscribe })
	bob.r.Send(`<presence type='subscribed' to='` + aliceBare + `'/>`)
	bob.online(nsGeo + "+notify").awaitQuery()
	m := srv.Module("pep").(*pep.Module)
	xmpptest.WaitFor(t, 20*time.Second, "bob's caps", func() bool {
		return len(m.Resources(alice.jid.Bare(), bob.jid.Bare())) == 1
	})
	bob.noEvent(aliceBare, nsGeo) // not subscribed yet
	bob.r.Send(`<presence type='subscribe' to='` + aliceBare + `'/>`)
	alice.expect("bob's request", func(e *xmlstream.Element) bool {
		return stanza.Type(e) == stanza.PresenceSubscribe && e.Attribute("from") == bobBare
	})
	alice.r.Send(`<presence type='subscribed' to='` + bobBare + `'/>`)
	bob.expect("the last item on subscription", isEvent(aliceBare, nsGeo))
}

// TestCapsVerification: a hash is queried once for everyone who
// announces it; an answer that does not hash to it is used for its
// sender only, and the next announcer is asked in turn.
func TestCapsVerification(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone").online()
	subscribe(t, srv, "alice", "bob")
	subscribe(t, srv, "alice", "carol")
	aliceBare := alice.jid.Bare().String()
	m := srv.Module("pep").(*pep.Module)
	feats := []string{nsGeo + "+notify", "urn:example:a"}

	// bob lies: his answer lacks a feature of the hash he announced.
	liar := login(t, srv, "bob", "liar")
	liar.wrongCaps = true
	liar.online(feats...).awaitQuery()
	xmpptest.WaitFor(t, 20*time.Second, "the liar's own caps", func() bool {
		return len(m.Resources(alice.jid.Bare(), liar.jid.Bare())) == 1
	})
	// carol announces the same hash: not trusted from bob's answer, she is
	// asked herself, and her answer verifies.
	carol := login(t, srv, "carol", "pc").online(feats...).awaitQuery()
	waitInterested(t, m, alice, nsGeo, 2)
	// Now verified: another resource with it is not asked.
	bob2 := login(t, srv, "bob", "pc").online(feats...)
	waitInterested(t, m, alice, nsGeo, 3)
	if s := m.CapsStats(); s.Queries != 2 || s.Hits < 1 {
		t.Errorf("caps stats %+v, want 2 queries and a hit", s)
	}
	if bob2.queried != 0 {
		t.Errorf("bob/pc was asked for a verified hash")
	}
	alice.publish("", nsGeo, "1", geo("x"))
	carol.expect("carol's notification", isEvent(aliceBare, nsGeo))
	bob2.expect("bob's notification", isEvent(aliceBare, nsGeo))
	liar.expect("the liar's notification (its own answer)", isEvent(aliceBare, nsGeo))

	// An unknown hash function, or no caps: nothing is asked.
	dave := login(t, srv, "dave", "pc")
	subscribe(t, srv, "alice", "dave")
	dave.features = []string{stanza.NSDiscoInfo}
	dave.r.Send(`<presence to='` + aliceBare + `'><c xmlns='http://jabber.org/protocol/caps' hash='md5' node='x' ver='abc'/></presence>`)
	dave.r.Send(`<presence to='` + aliceBare + `'/>`)
	dave.barrier()
	if dave.queried != 0 || m.CapsStats().Queries != 2 {
		t.Errorf("a query for unverifiable caps")
	}
}

// TestAccountDeleted: deleting an account removes its nodes and items.
func TestAccountDeleted(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone")
	alice.publish("", nsGeo, "g", geo("x"), "pubsub#access_model", "open")
	alice.r.Drop()
	if err := srv.Store().DeleteAccount(t.Context(), "alice", srv.Domain); err != nil {
		t.Fatal(err)
	}
	carol := login(t, srv, "carol", "pc")
	carol.iqErr("get", "alice@"+srv.Domain, itemsXML(nsGeo, "/>"), stanza.ServiceUnavailable, "")
	srv.AddUser(t, "alice", "pw")
	alice = login(t, srv, "alice", "phone")
	alice.iqErr("get", "", itemsXML(nsGeo, "/>"), stanza.ItemNotFound, "")
	nodes, err := srv.Store().PubSubNodes(t.Context(), "alice", srv.Domain)
	if err != nil || len(nodes) != 0 {
		t.Errorf("nodes of the new account: %v, %v", nodes, err)
	}
}
