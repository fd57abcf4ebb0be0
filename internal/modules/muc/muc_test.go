package muc_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/muc"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

const room = "lobby@conference.localhost"

func start(t *testing.T, edit func(*muc.Config)) *xmpptest.Server {
	t.Helper()
	srv := xmpptest.Start(t, func(c *config.Config) {
		if edit != nil {
			cfg := *muc.Info.Config.(*muc.Config)
			edit(&cfg)
			c.Modules.Settings["muc"] = &cfg
		}
	})
	for _, u := range []string{"alice", "bob", "carol"} {
		srv.AddUser(t, u, "pw")
	}
	return srv
}

type client struct {
	t    *testing.T
	r    *xmpptest.Raw
	jid  jid.JID
	ids  int
	held []*xmlstream.Element // read while waiting for an IQ's answer
}

func login(t *testing.T, srv *xmpptest.Server, local, res string) *client {
	t.Helper()
	r := srv.DialRaw(t)
	r.Login(local, "pw")
	c := &client{t: t, r: r, jid: r.Bind(res)}
	c.r.Send(`<presence/>`)
	for {
		e := c.r.Next()
		if e.Name.Local == "presence" && e.Attribute("from") == c.jid.String() {
			return c
		}
	}
}

// aliceAndBob starts a server where alice has created the room (an
// instant room, owner) and bob has entered it, alice seeing him come.
func aliceAndBob(t *testing.T) (*xmpptest.Server, *client, *client) {
	t.Helper()
	srv := start(t, nil)
	alice, bob := aliceAndBobOn(t, srv)
	return srv, alice, bob
}

// aliceAndBobOn is aliceAndBob on a server of the test's making.
func aliceAndBobOn(t *testing.T, srv *xmpptest.Server) (alice, bob *client) {
	t.Helper()
	alice = login(t, srv, "alice", "a")
	bob = login(t, srv, "bob", "b")
	alice.join("Alice", "")
	alice.mustIQ("set", room, instant)
	bob.join("Bob", "")
	alice.expect("presence", room+"/Bob")
	return alice, bob
}

// next returns the next stanza, skipping the user's own roster traffic.
func (c *client) next() *xmlstream.Element {
	c.t.Helper()
	if len(c.held) > 0 {
		e := c.held[0]
		c.held = c.held[1:]
		return e
	}
	for {
		e := c.r.Next()
		if e.Name.Local == "presence" && strings.HasPrefix(stanza.From(e), c.jid.Bare().String()) {
			continue
		}
		return e
	}
}

// join enters the room with nick (extra inside the MUC <x/>) and returns
// what came up to and including the self-presence and the subject.
func (c *client) join(nick, extra string) (others []*xmlstream.Element, self *xmlstream.Element, history []*xmlstream.Element) {
	c.t.Helper()
	c.r.Send(fmt.Sprintf(`<presence to='%s/%s'><x xmlns='%s'>%s</x></presence>`, room, nick, muc.NS, extra))
	for {
		e := c.next()
		switch {
		case e.Name.Local == "presence" && stanza.Type(e) == stanza.PresenceError:
			c.t.Fatalf("join as %s: %s", nick, e)
		case e.Name.Local == "presence" && hasStatus(e, 110):
			self = e
		case e.Name.Local == "presence":
			others = append(others, e)
		case e.Name.Local == "message" && e.Child(stanza.NSClient, "subject") != nil && e.Child(stanza.NSClient, "body") == nil:
			return others, self, history
		case e.Name.Local == "message":
			history = append(history, e)
		default:
			c.t.Fatalf("join: unexpected %s", e)
		}
	}
}

// joinErr enters and expects a presence error with cond.
func (c *client) joinErr(nick, extra string, cond stanza.Condition) {
	c.t.Helper()
	c.r.Send(fmt.Sprintf(`<presence to='%s/%s'><x xmlns='%s'>%s</x></presence>`, room, nick, muc.NS, extra))
	e := c.next()
	se, ok := stanza.ParseError(e)
	if e.Name.Local != "presence" || !ok || se.Condition != cond {
		c.t.Fatalf("join as %s: got %s, want %s", nick, e, cond)
	}
}

func (c *client) iq(typ, to, payload string) *xmlstream.Element {
	c.t.Helper()
	c.ids++
	id := fmt.Sprintf("q%d", c.ids)
	c.r.Send(fmt.Sprintf(`<iq type='%s' id='%s' to='%s'>%s</iq>`, typ, id, to, payload))
	var held []*xmlstream.Element
	defer func() { c.held = append(c.held, held...) }()
	for {
		e := c.next()
		if e.Name.Local == "iq" && stanza.ID(e) == id {
			return e
		}
		held = append(held, e)
	}
}

func (c *client) mustIQ(typ, to, payload string) *xmlstream.Element {
	c.t.Helper()
	res := c.iq(typ, to, payload)
	if stanza.Type(res) != stanza.IQResult {
		c.t.Fatalf("iq %s: %s", payload, res)
	}
	return res
}

