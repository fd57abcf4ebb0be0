package carbons_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/modules/carbons"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// conn is a raw client stream of one resource.
type conn struct {
	*xmpptest.Raw
	t   testing.TB
	jid jid.JID
}

// connect logs user (password "pw") in and binds resource.
func connect(t testing.TB, srv *xmpptest.Server, user, resource string) *conn {
	t.Helper()
	r := srv.DialRaw(t)
	r.Login(user, "pw")
	return &conn{Raw: r, t: t, jid: r.Bind(resource)}
}

var ids atomic.Int64

// iq sends an IQ with payload and returns the answer, skipping the
// presences that arrive before it.
func (c *conn) iq(typ, to, payload string) *xmlstream.Element {
	c.t.Helper()
	id := fmt.Sprintf("q%d", ids.Add(1))
	toAttr := ""
	if to != "" {
		toAttr = " to='" + to + "'"
	}
	c.Send(fmt.Sprintf("<iq type='%s' id='%s'%s>%s</iq>", typ, id, toAttr, payload))
	for {
		e := c.Next()
		if e.Name.Local == "presence" {
			continue
		}
		if e.Name.Local != "iq" || e.Attribute("id") != id {
			c.t.Fatalf("%s: waiting for the answer to %s, got %s", c.jid, id, e)
		}
		return e
	}
}

// enable turns carbons on (or off) and checks the empty result, which
// comes from the account (XEP-0280 §4).
func (c *conn) enable(on bool) {
	c.t.Helper()
	name := "enable"
	if !on {
		name = "disable"
	}
	res := c.iq("set", "", "<"+name+" xmlns='"+carbons.NS+"'/>")
	if stanza.Type(res) != "result" || res.FirstChild() != nil || stanza.From(res) != c.jid.Bare().String() || stanza.To(res) != c.jid.String() {
		c.t.Fatalf("%s: %s: %s", c.jid, name, res)
	}
}

// available sends initial presence with priority and reads its echo.
func (c *conn) available(prio int) {
	c.t.Helper()
	c.Send(fmt.Sprintf("<presence><priority>%d</priority></presence>", prio))
	for {
		e := c.Next()
		if e.Name.Local == "presence" && stanza.From(e) == c.jid.String() {
			return
		}
		if e.Name.Local != "presence" {
			c.t.Fatalf("%s: waiting for its presence, got %s", c.jid, e)
		}
	}
}

var marks atomic.Int64

// barrier has from send each of to a headline marker (never copied) and
// returns, for each, the messages it received before its marker. from
// must be the stream that sent what is being checked: its stanzas are
// routed in order, and each session's queue keeps that order.
func barrier(t testing.TB, from *conn, to ...*conn) [][]*xmlstream.Element {
	t.Helper()
	text := fmt.Sprintf("mark %d", marks.Add(1))
	for _, c := range to {
		from.Send(fmt.Sprintf("<message type='headline' to='%s'><body>%s</body></message>", c.jid, text))
	}
	out := make([][]*xmlstream.Element, len(to))
	for i, c := range to {
		for {
			e := c.Next()
			if e.Name.Local == "presence" {
				continue
			}
			if e.Name.Local == "message" && stanza.Type(e) == "headline" && body(e) == text {
				break
			}
			out[i] = append(out[i], e)
		}
	}
	return out
}

// routeSync is barrier for stanzas the test routes itself: the markers come
// from the server, after whatever was routed before.
func routeSync(t testing.TB, srv *xmpptest.Server, to ...*conn) [][]*xmlstream.Element {
	t.Helper()
	text := fmt.Sprintf("mark %d", marks.Add(1))
	for _, c := range to {
		srv.Router().Route(t.Context(), parse(t, fmt.Sprintf("<message type='headline' from='%s' to='%s'><body>%s</body></message>", srv.Domain, c.jid, text)))
	}
	out := make([][]*xmlstream.Element, len(to))
	for i, c := range to {
		for {
			e := c.Next()
			if e.Name.Local == "presence" {
				continue
			}
			if e.Name.Local == "message" && stanza.Type(e) == "headline" && body(e) == text {
				break
			}
			out[i] = append(out[i], e)
		}
	}
	return out
}

