package blocking_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/modules/blocking"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func command(name string, jids ...string) *xmlstream.Element {
	e := xmlstream.NewElement(blocking.NS, name)
	for _, j := range jids {
		e.Append(xmlstream.NewElement(blocking.NS, "item").SetAttr("jid", j))
	}
	return e
}

func set(t *testing.T, c *client.Client, cmd *xmlstream.Element) error {
	t.Helper()
	_, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", "").Append(cmd))
	return err
}

func mustSet(t *testing.T, c *client.Client, cmd *xmlstream.Element) {
	t.Helper()
	if err := set(t, c, cmd); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
}

// list gets the block list (which also asks for pushes).
func list(t *testing.T, c *client.Client) []string {
	t.Helper()
	res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "", "", "").Append(command("blocklist")))
	if err != nil {
		t.Fatal(err)
	}
	bl := res.Child(blocking.NS, "blocklist")
	if bl == nil {
		t.Fatalf("no blocklist in %s", res)
	}
	out := []string{}
	for _, it := range bl.ChildrenNS(blocking.NS) {
		out = append(out, it.Attribute("jid"))
	}
	return out
}

func wantList(t *testing.T, c *client.Client, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := list(t, c); !slices.Equal(got, want) {
		t.Fatalf("block list %q, want %q", got, want)
	}
}

func wantCondition(t *testing.T, err error, cond stanza.Condition) {
	t.Helper()
	if !errors.Is(err, stanza.NewError(cond, "")) {
		t.Fatalf("got %v, want %s", err, cond)
	}
}

func chat(to, body string) *xmlstream.Element {
	return stanza.NewMessage(stanza.NSClient, stanza.MessageChat, to, "", "").
		Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(body))
}

func body(e *xmlstream.Element) string {
	if b := e.Child(stanza.NSClient, "body"); b != nil {
		return b.Text()
	}
	return ""
}

func send(t *testing.T, c *client.Client, e *xmlstream.Element) {
	t.Helper()
	if err := c.Send(e); err != nil {
		t.Fatal(err)
	}
}

// recvUntil returns the first stanza c receives that match accepts; it
// fails if one that bad accepts comes first.
func recvUntil(t *testing.T, c *client.Client, match, bad func(*xmlstream.Element) bool) *xmlstream.Element {
	t.Helper()
	ctx := ctxT(t)
	for {
		e, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("%s: receive: %v", c.JID(), err)
		}
		if bad != nil && bad(e) {
			t.Fatalf("%s: unexpected %s", c.JID(), e)
		}
		if match(e) {
			return e
		}
	}
}

var markers atomic.Int64

// barrier has from send to a message that to must receive; whatever to
// receives before it is checked with bad. Anything routed to to before the
// barrier was sent arrives before it, since delivery keeps the order.
func barrier(t *testing.T, from, to *client.Client, bad func(*xmlstream.Element) bool) {
	t.Helper()
	text := fmt.Sprintf("barrier %d", markers.Add(1))
	send(t, from, chat(to.JID().String(), text))
	recvUntil(t, to, func(e *xmlstream.Element) bool { return e.Name.Local == "message" && body(e) == text }, bad)
}

func isPush(e *xmlstream.Element) bool {
	return e.Name.Local == "iq" && stanza.Type(e) == stanza.IQSet && e.ChildrenNS(blocking.NS) != nil
}

func from(j string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool { return stanza.From(e) == j }
}

func TestCommands(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	wantList(t, c)
	mustSet(t, c, command("block", "romeo@montague.net", "iago@shakespeare.lit", "Tybalt@Capulet.lit/Sword", "montague.net"))
	wantList(t, c, "iago@shakespeare.lit", "montague.net", "romeo@montague.net", "tybalt@capulet.lit/Sword")
	mustSet(t, c, command("block", "romeo@montague.net")) // already there
	mustSet(t, c, command("unblock", "iago@shakespeare.lit", "nobody@example.com"))
	wantList(t, c, "montague.net", "romeo@montague.net", "tybalt@capulet.lit/Sword")
	mustSet(t, c, command("unblock"))
	wantList(t, c)
}