func (c *client) iqErr(typ, to, payload string, cond stanza.Condition) {
	c.t.Helper()
	res := c.iq(typ, to, payload)
	se, ok := stanza.ParseError(res)
	if !ok || se.Condition != cond {
		c.t.Fatalf("iq %s: got %s, want %s", payload, res, cond)
	}
}

// expect reads the next stanza and checks its name and 'from'.
func (c *client) expect(local, from string) *xmlstream.Element {
	c.t.Helper()
	e := c.next()
	if e.Name.Local != local || stanza.From(e) != from {
		c.t.Fatalf("want %s from %s, got %s", local, from, e)
	}
	return e
}

// features returns the features of a disco#info result.
func features(info *xmlstream.Element) []string {
	var feats []string
	for _, f := range info.FirstChild().ChildrenNS("http://jabber.org/protocol/disco#info") {
		if f.Name.Local == "feature" {
			feats = append(feats, f.Attribute("var"))
		}
	}
	return feats
}

func hasStatus(e *xmlstream.Element, code int) bool {
	x := e.Child(muc.NSUser, "x")
	if x == nil {
		return false
	}
	for _, s := range x.ChildrenNS(muc.NSUser) {
		if s.Name.Local == "status" && s.Attribute("code") == fmt.Sprint(code) {
			return true
		}
	}
	return false
}

func item(e *xmlstream.Element) *xmlstream.Element {
	if x := e.Child(muc.NSUser, "x"); x != nil {
		return x.Child(muc.NSUser, "item")
	}
	return nil
}

func body(e *xmlstream.Element) string {
	if b := e.Child(stanza.NSClient, "body"); b != nil {
		return b.Text()
	}
	return ""
}

const instant = `<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>`

// TestCreateAndChat: a room is created locked, the owner accepts the
// instant configuration, others enter, see each other, chat, and get
// the history and the subject.
func TestCreateAndChat(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")

	others, self, _ := alice.join("Alice", "")
	if len(others) != 0 || !hasStatus(self, 201) {
		t.Fatalf("creation: others %v, self %s", others, self)
	}
	if it := item(self); it == nil || it.Attribute("affiliation") != "owner" || it.Attribute("role") != "moderator" {
		t.Errorf("owner's self-presence: %s", self)
	}
	bob.joinErr("Bob", "", stanza.ItemNotFound) // locked
	alice.mustIQ("set", room, instant)

	others, self, _ = bob.join("Bob", "")
	if len(others) != 1 || stanza.From(others[0]) != room+"/Alice" || hasStatus(self, 201) {
		t.Fatalf("bob's entry: others %v, self %s", others, self)
	}
	if it := item(others[0]); it.Attribute("jid") != "" {
		t.Errorf("a participant sees the owner's real JID in a semi-anonymous room: %s", others[0])
	}
	p := alice.expect("presence", room+"/Bob")
	if it := item(p); it == nil || it.Attribute("jid") != bob.jid.String() || it.Attribute("role") != "participant" {
		t.Errorf("the moderator sees bob as %s", p)
	}

	bob.r.Send(`<message to='` + room + `' type='groupchat' id='m1'><body>hi all</body></message>`)
	for _, c := range []*client{alice, bob} {
		m := c.expect("message", room+"/Bob")
		if body(m) != "hi all" || stanza.ID(m) != "m1" || stanza.Type(m) != "groupchat" || stanza.To(m) != c.jid.String() {
			t.Errorf("%s got %s", c.jid, m)
		}
	}
	// Subject: participants may not by default; moderators may.
	bob.r.Send(`<message to='` + room + `' type='groupchat'><subject>mine</subject></message>`)
	if e := bob.next(); stanza.Type(e) != "error" {
		t.Errorf("a participant changed the subject: %s", e)
	}
	alice.r.Send(`<message to='` + room + `' type='groupchat'><subject>Welcome</subject></message>`)
	for _, c := range []*client{alice, bob} {
		c.expect("message", room+"/Alice")
	}

	carol := login(t, srv, "carol", "c")
	others, _, history := carol.join("Carol", `<history maxstanzas='5'/>`)
	if len(others) != 2 || len(history) != 1 || body(history[0]) != "hi all" || history[0].Child(muc.NSDelay, "delay") == nil {
		t.Fatalf("carol: others %d, history %v", len(others), history)
	}
	_, _, history = login(t, srv, "carol", "c2").join("Carol", `<history maxstanzas='0'/>`)
	if len(history) != 0 {
		t.Errorf("maxstanzas=0 sent %d messages", len(history))
	}
}

