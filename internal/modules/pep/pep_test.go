package pep_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/stanza"
)

// TestPublishAndItems: auto-create on publish with the PEP defaults, a
// generated id, items all / by id / max_items, republish.
func TestPublishAndItems(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone")
	id := alice.publish("", nsGeo, "", geo("home"))
	if len(id) < 8 {
		t.Errorf("generated item id %q", id)
	}
	if got := alice.items("", nsGeo); !slices.Equal(got, []string{id}) {
		t.Errorf("items = %q, want [%s]", got, id)
	}
	// XEP-0163 defaults.
	for field, want := range map[string]string{
		"pubsub#access_model":             "presence",
		"pubsub#max_items":                "1",
		"pubsub#persist_items":            "1",
		"pubsub#publish_model":            "publishers",
		"pubsub#send_last_published_item": "on_sub_and_presence",
	} {
		if got := alice.configField(nsGeo, field); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	// max_items 1: a second item replaces the first.
	alice.publish("", nsGeo, "current", geo("work"))
	if got := alice.items("", nsGeo); !slices.Equal(got, []string{"current"}) {
		t.Errorf("items after a second publish = %q", got)
	}
	// A node keeping 10: all, by id, max_items (newest first).
	alice.publish("", "urn:example:log", "a", `<e xmlns='urn:example'>1</e>`, "pubsub#max_items", "10")
	alice.publish("", "urn:example:log", "b", `<e xmlns='urn:example'>2</e>`, "pubsub#max_items", "10")
	alice.publish("", "urn:example:log", "c", `<e xmlns='urn:example'>3</e>`, "pubsub#max_items", "10")
	if got := alice.items("", "urn:example:log"); !slices.Equal(got, []string{"c", "b", "a"}) {
		t.Errorf("items = %q", got)
	}
	res := alice.mustIQ("get", "", itemsXML("urn:example:log", " max_items='2'/>"))
	if got := itemIDs(res.Child(nsPubSub, "pubsub").Child(nsPubSub, "items")); !slices.Equal(got, []string{"c", "b"}) {
		t.Errorf("max_items=2: %q", got)
	}
	res = alice.mustIQ("get", "", itemsXML("urn:example:log", `><item id='a'/><item id='zz'/></items>`))
	items := res.Child(nsPubSub, "pubsub").Child(nsPubSub, "items")
	if got := itemIDs(items); !slices.Equal(got, []string{"a"}) {
		t.Errorf("by id: %q", got)
	}
	if p := items.Child(nsPubSub, "item").Child("urn:example", "e"); p == nil || p.Text() != "1" {
		t.Errorf("payload of a: %s", items)
	}
	// Republishing an id makes it the newest, with the new payload.
	alice.publish("", "urn:example:log", "a", `<e xmlns='urn:example'>4</e>`)
	if got := alice.items("", "urn:example:log"); !slices.Equal(got, []string{"a", "c", "b"}) {
		t.Errorf("items after republishing a = %q", got)
	}
	// The owner's full JID as 'to' also addresses the account's service.
	if got := alice.items(alice.jid.Bare().String(), nsGeo); !slices.Equal(got, []string{"current"}) {
		t.Errorf("items to the bare JID = %q", got)
	}
}

// TestPublishErrors: each malformed or refused publish gets the error
// XEP-0060 §7.1.3 names.
func TestPublishErrors(t *testing.T) {
	srv := start(t, func(c *pep.Config) { c.MaxItemBytes = 1000; c.MaxNodes = 3 })
	alice := login(t, srv, "alice", "phone")
	bob := login(t, srv, "bob", "pc")
	ps := func(inner string) string { return `<pubsub xmlns='` + nsPubSub + `'>` + inner + `</pubsub>` }
	for _, tc := range []struct {
		name, payload string
		cond          stanza.Condition
		app           string
	}{
		{"no node", ps(`<publish><item>` + geo("x") + `</item></publish>`), stanza.BadRequest, "nodeid-required"},
		{"no item", ps(`<publish node='n'/>`), stanza.BadRequest, "item-required"},
		{"two items", ps(`<publish node='n'><item>` + geo("x") + `</item><item>` + geo("y") + `</item></publish>`), stanza.BadRequest, "invalid-payload"},
		{"two payloads", ps(`<publish node='n'><item>` + geo("x") + geo("y") + `</item></publish>`), stanza.BadRequest, "invalid-payload"},
		{"no payload", ps(`<publish node='n'><item id='1'/></publish>`), stanza.BadRequest, "payload-required"},
		{"too big", ps(`<publish node='n'><item>` + geo(strings.Repeat("x", 1000)) + `</item></publish>`), stanza.NotAcceptable, "payload-too-big"},
		{"empty pubsub", ps(``), stanza.BadRequest, ""},
		{"options of another form", ps(`<publish node='n'><item>` + geo("x") + `</item></publish><publish-options>` +
			formXML("urn:example:other", "pubsub#access_model", "open") + `</publish-options>`), stanza.BadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice.t = t
			alice.iqErr("set", "", tc.payload, tc.cond, tc.app)
		})
	}
	alice.t = t
	// Nothing was created by the failed publishes.
	alice.iqErr("get", "", itemsXML("n", "/>"), stanza.ItemNotFound, "")
	// Only the owner publishes (publish_model publishers).
	alice.publish("", nsGeo, "1", geo("x"))
	subscribe(t, srv, "alice", "bob")
	bob.iqErr("set", alice.jid.Bare().String(), publishXML(nsGeo, "2", geo("y")), stanza.Forbidden, "")
	bob.iqErr("set", alice.jid.Bare().String(), publishXML("urn:example:none", "2", geo("y")), stanza.ItemNotFound, "")
	// The account's node limit.
	alice.publish("", "n2", "", geo("x"))
	alice.publish("", "n3", "", geo("x"))
	alice.iqErr("set", "", publishXML("n4", "", geo("x")), stanza.NotAllowed, "max-nodes-exceeded")
	// To an account that does not exist: as for any IQ there.
	alice.iqErr("get", "nobody@"+srv.Domain, itemsXML(nsGeo, "/>"), stanza.ServiceUnavailable, "")
}

