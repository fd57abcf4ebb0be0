package c2s_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/c2s"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/server"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

const nsSM = "urn:xmpp:sm:3"

// smClient is a raw client that counts the stanzas it receives, as a
// XEP-0198 client does, and answers the server's <r/> when autoAck is on.
type smClient struct {
	*xmpptest.Raw
	t       testing.TB
	h       uint32 // stanzas received since <enabled/> or <resumed/>
	autoAck bool
}

func newSMClient(t testing.TB, srv *xmpptest.Server, user, pw string) *smClient {
	t.Helper()
	r := srv.DialRaw(t)
	f := r.Login(user, pw)
	if !hasFeature(f, nsSM, "sm") {
		t.Fatalf("no <sm/> in the features after authentication: %+v", f)
	}
	return &smClient{Raw: r, t: t}
}

// enable sends <enable/> and returns the <enabled/> element.
func (c *smClient) enable(attrs string) *xmlstream.Element {
	c.t.Helper()
	c.Send(`<enable xmlns='` + nsSM + `' ` + attrs + `/>`)
	e := c.Expect(nsSM, "enabled")
	c.h = 0
	return e
}

// next returns the next stanza, counting it; stream-management elements
// are answered (<r/>) or skipped (<a/>).
func (c *smClient) next() *xmlstream.Element {
	c.t.Helper()
	for {
		e := c.Next()
		switch {
		case e.Name.Space == nsSM && e.Name.Local == "r":
			if c.autoAck {
				c.Send(fmt.Sprintf(`<a xmlns='%s' h='%d'/>`, nsSM, c.h))
			}
			continue
		case e.Name.Space == nsSM:
			continue
		}
		c.h++
		return e
	}
}

// nextAck returns the next <a/> from the server, skipping <r/>.
func (c *smClient) nextAck() uint32 {
	c.t.Helper()
	for {
		e := c.Next()
		if e.Name.Space == nsSM && e.Name.Local == "r" {
			continue
		}
		if e.Name.Space != nsSM || e.Name.Local != "a" {
			c.t.Fatalf("want <a/>, got %s", e)
		}
		h, err := strconv.ParseUint(e.Attribute("h"), 10, 32)
		if err != nil {
			c.t.Fatalf("bad h in %s", e)
		}
		return uint32(h)
	}
}

func hasFeature(f stream.Features, space, local string) bool {
	for _, e := range f.Other {
		if e.Name.Space == space && e.Name.Local == local {
			return true
		}
	}
	return false
}

func sendMessages(t testing.TB, r *xmpptest.Raw, to jid.JID, from, n int) {
	t.Helper()
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `<message to='%s' type='chat' id='m%d'><body>%d</body></message>`, to, i, i)
		if b.Len() > 32<<10 {
			r.Send(b.String())
			b.Reset()
		}
	}
	if b.Len() > 0 {
		r.Send(b.String())
	}
}

// bodyNumber returns the number in a test message's body.
func bodyNumber(t testing.TB, e *xmlstream.Element) int {
	t.Helper()
	b := e.Child("", "body")
	if e.Name.Local != "message" || b == nil {
		t.Fatalf("want a message with a body, got %s", e)
	}
	n, err := strconv.Atoi(b.Text())
	if err != nil {
		t.Fatalf("bad body in %s", e)
	}
	return n
}

// countOnce records received message numbers and fails on a duplicate.
type countOnce map[int]bool

func (c countOnce) add(t testing.TB, n int) {
	t.Helper()
	if c[n] {
		t.Fatalf("message %d received twice", n)
	}
	c[n] = true
}

func startSM(t *testing.T, edit func(*config.Config)) (*xmpptest.Server, *xmpptest.Raw, jid.JID) {
	t.Helper()
	srv := xmpptest.Start(t, edit)
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	bob := srv.DialRaw(t)
	bob.Login("bob", "pw")
	bobJID := bob.Bind("laptop")
	return srv, bob, bobJID
}