// TestNicks: conflicts, multi-session nicks and nick changes.
func TestNicks(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.r.Send(`<presence to='` + room + `/Alice'/>`) // no MUC <x/>: an instant room at once
	for e := alice.next(); !(e.Name.Local == "message"); e = alice.next() {
	}
	bob.joinErr("Alice", "", stanza.Conflict)
	alice2 := login(t, srv, "alice", "a2")
	others, self, _ := alice2.join("Alice", "")
	if len(others) != 0 || self == nil {
		t.Errorf("second session: others %d, self %v", len(others), self)
	}
	alice.expect("presence", room+"/Alice") // the second session's presence
	bob.join("Bob", "")
	alice.expect("presence", room+"/Bob")
	alice2.expect("presence", room+"/Bob")

	bob.r.Send(`<presence to='` + room + `/Robert'/>`)
	for _, c := range []*client{alice, alice2, bob} {
		p := c.expect("presence", room+"/Bob")
		if stanza.Type(p) != "unavailable" || !hasStatus(p, 303) || item(p).Attribute("nick") != "Robert" {
			t.Errorf("%s: nick change %s", c.jid, p)
		}
		if p = c.expect("presence", room+"/Robert"); stanza.Type(p) != "" {
			t.Errorf("%s: new nick %s", c.jid, p)
		}
	}
	// Private message: to every session of the nick.
	bob.r.Send(`<message to='` + room + `/Alice' type='chat'><body>psst</body></message>`)
	for _, c := range []*client{alice, alice2} {
		m := c.expect("message", room+"/Robert")
		if body(m) != "psst" || m.Child(muc.NSUser, "x") == nil {
			t.Errorf("private message %s", m)
		}
	}
	bob.r.Send(`<message to='` + room + `/Nobody' type='chat'><body>?</body></message>`)
	if e := bob.next(); stanza.Type(e) != "error" {
		t.Errorf("to a missing nick: %s", e)
	}
	// One session leaves: only it is told, the nick stays.
	alice2.r.Send(`<presence to='` + room + `/Alice' type='unavailable'/>`)
	if p := alice2.expect("presence", room+"/Alice"); stanza.Type(p) != "unavailable" || !hasStatus(p, 110) {
		t.Errorf("leaving session: %s", p)
	}
	if p := bob.expect("presence", room+"/Alice"); stanza.Type(p) == "unavailable" {
		t.Errorf("the nick left with one of two sessions: %s", p)
	}
}

// TestLeaveAndGone: leaving tells everyone; an empty temporary room is
// gone; a session that ends leaves its rooms.
func TestLeaveAndGone(t *testing.T) {
	_, alice, bob := aliceAndBob(t)
	items := alice.mustIQ("get", "conference.localhost", `<query xmlns='http://jabber.org/protocol/disco#items'/>`)
	if q := items.FirstChild(); q == nil || len(q.Children) != 1 || q.FirstChild().Attribute("jid") != room {
		t.Errorf("service items: %s", items)
	}
	bob.r.Close() // directed presence: the room learns bob is gone
	if p := alice.expect("presence", room+"/Bob"); stanza.Type(p) != "unavailable" {
		t.Errorf("bob's session ended: %s", p)
	}
	alice.r.Send(`<presence to='` + room + `/Alice' type='unavailable'><status>bye</status></presence>`)
	if p := alice.expect("presence", room+"/Alice"); stanza.Type(p) != "unavailable" || !hasStatus(p, 110) {
		t.Errorf("self leave: %s", p)
	}
	xmpptest.WaitFor(t, 5*time.Second, "the room gone", func() bool {
		res := alice.mustIQ("get", "conference.localhost", `<query xmlns='http://jabber.org/protocol/disco#items'/>`)
		return len(res.FirstChild().Children) == 0
	})
	alice.iqErr("get", room, `<query xmlns='http://jabber.org/protocol/disco#info'/>`, stanza.ItemNotFound)
}