func body(e *xmlstream.Element) string {
	if b := e.Child(stanza.NSClient, "body"); b != nil {
		return b.Text()
	}
	return ""
}

// carbon checks that e is a carbon of kind for the account of c, to c,
// of type typ, and returns the forwarded message.
func carbon(t testing.TB, c *conn, e *xmlstream.Element, kind, typ string) *xmlstream.Element {
	t.Helper()
	w := e.Child(carbons.NS, kind)
	var fwd, orig *xmlstream.Element
	if w != nil {
		fwd = w.Child(carbons.NSForward, "forwarded")
	}
	if fwd != nil {
		orig = fwd.Child(stanza.NSClient, "message")
	}
	switch {
	case e.Name.Local != "message" || orig == nil:
		t.Fatalf("%s: want a %s carbon, got %s", c.jid, kind, e)
	case stanza.From(e) != c.jid.Bare().String() || stanza.To(e) != c.jid.String() || stanza.Type(e) != typ:
		t.Errorf("%s: carbon from=%q to=%q type=%q, want from the bare JID to the resource, type %q: %s",
			c.jid, stanza.From(e), stanza.To(e), stanza.Type(e), typ, e)
	case len(e.ChildrenNS("")) != 1 || len(w.ChildrenNS("")) != 1 || len(fwd.ChildrenNS("")) != 1:
		t.Errorf("%s: extra elements in the carbon: %s", c.jid, e)
	}
	return orig
}

// messages fails unless got holds exactly n stanzas, and returns them.
func messages(t testing.TB, c *conn, got []*xmlstream.Element, n int) []*xmlstream.Element {
	t.Helper()
	if len(got) != n {
		var b strings.Builder
		for _, e := range got {
			b.WriteString("\n  " + e.String())
		}
		t.Fatalf("%s got %d stanzas, want %d:%s", c.jid, len(got), n, b.String())
	}
	return got
}

// startAlice starts a server with alice (three resources: phone and
// laptop with carbons enabled, tablet without) and bob (pc).
func startAlice(t *testing.T) (srv *xmpptest.Server, phone, laptop, tablet, bob *conn) {
	t.Helper()
	srv = xmpptest.Start(t, nil)
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	phone = connect(t, srv, "alice", "phone")
	laptop = connect(t, srv, "alice", "laptop")
	tablet = connect(t, srv, "alice", "tablet")
	bob = connect(t, srv, "bob", "pc")
	phone.enable(true)
	laptop.enable(true)
	return srv, phone, laptop, tablet, bob
}

