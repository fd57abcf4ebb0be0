package muc_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/dataform"
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

// TestHatCommands: XEP-0317's ad-hoc commands on the room's JID. The
// owner finds them (disco#items of the commands node), runs don (form,
// then submission) and bob's presence shows the hat; doff with the form
// in the execute (the XEP's example) takes it back. Bob, a participant,
// sees no commands and may not run them; a stale session id, a form
// without a user and an unknown node get XEP-0050's errors.
func TestHatCommands(t *testing.T) {
	_, alice, bob := aliceAndBob(t)

	items := alice.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#items' node='`+muc.NSCommands+`'/>`)
	var nodes []string
	for _, it := range items.Child(stanza.NSDiscoItems, "query").ChildrenNS(stanza.NSDiscoItems) {
		nodes = append(nodes, it.Attribute("node"))
	}
	if !slices.Equal(nodes, []string{muc.NodeDonHat, muc.NodeDoffHat}) {
		t.Errorf("the owner's commands: %v", nodes)
	}
	if n := len(bob.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#items' node='`+muc.NSCommands+`'/>`).
		Child(stanza.NSDiscoItems, "query").Children); n != 0 {
		t.Errorf("a participant sees %d commands", n)
	}
	if info := alice.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#info' node='`+muc.NodeDonHat+`'/>`); !slices.Contains(features(info), muc.NSCommands) {
		t.Errorf("the command node's info: %s", info)
	}

	cmd := func(c *client, attrs, form string) *xmlstream.Element {
		return c.mustIQ("set", room, `<command xmlns='`+muc.NSCommands+`' `+attrs+`>`+form+`</command>`).Child(muc.NSCommands, "command")
	}
	submit := func(fields string) string {
		return `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>` + muc.FormHats + `</value></field>` + fields + `</x>`
	}
	first := cmd(alice, `node='`+muc.NodeDonHat+`' action='execute'`, "")
	sid := first.Attribute("sessionid")
	form, err := dataform.Parse(first.Child(dataform.NS, "x"))
	if first.Attribute("status") != "executing" || sid == "" || err != nil || form.FormType != muc.FormHats {
		t.Fatalf("don's first step: %s (%v)", first, err)
	}
	if fd, ok := form.Field("accountjid"); !ok || !fd.Required {
		t.Errorf("don's form: %s", first)
	}
	done := cmd(alice, `node='`+muc.NodeDonHat+`' sessionid='`+sid+`'`, submit(
		`<field var='accountjid'><value>bob@localhost</value></field>`+
			`<field var='hat'><value>http://tech.example.edu/hats#TeacherAssistant</value></field>`+
			`<field var='hat_title'><value>Teacher's Assistant</value></field>`))
	if done.Attribute("status") != "completed" {
		t.Fatalf("don's submission: %s", done)
	}
	for _, c := range []*client{alice, bob} {
		p := c.expect("presence", room+"/Bob")
		if got := hatsOf(p); !slices.Equal(got, []string{"http://tech.example.edu/hats#TeacherAssistant=Teacher's Assistant"}) {
			t.Errorf("%s sees bob with hats %v", c.jid, got)
		}
	}
	// The session is over: its id is stale now.
	alice.iqErr("set", room, `<command xmlns='`+muc.NSCommands+`' node='`+muc.NodeDonHat+`' sessionid='`+sid+`'>`+submit("")+`</command>`, stanza.BadRequest)

	bob.iqErr("set", room, `<command xmlns='`+muc.NSCommands+`' node='`+muc.NodeDoffHat+`' action='execute'/>`, stanza.Forbidden)
	alice.iqErr("set", room, `<command xmlns='`+muc.NSCommands+`' node='urn:xmpp:hats:commands:dance' action='execute'/>`, stanza.ItemNotFound)
	alice.iqErr("set", room, `<command xmlns='`+muc.NSCommands+`' node='`+muc.NodeDoffHat+`' action='execute'>`+
		submit(`<field var='hat'><value>urn:x</value></field>`)+`</command>`, stanza.BadRequest)

	off := cmd(alice, `node='`+muc.NodeDoffHat+`' action='execute'`, submit(
		`<field var='accountjid'><value>bob@localhost</value></field>`+
			`<field var='hat'><value>http://tech.example.edu/hats#TeacherAssistant</value></field>`))
	if off.Attribute("status") != "completed" {
		t.Fatalf("doff: %s", off)
	}
	for _, c := range []*client{alice, bob} {
		if p := c.expect("presence", room+"/Bob"); hatsOf(p) != nil {
			t.Errorf("%s still sees bob's hat: %s", c.jid, p)
		}
	}
	// A cancelled session is gone too.
	sid = cmd(alice, `node='`+muc.NodeDoffHat+`'`, "").Attribute("sessionid")
	if st := cmd(alice, `node='`+muc.NodeDoffHat+`' sessionid='`+sid+`' action='cancel'`, "").Attribute("status"); st != "canceled" {
		t.Errorf("cancel: status %q", st)
	}
	alice.iqErr("set", room, `<command xmlns='`+muc.NSCommands+`' node='`+muc.NodeDoffHat+`' sessionid='`+sid+`'>`+submit("")+`</command>`, stanza.BadRequest)
}