// TestModeration: kicks, bans, voice in a moderated room, members-only
// rooms with invitations, passwords, and destroy.
func TestModeration(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	carol := login(t, srv, "carol", "c")
	alice.join("Alice", "")
	alice.mustIQ("set", room, `<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>`+
		`<field var='muc#roomconfig_moderatedroom'><value>1</value></field>`+
		`<field var='muc#roomconfig_persistentroom'><value>1</value></field></x></query>`)
	_, self, _ := bob.join("Bob", "")
	if item(self).Attribute("role") != "visitor" {
		t.Fatalf("bob in a moderated room: %s", self)
	}
	alice.expect("presence", room+"/Bob")
	bob.r.Send(`<message to='` + room + `' type='groupchat'><body>can I?</body></message>`)
	if e := bob.next(); stanza.Type(e) != "error" {
		t.Fatalf("a visitor spoke: %s", e)
	}
	// Voice, then a kick with a reason.
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item nick='Bob' role='participant'/></query>`)
	for _, c := range []*client{alice, bob} {
		if p := c.expect("presence", room+"/Bob"); item(p).Attribute("role") != "participant" {
			t.Errorf("voice: %s", p)
		}
	}
	bob.iqErr("set", room, `<query xmlns='`+muc.NSAdmin+`'><item nick='Alice' role='none'/></query>`, stanza.Forbidden)
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item nick='Bob' role='none'><reason>spam</reason></item></query>`)
	for _, c := range []*client{bob, alice} {
		p := c.expect("presence", room+"/Bob")
		if stanza.Type(p) != "unavailable" || !hasStatus(p, 307) || childText(item(p), "reason") != "spam" {
			t.Errorf("kick: %s", p)
		}
	}
	// Ban: out, and cannot come back.
	bob.join("Bob", "")
	alice.expect("presence", room+"/Bob")
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item jid='bob@localhost' affiliation='outcast'/></query>`)
	for _, c := range []*client{bob, alice} {
		if p := c.expect("presence", room+"/Bob"); !hasStatus(p, 301) || item(p).Attribute("affiliation") != "outcast" {
			t.Errorf("ban: %s", p)
		}
	}
	bob.joinErr("Bob", "", stanza.Forbidden)
	list := alice.mustIQ("get", room, `<query xmlns='`+muc.NSAdmin+`'><item affiliation='outcast'/></query>`)
	if it := list.FirstChild().FirstChild(); it == nil || it.Attribute("jid") != "bob@localhost" {
		t.Errorf("outcast list: %s", list)
	}
	// The last owner stays.
	alice.iqErr("set", room, `<query xmlns='`+muc.NSAdmin+`'><item jid='alice@localhost' affiliation='member'/></query>`, stanza.Conflict)

	// Members-only and a password; an invitation makes carol a member.
	alice.mustIQ("set", room, `<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_membersonly'><value>1</value></field>`+
		`<field var='muc#roomconfig_passwordprotectedroom'><value>1</value></field>`+
		`<field var='muc#roomconfig_roomsecret'><value>sesame</value></field></x></query>`)
	if m := alice.expect("message", room); !hasStatus(m, 104) {
		t.Errorf("config change: %s", m)
	}
	carol.joinErr("Carol", "<password>sesame</password>", stanza.RegistrationRequired)
	alice.r.Send(`<message to='` + room + `'><x xmlns='` + muc.NSUser + `'><invite to='carol@localhost'><reason>join us</reason></invite></x></message>`)
	inv := carol.expect("message", room)
	if x := inv.Child(muc.NSUser, "x"); x == nil || x.Child(muc.NSUser, "invite") == nil || childText(x, "password") != "sesame" {
		t.Fatalf("invitation: %s", inv)
	}
	carol.joinErr("Carol", "", stanza.NotAuthorized)
	carol.join("Carol", "<password>sesame</password>")
	alice.expect("presence", room+"/Carol")

	feats := features(carol.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#info'/>`))
	for _, want := range []string{"muc_membersonly", "muc_moderated", "muc_persistent", "muc_passwordprotected", "muc_semianonymous"} {
		if !slices.Contains(feats, want) {
			t.Errorf("room features %v lack %s", feats, want)
		}
	}

	// Destroy, with an alternate venue.
	carol.iqErr("set", room, `<query xmlns='`+muc.NSOwner+`'><destroy/></query>`, stanza.Forbidden)
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><destroy jid='new@conference.localhost'><reason>moved</reason></destroy></query>`)
	for _, c := range []*client{carol} {
		p := c.expect("presence", room+"/Carol")
		x := p.Child(muc.NSUser, "x")
		if stanza.Type(p) != "unavailable" || x == nil || x.Child(muc.NSUser, "destroy") == nil || x.Child(muc.NSUser, "destroy").Attribute("jid") != "new@conference.localhost" {
			t.Errorf("destroy: %s", p)
		}
	}
	carol.iqErr("get", room, `<query xmlns='http://jabber.org/protocol/disco#info'/>`, stanza.ItemNotFound)
}

func childText(e *xmlstream.Element, local string) string {
	if e == nil {
		return ""
	}
	for _, c := range e.Children {
		if c.Elem != nil && c.Elem.Name.Local == local {
			return c.Elem.Text()
		}
	}
	return ""
}

// TestErrors: the stanza errors of bad requests.
func TestErrors(t *testing.T) {
	srv := start(t, func(c *muc.Config) { c.MaxRoomsPerUser = 1 })
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.r.Send(`<presence to='` + room + `'/>`)
	if e := alice.next(); stanza.Type(e) != "error" {
		t.Errorf("presence without a nick: %s", e)
	}
	alice.join("Alice", "")
	alice.r.Send(`<presence to='other@conference.localhost/Alice'><x xmlns='` + muc.NS + `'/></presence>`)
	if e := alice.next(); stanza.Type(e) != "error" {
		t.Errorf("a second room past max_rooms_per_user: %s", e)
	}
	bob.r.Send(`<message to='` + room + `' type='groupchat'><body>not in</body></message>`)
	if e := bob.next(); stanza.Type(e) != "error" {
		t.Errorf("a non-occupant's groupchat: %s", e)
	}
	bob.iqErr("get", room, `<query xmlns='`+muc.NSOwner+`'/>`, stanza.Forbidden)
	alice.iqErr("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_whois'><value>everyone</value></field></x></query>`, stanza.NotAcceptable)
	form := alice.mustIQ("get", room, `<query xmlns='`+muc.NSOwner+`'/>`)
	if x := form.FirstChild().Child("jabber:x:data", "x"); x == nil || x.Attribute("type") != "form" {
		t.Errorf("config form: %s", form)
	}
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='cancel'/></query>`)
	alice.expect("presence", room+"/Alice") // the locked room is destroyed
	info := alice.mustIQ("get", "conference.localhost", `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	if id := info.FirstChild().Child("http://jabber.org/protocol/disco#info", "identity"); id == nil || id.Attribute("category") != "conference" {
		t.Errorf("service identity: %s", info)
	}
}