// TestEnable: XEP-0280 §3-§5 and §10.1 on the wire.
func TestEnable(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	a := connect(t, srv, "alice", "phone")

	info := a.iq("get", srv.Domain, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	found := false
	for _, f := range info.Child("http://jabber.org/protocol/disco#info", "query").ChildrenNS("") {
		found = found || (f.Name.Local == "feature" && f.Attribute("var") == carbons.NS)
	}
	if !found {
		t.Errorf("disco#info of %s lacks %s: %s", srv.Domain, carbons.NS, info)
	}

	a.enable(true)
	a.enable(true) // §10.1: not an error
	a.enable(false)
	a.enable(false)
	for _, to := range []string{a.jid.Bare().String(), srv.Domain} {
		if res := a.iq("set", to, "<enable xmlns='"+carbons.NS+"'/>"); stanza.Type(res) != "result" {
			t.Errorf("enable to %s: %s", to, res)
		}
	}
	for _, c := range []struct{ typ, to, payload, cond string }{
		{"set", "bob@" + srv.Domain, "<enable xmlns='" + carbons.NS + "'/>", "not-allowed"},
		{"set", "bob@" + srv.Domain, "<disable xmlns='" + carbons.NS + "'/>", "not-allowed"},
		{"get", "", "<enable xmlns='" + carbons.NS + "'/>", "service-unavailable"},
	} {
		res := a.iq(c.typ, c.to, c.payload)
		if e := res.Child(stanza.NSClient, "error"); stanza.Type(res) != "error" || e == nil || e.Child(stanza.NSStanzas, c.cond) == nil {
			t.Errorf("%s %s to %q: %s, want %s", c.typ, c.payload, c.to, res, c.cond)
		}
	}
}

// TestReceived: a message to one resource is copied to the others that
// enabled carbons (§7), as the eligibility rules say (§6.1, §9).
func TestReceived(t *testing.T) {
	srv, phone, laptop, tablet, bob := startAlice(t)
	send := func(xml string) (phoneGot, laptopGot, tabletGot []*xmlstream.Element) {
		t.Helper()
		bob.Send(xml)
		got := barrier(t, bob, phone, laptop, tablet)
		return got[0], got[1], got[2]
	}

	t.Run("chat", func(t *testing.T) {
		p, l, tb := send(fmt.Sprintf("<message to='%s' type='chat' id='c1'><body>hi</body><thread>t1</thread></message>", phone.jid))
		orig := messages(t, phone, p, 1)[0]
		fwd := carbon(t, laptop, messages(t, laptop, l, 1)[0], "received", "chat")
		if stanza.From(fwd) != bob.jid.String() || stanza.To(fwd) != phone.jid.String() || stanza.ID(fwd) != "c1" || body(fwd) != "hi" ||
			fwd.Child(stanza.NSClient, "thread") == nil || fwd.String() != orig.String() {
			t.Errorf("forwarded %s, want the message as the phone got it: %s", fwd, orig)
		}
		messages(t, tablet, tb, 0)
	})
	t.Run("normal with body", func(t *testing.T) {
		_, l, tb := send(fmt.Sprintf("<message to='%s'><body>hi</body></message>", phone.jid))
		carbon(t, laptop, messages(t, laptop, l, 1)[0], "received", "")
		messages(t, tablet, tb, 0)
	})
	t.Run("chat state", func(t *testing.T) {
		_, l, _ := send(fmt.Sprintf("<message to='%s' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", phone.jid))
		carbon(t, laptop, messages(t, laptop, l, 1)[0], "received", "chat")
	})
	for _, c := range []struct{ name, xml string }{
		{"normal without body", "<message to='%s'><x xmlns='jabber:x:oob'><url>https://x.example/</url></x></message>"},
		{"headline", "<message to='%s' type='headline'><body>news</body></message>"},
		{"groupchat", "<message to='%s' type='groupchat'><body>all</body></message>"},
		{"no-copy", "<message to='%s' type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, l, _ := send(fmt.Sprintf(c.xml, phone.jid))
			messages(t, phone, p, 1)
			messages(t, laptop, l, 0)
		})
	}
	t.Run("private", func(t *testing.T) {
		p, l, _ := send(fmt.Sprintf("<message to='%s' type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/></message>", phone.jid))
		// §9: 1.0 no longer removes <private/>.
		if m := messages(t, phone, p, 1)[0]; m.Child(carbons.NS, "private") == nil {
			t.Errorf("the recipient got %s, without <private/>", m)
		}
		messages(t, laptop, l, 0)
	})
	t.Run("a carbon sent by someone else", func(t *testing.T) {
		// §11: the tablet's client must refuse it (its 'from' is not the
		// account); the server passes it on as any message but never
		// copies it.
		p, l, _ := send(fmt.Sprintf("<message to='%s' type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' from='carol@%s/x' to='%s'><body>forged</body></message></forwarded></received></message>", phone.jid, srv.Domain, phone.jid))
		if m := messages(t, phone, p, 1)[0]; stanza.From(m) != bob.jid.String() {
			t.Errorf("the forged carbon arrived from %q, want bob's full JID", stanza.From(m))
		}
		messages(t, laptop, l, 0)
	})
	t.Run("disabled", func(t *testing.T) {
		laptop.enable(false)
		_, l, _ := send(fmt.Sprintf("<message to='%s' type='chat'><body>after</body></message>", phone.jid))
		messages(t, laptop, l, 0)
		laptop.enable(true)
		_, l, _ = send(fmt.Sprintf("<message to='%s' type='chat'><body>again</body></message>", phone.jid))
		carbon(t, laptop, messages(t, laptop, l, 1)[0], "received", "chat")
	})
}

