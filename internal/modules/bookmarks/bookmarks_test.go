package bookmarks_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// checkConference checks the fields of a XEP-0048 or XEP-0402
// <conference/>: name, autojoin, nick, password and the extension (an
// element's local name, or "").
func checkConference(t *testing.T, what string, c *xmlstream.Element, name, autojoin, nick, password, ext string) {
	t.Helper()
	if c == nil {
		t.Fatalf("%s: no conference", what)
	}
	space := c.Name.Space
	if c.Attribute("name") != name || c.Attribute("autojoin") != autojoin {
		t.Errorf("%s: name %q autojoin %q, want %q %q (%s)", what, c.Attribute("name"), c.Attribute("autojoin"), name, autojoin, c)
	}
	text := func(local string) string {
		if e := c.Child(space, local); e != nil {
			return e.Text()
		}
		return ""
	}
	if text("nick") != nick || text("password") != password {
		t.Errorf("%s: nick %q password %q, want %q %q (%s)", what, text("nick"), text("password"), nick, password, c)
	}
	var exts []string
	holder := c
	if space == ns402 {
		holder = c.Child(ns402, "extensions")
	}
	if holder != nil {
		for _, e := range holder.ChildrenNS("") {
			if e.Name.Space != space {
				exts = append(exts, e.Name.Local)
			}
		}
	}
	if strings.Join(exts, " ") != ext {
		t.Errorf("%s: extensions %q, want %q (%s)", what, exts, ext, c)
	}
}

// TestDisco: the account advertises the compat features and XEP-0411's.
func TestDisco(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone", false)
	res := alice.mustIQ("get", `<query xmlns='`+stanza.NSDiscoInfo+`'/>`)
	q := res.Child(stanza.NSDiscoInfo, "query")
	var features []string
	for _, f := range q.ChildrenNS(stanza.NSDiscoInfo) {
		if f.Name.Local == "feature" {
			features = append(features, f.Attribute("var"))
		}
	}
	for _, want := range []string{ns402 + "#compat", ns402 + "#compat-pep", "urn:xmpp:bookmarks-conversion:0"} {
		if !slices.Contains(features, want) {
			t.Errorf("account disco#info lacks %s: %q", want, features)
		}
	}
}

// Test402ToLegacy: a XEP-0402 publish shows up in private storage and in
// the legacy PEP item (extensions as conference children, <url/> kept);
// a retraction removes it from both; each change is one notification per
// node to the other resource (nothing syncs back).
func Test402ToLegacy(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone", true)
	pc := login(t, srv, "alice", "pc", true)
	// A legacy client stored a URL bookmark first.
	pc.setPrivate(`<storage xmlns='storage:bookmarks'><url name='Ode' url='https://example.org/'/></storage>`)
	pc.events(ns48)

	alice.publish402("council@conference.underhill.org",
		`<conference xmlns='urn:xmpp:bookmarks:1' name='Council of Oberon' autojoin='true'><nick>Puck</nick><password>pw1</password>`+
			`<extensions><state xmlns='http://myclient.example/bookmark/state' minimized='true'/></extensions></conference>`)
	alice.publish402("orchard@chat.shakespeare.lit", `<conference xmlns='urn:xmpp:bookmarks:1'/>`)

	st := alice.private()
	if got := rooms(st); got != "<url> council@conference.underhill.org orchard@chat.shakespeare.lit" {
		t.Errorf("private storage rooms: %s (%s)", got, st)
	}
	var council *xmlstream.Element
	for _, c := range st.ChildrenNS(ns48) {
		if c.Attribute("jid") == "council@conference.underhill.org" {
			council = c
		}
	}
	checkConference(t, "private council", council, "Council of Oberon", "true", "Puck", "pw1", "state")
	if legacy := alice.legacy(); rooms(legacy) != rooms(st) {
		t.Errorf("legacy PEP item: %s, want the rooms of %s", legacy, st)
	}
	if got := alice.configField(ns48, "pubsub#access_model"); got != "whitelist" {
		t.Errorf("the legacy node's access model is %q, want whitelist", got)
	}
	// Two publishes: two XEP-0402 events and two legacy ones, no more.
	if ev := pc.events(ns402); len(ev) != 2 {
		t.Errorf("pc got %d XEP-0402 events, want 2: %v", len(ev), ev)
	}
	if ev := pc.events(ns48); len(ev) != 2 {
		t.Errorf("pc got %d legacy events, want 2: %v", len(ev), ev)
	}

	// A change of a bookmark is a change in place.
	alice.publish402("council@conference.underhill.org", `<conference xmlns='urn:xmpp:bookmarks:1' name='Council' autojoin='false'/>`)
	st = alice.private()
	if got := rooms(st); got != "<url> council@conference.underhill.org orchard@chat.shakespeare.lit" {
		t.Errorf("after the change: %s", got)
	}
	checkConference(t, "changed council", st.Child(ns48, "conference"), "Council", "false", "", "", "")

	alice.retract402("council@conference.underhill.org")
	st = alice.private()
	if got := rooms(st); got != "<url> orchard@chat.shakespeare.lit" {
		t.Errorf("after the retraction: %s", got)
	}
	if got := rooms(alice.legacy()); got != "<url> orchard@chat.shakespeare.lit" {
		t.Errorf("legacy item after the retraction: %s", got)
	}
	pc.events(ns402)
	if ev := pc.events(ns48); len(ev) != 2 {
		t.Errorf("pc got %d legacy events for a change and a retraction, want 2", len(ev))
	}
}

