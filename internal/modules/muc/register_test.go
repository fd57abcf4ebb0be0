package muc_test

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/modules/muc"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func registerForm(nick string) string {
	return `<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>` +
		`<field var='FORM_TYPE'><value>` + muc.FormRegister + `</value></field>` +
		`<field var='muc#register_roomnick'><value>` + nick + `</value></field></x></query>`
}

// TestRegistration: registering with a room (§7.10) makes one a member
// with a reserved nick, which others may not take, which the user
// discovers (§7.12), which survives a restart, and which the user may
// give up.
func TestRegistration(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	carol := login(t, srv, "carol", "c")
	alice.join("Alice", "")
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_persistentroom'><value>1</value></field></x></query>`)

	form := bob.mustIQ("get", room, `<query xmlns='jabber:iq:register'/>`)
	x := form.FirstChild().Child("jabber:x:data", "x")
	if x == nil || x.Attribute("type") != "form" || !strings.Contains(x.String(), "muc#register_roomnick") {
		t.Fatalf("registration form: %s", form)
	}
	bob.iqErr("set", room, registerForm(""), stanza.NotAcceptable)
	bob.iqErr("set", room, `<query xmlns='jabber:iq:register'/>`, stanza.BadRequest)
	bob.iqErr("set", room, registerForm("Alice"), stanza.Conflict) // in use by alice
	bob.mustIQ("set", room, registerForm("Bobby"))
	got := bob.mustIQ("get", room, `<query xmlns='jabber:iq:register'/>`)
	if q := got.FirstChild(); q.Child("jabber:iq:register", "registered") == nil || childText(q, "username") != "Bobby" {
		t.Errorf("registered: %s", got)
	}
	info := bob.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/>`)
	if id := info.FirstChild().Child("http://jabber.org/protocol/disco#info", "identity"); id == nil || id.Attribute("name") != "Bobby" {
		t.Errorf("reserved nick discovery: %s", info)
	}
	none := carol.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/>`)
	if none.FirstChild().FirstChild() != nil {
		t.Errorf("carol has no reserved nick: %s", none)
	}
	carol.iqErr("set", room, registerForm("Bobby"), stanza.Conflict)
	carol.joinErr("Bobby", "", stanza.Conflict)
	list := alice.mustIQ("get", room, `<query xmlns='`+muc.NSAdmin+`'><item affiliation='member'/></query>`)
	if !strings.Contains(list.String(), "bob@localhost") {
		t.Errorf("bob is not a member: %s", list)
	}
	_, self, _ := bob.join("Bobby", "")
	if item(self).Attribute("affiliation") != "member" {
		t.Errorf("bob's self-presence: %s", self)
	}
	alice.expect("presence", room+"/Bobby")

	// The reservation is stored with the room.
	srv2 := xmpptest.Start(t, func(c *config.Config) {
		c.Server.DataDir = srv.Config.Server.DataDir
		c.Storage = srv.Config.Storage
	})
	carol2 := login(t, srv2, "carol", "c2")
	carol2.joinErr("Bobby", "", stanza.Conflict)

	// Giving it up: the nick is free, the membership gone.
	bob.mustIQ("set", room, `<query xmlns='jabber:iq:register'><remove/></query>`)
	if p := alice.expect("presence", room+"/Bobby"); item(p).Attribute("affiliation") != "none" {
		t.Errorf("after removal: %s", p)
	}
	bob.iqErr("set", room, `<query xmlns='jabber:iq:register'><remove/></query>`, stanza.ItemNotFound)
	carol.mustIQ("set", room, registerForm("Carol"))

	// Outcasts may not register; in a members-only room only members.
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item jid='carol@localhost' affiliation='outcast'/></query>`)
	carol.iqErr("get", room, `<query xmlns='jabber:iq:register'/>`, stanza.Forbidden)
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_membersonly'><value>1</value></field></x></query>`)
	alice.expect("message", room) // 104
	srv.AddUser(t, "dave", "pw")
	dave := login(t, srv, "dave", "d")
	dave.iqErr("set", room, registerForm("Dave"), stanza.RegistrationRequired)
}

