package pep_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/stanza"
)

// TestAccessModels: who may retrieve items under each model, with the
// errors of XEP-0060 §6.5.9, and whitelist affiliations.
func TestAccessModels(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone")
	bob := login(t, srv, "bob", "pc")     // subscribed, group Friends
	carol := login(t, srv, "carol", "pc") // subscribed, group Work
	dave := login(t, srv, "dave", "pc")   // a stranger
	subscribe(t, srv, "alice", "bob", "Friends")
	subscribe(t, srv, "alice", "carol", "Work")
	aliceBare := alice.jid.Bare().String()
	node := "urn:example:status"
	alice.publish("", node, "s", geo("x"))
	get := itemsXML(node, "/>")

	// presence (the default).
	if got := bob.items(aliceBare, node); !slices.Equal(got, []string{"s"}) {
		t.Errorf("presence, subscribed: %q", got)
	}
	dave.iqErr("get", aliceBare, get, stanza.NotAuthorized, "presence-subscription-required")

	// roster: the allowed groups only.
	alice.mustIQ("set", "", configureXML(node, "pubsub#access_model", "roster", "pubsub#roster_groups_allowed", "Work"))
	if got := carol.items(aliceBare, node); !slices.Equal(got, []string{"s"}) {
		t.Errorf("roster, in group: %q", got)
	}
	bob.iqErr("get", aliceBare, get, stanza.NotAuthorized, "not-in-roster-group")
	dave.iqErr("get", aliceBare, get, stanza.NotAuthorized, "not-in-roster-group")
	// The form offers the owner's groups.
	res := alice.mustIQ("get", "", `<pubsub xmlns='`+nsOwner+`'><configure node='`+node+`'/></pubsub>`)
	if s := res.String(); !strings.Contains(s, "Friends") || !strings.Contains(s, "Work") {
		t.Errorf("roster groups not offered: %s", s)
	}

	// whitelist: the owner, then the members it adds.
	alice.mustIQ("set", "", configureXML(node, "pubsub#access_model", "whitelist"))
	if got := alice.items("", node); !slices.Equal(got, []string{"s"}) {
		t.Errorf("whitelist, owner: %q", got)
	}
	bob.iqErr("get", aliceBare, get, stanza.NotAllowed, "closed-node")
	affs := func(inner string) string {
		return `<pubsub xmlns='` + nsOwner + `'><affiliations node='` + node + `'>` + inner + `</affiliations></pubsub>`
	}
	alice.mustIQ("set", "", affs(`<affiliation jid='bob@`+srv.Domain+`/pc' affiliation='member'/>`))
	if got := bob.items(aliceBare, node); !slices.Equal(got, []string{"s"}) {
		t.Errorf("whitelist, member: %q", got)
	}
	res = alice.mustIQ("get", "", affs(""))
	if s := res.String(); !strings.Contains(s, `jid="bob@`+srv.Domain+`"`) || !strings.Contains(s, `affiliation="owner"`) {
		t.Errorf("affiliations: %s", s)
	}
	// bob sees his own affiliation (§5.7).
	res = bob.mustIQ("get", aliceBare, `<pubsub xmlns='`+nsPubSub+`'><affiliations/></pubsub>`)
	if s := res.String(); !strings.Contains(s, `node="`+node+`"`) || !strings.Contains(s, `affiliation="member"`) {
		t.Errorf("bob's affiliations: %s", s)
	}
	alice.iqErr("set", "", affs(`<affiliation jid='`+aliceBare+`' affiliation='none'/>`), stanza.NotAcceptable, "")
	alice.iqErr("set", "", affs(`<affiliation jid='dave@`+srv.Domain+`' affiliation='outcast'/>`), stanza.NotAcceptable, "")
	bob.iqErr("set", aliceBare, affs(`<affiliation jid='dave@`+srv.Domain+`' affiliation='member'/>`), stanza.Forbidden, "")
	alice.mustIQ("set", "", affs(`<affiliation jid='bob@`+srv.Domain+`' affiliation='none'/>`))
	bob.iqErr("get", aliceBare, get, stanza.NotAllowed, "closed-node")

	// open: anyone.
	alice.mustIQ("set", "", configureXML(node, "pubsub#access_model", "open"))
	if got := dave.items(aliceBare, node); !slices.Equal(got, []string{"s"}) {
		t.Errorf("open, stranger: %q", got)
	}
	// authorize is not offered.
	alice.iqErr("set", "", configureXML(node, "pubsub#access_model", "authorize"), stanza.NotAcceptable, "unsupported-access-model")
	// Subscription options are not offered (explicit subscriptions are:
	// subscribe_test.go).
	se := dave.iqErr("set", aliceBare, `<pubsub xmlns='`+nsPubSub+`'><options node='`+node+`' jid='dave@`+srv.Domain+`'/></pubsub>`,
		stanza.FeatureNotImplemented, "unsupported")
	if se.App.Attribute("feature") != "subscription-options" {
		t.Errorf("unsupported feature %q", se.App.Attribute("feature"))
	}
	// publish_model open lets others publish to an existing node.
	dave.iqErr("set", aliceBare, publishXML(node, "d", geo("dave")), stanza.Forbidden, "")
	alice.mustIQ("set", "", configureXML(node, "pubsub#publish_model", "open"))
	dave.publish(aliceBare, node, "d", geo("dave"))
}