// TestRouterBlocked: the router answers for the block list, so that
// presence broadcasts and probe answers to remote contacts are checked too.
func TestRouterBlocked(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	juliet := srv.AddUser(t, "juliet", "balcony")
	c := srv.Dial(t, juliet, "balcony")
	romeo := jid.MustParse("romeo@montague.net")
	if srv.Router().Blocked(ctxT(t), juliet, romeo) {
		t.Fatal("blocked before any block command")
	}
	mustSet(t, c, command("block", "montague.net"))
	if !srv.Router().Blocked(ctxT(t), juliet, romeo) {
		t.Error("a JID of a blocked domain is not blocked for the router")
	}
	mustSet(t, c, command("unblock", "montague.net"))
	if srv.Router().Blocked(ctxT(t), juliet, romeo) {
		t.Error("still blocked after unblocking")
	}
}

func TestCommandErrors(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	srv.AddUser(t, "romeo", "orchard")
	mustSet(t, c, command("block", "iago@shakespeare.lit"))
	noJID := command("block")
	noJID.Append(xmlstream.NewElement(blocking.NS, "item"))
	tests := []struct {
		name string
		iq   *xmlstream.Element
		want stanza.Condition
	}{
		{"block nothing", stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", "").Append(command("block")), stanza.BadRequest},
		{"block an invalid JID", stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", "").Append(command("block", "romeo@montague.net", "a@b@c")), stanza.BadRequest},
		{"block an empty JID", stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", "").Append(command("block", "")), stanza.BadRequest},
		{"item without jid", stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", "").Append(noJID), stanza.BadRequest},
		{"unblock an invalid JID", stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", "").Append(command("unblock", "@montague.net")), stanza.BadRequest},
		{"another user's list", stanza.NewIQ(stanza.NSClient, stanza.IQGet, "romeo@localhost", "", "").Append(command("blocklist")), stanza.Forbidden},
		{"block for another user", stanza.NewIQ(stanza.NSClient, stanza.IQSet, "romeo@localhost", "", "").Append(command("block", "x@y")), stanza.Forbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.IQ(ctxT(t), tt.iq)
			wantCondition(t, err, tt.want)
		})
	}
	// Nothing changed, and the own bare JID is the same as no 'to'.
	res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "juliet@localhost", "", "").Append(command("blocklist")))
	if err != nil {
		t.Fatal(err)
	}
	if items := res.Child(blocking.NS, "blocklist").ChildrenNS(blocking.NS); len(items) != 1 || items[0].Attribute("jid") != "iago@shakespeare.lit" {
		t.Fatalf("list after errors: %s", res)
	}
}

// TestPushes: block and unblock changes go to the resources that asked for
// the list, and only to them (§3.3, §3.4, §3.5).
func TestPushes(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	j := srv.AddUser(t, "juliet", "balcony")
	nurse := srv.Dial(t, srv.AddUser(t, "nurse", "secret"), "secret")
	balcony := dialAs(t, srv, j, "balcony")
	chamber := dialAs(t, srv, j, "chamber")
	gone := dialAs(t, srv, j, "gone")
	list(t, balcony)
	list(t, gone)
	gone.Close()
	waitSessions(t, srv, 3)
	again := dialAs(t, srv, j, "gone") // a new session, not interested

	mustSet(t, chamber, command("block", "romeo@montague.net"))
	p := recvUntil(t, balcony, isPush, nil)
	if stanza.From(p) != "juliet@localhost" || stanza.To(p) != balcony.JID().String() ||
		p.Child(blocking.NS, "block") == nil || p.Child(blocking.NS, "block").Child(blocking.NS, "item").Attribute("jid") != "romeo@montague.net" {
		t.Fatalf("push %s", p)
	}
	barrier(t, nurse, chamber, isPush)
	barrier(t, nurse, again, isPush)

	mustSet(t, chamber, command("unblock", "romeo@montague.net"))
	p = recvUntil(t, balcony, isPush, nil)
	if u := p.Child(blocking.NS, "unblock"); u == nil || len(u.ChildrenNS(blocking.NS)) != 1 {
		t.Fatalf("push %s", p)
	}
	mustSet(t, balcony, command("unblock"))
	p = recvUntil(t, balcony, isPush, nil)
	if u := p.Child(blocking.NS, "unblock"); u == nil || len(u.ChildrenNS(blocking.NS)) != 0 {
		t.Fatalf("unblock-all push %s", p)
	}
	barrier(t, nurse, chamber, isPush)
}

// dialAs logs in as bare/resource (with Juliet's password).
func dialAs(t *testing.T, srv *xmpptest.Server, bare jid.JID, resource string) *client.Client {
	t.Helper()
	return dialWithPassword(t, srv, bare, resource, "balcony")
}

// waitSessions polls until the server has n bound sessions.
func waitSessions(t *testing.T, srv *xmpptest.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Router().Count() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions, want %d", srv.Router().Count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestInbound: nothing from a blocked JID reaches the user; messages and
// IQ requests are answered with service-unavailable, presence is dropped.
func TestInbound(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	juliet := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	romeo := srv.Dial(t, srv.AddUser(t, "romeo", "orchard"), "orchard")
	nurse := srv.Dial(t, srv.AddUser(t, "nurse", "secret"), "secret")
	mustSet(t, juliet, command("block", "romeo@localhost"))
	fromRomeo := from(romeo.JID().String())

	send(t, romeo, chat(juliet.JID().String(), "to your resource"))
	e := recvUntil(t, romeo, func(e *xmlstream.Element) bool { return e.Name.Local == "message" }, nil)
	wantErrorStanza(t, e, stanza.ServiceUnavailable, false)
	if stanza.From(e) != juliet.JID().String() {
		t.Errorf("error from %s", stanza.From(e))
	}
	send(t, romeo, chat("juliet@localhost", "to your bare JID"))
	e = recvUntil(t, romeo, func(e *xmlstream.Element) bool { return e.Name.Local == "message" }, nil)
	wantErrorStanza(t, e, stanza.ServiceUnavailable, false)

	for _, to := range []string{juliet.JID().String(), "juliet@localhost"} {
		_, err := romeo.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, to, "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping")))
		wantCondition(t, err, stanza.ServiceUnavailable)
	}
	// Presence and an IQ result vanish without an answer.
	send(t, romeo, stanza.NewPresence(stanza.NSClient, "", juliet.JID().String(), "", ""))
	send(t, romeo, stanza.NewPresence(stanza.NSClient, stanza.PresenceSubscribe, "juliet@localhost", "", ""))
	send(t, romeo, stanza.NewIQ(stanza.NSClient, stanza.IQResult, juliet.JID().String(), "", "r1"))
	barrier(t, nurse, romeo, func(e *xmlstream.Element) bool { return stanza.Type(e) == "error" })
	barrier(t, nurse, juliet, fromRomeo)

	// Unblocked, Romeo gets through.
	mustSet(t, juliet, command("unblock", "romeo@localhost"))
	send(t, romeo, chat(juliet.JID().String(), "hello again"))
	if m := recvUntil(t, juliet, func(e *xmlstream.Element) bool { return e.Name.Local == "message" }, nil); body(m) != "hello again" {
		t.Fatalf("juliet got %s", m)
	}
}