// TestSent: what one resource sends is copied to the other resources that
// enabled carbons, never to the sender (§8).
func TestSent(t *testing.T) {
	_, phone, laptop, tablet, bob := startAlice(t)
	tablet.enable(true)
	tablet.enable(false) // the tablet sends; it need not have carbons on

	tablet.Send(fmt.Sprintf("<message to='%s' type='chat' id='s1'><body>from the tablet</body></message>", bob.jid.Bare()))
	got := barrier(t, tablet, phone, laptop, tablet, bob)
	for i, c := range []*conn{phone, laptop} {
		fwd := carbon(t, c, messages(t, c, got[i], 1)[0], "sent", "chat")
		if stanza.From(fwd) != tablet.jid.String() || stanza.To(fwd) != bob.jid.Bare().String() || body(fwd) != "from the tablet" {
			t.Errorf("%s: forwarded %s", c.jid, fwd)
		}
	}
	messages(t, tablet, got[2], 0)
	messages(t, bob, got[3], 0) // bob is not available: the message went offline

	phone.Send(fmt.Sprintf("<message to='%s' type='chat' id='s2'><body>from the phone</body></message>", bob.jid))
	got = barrier(t, phone, phone, laptop, tablet, bob)
	messages(t, phone, got[0], 0) // §8: not to the sender, though it enabled carbons
	fwd := carbon(t, laptop, messages(t, laptop, got[1], 1)[0], "sent", "chat")
	// XEP-0313 §3.5: the sent carbon tells the sender's archive id; the
	// recipient's copy does not.
	sid := fwd.Child(carbons.NSStanzaID, "stanza-id")
	if sid == nil || sid.Attribute("by") != phone.jid.Bare().String() || sid.Attribute("id") == "" {
		t.Errorf("sent carbon without the sender's stanza-id: %s", fwd)
	}
	messages(t, tablet, got[2], 0)
	if m := messages(t, bob, got[3], 1)[0]; stanza.ID(m) != "s2" {
		t.Errorf("bob got %s", m)
	} else {
		for _, e := range m.ChildrenNS(carbons.NSStanzaID) {
			if e.Attribute("by") != bob.jid.Bare().String() {
				t.Errorf("bob's copy carries a stanza-id of %s: %s", e.Attribute("by"), m)
			}
		}
	}

	phone.Send(fmt.Sprintf("<message to='%s' type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/></message>", bob.jid))
	got = barrier(t, phone, laptop, bob)
	messages(t, laptop, got[0], 0)
	if m := messages(t, bob, got[1], 1)[0]; m.Child(carbons.NS, "private") == nil {
		t.Errorf("bob got %s, without <private/>", m)
	}
	phone.Send(fmt.Sprintf("<message to='%s' type='headline'><body>x</body></message>", bob.jid))
	got = barrier(t, phone, laptop, bob)
	messages(t, laptop, got[0], 0)
	messages(t, bob, got[1], 1)
}

