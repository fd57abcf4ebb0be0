package push_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/push"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

const nsSM = "urn:xmpp:sm:3"

// defaults are the module's settings with the ack_delay check and
// throttling off, so that each test chooses when the device is woken.
func defaults() push.Config {
	c := *push.Info.Config.(*push.Config)
	c.AckDelay = 0
	c.Throttle = 0
	return c
}

// start starts a server with the push module (cfg nil: defaults()) and
// the accounts alice, bob and app (the app server), password "pw".
func start(t *testing.T, cfg *push.Config) *xmpptest.Server {
	t.Helper()
	if cfg == nil {
		c := defaults()
		cfg = &c
	}
	srv := xmpptest.Start(t, func(c *config.Config) { c.Modules.Settings["push"] = cfg })
	for _, u := range []string{"alice", "bob", "app"} {
		srv.AddUser(t, u, "pw")
	}
	return srv
}

// client is a raw client session.
type client struct {
	t    *testing.T
	r    *xmpptest.Raw
	jid  jid.JID
	ids  int
	smID string
}

func login(t *testing.T, srv *xmpptest.Server, local, res string) *client {
	t.Helper()
	r := srv.DialRaw(t)
	r.Login(local, "pw")
	return &client{t: t, r: r, jid: r.Bind(res)}
}

// online sends initial presence and reads its echo.
func (c *client) online() *client {
	c.t.Helper()
	c.r.Send(`<presence/>`)
	for {
		e := c.r.Next()
		if e.Name.Local == "presence" && e.Attribute("from") == c.jid.String() {
			return c
		}
	}
}

// sm enables stream management with resumption (max seconds, if not 0).
func (c *client) sm(max int) *client {
	c.t.Helper()
	attr := ""
	if max > 0 {
		attr = fmt.Sprintf(" max='%d'", max)
	}
	c.r.Send(`<enable xmlns='` + nsSM + `' resume='true'` + attr + `/>`)
	for {
		e := c.r.Next()
		switch {
		case e.Name.Space == nsSM && e.Name.Local == "enabled":
			c.smID = e.Attribute("id")
			return c
		case e.Name.Local != "presence":
			c.t.Fatalf("want <enabled/>, got %s", e)
		}
	}
}

// iq sends an IQ set (to "" for none) and returns its answer, skipping
// anything else.
func (c *client) iq(to, payload string) *xmlstream.Element {
	c.t.Helper()
	c.ids++
	id := fmt.Sprintf("q%d", c.ids)
	attrTo := ""
	if to != "" {
		attrTo = " to='" + to + "'"
	}
	c.r.Send(fmt.Sprintf(`<iq type='set' id='%s'%s>%s</iq>`, id, attrTo, payload))
	for {
		e := c.r.Next()
		if e.Name.Local == "iq" && e.Attribute("id") == id {
			return e
		}
	}
}

// enable enables push to the app client's JID for node, with a secret.
func (c *client) enable(service, node, secret string) {
	c.t.Helper()
	form := ""
	if secret != "" {
		form = `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>` + push.NSPublishOptions +
			`</value></field><field var='secret'><value>` + secret + `</value></field></x>`
	}
	res := c.iq("", `<enable xmlns='urn:xmpp:push:0' jid='`+service+`' node='`+node+`'>`+form+`</enable>`)
	if stanza.Type(res) != stanza.IQResult {
		c.t.Fatalf("enable: %s", res)
	}
}

func (c *client) send(to, body string) {
	c.r.Send(fmt.Sprintf(`<message to='%s' type='chat'><body>%s</body></message>`, to, body))
}

// notification is what the app server received.
type notification struct {
	id, from, node string
	fields         map[string]string // the summary form
	options        map[string]string // publish-options
}

// nextPush reads the next push notification the app client receives and
// answers it with a result.
func (c *client) nextPush() notification {
	c.t.Helper()
	n := c.nextPushUnanswered()
	c.answer(n, "")
	return n
}

// answer answers a notification: with an <error/> child, or a result
// when errXML is "".
func (c *client) answer(n notification, errXML string) {
	typ := "result"
	if errXML != "" {
		typ = "error"
	}
	c.r.Send(fmt.Sprintf(`<iq type='%s' id='%s' to='%s'>%s</iq>`, typ, n.id, n.from, errXML))
}