// TestPrivateTo402: a private storage set becomes one XEP-0402 item per
// room, on a node with the XEP's configuration, notified; a later set
// publishes what changed and retracts what is gone, and leaves alone
// what did not change.
func TestPrivateTo402(t *testing.T) {
	srv := start(t, nil)
	legacyClient := login(t, srv, "alice", "legacy", true)
	modern := login(t, srv, "alice", "modern", true)
	legacyClient.setPrivate(`<storage xmlns='storage:bookmarks'>` +
		`<conference jid='Council@Conference.Underhill.org' name='Council of Oberon' autojoin='1'><nick>Puck</nick><password>pw</password><x xmlns='urn:example:ext' a='1'/></conference>` +
		`<conference jid='orchard@chat.shakespeare.lit' name='Orchard'/>` +
		`<conference jid='not a jid@@' name='bad'/>` +
		`<url name='Ode' url='https://example.org/'/></storage>`)
	items := modern.items(ns402)
	if len(items) != 2 {
		t.Fatalf("XEP-0402 items: %v", items)
	}
	checkConference(t, "council item", items["council@conference.underhill.org"], "Council of Oberon", "true", "Puck", "pw", "x")
	checkConference(t, "orchard item", items["orchard@chat.shakespeare.lit"], "Orchard", "false", "", "", "")
	for field, want := range map[string]string{
		"pubsub#access_model":             "whitelist",
		"pubsub#max_items":                "max",
		"pubsub#persist_items":            "1",
		"pubsub#send_last_published_item": "never",
	} {
		if got := modern.configField(ns402, field); got != want {
			t.Errorf("XEP-0402 node %s = %q, want %q", field, got, want)
		}
	}
	if ev := modern.events(ns402); len(ev) != 2 {
		t.Errorf("modern got %d XEP-0402 events, want 2: %v", len(ev), ev)
	}
	// The legacy PEP copy too, with one event; private storage as set.
	if got := rooms(modern.legacy()); got != "Council@Conference.Underhill.org orchard@chat.shakespeare.lit not a jid@@ <url>" {
		t.Errorf("legacy PEP item: %s", got)
	}
	if ev := modern.events(ns48); len(ev) != 1 {
		t.Errorf("modern got %d legacy events, want 1", len(ev))
	}

	// Orchard changes, council goes, a new one comes.
	legacyClient.setPrivate(`<storage xmlns='storage:bookmarks'>` +
		`<conference jid='orchard@chat.shakespeare.lit' name='Orchard' autojoin='true'/>` +
		`<conference jid='balcony@chat.shakespeare.lit'><nick>Romeo</nick></conference></storage>`)
	items = modern.items(ns402)
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range items {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, []string{"balcony@chat.shakespeare.lit", "orchard@chat.shakespeare.lit"}) {
		t.Errorf("items after the second set: %q", got)
	}
	checkConference(t, "orchard now", items["orchard@chat.shakespeare.lit"], "Orchard", "true", "", "", "")
	var published, retracted []string
	for _, ev := range modern.events(ns402) {
		for _, c := range ev.ChildrenNS(nsEvent) {
			switch c.Name.Local {
			case "item":
				published = append(published, c.Attribute("id"))
			case "retract":
				retracted = append(retracted, c.Attribute("id"))
			}
		}
	}
	slices.Sort(published)
	if !slices.Equal(published, []string{"balcony@chat.shakespeare.lit", "orchard@chat.shakespeare.lit"}) ||
		!slices.Equal(retracted, []string{"council@conference.underhill.org"}) {
		t.Errorf("events: published %q retracted %q", published, retracted)
	}

	// The same list again changes nothing in XEP-0402.
	legacyClient.setPrivate(`<storage xmlns='storage:bookmarks'>` +
		`<conference jid='orchard@chat.shakespeare.lit' name='Orchard' autojoin='true'/>` +
		`<conference jid='balcony@chat.shakespeare.lit'><nick>Romeo</nick></conference></storage>`)
	if ev := modern.events(ns402); len(ev) != 0 {
		t.Errorf("an unchanged list sent %d XEP-0402 events", len(ev))
	}
}

