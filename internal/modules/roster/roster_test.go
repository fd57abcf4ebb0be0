package roster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/offline"
	"github.com/ode-xmpp/ode/internal/modules/roster"
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

// next returns the next stanza c receives that match accepts, skipping
// others; it fails the test after a while.
func next(t *testing.T, c *client.Client, what string, match func(*xmlstream.Element) bool) *xmlstream.Element {
	t.Helper()
	ctx := ctxT(t)
	for {
		e, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("%s: waiting for %s: %v", c.JID(), what, err)
		}
		if match(e) {
			return e
		}
	}
}

// quiet checks that c receives nothing matching within a short time.
func quiet(t *testing.T, c *client.Client, what string, match func(*xmlstream.Element) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	for {
		e, err := c.Recv(ctx)
		if err != nil {
			return
		}
		if match(e) {
			t.Fatalf("%s: got %s: %s", c.JID(), what, e)
		}
	}
}

func presence(typ, from string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool {
		if e.Name.Local != "presence" || stanza.Type(e) != typ {
			return false
		}
		return from == "" || stanza.From(e) == from
	}
}

func push(contact string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool {
		if e.Name.Local != "iq" || stanza.Type(e) != stanza.IQSet {
			return false
		}
		q := e.Child(stanza.NSRoster, "query")
		return q != nil && q.Child(stanza.NSRoster, "item") != nil && q.Child(stanza.NSRoster, "item").Attribute("jid") == contact
	}
}

func rosterGet(t *testing.T, c *client.Client, ver string) (*xmlstream.Element, error) {
	t.Helper()
	q := xmlstream.NewElement(stanza.NSRoster, "query")
	if ver != "" {
		q.SetAttr("ver", ver)
	}
	return c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "", "", "").Append(q))
}

func rosterSet(t *testing.T, c *client.Client, items ...*xmlstream.Element) error {
	t.Helper()
	q := xmlstream.NewElement(stanza.NSRoster, "query").Append(items...)
	_, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", "").Append(q))
	return err
}

func item(contact, name string, groups ...string) *xmlstream.Element {
	e := xmlstream.NewElement(stanza.NSRoster, "item").SetAttr("jid", contact)
	if name != "" {
		e.SetAttr("name", name)
	}
	for _, g := range groups {
		e.Append(xmlstream.NewElement(stanza.NSRoster, "group").AppendText(g))
	}
	return e
}

// items maps contact → "subscription/ask" of a roster result.
func items(res *xmlstream.Element) map[string]string {
	out := map[string]string{}
	q := res.Child(stanza.NSRoster, "query")
	if q == nil {
		return out
	}
	for _, it := range q.ChildrenNS(stanza.NSRoster) {
		out[it.Attribute("jid")] = it.Attribute("subscription") + "/" + it.Attribute("ask")
	}
	return out
}

func wantCondition(t *testing.T, err error, cond stanza.Condition) {
	t.Helper()
	if !errors.Is(err, stanza.NewError(cond, "")) {
		t.Fatalf("got %v, want %s", err, cond)
	}
}

func available(t *testing.T, c *client.Client, prio int) {
	t.Helper()
	p := stanza.NewPresence(stanza.NSClient, "", "", "", "")
	if prio != 0 {
		p.Append(xmlstream.NewElement(stanza.NSClient, "priority").AppendText(fmt.Sprint(prio)))
	}
	if err := c.Send(p); err != nil {
		t.Fatal(err)
	}
	// Everything the presence caused is done once a ping comes back.
	if _, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "", "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping"))); err != nil {
		t.Fatal(err)
	}
}

