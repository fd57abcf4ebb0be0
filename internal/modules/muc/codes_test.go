package muc_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/modules/muc"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// codesOf returns the muc#user status codes of a stanza.
func codesOf(e *xmlstream.Element) []string {
	var out []string
	if x := e.Child(muc.NSUser, "x"); x != nil {
		for _, s := range x.ChildrenNS(muc.NSUser) {
			if s.Name.Local == "status" {
				out = append(out, s.Attribute("code"))
			}
		}
	}
	return out
}

// TestCodesAndLimits: a room of max_occupants refuses one more
// (service-unavailable) but not an admin; the history on entry keeps to
// its count; a change of whois is announced with 104 and 172 or 173; a
// room that becomes members-only removes those without an affiliation
// (322), and a member who loses the membership of a members-only room is
// removed (321).
func TestCodesAndLimits(t *testing.T) {
	srv := start(t, func(c *muc.Config) {
		c.MaxOccupants = 2
		c.History = 2
	})
	alice, bob := aliceAndBobOn(t, srv)
	carol := login(t, srv, "carol", "c")
	for i := range 3 {
		alice.r.Send(fmt.Sprintf(`<message to='%s' type='groupchat'><body>msg %d</body></message>`, room, i))
		alice.expect("message", room+"/Alice")
		bob.expect("message", room+"/Alice")
	}

	// Occupants per room: full for carol until she is an admin.
	carol.joinErr("Carol", "", stanza.ServiceUnavailable)
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item jid='carol@localhost' affiliation='admin'/></query>`)
	_, self, history := carol.join("Carol", "")
	if self.Child(muc.NSUser, "x").Child(muc.NSUser, "item").Attribute("affiliation") != "admin" {
		t.Errorf("carol's presence: %s", self)
	}
	var bodies []string
	for _, h := range history {
		bodies = append(bodies, body(h))
	}
	if want := []string{"msg 1", "msg 2"}; !slices.Equal(bodies, want) {
		t.Errorf("history %q, want the last %q", bodies, want)
	}
	alice.expect("presence", room+"/Carol")
	bob.expect("presence", room+"/Carol")

	// whois: 104 with 172 (now non-anonymous), then 173 (semi-anonymous).
	for _, tc := range []struct{ whois, code string }{{"anyone", "172"}, {"moderators", "173"}} {
		alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'>`+
			`<field var='muc#roomconfig_whois'><value>`+tc.whois+`</value></field></x></query>`)
		for _, c := range []*client{alice, bob, carol} {
			m := c.expect("message", room)
			if got := codesOf(m); !slices.Equal(got, []string{"104", tc.code}) {
				t.Errorf("%s: whois %s announced with %v, want 104 and %s", c.jid, tc.whois, got, tc.code)
			}
		}
	}

	// 322: the room becomes members-only and bob, without an
	// affiliation, is removed.
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_membersonly'><value>1</value></field></x></query>`)
	for _, c := range []*client{alice, bob, carol} {
		c.expect("message", room) // 104
	}
	checkGone := func(code string, clients ...*client) {
		t.Helper()
		for _, c := range clients {
			p := c.expect("presence", room+"/Bob")
			want := []string{code}
			if c == bob {
				want = append(want, "110")
			}
			if stanza.Type(p) != stanza.PresenceUnavailable || !slices.Equal(codesOf(p), want) {
				t.Errorf("%s: bob's presence %s, want unavailable with %v", c.jid, p, want)
			}
		}
	}
	checkGone("322", alice, carol, bob)
	bob.joinErr("Bob", "", stanza.RegistrationRequired)

	// 321: bob, a member now, enters (once carol left: the room is full)
	// and loses the membership.
	carol.r.Send(`<presence to='` + room + `/Carol' type='unavailable'/>`)
	carol.expect("presence", room+"/Carol")
	alice.expect("presence", room+"/Carol")
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item jid='bob@localhost' affiliation='member'/></query>`)
	bob.join("Bob", "")
	alice.expect("presence", room+"/Bob")
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item jid='bob@localhost' affiliation='none'/></query>`)
	checkGone("321", alice, bob)
}

