package muc_test

import (
	"context"
	"fmt"
	"slices"
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
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	carol := login(t, srv, "carol", "c")
	alice.join("Alice", "")
	alice.mustIQ("set", room, instant)
	bob.join("Bob", "")
	alice.expect("presence", room+"/Bob")
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
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.join("Alice", "")
	alice.mustIQ("set", room, instant)
	bob.join("Bob", "")
	alice.expect("presence", room+"/Bob")
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