func TestRosterGetSetRemove(t *testing.T) {
	srv := xmpptest.Start(t, func(c *config.Config) { c.Modules.Settings["roster"] = &roster.Config{MaxItems: 3} })
	alice := srv.Dial(t, srv.AddUser(t, "alice", "pw"), "pw")
	res, err := rosterGet(t, alice, "")
	if err != nil {
		t.Fatal(err)
	}
	ver0 := res.Child(stanza.NSRoster, "query").Attribute("ver")
	if len(items(res)) != 0 || ver0 == "" {
		t.Fatalf("empty roster: %s", res)
	}
	if err := rosterSet(t, alice, item("bob@localhost", "Bob", "Friends", "Work")); err != nil {
		t.Fatal(err)
	}
	p := next(t, alice, "push", push("bob@localhost"))
	it := p.Child(stanza.NSRoster, "query").Child(stanza.NSRoster, "item")
	if it.Attribute("name") != "Bob" || it.Attribute("subscription") != "none" || len(it.ChildrenNS(stanza.NSRoster)) != 2 {
		t.Fatalf("push %s", p)
	}
	res, _ = rosterGet(t, alice, "")
	if got := items(res); got["bob@localhost"] != "none/" || len(got) != 1 {
		t.Fatalf("roster %v", got)
	}
	ver1 := res.Child(stanza.NSRoster, "query").Attribute("ver")

	// Versioning (RFC 6121 §2.6): up to date → empty result; older → the
	// changes as pushes.
	res, err = rosterGet(t, alice, ver1)
	if err != nil || res.Child(stanza.NSRoster, "query") != nil {
		t.Fatalf("up-to-date get: %v %s", err, res)
	}
	if err := rosterSet(t, alice, item("carol@localhost", "")); err != nil {
		t.Fatal(err)
	}
	next(t, alice, "push", push("carol@localhost"))
	res, err = rosterGet(t, alice, ver1)
	if err != nil || res.Child(stanza.NSRoster, "query") != nil {
		t.Fatalf("versioned get: %v %s", err, res)
	}
	next(t, alice, "push of the change", push("carol@localhost"))

	// Errors (RFC 6121 §2.3.3, §2.5.3).
	wantCondition(t, rosterSet(t, alice, item("a@localhost", ""), item("b@localhost", "")), stanza.BadRequest)
	wantCondition(t, rosterSet(t, alice, item("d@localhost", "", "G", "G")), stanza.BadRequest)
	wantCondition(t, rosterSet(t, alice, item("d@localhost", "", "")), stanza.NotAcceptable)
	// A subscription other than "remove" is ignored: the server owns it.
	if err := rosterSet(t, alice, item("bob@localhost", "Bob").SetAttr("subscription", "both")); err != nil {
		t.Fatal(err)
	}
	if p := next(t, alice, "push", push("bob@localhost")); p.Child(stanza.NSRoster, "query").Child(stanza.NSRoster, "item").Attribute("subscription") != "none" {
		t.Fatalf("push %s", p)
	}
	wantCondition(t, rosterSet(t, alice, item("@@", "")), stanza.BadRequest)
	wantCondition(t, rosterSet(t, alice, item("nobody@localhost", "").SetAttr("subscription", "remove")), stanza.ItemNotFound)
	other := stanza.NewIQ(stanza.NSClient, stanza.IQGet, "bob@localhost", "", "").Append(xmlstream.NewElement(stanza.NSRoster, "query"))
	_, err = alice.IQ(ctxT(t), other)
	wantCondition(t, err, stanza.Forbidden)
	// The size limit.
	if err := rosterSet(t, alice, item("dave@localhost", "")); err != nil {
		t.Fatal(err)
	}
	wantCondition(t, rosterSet(t, alice, item("eve@localhost", "")), stanza.NotAllowed)
	// Updating an existing item is fine at the limit.
	if err := rosterSet(t, alice, item("dave@localhost", "Dave")); err != nil {
		t.Fatal(err)
	}

	// Remove.
	if err := rosterSet(t, alice, item("bob@localhost", "").SetAttr("subscription", "remove")); err != nil {
		t.Fatal(err)
	}
	rp := next(t, alice, "removal push", push("bob@localhost"))
	if rp.Child(stanza.NSRoster, "query").Child(stanza.NSRoster, "item").Attribute("subscription") != "remove" {
		t.Fatalf("removal push %s", rp)
	}
	res, _ = rosterGet(t, alice, "")
	if got := items(res); len(got) != 2 || got["bob@localhost"] != "" {
		t.Fatalf("roster after removal %v", got)
	}
}