// TestLegacyPEPTo402: XEP-0048 published in PEP (the #compat-pep case)
// becomes XEP-0402 items and private storage.
func TestLegacyPEPTo402(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone", true)
	alice.mustIQ("set", `<pubsub xmlns='`+nsPubSub+`'><publish node='storage:bookmarks'><item id='current'>`+
		`<storage xmlns='storage:bookmarks'><conference jid='council@conference.underhill.org' autojoin='true' name='Council'><nick>Puck</nick></conference></storage>`+
		`</item></publish></pubsub>`)
	checkConference(t, "XEP-0402 item", alice.items(ns402)["council@conference.underhill.org"], "Council", "true", "Puck", "", "")
	if got := rooms(alice.private()); got != "council@conference.underhill.org" {
		t.Errorf("private storage: %s", got)
	}
	// And back: a XEP-0402 retraction empties both.
	alice.retract402("council@conference.underhill.org")
	if got := rooms(alice.private()); got != "" {
		t.Errorf("private storage after the retraction: %s", got)
	}
	if got := rooms(alice.legacy()); got != "" {
		t.Errorf("legacy item after the retraction: %s", got)
	}
}

// TestPrivateGetFrom402: with nothing in private storage, a get returns
// the XEP-0402 bookmarks.
func TestPrivateGetFrom402(t *testing.T) {
	srv := start(t, nil)
	// Stored by a server that ran without conversion: XEP-0402 items only.
	if err := srv.Store().CreatePubSubNode(t.Context(), "alice", srv.Domain, pubsubNode(ns402), 0); err != nil {
		t.Fatal(err)
	}
	publishStored(t, srv, ns402, "council@conference.underhill.org", `<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'><nick>Puck</nick></conference>`)
	alice := login(t, srv, "alice", "phone", false)
	st := alice.private()
	if got := rooms(st); got != "council@conference.underhill.org" {
		t.Fatalf("private storage: %s", st)
	}
	checkConference(t, "converted", st.Child(ns48, "conference"), "", "true", "Puck", "", "")
}