// TestPersistentRoom: a persistent room's configuration, subject and
// affiliations are stored and come back when a server starts on the same
// database; a destroyed room is gone from storage.
func TestPersistentRoom(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	alice.join("Alice", "")
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_persistentroom'><value>1</value></field>`+
		`<field var='muc#roomconfig_roomname'><value>The Lobby</value></field></x></query>`)
	alice.r.Send(`<message to='` + room + `' type='groupchat'><subject>Welcome</subject></message>`)
	alice.expect("message", room+"/Alice")
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item jid='bob@localhost' affiliation='member'/></query>`)
	rooms, err := srv.Store().Rooms(t.Context(), "conference.localhost")
	if err != nil || len(rooms) != 1 || rooms[0].Affiliations["bob@localhost"] != "member" || rooms[0].Affiliations["alice@localhost"] != "owner" {
		t.Fatalf("stored rooms %+v, %v", rooms, err)
	}

	// A second server on the same database loads it.
	srv2 := xmpptest.Start(t, func(c *config.Config) {
		c.Server.DataDir = srv.Config.Server.DataDir
		c.Storage = srv.Config.Storage // the same database on PostgreSQL too
	})
	bob := login(t, srv2, "bob", "b")
	info := bob.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	if id := info.FirstChild().Child("http://jabber.org/protocol/disco#info", "identity"); id == nil || id.Attribute("name") != "The Lobby" {
		t.Errorf("loaded room: %s", info)
	}
	bob.r.Send(`<presence to='` + room + `/Bob'><x xmlns='` + muc.NS + `'/></presence>`)
	var subject string
	for {
		e := bob.next()
		if e.Name.Local == "presence" && hasStatus(e, 110) {
			if it := item(e); it.Attribute("affiliation") != "member" || hasStatus(e, 201) {
				t.Errorf("bob's self-presence in the loaded room: %s", e)
			}
		}
		if e.Name.Local == "message" {
			subject = childText(e, "subject")
			break
		}
	}
	if subject != "Welcome" {
		t.Errorf("subject %q after loading", subject)
	}
	// Leaving an empty persistent room keeps it; destroying removes it.
	bob.r.Send(`<presence to='` + room + `/Bob' type='unavailable'/>`)
	bob.expect("presence", room+"/Bob")
	bob.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	alice2 := login(t, srv2, "alice", "a2")
	alice2.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><destroy/></query>`)
	if rooms, err := srv2.Store().Rooms(t.Context(), "conference.localhost"); err != nil || len(rooms) != 0 {
		t.Errorf("after destroy: %+v, %v", rooms, err)
	}
}

// TestOccupantIDAndSelfPing: XEP-0421 ids on presence and messages (the
// same for a user's sessions, a client's own id stripped) and XEP-0410
// self-pings answered by the service.
func TestOccupantIDAndSelfPing(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.join("Alice", "")
	alice.mustIQ("set", room, instant)
	others, self, _ := bob.join("Bob", "")
	occID := func(e *xmlstream.Element) string {
		if o := e.Child(muc.NSOccupantID, "occupant-id"); o != nil {
			return o.Attribute("id")
		}
		return ""
	}
	aliceID, bobID := occID(others[0]), occID(self)
	if aliceID == "" || bobID == "" || aliceID == bobID {
		t.Fatalf("occupant ids %q, %q", aliceID, bobID)
	}
	alice.expect("presence", room+"/Bob")
	bob.r.Send(`<message to='` + room + `' type='groupchat'><body>x</body><occupant-id xmlns='` + muc.NSOccupantID + `' id='forged'/></message>`)
	m := alice.expect("message", room+"/Bob")
	if ids := m.ChildrenNS(muc.NSOccupantID); len(ids) != 1 || ids[0].Attribute("id") != bobID {
		t.Errorf("message occupant ids: %s", m)
	}
	bob.expect("message", room+"/Bob")

	bob.mustIQ("get", room+"/Bob", `<ping xmlns='urn:xmpp:ping'/>`)
	carol := login(t, srv, "carol", "c")
	carol.iqErr("get", room+"/Bob", `<ping xmlns='urn:xmpp:ping'/>`, stanza.NotAcceptable)
	bob.iqErr("get", room+"/Nobody", `<ping xmlns='urn:xmpp:ping'/>`, stanza.ItemNotFound)
	bob.r.Send(`<presence to='` + room + `/Bob' type='unavailable'/>`)
	bob.expect("presence", room+"/Bob")
	bob.iqErr("get", room+"/Bob", `<ping xmlns='urn:xmpp:ping'/>`, stanza.NotAcceptable)
}