// TestSubscriptionAndPresence: alice subscribes to bob, bob approves and
// subscribes back; both see each other's presence, roster pushes follow
// each step, unavailable presence goes out when a session ends, and a
// probe at login brings the contact's presence.
func TestSubscriptionAndPresence(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	aliceJID, bobJID := srv.AddUser(t, "alice", "pw"), srv.AddUser(t, "bob", "pw")
	alice, bob := srv.Dial(t, aliceJID, "pw"), srv.Dial(t, bobJID, "pw")
	for _, c := range []*client.Client{alice, bob} {
		if _, err := rosterGet(t, c, ""); err != nil {
			t.Fatal(err)
		}
		available(t, c, 0)
	}
	// alice asks.
	if err := alice.Send(stanza.NewPresence(stanza.NSClient, stanza.PresenceSubscribe, "bob@localhost", "", "")); err != nil {
		t.Fatal(err)
	}
	p := next(t, alice, "push with ask", push("bob@localhost"))
	if it := p.Child(stanza.NSRoster, "query").Child(stanza.NSRoster, "item"); it.Attribute("ask") != "subscribe" || it.Attribute("subscription") != "none" {
		t.Fatalf("push %s", p)
	}
	req := next(t, bob, "subscription request", presence(stanza.PresenceSubscribe, "alice@localhost"))
	if stanza.To(req) != "bob@localhost" {
		t.Fatalf("request %s", req)
	}
	// bob approves: alice gets subscribed, a push with 'to' and bob's presence.
	if err := bob.Send(stanza.NewPresence(stanza.NSClient, stanza.PresenceSubscribed, "alice@localhost", "", "")); err != nil {
		t.Fatal(err)
	}
	next(t, bob, "bob's push (from)", func(e *xmlstream.Element) bool {
		return push("alice@localhost")(e) && e.Child(stanza.NSRoster, "query").Child(stanza.NSRoster, "item").Attribute("subscription") == "from"
	})
	// The push comes first (the roster changed), then the presence.
	next(t, alice, "alice's push (to)", func(e *xmlstream.Element) bool {
		return push("bob@localhost")(e) && e.Child(stanza.NSRoster, "query").Child(stanza.NSRoster, "item").Attribute("subscription") == "to"
	})
	next(t, alice, "subscribed", presence(stanza.PresenceSubscribed, "bob@localhost"))
	next(t, alice, "bob's presence", presence("", bob.JID().String()))

	// bob's presence change reaches alice; alice's does not reach bob.
	status := stanza.NewPresence(stanza.NSClient, "", "", "", "").Append(xmlstream.NewElement(stanza.NSClient, "show").AppendText("away"))
	if err := bob.Send(status); err != nil {
		t.Fatal(err)
	}
	if e := next(t, alice, "bob away", presence("", bob.JID().String())); e.Child(stanza.NSClient, "show") == nil {
		t.Fatalf("presence %s", e)
	}
	available(t, alice, 1)
	quiet(t, bob, "alice's presence without a subscription", presence("", alice.JID().String()))

	// A second client of alice logs in: its probe brings bob's presence.
	alice2 := srv.Dial(t, aliceJID, "pw")
	if err := alice2.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
		t.Fatal(err)
	}
	if e := next(t, alice2, "bob's presence after probe", presence("", bob.JID().String())); e.Child(stanza.NSClient, "show") == nil {
		t.Fatalf("probe answer %s", e)
	}
	next(t, alice2, "alice's other resource", presence("", alice.JID().String()))
	next(t, alice, "alice2's presence", presence("", alice2.JID().String()))

	// bob's session ends without unavailable presence: alice is told.
	bob.Close()
	next(t, alice, "bob unavailable", presence(stanza.PresenceUnavailable, bob.JID().String()))

	// bob unsubscribes alice (cancels her subscription): alice's item goes to none.
	bob = srv.Dial(t, bobJID, "pw")
	if err := bob.Send(stanza.NewPresence(stanza.NSClient, stanza.PresenceUnsubscribed, "alice@localhost", "", "")); err != nil {
		t.Fatal(err)
	}
	next(t, alice, "alice's push (none)", func(e *xmlstream.Element) bool {
		return push("bob@localhost")(e) && e.Child(stanza.NSRoster, "query").Child(stanza.NSRoster, "item").Attribute("subscription") == "none"
	})
}