// TestShutdown: when the server shuts down, every occupant's client is
// told it leaves with 332 before its stream ends.
func TestShutdown(t *testing.T) {
	srv, alice, bob := aliceAndBob(t)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	for _, c := range []*client{alice, bob} {
		nick := "Alice"
		if c == bob {
			nick = "Bob"
		}
		p := c.expect("presence", room+"/"+nick)
		if stanza.Type(p) != stanza.PresenceUnavailable || !slices.Equal(codesOf(p), []string{"332", "110"}) {
			t.Errorf("%s at shutdown: %s, want unavailable with 332 and 110", c.jid, p)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestReload: a reload that builds the module again with new settings
// keeps the rooms in memory, occupants and history, and applies the new
// limits to them; one that moves the service to another subdomain closes
// its rooms with 332 instead of dropping their occupants silently.
func TestReload(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.join("Alice", "")
	alice.mustIQ("set", room, instant) // a temporary room: it lives in memory only
	bob.join("Bob", "")
	alice.expect("presence", room+"/Bob")
	bob.r.Send(`<message to='` + room + `' type='groupchat'><body>before</body></message>`)
	for _, c := range []*client{alice, bob} {
		c.expect("message", room+"/Bob")
	}

	reload := func(edit func(*muc.Config)) {
		t.Helper()
		cfg := srv.Server.Config()
		settings := maps.Clone(cfg.Modules.Settings)
		mc := *muc.Info.Config.(*muc.Config)
		if cur, ok := settings["muc"].(*muc.Config); ok {
			mc = *cur
		}
		edit(&mc)
		settings["muc"] = &mc
		cfg.Modules.Settings = settings
		res, err := srv.Reload(t.Context(), cfg)
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		if !strings.Contains(strings.Join(res.Applied, "; "), "muc") {
			t.Fatalf("reload did not rebuild muc: %+v", res)
		}
	}
	reload(func(c *muc.Config) { c.MaxOccupants = 2 })

	bob.r.Send(`<message to='` + room + `' type='groupchat'><body>after</body></message>`)
	for _, c := range []*client{alice, bob} {
		if m := c.expect("message", room+"/Bob"); body(m) != "after" {
			t.Errorf("%s got %s after the reload", c.jid, m)
		}
	}
	carol := login(t, srv, "carol", "c")
	carol.joinErr("Carol", "", stanza.ServiceUnavailable) // the new max_occupants, 2, applies to the room
	reload(func(c *muc.Config) { c.MaxOccupants = 10 })
	others, _, history := carol.join("Carol", `<history maxstanzas='5'/>`)
	if len(others) != 2 || len(history) != 2 || body(history[0]) != "before" || body(history[1]) != "after" {
		t.Errorf("carol after two reloads: %d others, history %v; want alice and bob, before and after", len(others), history)
	}
	for _, c := range []*client{alice, bob} {
		c.expect("presence", room+"/Carol")
	}

	reload(func(c *muc.Config) { c.Subdomain = "rooms" })
	for _, c := range []*client{alice, bob, carol} {
		nick := map[*client]string{alice: "Alice", bob: "Bob", carol: "Carol"}[c]
		p := c.expect("presence", room+"/"+nick)
		if stanza.Type(p) != stanza.PresenceUnavailable || !slices.Equal(codesOf(p), []string{"332", "110"}) {
			t.Errorf("%s when the service moved: %s, want unavailable with 332 and 110", c.jid, p)
		}
	}

	// Turned off: the same 332.
	const moved = "lobby@rooms.localhost"
	alice.r.Send(`<presence to='` + moved + `/Alice'><x xmlns='` + muc.NS + `'/></presence>`)
	for entered := false; ; {
		e := alice.next()
		if e.Name.Local == "presence" && stanza.From(e) == moved+"/Alice" && hasStatus(e, 110) {
			entered = true
		}
		if e.Name.Local == "message" && e.Child(stanza.NSClient, "subject") != nil {
			if !entered {
				t.Fatalf("entry at the new service: the subject came without a self-presence")
			}
			break
		}
	}
	cfg := srv.Server.Config()
	cfg.Modules.Disabled = append(slices.Clone(cfg.Modules.Disabled), "muc")
	if _, err := srv.Reload(t.Context(), cfg); err != nil {
		t.Fatalf("reload: %v", err)
	}
	p := alice.expect("presence", moved+"/Alice")
	if stanza.Type(p) != stanza.PresenceUnavailable || !slices.Equal(codesOf(p), []string{"332", "110"}) {
		t.Errorf("alice when muc was turned off: %s, want unavailable with 332 and 110", p)
	}
}