// TestPublishOptions: XEP-0060 §7.1.5 preconditions, and the cases
// ejabberd got wrong (processone/ejabberd#2425, #4103, max_items=max).
func TestPublishOptions(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone")
	carol := login(t, srv, "carol", "pc") // no subscription to alice
	aliceBare := alice.jid.Bare().String()
	bundle := "eu.siacs.conversations.axolotl.bundles:1234"
	bundleXML := `<bundle xmlns='eu.siacs.conversations.axolotl'><signedPreKeyPublic signedPreKeyId='1'>AAAA</signedPreKeyPublic></bundle>`

	// A new node takes the options as its configuration (#2425: open,
	// not a forced whitelist), and max_items=max is allowed.
	alice.publish("", bundle, "current", bundleXML, "pubsub#access_model", "open", "pubsub#max_items", "max")
	if got := alice.configField(bundle, "pubsub#access_model"); got != "open" {
		t.Errorf("access_model = %q, want open", got)
	}
	if got := alice.configField(bundle, "pubsub#max_items"); got != "max" {
		t.Errorf("max_items = %q, want max", got)
	}
	if got := carol.items(aliceBare, bundle); !slices.Equal(got, []string{"current"}) {
		t.Errorf("a stranger fetches the bundle: %q", got)
	}
	// The same options again: met, also max_items=max on the node with max.
	alice.publish("", bundle, "current", bundleXML, "pubsub#access_model", "open", "pubsub#max_items", "max")
	// Options the node does not have: conflict, precondition-not-met.
	alice.iqErr("set", "", publishXML(bundle, "current", bundleXML, "pubsub#access_model", "whitelist"), stanza.Conflict, "precondition-not-met")
	alice.iqErr("set", "", publishXML(bundle, "current", bundleXML, "pubsub#max_items", "5"), stanza.Conflict, "precondition-not-met")
	// Unknown fields and values the server does not offer fail too.
	alice.iqErr("set", "", publishXML(bundle, "current", bundleXML, "pubsub#frobnicate", "1"), stanza.Conflict, "precondition-not-met")
	alice.iqErr("set", "", publishXML(bundle, "current", bundleXML, "pubsub#access_model", "authorize"), stanza.Conflict, "precondition-not-met")
	alice.iqErr("set", "", publishXML("urn:example:new", "1", geo("x"), "pubsub#max_items", "nine"), stanza.Conflict, "precondition-not-met")

	// #4103: a node created before with the default model (presence)
	// fails the precondition; after the client reconfigures it, the
	// publish succeeds and the node's model is what was asked, not a
	// stale one.
	alice.publish("", nsAxolotlDevices, "current", `<list xmlns='eu.siacs.conversations.axolotl'><device id='1234'/></list>`)
	alice.iqErr("set", "", publishXML(nsAxolotlDevices, "current", `<list xmlns='eu.siacs.conversations.axolotl'><device id='1234'/></list>`,
		"pubsub#access_model", "open"), stanza.Conflict, "precondition-not-met")
	carol.iqErr("get", aliceBare, itemsXML(nsAxolotlDevices, "/>"), stanza.NotAuthorized, "presence-subscription-required")
	alice.mustIQ("set", "", configureXML(nsAxolotlDevices, "pubsub#access_model", "open"))
	alice.publish("", nsAxolotlDevices, "current", `<list xmlns='eu.siacs.conversations.axolotl'><device id='1234'/><device id='5678'/></list>`,
		"pubsub#access_model", "open")
	if got := carol.items(aliceBare, nsAxolotlDevices); !slices.Equal(got, []string{"current"}) {
		t.Errorf("devicelist after the model change: %q", got)
	}
	// OMEMO 2's device list with open access and max_items=max.
	alice.publish("", nsOMEMO2Devices, "current", `<devices xmlns='urn:xmpp:omemo:2'><device id='1'/></devices>`,
		"pubsub#access_model", "open", "pubsub#max_items", "max")
	if got := carol.items(aliceBare, nsOMEMO2Devices); !slices.Equal(got, []string{"current"}) {
		t.Errorf("omemo:2 devices: %q", got)
	}
	// Options without a form, and a form without fields, require nothing.
	alice.mustIQ("set", "", `<pubsub xmlns='`+nsPubSub+`'><publish node='`+nsGeo+`'><item>`+geo("x")+`</item></publish><publish-options/></pubsub>`)
}