// TestPendingRequestAndPreApproval: a request to an offline user is shown
// at login; a pre-approved contact is answered at once.
func TestPendingRequestAndPreApproval(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	aliceJID, bobJID := srv.AddUser(t, "alice", "pw"), srv.AddUser(t, "bob", "pw")
	alice := srv.Dial(t, aliceJID, "pw")
	available(t, alice, 0)
	if err := alice.Send(stanza.NewPresence(stanza.NSClient, stanza.PresenceSubscribe, "bob@localhost", "", "").
		Append(xmlstream.NewElement(stanza.NSClient, "status").AppendText("it's alice"))); err != nil {
		t.Fatal(err)
	}
	available(t, alice, 0)
	bob := srv.Dial(t, bobJID, "pw")
	if err := bob.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
		t.Fatal(err)
	}
	req := next(t, bob, "stored request", presence(stanza.PresenceSubscribe, "alice@localhost"))
	if s := req.Child(stanza.NSClient, "status"); s == nil || s.Text() != "it's alice" {
		t.Fatalf("request %s", req)
	}

	// bob pre-approves carol, who then subscribes: answered by the server.
	carol := srv.Dial(t, srv.AddUser(t, "carol", "pw"), "pw")
	if err := bob.Send(stanza.NewPresence(stanza.NSClient, stanza.PresenceSubscribed, "carol@localhost", "", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := rosterGet(t, bob, ""); err != nil {
		t.Fatal(err)
	}
	available(t, carol, 0)
	if err := carol.Send(stanza.NewPresence(stanza.NSClient, stanza.PresenceSubscribe, "bob@localhost", "", "")); err != nil {
		t.Fatal(err)
	}
	next(t, carol, "automatic subscribed", presence(stanza.PresenceSubscribed, "bob@localhost"))
	quiet(t, bob, "carol's request", presence(stanza.PresenceSubscribe, "carol@localhost"))
	res, err := rosterGet(t, bob, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := items(res)["carol@localhost"]; got != "from/" {
		t.Fatalf("bob's item for carol %q", got)
	}
}

// TestOfflineMessages: messages to a user without available resources are
// kept and delivered with a delay stamp at the next initial presence of
// non-negative priority; over the quota the sender gets an error.
func TestOfflineMessages(t *testing.T) {
	srv := xmpptest.Start(t, func(c *config.Config) { c.Modules.Settings["offline"] = &offline.Config{Quota: 3} })
	alice := srv.Dial(t, srv.AddUser(t, "alice", "pw"), "pw")
	bobJID := srv.AddUser(t, "bob", "pw")
	for i := range 4 {
		m := stanza.NewMessage(stanza.NSClient, stanza.MessageChat, "bob@localhost", "", "").
			Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(fmt.Sprint("m", i)))
		if err := alice.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	// A chat state alone is not kept, and does not count.
	cs := stanza.NewMessage(stanza.NSClient, stanza.MessageChat, "bob@localhost", "", "").Append(xmlstream.NewElement("http://jabber.org/protocol/chatstates", "active"))
	if err := alice.Send(cs); err != nil {
		t.Fatal(err)
	}
	e := next(t, alice, "quota error", func(e *xmlstream.Element) bool { return e.Name.Local == "message" })
	if se, ok := stanza.ParseError(e); !ok || se.Condition != stanza.ServiceUnavailable {
		t.Fatalf("over quota: %s", e)
	}
	// bob with negative priority gets nothing; with priority 0 all three.
	neg, err := bobJID.WithResource("neg")
	if err != nil {
		t.Fatal(err)
	}
	bobNeg := srv.Dial(t, neg, "pw")
	available(t, bobNeg, -1)
	quiet(t, bobNeg, "offline message", func(e *xmlstream.Element) bool { return e.Name.Local == "message" })
	bob := srv.Dial(t, bobJID, "pw")
	available(t, bob, 0)
	for i := range 3 {
		m := next(t, bob, "offline message", func(e *xmlstream.Element) bool { return e.Name.Local == "message" })
		b := m.Child(stanza.NSClient, "body")
		d := m.Child(stanza.NSDelay, "delay")
		if b == nil || b.Text() != fmt.Sprint("m", i) || d == nil || d.Attribute("stamp") == "" || d.Attribute("from") != "localhost" {
			t.Fatalf("message %d: %s", i, m)
		}
		if stanza.From(m) != alice.JID().String() {
			t.Fatalf("from %s", stanza.From(m))
		}
	}
	// Delivered once.
	bob2 := srv.Dial(t, jid.MustParse("bob@localhost/two"), "pw")
	available(t, bob2, 0)
	quiet(t, bob2, "a message delivered twice", func(e *xmlstream.Element) bool { return e.Name.Local == "message" })
}

// TestProbeGetsLastUnavailable: while bob is offline, alice's login probe
// is answered with bob's last unavailable presence, status included
// (RFC 6121 §4.3.2); it is stored, so it survives a restart.
func TestProbeGetsLastUnavailable(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	aliceJID, bobJID := srv.AddUser(t, "alice", "pw"), srv.AddUser(t, "bob", "pw")
	for _, it := range []struct{ user, contact, sub string }{{"alice", "bob@localhost", "to"}, {"bob", "alice@localhost", "from"}} {
		if _, err := srv.Store().PutRosterItem(t.Context(), it.user, "localhost",
			storage.RosterItem{Contact: it.contact, Subscription: storage.Subscription(it.sub)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	bob := srv.Dial(t, bobJID, "pw")
	available(t, bob, 0)
	bye := stanza.NewPresence(stanza.NSClient, stanza.PresenceUnavailable, "", "", "").
		Append(xmlstream.NewElement(stanza.NSClient, "status").AppendText("gone fishing"))
	if err := bob.Send(bye); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "", "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping"))); err != nil {
		t.Fatal(err)
	}
	bob.Close()
	alice := srv.Dial(t, aliceJID, "pw")
	if err := alice.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
		t.Fatal(err)
	}
	p := next(t, alice, "bob's last presence", presence(stanza.PresenceUnavailable, "bob@localhost"))
	if s := p.Child(stanza.NSClient, "status"); s == nil || s.Text() != "gone fishing" {
		t.Fatalf("probe answer %s", p)
	}
}