// TestBareJID: a message to the bare JID reaches the highest-priority
// resources (RFC 6121 §8.5.2.1.1); the others that enabled carbons get a
// copy.
func TestBareJID(t *testing.T) {
	_, phone, laptop, tablet, bob := startAlice(t)
	phone.available(5)
	laptop.available(1)
	tablet.available(1)

	bob.Send(fmt.Sprintf("<message to='%s' type='chat'><body>to the account</body></message>", phone.jid.Bare()))
	got := barrier(t, bob, phone, laptop, tablet)
	if m := messages(t, phone, got[0], 1)[0]; body(m) != "to the account" || stanza.To(m) != phone.jid.Bare().String() {
		t.Errorf("phone got %s", m)
	}
	fwd := carbon(t, laptop, messages(t, laptop, got[1], 1)[0], "received", "chat")
	if stanza.To(fwd) != phone.jid.Bare().String() {
		t.Errorf("forwarded %s, want it to the bare JID", fwd)
	}
	messages(t, tablet, got[2], 0)

	// Equal priorities: both get the message itself, nobody a copy.
	laptop.available(5)
	bob.Send(fmt.Sprintf("<message to='%s' type='chat'><body>to both</body></message>", phone.jid.Bare()))
	got = barrier(t, bob, phone, laptop, tablet)
	for i, c := range []*conn{phone, laptop} {
		if m := messages(t, c, got[i], 1)[0]; m.Child(carbons.NS, "received") != nil {
			t.Errorf("%s got a carbon instead of the message: %s", c.jid, m)
		}
	}
	messages(t, tablet, got[2], 0)
}

// TestOwnAccount: a message between two resources of one account reaches
// each resource once: the addressee gets it, the others that enabled
// carbons a received copy, the sender nothing.
func TestOwnAccount(t *testing.T) {
	_, phone, laptop, tablet, _ := startAlice(t)
	tablet.enable(true)
	phone.Send(fmt.Sprintf("<message to='%s' type='chat'><body>note to self</body></message>", laptop.jid))
	got := barrier(t, phone, phone, laptop, tablet)
	messages(t, phone, got[0], 0)
	if m := messages(t, laptop, got[1], 1)[0]; body(m) != "note to self" {
		t.Errorf("laptop got %s", m)
	}
	carbon(t, tablet, messages(t, tablet, got[2], 1)[0], "received", "chat")
}

// TestRemoteSender: a message from another server (routed as s2s does,
// without an origin session) is copied to the local recipient's other
// resources; a forged carbon from there is delivered as it is, not
// copied.
func TestRemoteSender(t *testing.T) {
	srv, phone, laptop, tablet, _ := startAlice(t)
	route := func(xml string) [][]*xmlstream.Element {
		t.Helper()
		srv.Router().Route(t.Context(), parse(t, xml))
		return routeSync(t, srv, phone, laptop, tablet)
	}
	got := route(fmt.Sprintf("<message from='juliet@capulet.example/balcony' to='%s' type='chat'><body>wherefore</body></message>", phone.jid))
	messages(t, phone, got[0], 1)
	if fwd := carbon(t, laptop, messages(t, laptop, got[1], 1)[0], "received", "chat"); stanza.From(fwd) != "juliet@capulet.example/balcony" {
		t.Errorf("forwarded %s", fwd)
	}
	messages(t, tablet, got[2], 0)

	// XEP-0280 §7's Tybalt example.
	forged := fmt.Sprintf(`<message from='tybalt@capulet.example/home' to='%s' type='chat'>
		<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>
		<message xmlns='jabber:client' from='juliet@capulet.example/balcony' to='%s' type='chat'><body>Thou shall meet me tonite</body></message>
		</forwarded></received></message>`, phone.jid, phone.jid)
	got = route(forged)
	if m := messages(t, phone, got[0], 1)[0]; stanza.From(m) != "tybalt@capulet.example/home" {
		t.Errorf("phone got %s", m)
	}
	messages(t, laptop, got[1], 0)

	// A private message from a room occupant: the room sends it to each
	// joined client itself (§6.1).
	got = route(fmt.Sprintf("<message from='chamber@conference.capulet.example/nurse' to='%s' type='chat'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>", phone.jid))
	messages(t, phone, got[0], 1)
	messages(t, laptop, got[1], 0)
}

