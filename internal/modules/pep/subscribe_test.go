package pep_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func subscribeXML(node, j string) string {
	return `<pubsub xmlns='` + nsPubSub + `'><subscribe node='` + node + `' jid='` + j + `'/></pubsub>`
}

func unsubscribeXML(node, j string) string {
	return `<pubsub xmlns='` + nsPubSub + `'><unsubscribe node='` + node + `' jid='` + j + `'/></pubsub>`
}

// TestExplicitSubscriptions: XEP-0060 §6.1-§6.2 and §5.6 on a PEP node,
// where the access model allows: a stranger subscribes to an open node
// and gets its last item and later notifications, is refused on a
// presence node, unsubscribes; §8.8 for the owner; a contact notified
// through its caps and subscribed too gets each notification once.
func TestExplicitSubscriptions(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone")
	bob := login(t, srv, "bob", "pc")
	dave := login(t, srv, "dave", "pc") // a stranger
	subscribe(t, srv, "alice", "bob")
	aliceBare := alice.jid.Bare().String()
	bob.online(nsGeo + "+notify")
	dave.online() // no caps: notified only through its subscription

	const bundle = "urn:xmpp:omemo:2:bundles"
	alice.publish("", bundle, "31415", `<bundle xmlns='urn:xmpp:omemo:2'/>`, "pubsub#access_model", "open", "pubsub#max_items", "max")
	alice.publish("", nsGeo, "g1", geo("home"))

	// Errors first: someone else's JID, no such node, a presence node.
	dave.iqErr("set", aliceBare, subscribeXML(bundle, bob.jid.String()), stanza.BadRequest, "invalid-jid")
	dave.iqErr("set", aliceBare, subscribeXML("urn:example:none", dave.jid.String()), stanza.ItemNotFound, "")
	dave.iqErr("set", aliceBare, subscribeXML(nsGeo, dave.jid.String()), stanza.NotAuthorized, "presence-subscription-required")
	dave.iqErr("set", aliceBare, unsubscribeXML(bundle, dave.jid.String()), stanza.UnexpectedRequest, "not-subscribed")

	// Subscribing to the open node: the subscription, then the last item.
	res := dave.mustIQ("set", aliceBare, subscribeXML(bundle, dave.jid.String()))
	sub := res.Child(nsPubSub, "pubsub").Child(nsPubSub, "subscription")
	if sub == nil || sub.Attribute("subscription") != "subscribed" || sub.Attribute("jid") != dave.jid.String() || sub.Attribute("node") != bundle {
		t.Fatalf("subscribe: %s", res)
	}
	last := dave.expect("the last item", isEvent(aliceBare, bundle))
	if got := itemIDs(eventItems(last)); !slices.Equal(got, []string{"31415"}) || last.Child(stanza.NSDelay, "delay") == nil {
		t.Errorf("last item: %s", last)
	}
	// A second subscribe is answered the same and stores nothing twice.
	dave.mustIQ("set", aliceBare, subscribeXML(bundle, dave.jid.String()))
	dave.expect("the last item again", isEvent(aliceBare, bundle))

	// A new item reaches the subscriber.
	alice.publish("", bundle, "27182", `<bundle xmlns='urn:xmpp:omemo:2'/>`)
	ev := dave.expect("the notification", isEvent(aliceBare, bundle))
	if got := itemIDs(eventItems(ev)); !slices.Equal(got, []string{"27182"}) {
		t.Errorf("notification: %s", ev)
	}
	dave.noEvent(aliceBare, bundle)

	// §5.6: the subscriber's own subscriptions; §8.8.1: the owner's list.
	res = dave.mustIQ("get", aliceBare, `<pubsub xmlns='`+nsPubSub+`'><subscriptions/></pubsub>`)
	if s := res.String(); !strings.Contains(s, `node="`+bundle+`"`) || strings.Count(s, "<subscription ") != 1 {
		t.Errorf("subscriptions: %s", s)
	}
	res = alice.mustIQ("get", "", `<pubsub xmlns='`+nsOwner+`'><subscriptions node='`+bundle+`'/></pubsub>`)
	if s := res.String(); !strings.Contains(s, `jid="`+dave.jid.String()+`"`) {
		t.Errorf("owner's subscriptions: %s", s)
	}

	// A contact notified through its caps and subscribed as well gets
	// one copy per item.
	bob.mustIQ("set", aliceBare, subscribeXML(nsGeo, bob.jid.Bare().String()))
	bob.expect("g1's notification", isItem(aliceBare, nsGeo, "g1"))
	bob.expect("g1 as the last item", isItem(aliceBare, nsGeo, "g1"))
	alice.publish("", nsGeo, "g2", geo("garden"))
	bob.expect("g2's notification", isItem(aliceBare, nsGeo, "g2"))
	bob.noEvent(aliceBare, nsGeo)
	// Subscribed with both its bare and its full JID, dave's client is
	// notified once.
	dave.mustIQ("set", aliceBare, subscribeXML(bundle, dave.jid.Bare().String()))
	dave.expect("the last item for the bare subscription", isEvent(aliceBare, bundle))
	alice.publish("", bundle, "57721", `<bundle xmlns='urn:xmpp:omemo:2'/>`)
	dave.expect("57721's notification", isItem(aliceBare, bundle, "57721"))
	dave.noEvent(aliceBare, bundle)
	dave.mustIQ("set", aliceBare, unsubscribeXML(bundle, dave.jid.Bare().String()))

	// Closing the node to the stranger stops its notifications though
	// the subscription stays stored.
	alice.mustIQ("set", "", configureXML(bundle, "pubsub#access_model", "whitelist"))
	alice.publish("", bundle, "16180", `<bundle xmlns='urn:xmpp:omemo:2'/>`)
	dave.noEvent(aliceBare, bundle)
	alice.mustIQ("set", "", configureXML(bundle, "pubsub#access_model", "open"))

	// Unsubscribing ends the notifications.
	dave.mustIQ("set", aliceBare, unsubscribeXML(bundle, dave.jid.String()))
	dave.iqErr("set", aliceBare, unsubscribeXML(bundle, dave.jid.String()), stanza.UnexpectedRequest, "not-subscribed")
	alice.publish("", bundle, "14142", `<bundle xmlns='urn:xmpp:omemo:2'/>`)
	dave.noEvent(aliceBare, bundle)

	// §8.8.2: the owner adds and removes subscriptions.
	owner := func(inner string) string {
		return `<pubsub xmlns='` + nsOwner + `'><subscriptions node='` + bundle + `'>` + inner + `</subscriptions></pubsub>`
	}
	alice.mustIQ("set", "", owner(`<subscription jid='`+dave.jid.String()+`' subscription='subscribed'/>`))
	alice.publish("", bundle, "17320", `<bundle xmlns='urn:xmpp:omemo:2'/>`)
	dave.expect("the notification after the owner's subscription", isEvent(aliceBare, bundle))
	alice.iqErr("set", "", owner(`<subscription jid='`+dave.jid.String()+`' subscription='pending'/>`), stanza.NotAcceptable, "")
	alice.mustIQ("set", "", owner(`<subscription jid='`+dave.jid.String()+`' subscription='none'/>`))
	res = alice.mustIQ("get", "", owner(""))
	if s := res.String(); strings.Contains(s, dave.jid.String()) {
		t.Errorf("owner's subscriptions after removal: %s", s)
	}

	// Deleting the node ends its subscriptions: a node of that name
	// created again has none.
	dave.mustIQ("set", aliceBare, subscribeXML(bundle, dave.jid.String()))
	alice.mustIQ("set", "", `<pubsub xmlns='`+nsOwner+`'><delete node='`+bundle+`'/></pubsub>`)
	alice.publish("", bundle, "1", `<bundle xmlns='urn:xmpp:omemo:2'/>`, "pubsub#access_model", "open")
	res = dave.mustIQ("get", aliceBare, `<pubsub xmlns='`+nsPubSub+`'><subscriptions/></pubsub>`)
	if s := res.String(); strings.Contains(s, "<subscription ") {
		t.Errorf("subscriptions after the node's deletion: %s", s)
	}
}