// TestConfigure: the node_config form, its errors, and a lower
// max_items trimming the items at once.
func TestConfigure(t *testing.T) {
	srv := start(t, func(c *pep.Config) { c.MaxItems = 50 })
	alice := login(t, srv, "alice", "phone")
	bob := login(t, srv, "bob", "pc")
	subscribe(t, srv, "alice", "bob")
	node := "urn:example:log"
	for _, id := range []string{"1", "2", "3", "4"} {
		alice.publish("", node, id, geo(id), "pubsub#max_items", "10")
	}
	owner := func(inner string) string { return `<pubsub xmlns='` + nsOwner + `'>` + inner + `</pubsub>` }
	res := alice.mustIQ("get", "", owner(`<configure node='`+node+`'/>`))
	form := res.String()
	for _, f := range []string{"pubsub#access_model", "pubsub#max_items", "pubsub#persist_items", "pubsub#notify_retract",
		"pubsub#send_last_published_item", "pubsub#deliver_notifications", "pubsub#title", "pubsub#roster_groups_allowed",
		"pubsub#publish_model", "pubsub#deliver_payloads", "pubsub#notify_delete", "pubsub#notify_config", "pubsub#notification_type"} {
		if !strings.Contains(form, `var="`+f+`"`) {
			t.Errorf("the form lacks %s", f)
		}
	}
	alice.mustIQ("set", "", configureXML(node, "pubsub#max_items", "2", "pubsub#title", "Log", "pubsub#notify_retract", "false",
		"pubsub#send_last_published_item", "never", "pubsub#deliver_payloads", "0"))
	for field, want := range map[string]string{"pubsub#max_items": "2", "pubsub#title": "Log", "pubsub#notify_retract": "0",
		"pubsub#send_last_published_item": "never", "pubsub#deliver_payloads": "0", "pubsub#access_model": "presence"} {
		if got := alice.configField(node, field); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	if got := alice.items("", node); !slices.Equal(got, []string{"4", "3"}) {
		t.Errorf("items after max_items 2: %q", got)
	}
	// 'max' is the server's limit; the limit itself shows as max.
	alice.mustIQ("set", "", configureXML(node, "pubsub#max_items", "max"))
	if got := alice.configField(node, "pubsub#max_items"); got != "max" {
		t.Errorf("max_items = %q, want max", got)
	}
	alice.mustIQ("set", "", configureXML(node, "pubsub#max_items", "50"))
	if got := alice.configField(node, "pubsub#max_items"); got != "max" {
		t.Errorf("max_items 50 = %q, want max", got)
	}
	// A cancelled form changes nothing.
	alice.mustIQ("set", "", owner(`<configure node='`+node+`'><x xmlns='jabber:x:data' type='cancel'/></configure>`))
	for _, tc := range []struct {
		name   string
		fields []string
	}{
		{"too many items", []string{"pubsub#max_items", "51"}},
		{"zero items", []string{"pubsub#max_items", "0"}},
		{"not a number", []string{"pubsub#max_items", "many"}},
		{"unknown field", []string{"pubsub#frobnicate", "1"}},
		{"not a boolean", []string{"pubsub#notify_retract", "maybe"}},
		{"unknown model", []string{"pubsub#access_model", "friends"}},
		{"transient", []string{"pubsub#persist_items", "0"}},
		{"long title", []string{"pubsub#title", strings.Repeat("t", 2000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice.t = t
			alice.iqErr("set", "", configureXML(node, tc.fields...), stanza.NotAcceptable, "")
		})
	}
	alice.t = t
	alice.iqErr("set", "", owner(`<configure node='`+node+`'>`+formXML("urn:example:other")+`</configure>`), stanza.BadRequest, "")
	alice.iqErr("set", "", owner(`<configure node='`+node+`'/>`), stanza.BadRequest, "")
	alice.iqErr("set", "", configureXML("urn:example:none", "pubsub#title", "x"), stanza.ItemNotFound, "")
	alice.iqErr("get", "", owner(`<configure node='urn:example:none'/>`), stanza.ItemNotFound, "")
	bob.iqErr("get", alice.jid.Bare().String(), owner(`<configure node='`+node+`'/>`), stanza.Forbidden, "")
	bob.iqErr("set", alice.jid.Bare().String(), configureXML(node, "pubsub#title", "mine"), stanza.Forbidden, "")
	// The default configuration (§8.3).
	res = alice.mustIQ("get", "", owner(`<default/>`))
	if s := res.String(); !strings.Contains(s, "pubsub#access_model") || !strings.Contains(s, ">presence<") {
		t.Errorf("default form: %s", s)
	}
	// Create and create-and-configure.
	alice.mustIQ("set", "", `<pubsub xmlns='`+nsPubSub+`'><create node='urn:example:made'/><configure>`+
		formXML(pep.NSNodeConfig, "pubsub#access_model", "whitelist")+`</configure></pubsub>`)
	if got := alice.configField("urn:example:made", "pubsub#access_model"); got != "whitelist" {
		t.Errorf("created with access_model %q", got)
	}
	alice.iqErr("set", "", `<pubsub xmlns='`+nsPubSub+`'><create node='urn:example:made'/></pubsub>`, stanza.Conflict, "")
	alice.iqErr("set", "", `<pubsub xmlns='`+nsPubSub+`'><create/></pubsub>`, stanza.NotAcceptable, "nodeid-required")
	bob.iqErr("set", alice.jid.Bare().String(), `<pubsub xmlns='`+nsPubSub+`'><create node='x'/></pubsub>`, stanza.Forbidden, "")
}