func wantErrorStanza(t *testing.T, e *xmlstream.Element, cond stanza.Condition, blocked bool) {
	t.Helper()
	se, ok := stanza.ParseError(e)
	if !ok || se.Condition != cond {
		t.Fatalf("got %s, want a %s error", e, cond)
	}
	hasApp := se.App != nil && se.App.Name == xmlstream.Name{Space: blocking.NSErrors, Local: "blocked"}
	if hasApp != blocked {
		t.Fatalf("got %s: <blocked/> present %v, want %v", e, hasApp, blocked)
	}
}

// TestOutbound: the user cannot send to a JID they blocked (§3.3).
func TestOutbound(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	juliet := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	romeo := srv.Dial(t, srv.AddUser(t, "romeo", "orchard"), "orchard")
	nurse := srv.Dial(t, srv.AddUser(t, "nurse", "secret"), "secret")
	mustSet(t, juliet, command("block", "romeo@localhost"))

	send(t, juliet, chat(romeo.JID().String(), "wherefore art thou"))
	e := recvUntil(t, juliet, func(e *xmlstream.Element) bool { return e.Name.Local == "message" }, nil)
	wantErrorStanza(t, e, stanza.NotAcceptable, true)
	if stanza.From(e) != romeo.JID().String() || body(e) != "wherefore art thou" {
		t.Errorf("error %s", e)
	}
	_, err := juliet.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "romeo@localhost", "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping")))
	wantCondition(t, err, stanza.NotAcceptable)
	send(t, juliet, stanza.NewPresence(stanza.NSClient, "", romeo.JID().String(), "", ""))
	barrier(t, nurse, juliet, func(e *xmlstream.Element) bool { return stanza.Type(e) == "error" })
	barrier(t, nurse, romeo, from(juliet.JID().String()))
	// Her own resources and her server stay reachable.
	if _, err := juliet.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, srv.Domain, "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping"))); err != nil {
		t.Fatal(err)
	}
}