// TestConversionAtLogin: bookmarks only in private storage become
// XEP-0402 items when a session comes online (XEP-0411 §3).
func TestConversionAtLogin(t *testing.T) {
	srv := start(t, nil)
	doc := `<storage xmlns='storage:bookmarks'><conference jid='council@conference.underhill.org' autojoin='true'><nick>Puck</nick></conference></storage>`
	if err := srv.Store().PutXML(t.Context(), "alice", srv.Domain, "private:storage:bookmarks storage", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	alice := login(t, srv, "alice", "phone", true)
	checkConference(t, "converted at login", alice.items(ns402)["council@conference.underhill.org"], "", "true", "Puck", "", "")
	if got := rooms(alice.legacy()); got != "council@conference.underhill.org" {
		t.Errorf("legacy item: %s", got)
	}
	// A second login converts nothing more (the node exists).
	pc := login(t, srv, "alice", "pc", true)
	if ev := pc.events(ns402); len(ev) != 0 {
		t.Errorf("second login: %d events", len(ev))
	}
}

// TestLimits: private storage bookmarks that PEP could not hold are
// refused with not-acceptable, and nothing is stored.
func TestLimits(t *testing.T) {
	srv := start(t, func(c *pep.Config) { c.MaxItems = 3; c.MaxItemBytes = 2000 })
	alice := login(t, srv, "alice", "phone", false)
	var many, big strings.Builder
	for i := range 4 {
		fmt.Fprintf(&many, `<conference jid='room%d@conference.example.org'/>`, i)
	}
	alice.iqErr("set", `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>`+many.String()+`</storage></query>`, stanza.NotAcceptable)
	big.WriteString(`<conference jid='room@conference.example.org' name='` + strings.Repeat("x", 2000) + `'/>`)
	alice.iqErr("set", `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>`+big.String()+`</storage></query>`, stanza.NotAcceptable)
	if got := rooms(alice.private()); got != "" {
		t.Errorf("stored anyway: %s", got)
	}
	if n := len(alice.items(ns402)); n != 0 {
		t.Errorf("%d XEP-0402 items", n)
	}
	// Within the limits it works.
	alice.setPrivate(`<storage xmlns='storage:bookmarks'><conference jid='room@conference.example.org'/></storage>`)
	if n := len(alice.items(ns402)); n != 1 {
		t.Errorf("%d XEP-0402 items, want 1", n)
	}
}

// TestNodeConfiguredOtherwise: a XEP-0402 node a client created with
// another configuration keeps it, and the sync still publishes.
func TestNodeConfiguredOtherwise(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone", false)
	alice.mustIQ("set", `<pubsub xmlns='`+nsPubSub+`'><create node='`+ns402+`'/><configure><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='FORM_TYPE' type='hidden'><value>`+pep.NSNodeConfig+`</value></field><field var='pubsub#max_items'><value>10</value></field></x></configure></pubsub>`)
	alice.setPrivate(`<storage xmlns='storage:bookmarks'><conference jid='room@conference.example.org'/></storage>`)
	if n := len(alice.items(ns402)); n != 1 {
		t.Errorf("%d XEP-0402 items, want 1", n)
	}
	if got := alice.configField(ns402, "pubsub#max_items"); got != "10" {
		t.Errorf("max_items = %q, want the client's 10", got)
	}
}

// TestNodeDeleted: deleting (or purging) the XEP-0402 node empties the
// XEP-0048 lists of their conferences, keeps their URLs, and a later
// login does not bring the bookmarks back.
func TestNodeDeleted(t *testing.T) {
	for _, op := range []string{"delete", "purge"} {
		t.Run(op, func(t *testing.T) {
			srv := start(t, nil)
			alice := login(t, srv, "alice", "phone", true)
			alice.setPrivate(`<storage xmlns='storage:bookmarks'><conference jid='room@conference.example.org' autojoin='true'/><url name='Ode' url='https://example.org/'/></storage>`)
			if n := len(alice.items(ns402)); n != 1 {
				t.Fatalf("%d XEP-0402 items, want 1", n)
			}
			alice.mustIQ("set", `<pubsub xmlns='`+pep.NSOwner+`'><`+op+` node='`+ns402+`'/></pubsub>`)
			if got := rooms(alice.private()); got != "<url>" {
				t.Errorf("private storage after the %s: %s", op, got)
			}
			if got := rooms(alice.legacy()); got != "<url>" {
				t.Errorf("legacy item after the %s: %s", op, got)
			}
			pc := login(t, srv, "alice", "pc", true)
			if n := len(pc.items(ns402)); n != 0 {
				t.Errorf("after a new login: %d XEP-0402 items", n)
			}
		})
	}
}

// TestConcurrentChanges: a XEP-0402 client and a private-storage client
// change the bookmarks at the same time; when both are done the lists
// agree. (Crossings are rare on loopback: this checks that the syncs
// converge and race-free, not that the lock is needed.)
func TestConcurrentChanges(t *testing.T) {
	srv := start(t, nil)
	modern := login(t, srv, "alice", "modern", false)
	legacy := login(t, srv, "alice", "legacy", false)
	const rounds = 15
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range rounds {
			modern.publish402(fmt.Sprintf("m%d@conference.example.org", i), `<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/>`)
		}
	}()
	for i := range rounds {
		legacy.setPrivate(fmt.Sprintf(`<storage xmlns='storage:bookmarks'><conference jid='l%d@conference.example.org'/></storage>`, i))
	}
	<-done
	items := legacy.items(ns402)
	var want []string
	for id := range items {
		want = append(want, id)
	}
	slices.Sort(want)
	for what, st := range map[string]*xmlstream.Element{"private storage": legacy.private(), "legacy item": legacy.legacy()} {
		var got []string
		for room := range conferences(st) {
			got = append(got, room)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s has %q, the XEP-0402 items are %q", what, got, want)
		}
	}
}

