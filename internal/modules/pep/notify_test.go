package pep_test

import (
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
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