// TestMatching checks the four forms of item (§6) against senders.
func TestMatching(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	juliet := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	r := srv.AddUser(t, "romeo", "orchard")
	orchard := dialWithPassword(t, srv, r, "orchard", "orchard")
	garden := dialWithPassword(t, srv, r, "garden", "orchard")
	nurse := srv.Dial(t, srv.AddUser(t, "nurse", "secret"), "secret")
	tests := []struct {
		item    string
		blocked []*client.Client
		free    []*client.Client
	}{
		{"romeo@localhost/orchard", []*client.Client{orchard}, []*client.Client{garden, nurse}},
		{"romeo@localhost", []*client.Client{orchard, garden}, []*client.Client{nurse}},
		{"localhost/garden", []*client.Client{garden}, []*client.Client{orchard, nurse}},
		{"localhost", []*client.Client{orchard, garden, nurse}, nil},
		{"montague.net", nil, []*client.Client{orchard, garden, nurse}},
	}
	for _, tt := range tests {
		t.Run(tt.item, func(t *testing.T) {
			mustSet(t, juliet, command("block", tt.item))
			defer mustSet(t, juliet, command("unblock"))
			for _, c := range tt.blocked {
				_, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, juliet.JID().String(), "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping")))
				wantCondition(t, err, stanza.ServiceUnavailable)
			}
			for _, c := range tt.free {
				send(t, c, chat(juliet.JID().String(), "from "+c.JID().String()))
				want := "from " + c.JID().String()
				recvUntil(t, juliet, func(e *xmlstream.Element) bool { return body(e) == want }, nil)
			}
		})
	}
}

// available sends initial presence and waits until the server processed it.
func available(t *testing.T, c *client.Client) {
	t.Helper()
	send(t, c, stanza.NewPresence(stanza.NSClient, "", "", "", ""))
	if _, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "", "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping"))); err != nil {
		t.Fatal(err)
	}
}

func dialWithPassword(t *testing.T, srv *xmpptest.Server, bare jid.JID, resource, password string) *client.Client {
	t.Helper()
	full, err := bare.WithResource(resource)
	if err != nil {
		t.Fatal(err)
	}
	return srv.Dial(t, full, password)
}