// TestIQToOccupant: an IQ from an occupant to room/nick reaches that
// occupant from the asker's room JID, and its answer comes back from
// room/nick with the asker's id (§7.9).
func TestIQToOccupant(t *testing.T) {
	srv, alice, bob := aliceAndBob(t)
	bob.r.Send(`<iq type='get' id='v1' to='` + room + `/Alice'><vCard xmlns='vcard-temp'/></iq>`)
	q := alice.expect("iq", room+"/Bob")
	if stanza.ID(q) == "v1" || q.Child("vcard-temp", "vCard") == nil || stanza.To(q) != alice.jid.String() {
		t.Fatalf("forwarded iq: %s", q)
	}
	alice.r.Send(`<iq type='result' id='` + stanza.ID(q) + `' to='` + room + `/Bob'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>`)
	res := bob.expect("iq", room+"/Alice")
	if stanza.ID(res) != "v1" || stanza.Type(res) != "result" || stanza.To(res) != bob.jid.String() {
		t.Errorf("answer: %s", res)
	}
	carol := login(t, srv, "carol", "c")
	carol.iqErr("get", room+"/Alice", `<vCard xmlns='vcard-temp'/>`, stanza.NotAcceptable)
}

// TestLimits: an occupant sending faster than messages_per_second (past
// its burst) gets resource-constraint; the history keeps to its bytes.
func TestLimits(t *testing.T) {
	srv := start(t, func(c *muc.Config) {
		c.MessagesPerSecond = 0.5 // bursts of 5
		c.HistoryBytes = 1000
	})
	alice := login(t, srv, "alice", "a")
	alice.join("Alice", "")
	alice.mustIQ("set", room, instant)
	for i := range 5 {
		alice.r.Send(fmt.Sprintf(`<message to='%s' type='groupchat'><body>%d %s</body></message>`, room, i, strings.Repeat("x", 300)))
	}
	for range 5 {
		alice.expect("message", room+"/Alice")
	}
	alice.r.Send(`<message to='` + room + `' type='groupchat'><body>one too many</body></message>`)
	e := alice.next()
	se, ok := stanza.ParseError(e)
	if !ok || se.Condition != stanza.ResourceConstraint || se.Type != stanza.Wait {
		t.Fatalf("past the rate: %s", e)
	}
	bob := login(t, srv, "bob", "b")
	_, _, history := bob.join("Bob", "")
	if len(history) != 2 || !strings.HasPrefix(body(history[0]), "3 ") {
		t.Errorf("history of %d messages under 1000 bytes, first %q", len(history), body(history[0]))
	}
}