func TestSMEnableAndAck(t *testing.T) {
	srv, _, _ := startSM(t, nil)
	alice := newSMClient(t, srv, "alice", "pw")

	// Before binding, <enable/> fails (XEP-0198 §3).
	alice.Send(`<enable xmlns='` + nsSM + `'/>`)
	f := alice.Expect(nsSM, "failed")
	if f.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "unexpected-request") == nil {
		t.Errorf("enable before bind: %s", f)
	}
	alice.Bind("phone")
	en := alice.enable("")
	if en.Attribute("id") != "" || en.Attribute("resume") != "" {
		t.Errorf("enabled without resume offers resumption: %s", en)
	}
	alice.Send(`<r xmlns='` + nsSM + `'/>`)
	if h := alice.nextAck(); h != 0 {
		t.Errorf("h = %d before any stanza, want 0", h)
	}
	for i := range 3 {
		alice.Send(fmt.Sprintf(`<iq type='get' id='p%d'><ping xmlns='urn:xmpp:ping'/></iq>`, i))
		if e := alice.next(); e.Attribute("id") != fmt.Sprintf("p%d", i) {
			t.Fatalf("ping %d: got %s", i, e)
		}
	}
	alice.Send(`<r xmlns='` + nsSM + `'/>`)
	if h := alice.nextAck(); h != 3 {
		t.Errorf("h = %d after 3 stanzas, want 3", h)
	}
	// A second <enable/> fails.
	alice.Send(`<enable xmlns='` + nsSM + `'/>`)
	alice.Expect(nsSM, "failed")
	// The client acknowledges what it got, then more than it got.
	alice.Send(fmt.Sprintf(`<a xmlns='%s' h='%d'/>`, nsSM, alice.h))
	alice.Send(fmt.Sprintf(`<a xmlns='%s' h='%d'/>`, nsSM, alice.h+5))
	se := alice.ExpectStreamError(stream.UndefinedCondition)
	if se.App == nil || se.App.Name.Local != "handled-count-too-high" || se.App.Attribute("h") != "8" || se.App.Attribute("send-count") != "3" {
		t.Errorf("stream error app condition: %v", se.App)
	}
}

// TestSMWrap counts across 2^32 (XEP-0198 §4: h wraps to 0).
func TestSMWrap(t *testing.T) {
	defer c2s.SetSMStart(1<<32 - 3)()
	srv, bob, _ := startSM(t, nil)
	alice := newSMClient(t, srv, "alice", "pw")
	aliceJID := alice.Bind("phone")
	alice.enable("resume='true'")
	start := uint32(1<<32 - 3)
	sendMessages(t, bob, aliceJID, 0, 6)
	for i := range 6 {
		if n := bodyNumber(t, alice.next()); n != i {
			t.Fatalf("message %d: got %d", i, n)
		}
	}
	// The client's count starts where the server's does in this test.
	h := start + alice.h // 2^32-3+6 = 3 mod 2^32
	if h != 3 {
		t.Fatalf("test arithmetic: h = %d", h)
	}
	alice.Send(fmt.Sprintf(`<a xmlns='%s' h='%d'/>`, nsSM, h))
	for i := range 5 {
		alice.Send(fmt.Sprintf(`<message to='%s' type='chat' id='x%d'><body>self</body></message>`, aliceJID, i))
	}
	for range 5 {
		alice.next()
	}
	alice.Send(`<r xmlns='` + nsSM + `'/>`)
	if got := alice.nextAck(); got != start+5 {
		t.Errorf("server h = %d, want %d (wrapped)", got, start+5)
	}
	// Acknowledging what was sent, across the wrap, is fine; one more is
	// too many.
	alice.Send(fmt.Sprintf(`<a xmlns='%s' h='%d'/>`, nsSM, start+alice.h))
	alice.Send(`<r xmlns='` + nsSM + `'/>`)
	alice.nextAck()
	alice.Send(fmt.Sprintf(`<a xmlns='%s' h='%d'/>`, nsSM, start+alice.h+1))
	alice.ExpectStreamError(stream.UndefinedCondition)
}

