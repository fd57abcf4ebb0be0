package bosh_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ode-xmpp/ode/internal/bosh"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/stanza"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestSessionCreation(t *testing.T) {
	e := start(t, nil)
	_, resp := e.newClient(t, domain, "")
	want := map[string]string{
		"wait": "5", "requests": "2", "hold": "1", "inactivity": "5", "polling": "2", "maxpause": "120",
		"ver": "1.11", "from": domain, "secure": "true",
	}
	for k, v := range want {
		if got := resp.Attribute(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if resp.Attribute("sid") == "" || resp.Attribute("authid") == "" {
		t.Errorf("no sid or authid: %s", resp)
	}
	if v, _ := resp.LookupAttr(bosh.NSXBOSH, "version"); v != "1.0" {
		t.Errorf("xmpp:version = %q", v)
	}
	if v, _ := resp.LookupAttr(bosh.NSXBOSH, "restartlogic"); v != "true" {
		t.Errorf("xmpp:restartlogic = %q", v)
	}
	f := resp.Child("http://etherx.jabber.org/streams", "features")
	if f == nil || f.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms") == nil {
		t.Fatalf("no SASL features in the creation response: %s", resp)
	}
}

func TestLoginAndChat(t *testing.T) {
	e := start(t, nil)
	alice := e.addUser(t, "alice")
	bob := e.addUser(t, "bob")
	c, _ := e.newClient(t, domain, "")
	aj := c.login("alice")
	if aj.Bare() != alice.Bare() || aj.Resource() != "web" {
		t.Fatalf("bound %s", aj)
	}
	tc := e.dialTCP(t, bob)

	// TCP → BOSH.
	for i := range 5 {
		if err := tc.Send(message(aj, fmt.Sprint("t", i), fmt.Sprint("hello ", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		m := c.expect(stanza.NSClient, "message")
		if got := m.Child("", "body").Text(); got != fmt.Sprint("hello ", i) {
			t.Fatalf("message %d: %s", i, m)
		}
		if m.Attribute("from") != tc.JID().String() {
			t.Errorf("from %q", m.Attribute("from"))
		}
	}
	// BOSH → TCP.
	for i := range 5 {
		c.send("", fmt.Sprintf("<message to='%s' id='b%d' type='chat' xmlns='jabber:client'><body>hi %d</body></message>", tc.JID(), i, i))
	}
	for i := range 5 {
		m := recvTCP(t, tc)
		if got := m.Child("", "body").Text(); got != fmt.Sprint("hi ", i) {
			t.Fatalf("message %d: %s", i, m)
		}
		if m.Attribute("from") != aj.String() {
			t.Errorf("from %q", m.Attribute("from"))
		}
	}
	// A stanza without xmlns inherits httpbind: taken as jabber:client.
	c.send("", fmt.Sprintf("<message to='%s' id='n1' type='chat'><body>no ns</body></message>", tc.JID()))
	if m := recvTCP(t, tc); m.Child("", "body").Text() != "no ns" {
		t.Fatalf("got %s", m)
	}

	// Terminate with a payload: it is delivered, the session ends.
	c.send(" type='terminate'", fmt.Sprintf("<message to='%s' id='last' type='chat' xmlns='jabber:client'><body>bye</body></message>", tc.JID()))
	if m := recvTCP(t, tc); m.Child("", "body").Text() != "bye" {
		t.Fatalf("got %s", m)
	}
	select {
	case el := <-c.terminated:
		if el.Attribute("condition") != "" {
			t.Errorf("terminate: %s", el)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no terminate response")
	}
	waitFor(t, func() bool { return e.bosh.Count() == 0 && e.c2s.Count() == 1 })
	// The sid is gone.
	status, b := e.post(t, fmt.Sprintf("<body rid='%d' sid='%s' xmlns='%s'/>", c.rid, c.sid, bosh.NS))
	if status != 404 || !strings.Contains(b, "item-not-found") {
		t.Errorf("after terminate: %d %s", status, b)
	}
}

// waitFor polls cond with a deadline.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestResumeAfterInactivity: a stream-managed session whose BOSH client
// stops making requests (responses in flight lost) is detached when the
// BOSH session becomes inactive, and resumed on a new BOSH session: each
// message arrives exactly once.
func TestResumeAfterInactivity(t *testing.T) {
	e := start(t, func(c *bosh.Config) { c.MaxInactivity = time.Second; c.MaxWait = time.Second })
	e.addUser(t, "alice")
	bob := e.addUser(t, "bob")
	c, _ := e.newClient(t, domain, "")
	aj := c.login("alice")
	tc := e.dialTCP(t, bob)
	c.send("", "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	en := c.expect(session.NSSM, "enabled")
	previd := en.Attribute("id")
	if previd == "" || en.Attribute("resume") != "true" {
		t.Fatalf("enabled: %s", en)
	}

	seen := map[string]int{}
	sendN := func(from, to int) {
		for i := from; i < to; i++ {
			if err := tc.Send(message(aj, fmt.Sprint("m", i), fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	sendN(0, 10)
	for range 10 {
		seen[c.expect(stanza.NSClient, "message").Attribute("id")]++
	}
	// The client vanishes: whatever is in flight is lost.
	sendN(10, 20)
	c.stop()
	c.mu.Lock()
	h := c.h
	c.mu.Unlock()
	for len(c.inbox) > 0 {
		if m := <-c.inbox; m.Name.Local == "message" {
			seen[m.Attribute("id")]++
		}
	}
	waitFor(t, func() bool { return e.bosh.Count() == 0 })
	sendN(20, 30)

	c2, _ := e.newClient(t, domain, "")
	c2.authenticate("alice")
	c2.send("", fmt.Sprintf("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>", previd, h))
	c2.expect(session.NSSM, "resumed")
	for len(seen) < 30 {
		m := c2.expect(stanza.NSClient, "message")
		seen[m.Attribute("id")]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %s received %d times", id, n)
		}
	}
	// Nothing more arrives.
	c2.send("", fmt.Sprintf("<iq type='get' id='ping' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>"))
	if el := c2.expect(stanza.NSClient, "iq"); el.Attribute("id") != "ping" {
		t.Fatalf("got %s", el)
	}
}

// TestSlowClient: a client that stops collecting its responses while
// messages keep coming is cut off once its output waits longer than the
// write timeout, instead of buffering without bound.
func TestSlowClient(t *testing.T) {
	e := start(t, func(c *bosh.Config) {
		c.MaxBodyBytes = 4096
		c.WriteTimeout = 500 * time.Millisecond
		c.MaxInactivity = 30 * time.Second
	})
	e.addUser(t, "alice")
	bob := e.addUser(t, "bob")
	c, _ := e.newClient(t, domain, "")
	aj := c.login("alice")
	tc := e.dialTCP(t, bob)
	c.stop()
	big := strings.Repeat("x", 1000)
	for i := range 50 {
		if err := tc.Send(message(aj, fmt.Sprint("s", i), big)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return e.c2s.Count() == 1 })
}

// TestThroughput reports messages per second from a TCP client to a BOSH
// client.
func TestThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("throughput")
	}
	e := start(t, nil)
	e.addUser(t, "alice")
	bob := e.addUser(t, "bob")
	c, _ := e.newClient(t, domain, "")
	aj := c.login("alice")
	tc := e.dialTCP(t, bob)
	const n = 900
	begin := time.Now()
	go func() {
		for i := range n {
			if err := tc.Send(message(aj, fmt.Sprint("t", i), "hello")); err != nil {
				return
			}
		}
	}()
	for i := range n {
		m := c.expect(stanza.NSClient, "message")
		if m.Attribute("id") != fmt.Sprint("t", i) {
			t.Fatalf("message %d: %s", i, m)
		}
	}
	t.Logf("%d messages TCP → BOSH in %s: %.0f messages/s", n, time.Since(begin).Round(time.Millisecond), n/time.Since(begin).Seconds())
}