// TestRoomArchive: a stored room archives its groupchat messages with a
// stanza-id by the room, announces it with 170, and answers XEP-0313
// queries (to occupants and members of a members-only room only).
func TestRoomArchive(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	alice.join("Alice", "")
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_persistentroom'><value>1</value></field></x></query>`)
	var ids []string
	for i := range 3 {
		alice.r.Send(fmt.Sprintf(`<message to='%s' type='groupchat' id='m%d'><body>msg %d</body></message>`, room, i, i))
		m := alice.expect("message", room+"/Alice")
		sid := m.Child(muc.NSStanzaID, "stanza-id")
		if sid == nil || sid.Attribute("by") != room || sid.Attribute("id") == "" {
			t.Fatalf("reflected message without the room's stanza-id: %s", m)
		}
		ids = append(ids, sid.Attribute("id"))
	}
	bob := login(t, srv, "bob", "b")
	_, self, _ := bob.join("Bob", "")
	if !hasStatus(self, 170) {
		t.Errorf("no 170 in an archived room: %s", self)
	}
	alice.expect("presence", room+"/Bob")
	query := `<query xmlns='urn:xmpp:mam:2' queryid='q1'><set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set></query>`
	res := bob.mustIQ("set", room, query)
	fin := res.Child("urn:xmpp:mam:2", "fin")
	if fin == nil || fin.Attribute("complete") == "true" {
		t.Errorf("fin: %s", res)
	}
	var got []string
	for range 2 {
		m := bob.expect("message", room)
		r := m.Child("urn:xmpp:mam:2", "result")
		if r == nil || r.Attribute("queryid") != "q1" {
			t.Fatalf("result: %s", m)
		}
		fwd := r.Child("urn:xmpp:forward:0", "forwarded").Child(stanza.NSClient, "message")
		if stanza.From(fwd) != room+"/Alice" {
			t.Errorf("archived message from %s", stanza.From(fwd))
		}
		got = append(got, r.Attribute("id")+":"+body(fwd))
	}
	want := []string{ids[1] + ":msg 1", ids[2] + ":msg 2"}
	if !slices.Equal(got, want) {
		t.Errorf("archive page %v, want %v", got, want)
	}
	// Members-only: someone outside the room and without membership may
	// not read it.
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_membersonly'><value>1</value></field></x></query>`)
	carol := login(t, srv, "carol", "c")
	carol.iqErr("set", room, query, stanza.Forbidden)
	info := carol.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	if !strings.Contains(info.String(), "urn:xmpp:mam:2") {
		t.Errorf("room features without mam: %s", info)
	}

	// After a restart the history on entry comes from the archive.
	srv2 := xmpptest.Start(t, func(c *config.Config) {
		c.Server.DataDir = srv.Config.Server.DataDir
		c.Storage = srv.Config.Storage
	})
	alice2 := login(t, srv2, "alice", "a2")
	_, _, history := alice2.join("Alice", "")
	var bodies []string
	for _, m := range history {
		if m.Child("urn:xmpp:delay", "delay") == nil || m.Child(muc.NSStanzaID, "stanza-id") == nil {
			t.Errorf("history message: %s", m)
		}
		bodies = append(bodies, body(m))
	}
	if want := []string{"msg 0", "msg 1", "msg 2"}; !slices.Equal(bodies, want) {
		t.Errorf("history after a restart %q, want %q", bodies, want)
	}
}

// TestModerate: a moderator retracts a message for everyone (XEP-0425),
// asking in the 0.3 form (urn:xmpp:message-moderate:1) or the 0.2 one
// (<apply-to/> with urn:xmpp:message-moderate:0) that Converse.js and
// older Conversations and Gajim send: occupants get one announcement
// that both kinds of client understand, the archive a tombstone in both
// forms, and those who enter no longer get the message in the history.
func TestModerate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		request func(id, reason string) string
	}{
		{"0.3", func(id, reason string) string {
			return `<moderate xmlns='` + muc.NSModerate + `' id='` + id + `'><retract xmlns='` + muc.NSRetract + `'/>` + reason + `</moderate>`
		}},
		{"0.2", func(id, reason string) string {
			return `<apply-to xmlns='urn:xmpp:fasten:0' id='` + id + `'><moderate xmlns='urn:xmpp:message-moderate:0'>` +
				`<retract xmlns='urn:xmpp:message-retract:0'/>` + reason + `</moderate></apply-to>`
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { testModerate(t, tc.request) })
	}
}