// TestVoiceRequest: in a moderated room a visitor asks for voice
// (§7.13), the moderators get the form, one approves it (§8.6) and the
// visitor becomes a participant.
func TestVoiceRequest(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.join("Alice", "")
	request := `<message to='` + room + `'><x xmlns='jabber:x:data' type='submit'>` +
		`<field var='FORM_TYPE'><value>` + muc.FormRequest + `</value></field>` +
		`<field var='muc#role'><value>participant</value></field></x></message>`
	alice.mustIQ("set", room, instant)
	bob.join("Bob", "")
	alice.expect("presence", room+"/Bob")
	bob.r.Send(request) // not moderated: everyone has voice
	if e := bob.next(); stanza.Type(e) != "error" || !strings.Contains(e.String(), "not-allowed") {
		t.Fatalf("voice request in an unmoderated room: %s", e)
	}
	alice.mustIQ("set", room, `<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_moderatedroom'><value>1</value></field></x></query>`)
	alice.expect("message", room)
	bob.expect("message", room)
	// Make bob a visitor, as a new non-member would be.
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item nick='Bob' role='visitor'/></query>`)
	bob.expect("presence", room+"/Bob")
	alice.expect("presence", room+"/Bob")

	bob.r.Send(request)
	fwd := alice.expect("message", room)
	x := fwd.Child("jabber:x:data", "x")
	if x == nil || x.Attribute("type") != "form" || !strings.Contains(x.String(), "muc#request_allow") ||
		!strings.Contains(x.String(), ">Bob<") || !strings.Contains(x.String(), "bob@localhost/b") {
		t.Fatalf("the moderator's voice request: %s", fwd)
	}
	bob.r.Send(request) // too soon
	if e := bob.next(); stanza.Type(e) != "error" || !strings.Contains(e.String(), "resource-constraint") {
		t.Fatalf("second voice request: %s", e)
	}
	// A denial changes nothing; an approval gives voice.
	answer := func(allow string) string {
		return `<message to='` + room + `'><x xmlns='jabber:x:data' type='submit'>` +
			`<field var='FORM_TYPE'><value>` + muc.FormRequest + `</value></field>` +
			`<field var='muc#role'><value>participant</value></field>` +
			`<field var='muc#roomnick'><value>Bob</value></field>` +
			`<field var='muc#request_allow'><value>` + allow + `</value></field></x></message>`
	}
	alice.r.Send(answer("false"))
	alice.r.Send(answer("true"))
	for _, c := range []*client{bob, alice} {
		if p := c.expect("presence", room+"/Bob"); item(p).Attribute("role") != "participant" {
			t.Errorf("after approval: %s", p)
		}
	}
	bob.r.Send(request) // has voice now
	if e := bob.next(); stanza.Type(e) != "error" || !strings.Contains(e.String(), "bad-request") {
		t.Fatalf("voice request with voice: %s", e)
	}
}

// TestRoomVCard: a room's vCard (XEP-0486) is read by anyone, set by
// owners; a new avatar is announced (104 and the room's presence with
// its hash), is in the room's disco#info and is sent to newcomers.
func TestRoomVCard(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	carol := login(t, srv, "carol", "c")
	alice.join("Alice", "")
	alice.mustIQ("set", room, instant)
	bob.join("Bob", "")
	alice.expect("presence", room+"/Bob")

	empty := carol.mustIQ("get", room, `<vCard xmlns='vcard-temp'/>`)
	if v := empty.FirstChild(); v == nil || v.Name.Local != "vCard" || len(v.Children) != 0 {
		t.Errorf("no vCard yet: %s", empty)
	}
	png := []byte("\x89PNG\r\n\x1a\n not really an image")
	sum := sha1.Sum(png)
	hash := hex.EncodeToString(sum[:])
	vcard := `<vCard xmlns='vcard-temp'><FN>The Lobby</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>` +
		base64.StdEncoding.EncodeToString(png) + `</BINVAL></PHOTO></vCard>`
	bob.iqErr("set", room, vcard, stanza.Forbidden)
	alice.iqErr("set", room, `<vCard xmlns='vcard-temp'><DESC>`+strings.Repeat("x", 200<<10)+`</DESC></vCard>`, stanza.NotAcceptable)
	alice.mustIQ("set", room, vcard)
	for _, c := range []*client{alice, bob} {
		p := c.expect("presence", room)
		if photo := p.Child(muc.NSVCardUpdate, "x"); photo == nil || childText(photo, "photo") != hash {
			t.Errorf("avatar presence: %s", p)
		}
		if m := c.expect("message", room); !hasStatus(m, 104) {
			t.Errorf("avatar change: %s", m)
		}
	}
	got := carol.mustIQ("get", room, `<vCard xmlns='vcard-temp'/>`)
	if childText(got.FirstChild(), "FN") != "The Lobby" {
		t.Errorf("vCard: %s", got)
	}
	info := carol.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	if !strings.Contains(info.String(), "muc#roominfo_avatarhash") || !strings.Contains(info.String(), hash) ||
		!strings.Contains(info.String(), `var="vcard-temp"`) {
		t.Errorf("disco#info: %s", info)
	}
	// A newcomer gets the avatar's presence after the subject.
	carol.r.Send(`<presence to='` + room + `/Carol'><x xmlns='` + muc.NS + `'/></presence>`)
	var avatar *xmlstream.Element
	for avatar == nil {
		if e := carol.next(); e.Name.Local == "presence" && stanza.From(e) == room {
			avatar = e
		}
	}
	if photo := avatar.Child(muc.NSVCardUpdate, "x"); photo == nil || childText(photo, "photo") != hash {
		t.Errorf("newcomer's avatar presence: %s", avatar)
	}
}

// TestPresenceBroadcast: with muc#roomconfig_presencebroadcast leaving
// visitors out, a visitor's presence reaches no one but itself; given
// voice it is broadcast, and taken back the others see it leave.
func TestPresenceBroadcast(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	carol := login(t, srv, "carol", "c")
	alice.join("Alice", "")
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_moderatedroom'><value>1</value></field>`+
		`<field var='muc#roomconfig_presencebroadcast'><value>moderator</value><value>participant</value></field></x></query>`)
	form := alice.mustIQ("get", room, `<query xmlns='`+muc.NSOwner+`'/>`)
	if f, err := dataform.Parse(form.Child(muc.NSOwner, "query").Child(dataform.NS, "x")); err != nil ||
		!slices.Equal(f.Values("muc#roomconfig_presencebroadcast"), []string{"moderator", "participant"}) {
		t.Errorf("presencebroadcast in the form (%v): %s", err, form)
	}
	alice.iqErr("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_presencebroadcast'><value>king</value></field></x></query>`, stanza.NotAcceptable)
	_, self, _ := bob.join("Bob", "") // a visitor: only bob sees his presence
	if item(self).Attribute("role") != "visitor" {
		t.Fatalf("bob: %s", self)
	}
	others, _, _ := carol.join("Carol", "")
	for _, p := range others {
		if stanza.From(p) == room+"/Bob" {
			t.Errorf("carol sees the visitor: %s", p)
		}
	}
	if len(others) != 1 {
		t.Errorf("carol sees %d others, want alice alone", len(others))
	}
	// Carol is a visitor too: alice got neither presence. Voice for bob.
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item nick='Bob' role='participant'/></query>`)
	if p := alice.expect("presence", room+"/Bob"); item(p).Attribute("role") != "participant" {
		t.Errorf("bob with voice: %s", p)
	}
	carol.expect("presence", room+"/Bob")
	bob.expect("presence", room+"/Bob")
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item nick='Bob' role='visitor'/></query>`)
	for _, c := range []*client{alice, carol} {
		if p := c.expect("presence", room+"/Bob"); stanza.Type(p) != "unavailable" {
			t.Errorf("bob without voice, to the others: %s", p)
		}
	}
	if p := bob.expect("presence", room+"/Bob"); stanza.Type(p) == "unavailable" || item(p).Attribute("role") != "visitor" {
		t.Errorf("bob's own presence: %s", p)
	}
}