// TestRetractDeletePurge: the owner's removals, their errors, and
// their notifications to the owner's other resource.
func TestRetractDeletePurge(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone")
	other := login(t, srv, "alice", "laptop").online()
	bob := login(t, srv, "bob", "pc")
	subscribe(t, srv, "alice", "bob")
	aliceBare := alice.jid.Bare().String()
	alice.publish("", "urn:example:log", "a", geo("1"), "pubsub#max_items", "10")
	alice.publish("", "urn:example:log", "b", geo("2"), "pubsub#max_items", "10")
	other.expect("publish a", isEvent(aliceBare, "urn:example:log"))
	other.expect("publish b", isEvent(aliceBare, "urn:example:log"))

	retract := func(node, id, notify string) string {
		return `<pubsub xmlns='` + nsPubSub + `'><retract node='` + node + `'` + notify + `><item id='` + id + `'/></retract></pubsub>`
	}
	alice.mustIQ("set", "", retract("urn:example:log", "a", " notify='true'"))
	ev := other.expect("retraction", isEvent(aliceBare, "urn:example:log"))
	if r := eventItems(ev).Child(nsEvent, "retract"); r == nil || r.Attribute("id") != "a" {
		t.Errorf("retract notification: %s", ev)
	}
	if got := alice.items("", "urn:example:log"); !slices.Equal(got, []string{"b"}) {
		t.Errorf("items after retract: %q", got)
	}
	alice.iqErr("set", "", retract("urn:example:log", "a", ""), stanza.ItemNotFound, "")
	alice.iqErr("set", "", retract("urn:example:none", "a", ""), stanza.ItemNotFound, "")
	alice.iqErr("set", "", `<pubsub xmlns='`+nsPubSub+`'><retract node='urn:example:log'/></pubsub>`, stanza.BadRequest, "item-required")
	alice.iqErr("set", "", `<pubsub xmlns='`+nsPubSub+`'><retract><item id='b'/></retract></pubsub>`, stanza.BadRequest, "nodeid-required")
	bob.iqErr("set", aliceBare, retract("urn:example:log", "b", ""), stanza.Forbidden, "")
	// notify='false' retracts quietly.
	alice.publish("", "urn:example:log", "c", geo("3"))
	other.expect("publish c", isEvent(aliceBare, "urn:example:log"))
	alice.mustIQ("set", "", retract("urn:example:log", "c", " notify='false'"))
	other.noEvent(aliceBare, "urn:example:log")

	owner := func(inner string) string { return `<pubsub xmlns='` + nsOwner + `'>` + inner + `</pubsub>` }
	bob.iqErr("set", aliceBare, owner(`<purge node='urn:example:log'/>`), stanza.Forbidden, "")
	bob.iqErr("set", aliceBare, owner(`<delete node='urn:example:log'/>`), stanza.Forbidden, "")
	alice.mustIQ("set", "", owner(`<purge node='urn:example:log'/>`))
	ev = other.expect("purge", isEvent(aliceBare, "urn:example:log"))
	if ev.Child(nsEvent, "event").Child(nsEvent, "purge") == nil {
		t.Errorf("purge notification: %s", ev)
	}
	if got := alice.items("", "urn:example:log"); len(got) != 0 {
		t.Errorf("items after purge: %q", got)
	}
	alice.mustIQ("set", "", owner(`<delete node='urn:example:log'/>`))
	ev = other.expect("delete", isEvent(aliceBare, "urn:example:log"))
	if ev.Child(nsEvent, "event").Child(nsEvent, "delete") == nil {
		t.Errorf("delete notification: %s", ev)
	}
	alice.iqErr("get", "", itemsXML("urn:example:log", "/>"), stanza.ItemNotFound, "")
	alice.iqErr("set", "", owner(`<delete node='urn:example:log'/>`), stanza.ItemNotFound, "")
	alice.iqErr("set", "", owner(`<purge node='urn:example:log'/>`), stanza.ItemNotFound, "")
	alice.iqErr("set", "", owner(`<delete/>`), stanza.BadRequest, "nodeid-required")
	// A node published to again starts anew with the defaults.
	alice.publish("", "urn:example:log", "d", geo("4"))
	if got := alice.configField("urn:example:log", "pubsub#max_items"); got != "1" {
		t.Errorf("max_items of the new node = %q", got)
	}
}