func testModerate(t *testing.T, request func(id, reason string) string) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.join("Alice", "")
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='muc#roomconfig_persistentroom'><value>1</value></field></x></query>`)
	feats := features(alice.mustIQ("get", room, `<query xmlns='http://jabber.org/protocol/disco#info'/>`))
	for _, f := range []string{muc.NSModerate, muc.NSModerate0} {
		if !slices.Contains(feats, f) {
			t.Errorf("room features %v lack %s", feats, f)
		}
	}
	bob.join("Bob", "")
	alice.expect("presence", room+"/Bob")
	bob.r.Send(`<message to='` + room + `' type='groupchat'><body>spam spam</body></message>`)
	m := alice.expect("message", room+"/Bob")
	bob.expect("message", room+"/Bob")
	id := m.Child(muc.NSStanzaID, "stanza-id").Attribute("id")

	bob.iqErr("set", room, request(id, ""), stanza.Forbidden)
	alice.iqErr("set", room, request("nope", ""), stanza.ItemNotFound)
	alice.iqErr("set", room, `<apply-to xmlns='urn:xmpp:fasten:0' id='`+id+`'><moderate xmlns='urn:xmpp:message-moderate:0'/></apply-to>`, stanza.BadRequest)
	alice.iqErr("set", room, `<apply-to xmlns='urn:xmpp:fasten:0' id='`+id+`'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to>`, stanza.ServiceUnavailable)
	alice.mustIQ("set", room, request(id, `<reason>spam</reason>`))
	for _, c := range []*client{alice, bob} {
		msg := c.expect("message", room)
		// XEP-0425 0.3: <retract xmlns='retract:1' id><moderated by/><reason/></retract>,
		// the reason in the retract namespace (slixmpp 1.10 reads it there).
		r := msg.Child(muc.NSRetract, "retract")
		if r == nil || r.Attribute("id") != id || r.Child(muc.NSModerate, "moderated") == nil ||
			r.Child(muc.NSModerate, "moderated").Attribute("by") != room+"/Alice" ||
			r.Child(muc.NSRetract, "reason") == nil || r.Child(muc.NSRetract, "reason").Text() != "spam" {
			t.Errorf("%s: 0.3 retraction in %s", c.jid, msg)
		}
		// XEP-0425 0.2: <apply-to id><moderated by><retract/><reason/></moderated></apply-to>.
		a := msg.Child(muc.NSFasten, "apply-to")
		mod := a.Child(muc.NSModerate0, "moderated")
		if a == nil || a.Attribute("id") != id || mod == nil || mod.Attribute("by") != room+"/Alice" ||
			mod.Child(muc.NSRetract0, "retract") == nil || childText(mod, "reason") != "spam" ||
			mod.Child(muc.NSOccupantID, "occupant-id") == nil {
			t.Errorf("%s: 0.2 retraction in %s", c.jid, msg)
		}
	}
	alice.mustIQ("set", room, `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='ids'><value>`+id+`</value></field></x></query>`)
	tomb := alice.expect("message", room).Child("urn:xmpp:mam:2", "result").Child("urn:xmpp:forward:0", "forwarded").Child(stanza.NSClient, "message")
	retracted := tomb.Child(muc.NSRetract, "retracted")
	if tomb.Child(stanza.NSClient, "body") != nil || retracted == nil ||
		retracted.Child(muc.NSRetract, "reason") == nil || retracted.Child(muc.NSRetract, "reason").Text() != "spam" ||
		tomb.Child(muc.NSModerate0, "moderated").Child(muc.NSRetract0, "retracted") == nil {
		t.Errorf("archived tombstone: %s", tomb)
	}
	_, _, history := login(t, srv, "carol", "c").join("Carol", "")
	for _, h := range history {
		if body(h) == "spam spam" {
			t.Errorf("the retracted message is still in the history")
		}
	}
}

// TestNewcomersSeeChanges: the presence a room shows of an occupant to
// those who join later follows every change to it (the room keeps it
// serialised between changes): presence updates, roles, affiliations,
// a second session.
func TestNewcomersSeeChanges(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	bob2 := login(t, srv, "bob", "b2")
	alice.join("Alice", "")
	alice.mustIQ("set", room, instant)
	bob.join("Bob", "")
	alice.expect("presence", room+"/Bob")
	n := 0
	// newcomer joins as a new user and returns Bob's presence as shown
	// to it, then leaves; alice and bob see the newcomer come and go.
	newcomer := func() *xmlstream.Element {
		t.Helper()
		n++
		local := fmt.Sprintf("c%d", n)
		srv.AddUser(t, local, "pw")
		c := login(t, srv, local, "r")
		others, _, _ := c.join(local, "")
		var seen *xmlstream.Element
		for _, p := range others {
			if stanza.From(p) == room+"/Bob" {
				seen = p
			}
		}
		if seen == nil {
			t.Fatalf("%s does not see Bob: %v", local, others)
		}
		c.r.Send(`<presence to='` + room + `/` + local + `' type='unavailable'/>`)
		c.expect("presence", room+"/"+local)
		for _, o := range []*client{alice, bob} {
			o.expect("presence", room+"/"+local)
			o.expect("presence", room+"/"+local)
		}
		return seen
	}
	if p := newcomer(); item(p).Attribute("role") != "participant" || childText(p, "show") != "" {
		t.Fatalf("before any change: %s", p)
	}
	bob.r.Send(`<presence to='` + room + `/Bob'><show>away</show></presence>`)
	bob.expect("presence", room+"/Bob")
	alice.expect("presence", room+"/Bob")
	if p := newcomer(); childText(p, "show") != "away" {
		t.Errorf("after a presence update: %s", p)
	}
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item nick='Bob' role='moderator'/></query>`)
	bob.expect("presence", room+"/Bob")
	alice.expect("presence", room+"/Bob")
	if p := newcomer(); item(p).Attribute("role") != "moderator" {
		t.Errorf("after a role change: %s", p)
	}
	alice.mustIQ("set", room, `<query xmlns='`+muc.NSAdmin+`'><item jid='bob@localhost' affiliation='admin'/></query>`)
	bob.expect("presence", room+"/Bob")
	alice.expect("presence", room+"/Bob")
	if p := newcomer(); item(p).Attribute("affiliation") != "admin" {
		t.Errorf("after an affiliation change: %s", p)
	}
	// A second session of Bob's with its own presence: the newest shows.
	bob2.r.Send(`<presence to='` + room + `/Bob'><x xmlns='` + muc.NS + `'/><show>dnd</show></presence>`)
	for {
		if e := bob2.next(); e.Name.Local == "presence" && hasStatus(e, 110) {
			break
		}
	}
	bob.expect("presence", room+"/Bob")
	alice.expect("presence", room+"/Bob")
	if p := newcomer(); childText(p, "show") != "dnd" {
		t.Errorf("after a second session: %s", p)
	}
}