// TestCSI: under client state indication (XEP-0352) a carbon is a
// message like any other: it goes out at once, even the carbon of a chat
// state (the queue sees only the wrapper).
func TestCSI(t *testing.T) {
	_, phone, laptop, _, bob := startAlice(t)
	laptop.Send("<inactive xmlns='urn:xmpp:csi:0'/>")
	laptop.iq("get", "", "<ping xmlns='urn:xmpp:ping'/>")
	bob.Send(fmt.Sprintf("<message to='%s' type='chat'><body>urgent</body></message>", phone.jid))
	bob.Send(fmt.Sprintf("<message to='%s' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>", phone.jid))
	for _, want := range []string{"body", "paused"} {
		e := laptop.Next()
		fwd := carbon(t, laptop, e, "received", "chat")
		if fwd.FirstChild() == nil || fwd.FirstChild().Name.Local != want {
			t.Errorf("inactive laptop: got %s, want the carbon with <%s/>", e, want)
		}
	}
}

// TestResumption: a carbon is a stanza like any other for stream
// management (XEP-0198): counted, kept while the connection is gone and
// resent on resumption.
func TestResumption(t *testing.T) {
	const nsSM = "urn:xmpp:sm:3"
	srv, phone, _, _, bob := startAlice(t)
	r := srv.DialRaw(t)
	r.Login("alice", "pw")
	desk := &conn{Raw: r, t: t, jid: r.Bind("desk")}
	r.Send("<enable xmlns='" + nsSM + "' resume='true'/>")
	id := r.Expect(nsSM, "enabled").Attribute("id")
	desk.enable(true) // the first stanza the client counts
	r.Drop()

	bob.Send(fmt.Sprintf("<message to='%s' type='chat' id='while-away'><body>are you there?</body></message>", phone.jid))
	got := barrier(t, bob, phone)
	messages(t, phone, got[0], 1)

	r2 := srv.DialRaw(t)
	r2.Login("alice", "pw")
	r2.Send(fmt.Sprintf("<resume xmlns='%s' previd='%s' h='1'/>", nsSM, id))
	r2.Expect(nsSM, "resumed")
	desk2 := &conn{Raw: r2, t: t, jid: desk.jid}
	for {
		e := r2.Next()
		if e.Name.Space == nsSM {
			continue
		}
		if fwd := carbon(t, desk2, e, "received", "chat"); stanza.ID(fwd) != "while-away" {
			t.Errorf("resent carbon forwards %s", fwd)
		}
		break
	}
}

// TestUnackedNotOffline: a carbon that a stream-managed session ended
// without acknowledging comes back to the account (c2s hands what was
// not acknowledged to the other resources or offline storage); it is
// dropped, not stored offline, so the next login does not see the
// message again.
func TestUnackedNotOffline(t *testing.T) {
	const nsSM = "urn:xmpp:sm:3"
	srv, phone, _, _, bob := startAlice(t)
	r := srv.DialRaw(t)
	r.Login("alice", "pw")
	desk := &conn{Raw: r, t: t, jid: r.Bind("desk")}
	r.Send("<enable xmlns='" + nsSM + "'/>")
	r.Expect(nsSM, "enabled")
	desk.enable(true)
	bob.Send(fmt.Sprintf("<message to='%s' type='chat'><body>hello</body></message>", phone.jid))
	got := barrier(t, bob, phone, desk)
	var stanzas []*xmlstream.Element
	for _, e := range got[1] {
		if e.Name.Space != nsSM { // the server's <r/>
			stanzas = append(stanzas, e)
		}
	}
	carbon(t, desk, messages(t, desk, stanzas, 1)[0], "received", "chat")
	r.Close() // without acknowledging anything
	xmpptest.WaitFor(t, 10*time.Second, "the desk session to end", func() bool { return srv.Router().Session(desk.jid) == nil })

	next := connect(t, srv, "alice", "next")
	next.available(0) // offline messages come now
	messages(t, next, barrier(t, next, next)[0], 0)
}