// TestSMResume drops the connection with unacknowledged messages, sends
// more while the session is detached, and resumes on a new connection:
// each message arrives exactly once and contacts never saw the session go.
func TestSMResume(t *testing.T) {
	srv, bob, _ := startSM(t, nil)
	alice := newSMClient(t, srv, "alice", "pw")
	aliceJID := alice.Bind("phone")
	en := alice.enable("resume='true'")
	id := en.Attribute("id")
	if id == "" || en.Attribute("resume") != "true" || en.Attribute("max") != "300" {
		t.Fatalf("enabled: %s", en)
	}
	got := countOnce{}
	sendMessages(t, bob, aliceJID, 0, 3)
	for range 3 {
		got.add(t, bodyNumber(t, alice.next()))
	}
	handled := uint32(1) // the client processed only the first
	alice.Drop()
	sess := srv.Router().Session(aliceJID)
	if sess == nil {
		t.Fatal("the session left the router when its connection dropped")
	}
	sendMessages(t, bob, aliceJID, 3, 2)

	alice2 := newSMClient(t, srv, "alice", "pw")
	alice2.Send(fmt.Sprintf(`<resume xmlns='%s' previd='%s' h='%d'/>`, nsSM, id, handled))
	res := alice2.Expect(nsSM, "resumed")
	if res.Attribute("previd") != id || res.Attribute("h") != "0" {
		t.Errorf("resumed: %s", res)
	}
	delete(got, 1)
	delete(got, 2) // received but not processed: resent
	for range 4 {
		got.add(t, bodyNumber(t, alice2.next()))
	}
	if len(got) != 5 {
		t.Errorf("got messages %v, want 0..4", got)
	}
	if s := srv.Router().Session(aliceJID); s != sess {
		t.Error("the resumed session is not the same router session")
	}
	// Nothing more: the next element answers a ping.
	alice2.Send(`<iq type='get' id='after'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if e := alice2.next(); e.Attribute("id") != "after" {
		t.Errorf("after the resent messages: %s", e)
	}
	alice2.Send(`<r xmlns='` + nsSM + `'/>`)
	if h := alice2.nextAck(); h != 1 {
		t.Errorf("server h after resumption = %d, want 1", h)
	}
	// Resuming again from a third connection takes the session over
	// from the second, which is closed.
	alice3 := newSMClient(t, srv, "alice", "pw")
	alice3.Send(fmt.Sprintf(`<resume xmlns='%s' previd='%s' h='%d'/>`, nsSM, id, handled+alice2.h))
	alice3.Expect(nsSM, "resumed")
	for {
		_, err := alice2.NextErr()
		if err != nil {
			break
		}
	}
	alice3.Send(`<iq type='get' id='third'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if e := alice3.next(); e.Attribute("id") != "third" {
		t.Errorf("on the third connection: %s", e)
	}
}

// TestSMResumeFailures: unknown ids, another user's session, and an
// expired session (whose last h is still told).
func TestSMResumeFailures(t *testing.T) {
	srv, bob, _ := startSM(t, nil)
	alice := newSMClient(t, srv, "alice", "pw")
	aliceJID := alice.Bind("phone")
	id := alice.enable("resume='true' max='1'").Attribute("id")
	alice.Send(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`)
	alice.next()
	alice.Drop()

	// Another user cannot take it over.
	b2 := newSMClient(t, srv, "bob", "pw")
	b2.Send(fmt.Sprintf(`<resume xmlns='%s' previd='%s' h='0'/>`, nsSM, id))
	f := b2.Expect(nsSM, "failed")
	if f.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found") == nil || f.Attribute("h") != "" {
		t.Errorf("resume of another user's session: %s", f)
	}
	// After a failed resumption the client may bind.
	b2.Bind("other")
	_ = bob

	xmpptest.WaitFor(t, 10*time.Second, "the detached session to expire", func() bool {
		return srv.Router().Session(aliceJID) == nil
	})
	a2 := newSMClient(t, srv, "alice", "pw")
	a2.Send(fmt.Sprintf(`<resume xmlns='%s' previd='%s' h='0'/>`, nsSM, id))
	f = a2.Expect(nsSM, "failed")
	if f.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found") == nil || f.Attribute("h") != "1" {
		t.Errorf("resume of an expired session: %s", f)
	}
	a2.Send(fmt.Sprintf(`<resume xmlns='%s' previd='nonsense' h='0'/>`, nsSM))
	f = a2.Expect(nsSM, "failed")
	if f.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found") == nil || f.Attribute("h") != "" {
		t.Errorf("resume of an unknown id: %s", f)
	}
	a2.Bind("phone")
	a2.Send(fmt.Sprintf(`<resume xmlns='%s' previd='%s' h='0'/>`, nsSM, id))
	f = a2.Expect(nsSM, "failed")
	if f.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "unexpected-request") == nil {
		t.Errorf("resume after bind: %s", f)
	}
}

// TestSMBurstResume: the client drops in the middle of a burst of 1,000
// messages and resumes: it gets every one exactly once.
func TestSMBurstResume(t *testing.T) {
	srv, bob, _ := startSM(t, nil)
	alice := newSMClient(t, srv, "alice", "pw")
	aliceJID := alice.Bind("phone")
	alice.autoAck = true
	id := alice.enable("resume='true'").Attribute("id")
	const total = 1000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i += 50 {
			sendMessages(t, bob, aliceJID, i, 50)
		}
	}()
	got := countOnce{}
	for len(got) < 300 {
		got.add(t, bodyNumber(t, alice.next()))
	}
	alice.Drop()
	<-done

	alice2 := newSMClient(t, srv, "alice", "pw")
	alice2.autoAck = true
	alice2.Send(fmt.Sprintf(`<resume xmlns='%s' previd='%s' h='%d'/>`, nsSM, id, alice.h))
	alice2.Expect(nsSM, "resumed")
	for len(got) < total {
		got.add(t, bodyNumber(t, alice2.next()))
	}
	for i := range total {
		if !got[i] {
			t.Fatalf("message %d missing", i)
		}
	}
	alice2.Send(`<iq type='get' id='end'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if e := alice2.next(); e.Attribute("id") != "end" {
		t.Errorf("after %d messages: %s", total, e)
	}
}

// TestSMExpiryToOffline: the client drops in a burst and never resumes;
// everything it did not acknowledge is in offline storage, once, when it
// logs in again.
func TestSMExpiryToOffline(t *testing.T) {
	srv, bob, _ := startSM(t, nil)
	alice := newSMClient(t, srv, "alice", "pw")
	aliceJID := alice.Bind("phone")
	alice.enable("resume='true' max='1'")
	const total = 1000
	sendMessages(t, bob, aliceJID, 0, 200)
	for range 100 {
		alice.next()
	}
	// The first 40 are acknowledged: they must not come back.
	alice.Send(fmt.Sprintf(`<a xmlns='%s' h='40'/>`, nsSM))
	alice.Send(`<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
	for alice.next().Attribute("id") != "sync" {
	}
	alice.Drop()
	sendMessages(t, bob, aliceJID, 200, total-200)
	xmpptest.WaitFor(t, 20*time.Second, "the detached session to expire", func() bool {
		return srv.Router().Session(aliceJID) == nil
	})

	again := srv.DialRaw(t)
	again.Login("alice", "pw")
	again.Bind("phone")
	again.Send(`<presence/>`)
	got := countOnce{}
	for len(got) < total-40 {
		e, err := again.NextErr()
		if err != nil {
			t.Fatalf("after %d offline messages: %v", len(got), err)
		}
		if e.Name.Local != "message" {
			continue
		}
		if e.Child("urn:xmpp:delay", "delay") == nil {
			t.Fatalf("offline message without a delay: %s", e)
		}
		n := bodyNumber(t, e)
		if n < 40 {
			t.Fatalf("acknowledged message %d delivered again", n)
		}
		got.add(t, n)
	}
	again.Send(`<iq type='get' id='end'><ping xmlns='urn:xmpp:ping'/></iq>`)
	for {
		e := again.Next()
		if e.Name.Local == "message" {
			t.Fatalf("more than %d offline messages: %s", total-40, e)
		}
		if e.Attribute("id") == "end" {
			break
		}
	}
}

// TestSMShutdownEndsDetached: at shutdown, detached sessions end and their
// messages are stored.
func TestSMShutdownEndsDetached(t *testing.T) {
	srv, bob, _ := startSM(t, nil)
	alice := newSMClient(t, srv, "alice", "pw")
	aliceJID := alice.Bind("phone")
	alice.enable("resume='true'")
	alice.Drop()
	sendMessages(t, bob, aliceJID, 0, 5)
	bob.Send(`<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
	for bob.Next().Attribute("id") != "sync" {
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := server.OpenStore(t.Context(), srv.Config) // SQLite, or PostgreSQL under xmpptest.PostgresEnv
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	msgs, err := st.OfflineMessages(t.Context(), "alice", srv.Domain)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 5 {
		t.Errorf("%d offline messages after shutdown, want 5", len(msgs))
	}
}

// TestCSI: an inactive client gets messages with a body at once, and a
// contact's presence and chat states only when it is active again, the
// latest of each.
func TestCSI(t *testing.T) {
	srv, bob, bobJID := startSM(t, nil)
	alice := srv.DialRaw(t)
	f := alice.Login("alice", "pw")
	if !hasFeature(f, "urn:xmpp:csi:0", "csi") {
		t.Fatalf("no <csi/> feature: %+v", f)
	}
	aliceJID := alice.Bind("phone")
	alice.Send(`<inactive xmlns='urn:xmpp:csi:0'/>`)
	alice.Send(`<iq type='get' id='p0'><ping xmlns='urn:xmpp:ping'/></iq>`)
	alice.Expect("jabber:client", "iq")
	bob.Send(fmt.Sprintf(`<presence to='%s'><show>away</show></presence>`, aliceJID))
	bob.Send(fmt.Sprintf(`<presence to='%s'><show>dnd</show></presence>`, aliceJID))
	bob.Send(fmt.Sprintf(`<message to='%s' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`, aliceJID))
	bob.Send(fmt.Sprintf(`<message to='%s' type='chat' id='hello'><body>hello</body></message>`, aliceJID))
	if e := alice.Next(); e.Attribute("id") != "hello" {
		t.Fatalf("inactive client: first got %s, want the message", e)
	}
	alice.Send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if e := alice.Next(); e.Attribute("id") != "p1" {
		t.Fatalf("inactive client got %s before its ping result", e)
	}
	bob.Send(fmt.Sprintf(`<message to='%s' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>`, aliceJID))
	bob.Send(`<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>`)
	for bob.Next().Attribute("id") != "sync" {
	}
	alice.Send(`<active xmlns='urn:xmpp:csi:0'/>`)
	p := alice.Expect("jabber:client", "presence")
	if p.Attribute("from") != bobJID.String() || p.Child("", "show").Text() != "dnd" {
		t.Errorf("flushed presence: %s", p)
	}
	m := alice.Expect("jabber:client", "message")
	if m.Child("http://jabber.org/protocol/chatstates", "paused") == nil {
		t.Errorf("flushed chat state: %s", m)
	}
	alice.Send(`<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if e := alice.Next(); e.Attribute("id") != "p2" {
		t.Errorf("after the flush: %s", e)
	}
}

// TestSMDetachedLimit: an account keeps at most 10 detached sessions; the
// oldest ends when another detaches, its messages going offline.
func TestSMDetachedLimit(t *testing.T) {
	srv, bob, _ := startSM(t, nil)
	var jids []jid.JID
	for i := range 11 {
		a := newSMClient(t, srv, "alice", "pw")
		j := a.Bind(fmt.Sprintf("r%d", i))
		a.enable("resume='true'")
		jids = append(jids, j)
		if i == 0 {
			sendMessages(t, bob, j, 0, 1)
			a.next()
		}
		a.Drop()
	}
	xmpptest.WaitFor(t, 10*time.Second, "the oldest detached session to end", func() bool {
		return srv.Router().Session(jids[0]) == nil
	})
	for _, j := range jids[1:] {
		if srv.Router().Session(j) == nil {
			t.Errorf("%s ended, want only the oldest", j)
		}
	}
	msgs, err := srv.Store().OfflineMessages(t.Context(), "alice", srv.Domain)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Errorf("%d offline messages, want the oldest session's unacknowledged one", len(msgs))
	}
}

// TestSMExpiryArchived: a client that used the message archive and never
// resumes finds its unacknowledged messages in the archive, not again in
// offline storage; one that did not use it gets them offline.
func TestSMExpiryArchived(t *testing.T) {
	srv, bob, _ := startSM(t, nil)
	for _, queried := range []bool{true, false} {
		alice := newSMClient(t, srv, "alice", "pw")
		aliceJID := alice.Bind(fmt.Sprintf("phone-%v", queried))
		alice.enable("resume='true' max='1'")
		if queried {
			alice.Send(`<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>`)
			for {
				e := alice.next()
				if e.Name.Local == "iq" && e.Attribute("id") == "q" {
					break
				}
			}
		}
		sendMessages(t, bob, aliceJID, 0, 3)
		for range 3 {
			if m := alice.next(); m.Child("urn:xmpp:sid:0", "stanza-id") == nil {
				t.Fatalf("message without a stanza-id: %s", m)
			}
		}
		alice.Drop()
		xmpptest.WaitFor(t, 10*time.Second, "the session to expire", func() bool { return srv.Router().Session(aliceJID) == nil })
		msgs, err := srv.Store().OfflineMessages(t.Context(), "alice", srv.Domain)
		if err != nil {
			t.Fatal(err)
		}
		want := 3
		if queried {
			want = 0
		}
		if len(msgs) != want {
			t.Errorf("queried the archive %v: %d offline messages, want %d", queried, len(msgs), want)
		}
	}
}