// nextPushUnanswered reads the next push notification; anything but an
// IQ set (or a presence) fails the test.
func (c *client) nextPushUnanswered() notification {
	c.t.Helper()
	for {
		e := c.r.Next()
		if e.Name.Local == "presence" {
			continue
		}
		if e.Name.Local != "iq" || stanza.Type(e) != stanza.IQSet {
			c.t.Fatalf("want a push notification, got %s", e)
		}
		ps := e.Child(push.NSPubsub, "pubsub")
		if ps == nil {
			c.t.Fatalf("push without pubsub: %s", e)
		}
		pub := ps.Child(push.NSPubsub, "publish")
		n := notification{id: stanza.ID(e), from: stanza.From(e), fields: map[string]string{}, options: map[string]string{}}
		if pub == nil {
			c.t.Fatalf("push without publish: %s", e)
		}
		n.node = pub.Attribute("node")
		item := pub.Child(push.NSPubsub, "item")
		var x *xmlstream.Element
		if item != nil {
			if nt := item.Child(push.NS, "notification"); nt != nil {
				x = nt.Child(push.NSData, "x")
			}
		}
		if x == nil {
			c.t.Fatalf("push without a notification form: %s", e)
		}
		readForm(x, n.fields)
		if po := ps.Child(push.NSPubsub, "publish-options"); po != nil {
			if ox := po.Child(push.NSData, "x"); ox != nil {
				readForm(ox, n.options)
			}
		}
		return n
	}
}

func readForm(x *xmlstream.Element, into map[string]string) {
	for _, f := range x.ChildrenNS(push.NSData) {
		if f.Name.Local == "field" {
			if v := f.Child(push.NSData, "value"); v != nil {
				into[f.Attribute("var")] = v.Text()
			}
		}
	}
}

// waitDetached waits until the server sees the session as detached.
func waitDetached(t *testing.T, srv *xmpptest.Server, full jid.JID) {
	t.Helper()
	xmpptest.WaitFor(t, 10*time.Second, full.String()+" detached", func() bool {
		s := srv.Router().Session(full)
		return s != nil && s.Detached()
	})
}