// TestDisco: the account's identity and features, its nodes by who may
// see them, and a node's info and items.
func TestDisco(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone")
	bob := login(t, srv, "bob", "pc")
	carol := login(t, srv, "carol", "pc")
	subscribe(t, srv, "alice", "bob")
	aliceBare := alice.jid.Bare().String()
	alice.publish("", nsGeo, "g", geo("x"))
	alice.publish("", nsAxolotlDevices, "current", `<list xmlns='eu.siacs.conversations.axolotl'/>`, "pubsub#access_model", "open")
	alice.publish("", "storage:bookmarks", "current", `<storage xmlns='storage:bookmarks'/>`, "pubsub#access_model", "whitelist")

	res := bob.mustIQ("get", aliceBare, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	q := res.Child(stanza.NSDiscoInfo, "query")
	var ids, features []string
	for _, e := range q.ChildrenNS(stanza.NSDiscoInfo) {
		switch e.Name.Local {
		case "identity":
			ids = append(ids, e.Attribute("category")+"/"+e.Attribute("type"))
		case "feature":
			features = append(features, e.Attribute("var"))
		}
	}
	if !slices.Contains(ids, "pubsub/pep") || !slices.Contains(ids, "account/registered") {
		t.Errorf("account identities %q", ids)
	}
	for _, f := range []string{"", "#publish", "#publish-options", "#auto-create", "#access-open", "#access-presence",
		"#access-roster", "#access-whitelist", "#persistent-items", "#retract-items", "#retrieve-items", "#purge-nodes",
		"#delete-nodes", "#config-node", "#multi-items", "#item-ids", "#last-published", "#filtered-notifications"} {
		if !slices.Contains(features, nsPubSub+f) {
			t.Errorf("account features lack %s", nsPubSub+f)
		}
	}
	res = carol.mustIQ("get", srv.Domain, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	if !strings.Contains(res.String(), nsPubSub+"#publish-options") {
		t.Errorf("server features lack publish-options: %s", res)
	}

	nodes := func(c *client) []string {
		res := c.mustIQ("get", aliceBare, `<query xmlns='http://jabber.org/protocol/disco#items'/>`)
		var out []string
		for _, it := range res.Child(stanza.NSDiscoItems, "query").ChildrenNS(stanza.NSDiscoItems) {
			if it.Attribute("jid") != aliceBare {
				t.Errorf("item jid %s", it)
			}
			out = append(out, it.Attribute("node"))
		}
		return out
	}
	if got := nodes(alice); !slices.Equal(got, []string{nsAxolotlDevices, nsGeo, "storage:bookmarks"}) {
		t.Errorf("the owner's nodes: %q", got)
	}
	if got := nodes(bob); !slices.Equal(got, []string{nsAxolotlDevices, nsGeo}) {
		t.Errorf("a contact's view: %q", got)
	}
	if got := nodes(carol); !slices.Equal(got, []string{nsAxolotlDevices}) {
		t.Errorf("a stranger's view: %q", got)
	}
	res = carol.mustIQ("get", aliceBare, `<query xmlns='http://jabber.org/protocol/disco#info' node='`+nsAxolotlDevices+`'/>`)
	if !strings.Contains(res.String(), `type="leaf"`) || !strings.Contains(res.String(), "pubsub#meta-data") {
		t.Errorf("node info: %s", res)
	}
	carol.iqErr("get", aliceBare, `<query xmlns='http://jabber.org/protocol/disco#info' node='`+nsGeo+`'/>`, stanza.ServiceUnavailable, "")
	bob.iqErr("get", aliceBare, `<query xmlns='http://jabber.org/protocol/disco#info' node='storage:bookmarks'/>`, stanza.ItemNotFound, "")
	res = carol.mustIQ("get", aliceBare, `<query xmlns='http://jabber.org/protocol/disco#items' node='`+nsAxolotlDevices+`'/>`)
	if it := res.Child(stanza.NSDiscoItems, "query").Child(stanza.NSDiscoItems, "item"); it == nil || it.Attribute("name") != "current" {
		t.Errorf("node items: %s", res)
	}
}