// TestReload: a reload that turns the module off leaves private storage
// to the private module and pep without its hooks; one that turns it on
// again, or rebuilds it with pep, syncs each change once.
func TestReload(t *testing.T) {
	srv := start(t, nil)
	reload := func(edit func(*config.Config)) {
		t.Helper()
		cfg := srv.Server.Config()
		settings := map[string]any{}
		for k, v := range cfg.Modules.Settings {
			settings[k] = v
		}
		cfg.Modules.Settings = settings
		cfg.Modules.Disabled = slices.Clone(cfg.Modules.Disabled)
		edit(&cfg)
		if _, err := srv.Reload(t.Context(), cfg); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}
	reload(func(c *config.Config) { c.Modules.Disabled = append(c.Modules.Disabled, "bookmarks") })
	alice := login(t, srv, "alice", "phone", true)
	alice.setPrivate(`<storage xmlns='storage:bookmarks'><conference jid='off@conference.example.org'/></storage>`)
	if n := len(alice.items(ns402)); n != 0 {
		t.Errorf("bookmarks off: the private set made %d XEP-0402 items", n)
	}
	if got := rooms(alice.private()); got != "off@conference.example.org" {
		t.Errorf("bookmarks off: private storage %q", got)
	}
	alice.publish402("pep@conference.example.org", `<conference xmlns='urn:xmpp:bookmarks:1'/>`)
	if got := rooms(alice.private()); got != "off@conference.example.org" {
		t.Errorf("bookmarks off: a XEP-0402 publish changed private storage: %q", got)
	}
	alice.events(ns48)

	reload(func(c *config.Config) {
		c.Modules.Disabled = slices.DeleteFunc(c.Modules.Disabled, func(s string) bool { return s == "bookmarks" })
	})
	alice.publish402("on@conference.example.org", `<conference xmlns='urn:xmpp:bookmarks:1'/>`)
	if ev := alice.events(ns48); len(ev) != 1 {
		t.Errorf("bookmarks on again: %d legacy events for one publish, want 1", len(ev))
	}

	// pep rebuilt with new settings: bookmarks with it.
	reload(func(c *config.Config) {
		cfg := *pep.Info.Config.(*pep.Config)
		cfg.MaxItems = 100
		c.Modules.Settings["pep"] = &cfg
	})
	alice.publish402("rebuilt@conference.example.org", `<conference xmlns='urn:xmpp:bookmarks:1'/>`)
	if ev := alice.events(ns48); len(ev) != 1 {
		t.Errorf("after rebuilding pep: %d legacy events for one publish, want 1", len(ev))
	}
	alice.setPrivate(`<storage xmlns='storage:bookmarks'><conference jid='last@conference.example.org'/></storage>`)
	if got := alice.items(ns402); len(got) != 1 || got["last@conference.example.org"] == nil {
		t.Errorf("after rebuilding pep, a private set: items %v", got)
	}
}
