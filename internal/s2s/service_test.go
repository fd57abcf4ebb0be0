package s2s_test

import (
	"testing"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// TestFederationService: a service of a.test (its MUC service,
// conference.a.test) federates under its own name. Bob on b.test enters a
// room there, which takes a stream from b.test to conference.a.test (its
// 'to' is a service, not a hosted domain) and one from conference.a.test
// to b.test (its 'from' is the service). "EXTERNAL": both authenticated
// with SASL EXTERNAL, a.test's certificate naming *.a.test; "dialback":
// the CAs differ, and b.test verifies conference.a.test's key with
// a.test's listener for that name (XEP-0220 §2.1.3).
func TestFederationService(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dialback bool
	}{{"EXTERNAL", false}, {"dialback", true}} {
		t.Run(tc.name, func(t *testing.T) {
			caA, caB := newCA(t), newCA(t)
			if !tc.dialback {
				caB = caA
			}
			edit := func(c *config.Config) { c.S2S.Dialback = tc.dialback }
			a, b := pair(t, caA, caB, edit, func(c *config.Config) {
				edit(c)
				c.S2S.Hosts["conference.a.test"] = c.S2S.Hosts["a.test"]
			})
			enterRemoteRoom(t, a, b)
		})
	}
}

// enterRemoteRoom has alice on a create lobby@conference.a.test and bob
// on b enter it and speak.
func enterRemoteRoom(t *testing.T, a, b *xmpptest.Server) {
	t.Helper()
	alice := a.Dial(t, a.AddUser(t, "alice", "pw"), "pw")
	bob := b.Dial(t, b.AddUser(t, "bob", "pw"), "pw")
	const room = "lobby@conference.a.test"

	// alice creates the room; without the MUC <x/> it is instant.
	send(t, alice, stanza.NewPresence(stanza.NSClient, "", room+"/alice", "", ""))
	next(t, alice, "her own presence in the room", presence("", room+"/alice"))

	enter := stanza.NewPresence(stanza.NSClient, "", room+"/bob", "", "").
		Append(xmlstream.NewElement("http://jabber.org/protocol/muc", "x"))
	send(t, bob, enter)
	next(t, bob, "alice's presence from the room", presence("", room+"/alice"))
	self := next(t, bob, "his own presence from the room", presence("", room+"/bob"))
	if !hasStatus(self, "110") {
		t.Errorf("bob's own presence %s, want status 110", self)
	}
	next(t, alice, "bob's presence", presence("", room+"/bob"))

	msg := stanza.NewMessage(stanza.NSClient, stanza.MessageGroupchat, room, "", "g1").
		Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText("hello room"))
	send(t, bob, msg)
	for _, c := range []*client.Client{alice, bob} {
		m := next(t, c, "bob's groupchat", message(room+"/bob"))
		if body := m.Child(stanza.NSClient, "body"); stanza.Type(m) != stanza.MessageGroupchat || body == nil || body.Text() != "hello room" {
			t.Errorf("%s got %s, want the groupchat \"hello room\"", c.JID(), m)
		}
	}
	if n := a.S2S().OutboundCount(); n != 1 {
		t.Errorf("a.test has %d outbound streams, want 1 (conference.a.test to b.test)", n)
	}
}

// hasStatus reports whether a MUC presence carries the status code.
func hasStatus(p *xmlstream.Element, code string) bool {
	x := p.Child("http://jabber.org/protocol/muc#user", "x")
	if x == nil {
		return false
	}
	for _, s := range x.ChildrenNS("http://jabber.org/protocol/muc#user") {
		if s.Name.Local == "status" && s.Attribute("code") == code {
			return true
		}
	}
	return false
}