func regCount(t *testing.T, srv *xmpptest.Server, local string) int {
	t.Helper()
	regs, err := srv.Store().PushRegistrations(t.Context(), local, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return len(regs)
}

// TestDetachedSession: a message to a session that enabled push and lost
// its connection makes the server publish to the app server, with the
// publish-options, from the account's bare JID, and without the sender or
// body by default.
func TestDetachedSession(t *testing.T) {
	srv := start(t, nil)
	app := login(t, srv, "app", "srv")
	alice := login(t, srv, "alice", "phone").online().sm(0)
	alice.enable(app.jid.String(), "dev1", "s3cret")
	bob := login(t, srv, "bob", "pc").online()

	alice.r.Drop()
	waitDetached(t, srv, alice.jid)
	bob.send(alice.jid.String(), "hello")
	n := app.nextPush()
	if n.from != "alice@localhost" || n.node != "dev1" {
		t.Errorf("push from %s to node %s, want alice@localhost, dev1", n.from, n.node)
	}
	if n.fields["FORM_TYPE"] != push.NSSummary || n.fields["message-count"] != "1" {
		t.Errorf("summary %v", n.fields)
	}
	if _, ok := n.fields["last-message-body"]; ok {
		t.Errorf("the body went to the app server by default: %v", n.fields)
	}
	if _, ok := n.fields["last-message-sender"]; ok {
		t.Errorf("the sender went to the app server by default: %v", n.fields)
	}
	if n.options["FORM_TYPE"] != push.NSPublishOptions || n.options["secret"] != "s3cret" {
		t.Errorf("publish-options %v", n.options)
	}

	// An OMEMO message has no body but wakes the device.
	bob.r.Send(`<message to='` + alice.jid.String() + `' type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/><store xmlns='urn:xmpp:hints'/></message>`)
	if n := app.nextPush(); n.fields["message-count"] != "1" {
		t.Errorf("push for an encrypted message: %v", n.fields)
	}
}

// TestSenderAndBody: include_sender and include_body put them in the
// summary.
func TestSenderAndBody(t *testing.T) {
	cfg := defaults()
	cfg.IncludeSender, cfg.IncludeBody = true, true
	srv := start(t, &cfg)
	app := login(t, srv, "app", "srv")
	alice := login(t, srv, "alice", "phone").online().sm(0)
	alice.enable(app.jid.String(), "dev1", "")
	bob := login(t, srv, "bob", "pc").online()
	alice.r.Drop()
	waitDetached(t, srv, alice.jid)
	long := strings.Repeat("é", 300) // 600 bytes: cut at 512, on a character
	bob.send("alice@localhost", long)
	n := app.nextPush()
	if n.fields["last-message-sender"] != bob.jid.String() {
		t.Errorf("last-message-sender %q, want %s", n.fields["last-message-sender"], bob.jid)
	}
	if n.fields["last-message-body"] != strings.Repeat("é", 256) {
		t.Errorf("last-message-body %q", n.fields["last-message-body"])
	}
	if len(n.options) != 0 {
		t.Errorf("publish-options without a form: %v", n.options)
	}
	// Chat states and receipts alone do not wake the device: the next
	// notification is the next body's.
	bob.r.Send(`<message to='alice@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)
	bob.r.Send(`<message to='alice@localhost'><received xmlns='urn:xmpp:receipts' id='x'/></message>`)
	bob.r.Send(`<message to='alice@localhost' type='headline'><body>news</body></message>`)
	bob.send("alice@localhost", "next")
	if n := app.nextPush(); n.fields["last-message-body"] != "next" {
		t.Errorf("after a chat state, a receipt and a headline: %v", n.fields)
	}
}

// TestOffline: a message stored offline wakes every device of the
// account; a subscription request too.
func TestOffline(t *testing.T) {
	srv := start(t, nil)
	app := login(t, srv, "app", "srv")
	alice := login(t, srv, "alice", "phone").online()
	alice.enable(app.jid.String(), "dev1", "")
	alice.r.Close()
	bob := login(t, srv, "bob", "pc").online()
	xmpptest.WaitFor(t, 10*time.Second, "alice offline", func() bool { return srv.Router().SessionCount(alice.jid.Bare()) == 0 })
	bob.send("alice@localhost", "are you there?")
	if n := app.nextPush(); n.node != "dev1" || n.fields["message-count"] != "1" {
		t.Errorf("offline message push: %+v", n)
	}
	// A subscription request: after the throttle interval.
	bob.r.Send(`<presence to='alice@localhost' type='subscribe'/>`)
	if n := app.nextPush(); n.fields["pending-subscription-count"] != "1" || n.fields["message-count"] != "0" {
		t.Errorf("subscription push: %+v", n)
	}
}

// TestThrottle: notifications within the interval are counted into one.
func TestThrottle(t *testing.T) {
	cfg := defaults()
	cfg.Throttle = config.Duration(time.Second)
	srv := start(t, &cfg)
	app := login(t, srv, "app", "srv")
	alice := login(t, srv, "alice", "phone").online().sm(0)
	alice.enable(app.jid.String(), "dev1", "")
	bob := login(t, srv, "bob", "pc").online()
	alice.r.Drop()
	waitDetached(t, srv, alice.jid)
	bob.send(alice.jid.String(), "one")
	first := app.nextPush()
	bob.send(alice.jid.String(), "two")
	bob.send(alice.jid.String(), "three")
	bob.send(alice.jid.String(), "four")
	second := app.nextPush()
	if first.fields["message-count"] != "1" || second.fields["message-count"] != "3" {
		t.Errorf("message-count %s then %s, want 1 then 3", first.fields["message-count"], second.fields["message-count"])
	}
}

// TestAppServerError: an error from the app server removes the
// registration; a wait error does not.
func TestAppServerError(t *testing.T) {
	srv := start(t, nil)
	app := login(t, srv, "app", "srv")
	alice := login(t, srv, "alice", "phone").online()
	alice.enable(app.jid.String(), "keep", "")
	alice.enable(app.jid.String(), "gone", "")
	alice.r.Close()
	bob := login(t, srv, "bob", "pc").online()
	xmpptest.WaitFor(t, 10*time.Second, "alice offline", func() bool { return srv.Router().SessionCount(alice.jid.Bare()) == 0 })
	bob.send("alice@localhost", "hi")
	for range 2 {
		n := app.nextPushUnanswered()
		switch n.node {
		case "keep":
			app.answer(n, `<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`)
		case "gone":
			app.answer(n, `<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`)
		default:
			t.Fatalf("push to node %q", n.node)
		}
	}
	xmpptest.WaitFor(t, 10*time.Second, "the refused registration removed", func() bool { return regCount(t, srv, "alice") == 1 })
	regs, _ := srv.Store().PushRegistrations(t.Context(), "alice", "localhost")
	if len(regs) != 1 || regs[0].Node != "keep" {
		t.Fatalf("registrations %+v, want only keep", regs)
	}
	bob.send("alice@localhost", "again")
	if n := app.nextPush(); n.node != "keep" {
		t.Errorf("push to %q, want keep", n.node)
	}
}

// TestDisableAndMax: disable removes one node or every node of an app
// server; past max_registrations the oldest goes.
func TestDisableAndMax(t *testing.T) {
	cfg := defaults()
	cfg.MaxRegistrations = 3
	srv := start(t, &cfg)
	app := login(t, srv, "app", "srv")
	alice := login(t, srv, "alice", "phone").online()
	for _, n := range []string{"a", "b", "c", "d"} {
		alice.enable(app.jid.String(), n, "")
	}
	regs, _ := srv.Store().PushRegistrations(t.Context(), "alice", "localhost")
	var nodes []string
	for _, r := range regs {
		nodes = append(nodes, r.Node)
	}
	if strings.Join(nodes, ",") != "b,c,d" {
		t.Errorf("nodes %v after four enables with max 3, want b,c,d", nodes)
	}
	alice.enable("other.example.net", "x", "")
	if res := alice.iq("", `<disable xmlns='urn:xmpp:push:0' jid='`+app.jid.String()+`' node='c'/>`); stanza.Type(res) != stanza.IQResult {
		t.Fatalf("disable one node: %s", res)
	}
	if n := regCount(t, srv, "alice"); n != 2 {
		t.Errorf("%d registrations after disabling one, want 2", n)
	}
	if res := alice.iq("", `<disable xmlns='urn:xmpp:push:0' jid='`+app.jid.String()+`'/>`); stanza.Type(res) != stanza.IQResult {
		t.Fatalf("disable every node: %s", res)
	}
	regs, _ = srv.Store().PushRegistrations(t.Context(), "alice", "localhost")
	if len(regs) != 1 || regs[0].Service != "other.example.net" {
		t.Errorf("registrations %+v, want only other.example.net", regs)
	}
	// Disabled: a message to the detached session wakes nothing; the
	// next notification the app server sees is for a new registration.
	alice.iq("", `<disable xmlns='urn:xmpp:push:0' jid='other.example.net'/>`)
	alice.sm(0)
	bob := login(t, srv, "bob", "pc").online()
	alice.r.Drop()
	waitDetached(t, srv, alice.jid)
	bob.send(alice.jid.String(), "nobody wakes")
	carol := login(t, srv, "alice", "tablet").online().sm(0)
	carol.enable(app.jid.String(), "tablet", "")
	carol.r.Drop()
	waitDetached(t, srv, carol.jid)
	bob.send(carol.jid.String(), "wake the tablet")
	if n := app.nextPush(); n.node != "tablet" {
		t.Errorf("push to %q, want tablet", n.node)
	}
}

// TestAccountFeature: disco#info of the account lists XEP-0357.
func TestAccountFeature(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone")
	alice.ids++
	alice.r.Send(`<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	res := alice.r.Expect("jabber:client", "iq")
	q := res.Child("http://jabber.org/protocol/disco#info", "query")
	found := false
	if q != nil {
		for _, f := range q.ChildrenNS("http://jabber.org/protocol/disco#info") {
			if f.Name.Local == "feature" && f.Attribute("var") == push.NS {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("account disco#info without %s: %s", push.NS, res)
	}
}

// TestUnackedOnDetach: a session that loses its connection with an
// important message it never acknowledged wakes its device.
func TestUnackedOnDetach(t *testing.T) {
	srv := start(t, nil)
	app := login(t, srv, "app", "srv")
	alice := login(t, srv, "alice", "phone").online().sm(0)
	alice.enable(app.jid.String(), "dev1", "")
	bob := login(t, srv, "bob", "pc").online()
	bob.send(alice.jid.String(), "read me")
	for e := alice.r.Next(); e.Name.Local != "message"; e = alice.r.Next() {
	}
	alice.r.Drop() // without acknowledging it
	if n := app.nextPush(); n.node != "dev1" {
		t.Errorf("push to %q", n.node)
	}
}

// TestAckDelay: a connected session that leaves an important message
// unacknowledged past ack_delay has its device woken.
func TestAckDelay(t *testing.T) {
	cfg := defaults()
	cfg.AckDelay = config.Duration(200 * time.Millisecond)
	srv := start(t, &cfg)
	app := login(t, srv, "app", "srv")
	alice := login(t, srv, "alice", "phone").online().sm(0)
	alice.enable(app.jid.String(), "dev1", "")
	bob := login(t, srv, "bob", "pc").online()
	// Acknowledged in time: no notification.
	bob.send(alice.jid.String(), "acked")
	for e := alice.r.Next(); e.Name.Local != "r"; e = alice.r.Next() {
	}
	alice.r.Send(`<a xmlns='` + nsSM + `' h='1'/>`)
	// Not acknowledged: the device is woken while still connected.
	bob.send(alice.jid.String(), "ignored")
	start := time.Now()
	n := app.nextPush()
	if n.node != "dev1" || n.fields["message-count"] != "1" {
		t.Errorf("push %+v", n)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("pushed after %v, before ack_delay", d)
	}
}

// TestKeepsSessionResumable: once push is enabled, a detached session
// waits for resume_timeout rather than the client's max.
func TestKeepsSessionResumable(t *testing.T) {
	srv := start(t, nil)
	app := login(t, srv, "app", "srv")
	alice := login(t, srv, "alice", "phone").online().sm(1)
	alice.enable(app.jid.String(), "dev1", "")
	alice.r.Drop()
	waitDetached(t, srv, alice.jid)
	time.Sleep(1500 * time.Millisecond) // past the 1 s the client asked for
	r := srv.DialRaw(t)
	r.Login("alice", "pw")
	r.Send(`<resume xmlns='` + nsSM + `' previd='` + alice.smID + `' h='0'/>`)
	if e := r.Next(); e.Name.Local != "resumed" {
		t.Fatalf("resume after the client's max: %s", e)
	}
}

// TestEnableErrors: the stanza errors of bad <enable/> and <disable/>.
func TestEnableErrors(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "phone")
	form := func(typ, formType string) string {
		return `<x xmlns='jabber:x:data' type='` + typ + `'><field var='FORM_TYPE'><value>` + formType + `</value></field></x>`
	}
	for _, tt := range []struct {
		name, to, payload string
		cond              stanza.Condition
	}{
		{"no jid", "", `<enable xmlns='urn:xmpp:push:0' node='n'/>`, stanza.BadRequest},
		{"bad jid", "", `<enable xmlns='urn:xmpp:push:0' jid='a@b@c' node='n'/>`, stanza.JIDMalformed},
		{"no node", "", `<enable xmlns='urn:xmpp:push:0' jid='push.example.net'/>`, stanza.BadRequest},
		{"self", "", `<enable xmlns='urn:xmpp:push:0' jid='alice@localhost/other' node='n'/>`, stanza.NotAcceptable},
		{"form type", "", `<enable xmlns='urn:xmpp:push:0' jid='push.example.net' node='n'>` + form("submit", "urn:other") + `</enable>`, stanza.BadRequest},
		{"form not submit", "", `<enable xmlns='urn:xmpp:push:0' jid='push.example.net' node='n'>` + form("form", push.NSPublishOptions) + `</enable>`, stanza.BadRequest},
		{"long node", "", `<enable xmlns='urn:xmpp:push:0' jid='push.example.net' node='` + strings.Repeat("n", 1025) + `'/>`, stanza.NotAcceptable},
		{"other account", "bob@localhost", `<enable xmlns='urn:xmpp:push:0' jid='push.example.net' node='n'/>`, stanza.NotAllowed},
		{"disable no jid", "", `<disable xmlns='urn:xmpp:push:0'/>`, stanza.BadRequest},
	} {
		res := alice.iq(tt.to, tt.payload)
		se, ok := stanza.ParseError(res)
		if stanza.Type(res) != stanza.IQError || !ok || se.Condition != tt.cond {
			t.Errorf("%s: got %s, want %s", tt.name, res, tt.cond)
		}
	}
	if n := regCount(t, srv, "alice"); n != 0 {
		t.Errorf("%d registrations stored from bad requests", n)
	}
}

// TestRemoteAppServer: the app server is at another domain; the
// notification and its answer cross a server-to-server stream.
func TestRemoteAppServer(t *testing.T) {
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	addrA, addrB := xmpptest.FreeAddr(t), xmpptest.FreeAddr(t)
	cfg := defaults()
	a := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"a.test"}
		c.S2S.Listen = []string{addrA}
		c.S2S.Hosts = map[string]string{"b.test": addrB}
		c.Modules.Settings["push"] = &cfg
	})
	b := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"b.test"}
		c.S2S.Listen = []string{addrB}
		c.S2S.Hosts = map[string]string{"a.test": addrA}
	})
	a.AddUser(t, "alice", "pw")
	a.AddUser(t, "bob", "pw")
	b.AddUser(t, "app", "pw")
	app := login(t, b, "app", "srv")
	alice := login(t, a, "alice", "phone").online().sm(0)
	alice.enable(app.jid.String(), "dev1", "s")
	bob := login(t, a, "bob", "pc").online()
	alice.r.Drop()
	waitDetached(t, a, alice.jid)
	bob.send(alice.jid.String(), "over s2s")
	n := app.nextPush()
	if n.from != "alice@a.test" || n.node != "dev1" || n.options["secret"] != "s" {
		t.Errorf("push %+v", n)
	}
	// The answer crossed back: an error answer removes the registration.
	bob.send(alice.jid.String(), "again")
	n = app.nextPushUnanswered()
	app.answer(n, `<error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`)
	xmpptest.WaitFor(t, 20*time.Second, "the registration removed", func() bool {
		regs, err := a.Store().PushRegistrations(t.Context(), "alice", "a.test")
		return err == nil && len(regs) == 0
	})
}

