package muc_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/muc"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// hatsOf returns the hats of a presence as "uri=title".
func hatsOf(p *xmlstream.Element) []string {
	var out []string
	if h := p.Child(muc.NSHats, "hats"); h != nil {
		for _, e := range h.ChildrenNS(muc.NSHats) {
			out = append(out, e.Attribute("uri")+"="+e.Attribute("title"))
		}
	}
	return out
}

// TestHats: an owner gives a user a hat (XEP-0317) and the room shows it
// in the user's presence to everyone, and to those who enter later; a
// hat a client claims itself is removed; others may not give hats; a
// persistent room keeps them across a restart; taking the hat off shows
// the presence without it. Rooms advertise urn:xmpp:hats:0.
func TestHats(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.join("Alice", "")
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_persistentroom'><value>1</value></field></x></query>`)
	if feats := features(alice.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)); !slices.Contains(feats, muc.NSHats) {
		t.Errorf("room features %v lack %s", feats, muc.NSHats)
	}
	// A hat bob claims is not his to claim.
	bob.r.Send(`<presence to='` + room + `/Bob'><x xmlns='` + muc.NS + `'/><hats xmlns='urn:xmpp:hats:0'><hat uri='urn:x:king' title='King'/></hats></presence>`)
	if p := alice.expect("presence", room+"/Bob"); hatsOf(p) != nil {
		t.Errorf("a claimed hat is shown: %s", p)
	}
	for bob.next().Name.Local != "message" { // to the subject
	}

	m := srv.Module("muc").(*muc.Module)
	roomJID, aliceJID, bobJID := jid.MustParse(room), jid.MustParse("alice@localhost"), jid.MustParse("bob@localhost/b")
	ta := muc.Hat{URI: "http://tech.example.edu/hats#TeacherAssistant", Title: "Teacher's Assistant"}
	var se *stanza.Error
	if err := m.DonHat(t.Context(), roomJID, bobJID, bobJID, ta); !errors.As(err, &se) || se.Condition != stanza.Forbidden {
		t.Errorf("bob gives himself a hat: %v, want forbidden", err)
	}
	if err := m.DonHat(t.Context(), roomJID, aliceJID, bobJID, muc.Hat{URI: "urn:x"}); !errors.As(err, &se) || se.Condition != stanza.BadRequest {
		t.Errorf("a hat without a title: %v, want bad-request", err)
	}
	if err := m.DonHat(t.Context(), roomJID, aliceJID, bobJID, ta); err != nil {
		t.Fatal(err)
	}
	want := []string{ta.URI + "=" + ta.Title}
	for _, c := range []*client{alice, bob} {
		if p := c.expect("presence", room+"/Bob"); !slices.Equal(hatsOf(p), want) {
			t.Errorf("%s: bob's presence has hats %v, want %v: %s", c.jid, hatsOf(p), want, p)
		}
	}
	others, _, _ := login(t, srv, "carol", "c").join("Carol", "")
	for _, p := range others {
		if stanza.From(p) == room+"/Bob" && !slices.Equal(hatsOf(p), want) {
			t.Errorf("carol sees bob with hats %v, want %v", hatsOf(p), want)
		}
	}

	// After a restart the stored room still knows bob's hat.
	srv2 := xmpptest.Start(t, func(c *config.Config) {
		c.Server.DataDir = srv.Config.Server.DataDir
		c.Storage = srv.Config.Storage
	})
	alice2, bob2 := login(t, srv2, "alice", "a2"), login(t, srv2, "bob", "b2")
	alice2.join("Alice", "")
	bob2.join("Bob", "")
	if p := alice2.expect("presence", room+"/Bob"); !slices.Equal(hatsOf(p), want) {
		t.Errorf("after a restart bob's presence has hats %v, want %v", hatsOf(p), want)
	}
	m2 := srv2.Module("muc").(*muc.Module)
	if err := m2.DoffHat(t.Context(), roomJID, aliceJID, bobJID, "urn:x:none"); !errors.As(err, &se) || se.Condition != stanza.ItemNotFound {
		t.Errorf("doff a hat bob does not wear: %v, want item-not-found", err)
	}
	if err := m2.DoffHat(t.Context(), roomJID, aliceJID, bobJID, ta.URI); err != nil {
		t.Fatal(err)
	}
	if p := alice2.expect("presence", room+"/Bob"); hatsOf(p) != nil {
		t.Errorf("bob's presence still has hats: %s", p)
	}
	if h := m2.Hats(roomJID, bobJID); h != nil {
		t.Errorf("Hats after doff: %v", h)
	}
}