// TestUnavailableOnBlock: a blocked contact who may see the user's presence
// gets unavailable presence from each available resource (§3.3); one who
// may not gets nothing.
func TestUnavailableOnBlock(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	j := srv.AddUser(t, "juliet", "balcony")
	romeo := srv.Dial(t, srv.AddUser(t, "romeo", "orchard"), "orchard")
	tybalt := srv.Dial(t, srv.AddUser(t, "tybalt", "sword"), "sword")
	nurse := srv.Dial(t, srv.AddUser(t, "nurse", "secret"), "secret")
	if _, err := srv.Store().PutRosterItem(t.Context(), "juliet", srv.Domain,
		storage.RosterItem{Contact: "romeo@localhost", Subscription: storage.SubFrom}, 0); err != nil {
		t.Fatal(err)
	}
	balcony := dialAs(t, srv, j, "balcony")
	chamber := dialAs(t, srv, j, "chamber")
	dialAs(t, srv, j, "hidden") // never available
	for _, c := range []*client.Client{balcony, chamber, romeo, tybalt} {
		available(t, c)
	}
	mustSet(t, balcony, command("block", "romeo@localhost", "tybalt@localhost"))
	unavailable := func(e *xmlstream.Element) bool {
		return e.Name.Local == "presence" && stanza.Type(e) == stanza.PresenceUnavailable
	}
	got := map[string]bool{}
	for len(got) < 2 {
		got[stanza.From(recvUntil(t, romeo, unavailable, nil))] = true
	}
	if !got[balcony.JID().String()] || !got[chamber.JID().String()] {
		t.Fatalf("unavailable presence from %v", got)
	}
	barrier(t, nurse, romeo, unavailable)
	barrier(t, nurse, tybalt, unavailable)

	// Unblocking sends juliet's current presence to romeo, who is
	// subscribed (§3.4), and nothing to tybalt, who is not.
	mustSet(t, balcony, command("unblock"))
	availableFrom := func(e *xmlstream.Element) bool {
		return e.Name.Local == "presence" && stanza.Type(e) == ""
	}
	got = map[string]bool{}
	for len(got) < 2 {
		got[stanza.From(recvUntil(t, romeo, availableFrom, nil))] = true
	}
	if !got[balcony.JID().String()] || !got[chamber.JID().String()] {
		t.Fatalf("presence after unblock from %v", got)
	}
	barrier(t, nurse, tybalt, func(e *xmlstream.Element) bool {
		return availableFrom(e) && strings.HasPrefix(stanza.From(e), "juliet@")
	})
}

// TestStoredList: the list survives the sessions and applies while the
// user is offline.
func TestStoredList(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	j := srv.AddUser(t, "juliet", "balcony")
	romeo := srv.Dial(t, srv.AddUser(t, "romeo", "orchard"), "orchard")
	juliet := srv.Dial(t, j, "balcony")
	mustSet(t, juliet, command("block", "romeo@localhost"))
	juliet.Close()
	waitSessions(t, srv, 1)

	send(t, romeo, chat("juliet@localhost", "are you there"))
	e := recvUntil(t, romeo, func(e *xmlstream.Element) bool { return e.Name.Local == "message" }, nil)
	wantErrorStanza(t, e, stanza.ServiceUnavailable, false)

	juliet = srv.Dial(t, j, "balcony")
	_, err := romeo.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, juliet.JID().String(), "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping")))
	wantCondition(t, err, stanza.ServiceUnavailable)
	wantList(t, juliet, "romeo@localhost")
}

// refused sends a chat message from c to to, then one to c itself as a
// mark, and reports whether the first was refused (its error comes before
// the mark).
func refused(t *testing.T, c *client.Client, to string, i int) bool {
	t.Helper()
	send(t, c, chat(to, fmt.Sprint("try ", i)))
	mark := fmt.Sprint("mark ", i)
	send(t, c, chat(c.JID().String(), mark))
	e := recvUntil(t, c, func(e *xmlstream.Element) bool {
		return e.Name.Local == "message" && (e.Attribute("type") == "error" || body(e) == mark)
	}, nil)
	if e.Attribute("type") != "error" {
		return false
	}
	wantErrorStanza(t, e, stanza.ServiceUnavailable, false)
	recvUntil(t, c, func(e *xmlstream.Element) bool { return body(e) == mark }, nil)
	return true
}

