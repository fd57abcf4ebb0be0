package pep_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
)

// TestFederation: alice@a.test's notifications reach bob@b.test's
// resource over s2s once his caps (queried across the federation) are
// verified, his last item on presence too, and a stranger on b.test
// fetches alice's open OMEMO bundle while her presence-only node stays
// closed to him.
func TestFederation(t *testing.T) {
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	addrA, addrB := xmpptest.FreeAddr(t), xmpptest.FreeAddr(t)
	a := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"a.test"}
		c.S2S.Listen = []string{addrA}
		c.S2S.Hosts = map[string]string{"b.test": addrB}
	})
	b := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"b.test"}
		c.S2S.Listen = []string{addrB}
		c.S2S.Hosts = map[string]string{"a.test": addrA}
	})
	a.AddUser(t, "alice", "pw")
	b.AddUser(t, "bob", "pw")
	b.AddUser(t, "eve", "pw")
	ctx := t.Context()
	if _, err := a.Store().PutRosterItem(ctx, "alice", "a.test", storage.RosterItem{Contact: "bob@b.test", Subscription: storage.SubBoth}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Store().PutRosterItem(ctx, "bob", "b.test", storage.RosterItem{Contact: "alice@a.test", Subscription: storage.SubBoth}, 0); err != nil {
		t.Fatal(err)
	}
	alice := login(t, a, "alice", "phone").online()
	alice.publish("", nsGeo, "before", geo("before"))
	bundle := "eu.siacs.conversations.axolotl.bundles:31415"
	alice.publish("", bundle, "current", `<bundle xmlns='eu.siacs.conversations.axolotl'/>`, "pubsub#access_model", "open")

	// bob's presence crosses to a.test, which asks his client for its
	// caps over s2s; then he gets the last item.
	bob := login(t, b, "bob", "pc").online(nsGeo + "+notify").awaitQuery()
	ev := bob.expect("the last item over s2s", isEvent("alice@a.test", nsGeo))
	if it := eventItems(ev).Child(nsEvent, "item"); it == nil || it.Attribute("id") != "before" {
		t.Errorf("last item: %s", ev)
	}
	m := a.Module("pep").(*pep.Module)
	xmpptest.WaitFor(t, 20*time.Second, "bob's caps", func() bool { return len(m.Interested(alice.jid.Bare(), nsGeo)) == 1 })
	alice.publish("", nsGeo, "after", geo("after"))
	ev = bob.expect("a notification over s2s", isEvent("alice@a.test", nsGeo))
	if it := eventItems(ev).Child(nsEvent, "item"); it == nil || it.Attribute("id") != "after" || it.Child(nsGeo, "geoloc") == nil {
		t.Errorf("notification: %s", ev)
	}
	if ev.Attribute("to") != bob.jid.String() || stanza.Type(ev) != "headline" {
		t.Errorf("notification addressed %s, type %s", ev.Attribute("to"), stanza.Type(ev))
	}
	// A stranger on the other server.
	eve := login(t, b, "eve", "pc")
	if got := eve.items("alice@a.test", bundle); !slices.Equal(got, []string{"current"}) {
		t.Errorf("a remote stranger fetches the open bundle: %q", got)
	}
	eve.iqErr("get", "alice@a.test", itemsXML(nsGeo, "/>"), stanza.NotAuthorized, "presence-subscription-required")
	if got := bob.items("alice@a.test", nsGeo); !slices.Equal(got, []string{"after"}) {
		t.Errorf("a remote contact fetches: %q", got)
	}
	bob.iqErr("set", "alice@a.test", publishXML(nsGeo, "x", geo("x")), stanza.Forbidden, "")
}