// TestGroupchatMention: a groupchat message to a detached session wakes
// its device only when it names the session's nick in that room.
func TestGroupchatMention(t *testing.T) {
	cfg := defaults()
	cfg.IncludeBody = true
	srv := start(t, &cfg)
	app := login(t, srv, "app", "srv")
	alice := login(t, srv, "alice", "phone").online().sm(0)
	alice.enable(app.jid.String(), "dev1", "")
	const room = "lobby@conference.localhost"
	enter := func(c *client, nick string) {
		c.r.Send(`<presence to='` + room + `/` + nick + `'/>`)
		for e := c.r.Next(); !(e.Name.Local == "message" && e.Child("jabber:client", "subject") != nil); e = c.r.Next() {
		}
	}
	enter(alice, "Alice")
	bob := login(t, srv, "bob", "pc").online()
	enter(bob, "Bob")
	alice.r.Drop()
	waitDetached(t, srv, alice.jid)
	say := func(text string) {
		bob.r.Send(`<message to='` + room + `' type='groupchat'><body>` + text + `</body></message>`)
		for e := bob.r.Next(); e.Name.Local != "message"; e = bob.r.Next() {
		}
	}
	say("hello everyone")
	say("Malice is not a name")
	say("what do you think, alice?")
	// The first notification is the mention's: the two messages before
	// it woke nothing.
	n := app.nextPush()
	if n.node != "dev1" || n.fields["last-message-body"] != "what do you think, alice?" {
		t.Errorf("mention push %+v", n)
	}
	bob.send(alice.jid.String(), "direct")
	if n := app.nextPush(); n.fields["last-message-body"] != "direct" {
		t.Errorf("after the mention: %+v", n)
	}
}