// TestOtherSession: a block or unblock from one of the user's sessions
// applies at once to stanzas to and from the others, with no reload.
func TestOtherSession(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	j := srv.AddUser(t, "juliet", "balcony")
	phone, laptop := dialAs(t, srv, j, "phone"), dialAs(t, srv, j, "laptop")
	romeo := srv.Dial(t, srv.AddUser(t, "romeo", "orchard"), "orchard")
	wantList(t, laptop) // cached, empty
	if refused(t, romeo, laptop.JID().String(), 0) {
		t.Fatal("refused before any block")
	}
	recvUntil(t, laptop, func(e *xmlstream.Element) bool { return body(e) == "try 0" }, nil)
	mustSet(t, phone, command("block", "romeo@localhost"))
	if !refused(t, romeo, laptop.JID().String(), 1) {
		t.Fatal("a message to the laptop got through after the phone blocked its sender")
	}
	_, err := laptop.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "romeo@localhost", "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping")))
	wantCondition(t, err, stanza.NotAcceptable) // outbound, from the other session
	mustSet(t, phone, command("unblock", "romeo@localhost"))
	if refused(t, romeo, laptop.JID().String(), 2) {
		t.Fatal("refused after the phone unblocked")
	}
}

// TestListWrittenOffline: a list written to storage while the user is
// offline (as `ode import` does, with the server stopped, or an account
// deleted and made again) applies at once and is what the next login
// caches.
func TestListWrittenOffline(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	j := srv.AddUser(t, "juliet", "balcony")
	romeo := srv.Dial(t, srv.AddUser(t, "romeo", "orchard"), "orchard")
	juliet := srv.Dial(t, j, "balcony")
	wantList(t, juliet) // cached: empty
	juliet.Close()
	waitSessions(t, srv, 1)
	if err := srv.Store().Block(ctxT(t), "juliet", srv.Domain, []string{"romeo@localhost"}); err != nil {
		t.Fatal(err)
	}
	if !refused(t, romeo, "juliet@localhost", 0) {
		t.Fatal("the list written while juliet was offline is not enforced")
	}
	juliet = srv.Dial(t, j, "balcony")
	if !refused(t, romeo, juliet.JID().String(), 1) {
		t.Fatal("the list written while juliet was offline is not enforced after her login")
	}
	wantList(t, juliet, "romeo@localhost")
}

// TestListChangedElsewhere changes an online user's list in storage, as
// another node sharing the database would, and calls Invalidate, as the
// cluster would: the change applies to the next stanza. Without
// Invalidate the cached list stays (the server is the only writer).
func TestListChangedElsewhere(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	j := srv.AddUser(t, "juliet", "balcony")
	romeo := srv.Dial(t, srv.AddUser(t, "romeo", "orchard"), "orchard")
	juliet := srv.Dial(t, j, "balcony")
	wantList(t, juliet) // cached: empty
	if err := srv.Store().Block(ctxT(t), "juliet", srv.Domain, []string{"romeo@localhost"}); err != nil {
		t.Fatal(err)
	}
	if refused(t, romeo, "juliet@localhost", 0) {
		t.Fatal("the cached list was read again without Invalidate")
	}
	srv.Module("blocking").(*blocking.Module).Invalidate(j)
	if !refused(t, romeo, "juliet@localhost", 1) {
		t.Fatal("the list written to storage is not enforced after Invalidate")
	}
}

// BenchmarkBlocked is the check each delivery makes (the router's
// Blocked, as the inbound and outbound hooks call it): an online user's
// cached list, empty or of 100 items, against an address it does not
// block.
func BenchmarkBlocked(b *testing.B) {
	for _, n := range []int{0, 100} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			srv := xmpptest.Start(b, nil)
			j := srv.AddUser(b, "juliet", "balcony")
			srv.Dial(b, j, "balcony")
			var jids []string
			for i := range n {
				jids = append(jids, fmt.Sprintf("user%d@example.net", i))
			}
			if n > 0 {
				if err := srv.Store().Block(b.Context(), "juliet", srv.Domain, jids); err != nil {
					b.Fatal(err)
				}
			}
			r, other := srv.Router(), jid.MustParse("romeo@localhost/orchard")
			ctx := b.Context()
			r.Blocked(ctx, j, other) // read and cached: juliet is online
			b.ReportAllocs()
			for b.Loop() {
				if r.Blocked(ctx, j, other) {
					b.Fatal("blocked")
				}
			}
		})
	}
}