// TestSubscriptionLimits: one bare JID holds at most 10 subscriptions
// to a node (its resources), then too-many-subscriptions.
func TestSubscriptionLimits(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone")
	dave := login(t, srv, "dave", "pc")
	aliceBare := alice.jid.Bare().String()
	const node = "urn:example:open"
	alice.publish("", node, "x", `<x xmlns='urn:example'/>`, "pubsub#access_model", "open", "pubsub#send_last_published_item", "never")
	for i := range 10 {
		dave.mustIQ("set", aliceBare, subscribeXML(node, dave.jid.Bare().String()+"/r"+string(rune('a'+i))))
	}
	dave.iqErr("set", aliceBare, subscribeXML(node, dave.jid.Bare().String()+"/rz"), stanza.NotAllowed, "too-many-subscriptions")
	res := dave.mustIQ("get", aliceBare, `<pubsub xmlns='`+nsPubSub+`'><subscriptions node='`+node+`'/></pubsub>`)
	if n := len(res.Child(nsPubSub, "pubsub").Child(nsPubSub, "subscriptions").ChildrenNS(nsPubSub)); n != 10 {
		t.Errorf("%d subscriptions, want 10", n)
	}
}

// isItem matches a notification from from about node's item id.
func isItem(from, node, id string) func(*xmlstream.Element) bool {
	ev := isEvent(from, node)
	return func(e *xmlstream.Element) bool {
		return ev(e) && eventItems(e) != nil && slices.Equal(itemIDs(eventItems(e)), []string{id})
	}
}
