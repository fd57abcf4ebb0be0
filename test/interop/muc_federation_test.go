package interop_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of XEP-0045 and XEP-0004, as the rooms' peers write them.
const (
	fedNSMUC      = "http://jabber.org/protocol/muc"
	fedNSMUCUser  = "http://jabber.org/protocol/muc#user"
	fedNSMUCOwner = "http://jabber.org/protocol/muc#owner"
	fedNSData     = "jabber:x:data"
)

// TestMUCFederationProsodyJoinsOde: bob, a user of Prosody (prosody.test),
// enters a room of ode's MUC service (conference.ode.test) over s2s.
// alice on ode creates the room as an instant room (an empty submitted
// muc#owner form); bob enters with the MUC <x/>; each sees the other's
// presence and gets status 110 on their own; two groupchat messages, one
// from each, reach both exactly once; private messages cross both ways;
// bob leaves (unavailable with 110) and alice sees him go.
//
// The room's stanzas to bob come from conference.ode.test, which ode's
// s2s must accept as a local 'from' (a stream conference.ode.test →
// prosody.test); Prosody's to the room are addressed to it (a stream
// prosody.test → conference.ode.test), which Prosody finds through DNS and
// authenticates with ode's certificate, issued for *.ode.test.
func TestMUCFederationProsodyJoinsOde(t *testing.T) {
	f := startMUCFederation(t, false)
	alice, bob := f.alice, f.bob
	room := "lobby@conference." + f.srv.Domain
	aliceNick, bobNick := room+"/alice", room+"/bob"

	fedSend(t, alice, fedEnter(aliceNick))
	self := fedAwait(t, alice, "her own presence in the new room", fedPresence("", aliceNick))
	if !fedHasStatus(self, "110") || !fedHasStatus(self, "201") {
		t.Errorf("alice's own presence %s, want status 110 and 201 (room created)", self)
	}
	fedInstant(t, alice, room)

	fedSend(t, bob, fedEnter(bobNick))
	fedAwait(t, bob, "alice's presence from the room", fedPresence("", aliceNick))
	self = fedAwait(t, bob, "his own presence from the room", fedPresence("", bobNick))
	if !fedHasStatus(self, "110") {
		t.Errorf("bob's own presence %s, want status 110 (RFC: XEP-0045 §7.2.3)", self)
	}
	if other := fedAwait(t, alice, "bob's presence", fedPresence("", bobNick)); fedHasStatus(other, "110") {
		t.Errorf("alice sees bob's presence with status 110, which only bob should get: %s", other)
	}

	fedGroupchats(t, room, map[string]*client.Client{"alice": alice, "bob": bob},
		[]fedSpeaker{{"alice", alice, aliceNick}, {"bob", bob, bobNick}})
	fedPrivate(t, bob, alice, bobNick, aliceNick)
	fedPrivate(t, alice, bob, aliceNick, bobNick)

	fedSend(t, bob, stanza.NewPresence(stanza.NSClient, stanza.PresenceUnavailable, bobNick, "", ""))
	if self := fedAwait(t, bob, "his own unavailable presence", fedPresence(stanza.PresenceUnavailable, bobNick)); !fedHasStatus(self, "110") {
		t.Errorf("bob's own unavailable presence %s, want status 110", self)
	}
	fedAwait(t, alice, "bob leaving", fedPresence(stanza.PresenceUnavailable, bobNick))
}

// TestMUCFederationOdeJoinsProsody: alice, a user of ode, enters a room of
// Prosody's MUC component (conference.prosody.test, rooms unlocked:
// muc_room_locking = false) that bob on Prosody created; each sees the
// other's presence, groupchat goes both ways, and alice leaves.
func TestMUCFederationOdeJoinsProsody(t *testing.T) {
	f := startMUCFederation(t, true)
	alice, bob := f.alice, f.bob
	room := "lobby@" + f.p.MUC
	aliceNick, bobNick := room+"/alice", room+"/bob"

	fedSend(t, bob, fedEnter(bobNick))
	if self := fedAwait(t, bob, "his own presence in the new room", fedPresence("", bobNick)); !fedHasStatus(self, "110") {
		t.Errorf("bob's own presence %s, want status 110", self)
	}

	fedSend(t, alice, fedEnter(aliceNick))
	fedAwait(t, alice, "bob's presence from the room", fedPresence("", bobNick))
	if self := fedAwait(t, alice, "her own presence from the room", fedPresence("", aliceNick)); !fedHasStatus(self, "110") {
		t.Errorf("alice's own presence %s, want status 110", self)
	}
	fedAwait(t, bob, "alice's presence", fedPresence("", aliceNick))

	fedGroupchats(t, room, map[string]*client.Client{"alice": alice, "bob": bob},
		[]fedSpeaker{{"alice", alice, aliceNick}, {"bob", bob, bobNick}})

	fedSend(t, alice, stanza.NewPresence(stanza.NSClient, stanza.PresenceUnavailable, aliceNick, "", ""))
	if self := fedAwait(t, alice, "her own unavailable presence", fedPresence(stanza.PresenceUnavailable, aliceNick)); !fedHasStatus(self, "110") {
		t.Errorf("alice's own unavailable presence %s, want status 110", self)
	}
	fedAwait(t, bob, "alice leaving", fedPresence(stanza.PresenceUnavailable, aliceNick))
}

// mucFederation is ode and Prosody federating, with alice logged in on ode
// and bob on Prosody, both available.
type mucFederation struct {
	srv        *xmpptest.Server
	p          *prosodyPeer
	alice, bob *client.Client
}

// startMUCFederation starts Prosody (prosody.test, with its MUC component
// if prosodyMUC) and ode (ode.test, whose MUC service is
// conference.ode.test), federating with verified certificates from one CA
// (SASL EXTERNAL both ways, s2s_secure_auth, no dialback). ode finds
// Prosody's domains through s2s.hosts; Prosody finds ode's, the MUC
// service's included, through the test's DNS server.
func startMUCFederation(t *testing.T, prosodyMUC bool) *mucFederation {
	t.Helper()
	needProsody(t)
	ca := newCA(t)
	dns := xmpptest.StartDNS(t)
	p := newProsody(t, prosodyOptions{Domain: "prosody.test", CA: ca, DNS: dns.Addr, SecureAuth: true, MUC: prosodyMUC})
	srv := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"ode.test"}
		c.S2S.Dialback = false
		c.S2S.CAFile = p.CAFile
		c.S2S.Hosts = map[string]string{p.Domain: p.S2SAddr}
		if p.MUC != "" {
			c.S2S.Hosts[p.MUC] = p.S2SAddr
		}
	})
	s2sAddr, err := netip.ParseAddrPort(srv.S2SAddr)
	if err != nil {
		t.Fatalf("ode's s2s listener %q: %v", srv.S2SAddr, err)
	}
	for _, d := range []string{srv.Domain, "conference." + srv.Domain} {
		publishService(dns, "xmpp-server", d, s2sAddr)
	}
	aliceJID := srv.AddUser(t, "alice", "wonderland")
	bobJID := p.AddUser(t, "bob", "builder pass")
	p.Start(t)

	f := &mucFederation{srv: srv, p: p, alice: srv.Dial(t, aliceJID, "wonderland")}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	bj, err := jid.Parse(bobJID)
	if err != nil {
		t.Fatal(err)
	}
	f.bob, err = client.Dial(ctx, client.Config{JID: bj, Password: "builder pass", Addr: p.C2SAddr,
		TLS: &tls.Config{RootCAs: ca.Pool, ServerName: p.Domain, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatalf("log in to Prosody as %s: %v", bobJID, err)
	}
	t.Cleanup(func() { f.bob.Close() })
	for _, c := range []*client.Client{f.alice, f.bob} {
		fedSend(t, c, stanza.NewPresence(stanza.NSClient, "", "", "", ""))
	}
	return f
}

// fedSpeaker is an occupant who sends a groupchat message.
type fedSpeaker struct {
	name string
	c    *client.Client
	nick string // the occupant JID, room/nick
}

// fedGroupchats has each speaker in turn send a groupchat message and
// checks that every occupant receives it exactly once, from the speaker's
// occupant JID. The speaker follows it with a second message, which all
// wait for: one sender's messages keep their order through the room and
// the s2s streams, so a duplicate of the first would come before it.
func fedGroupchats(t *testing.T, room string, occupants map[string]*client.Client, speakers []fedSpeaker) {
	t.Helper()
	for i, s := range speakers {
		body := fmt.Sprintf("groupchat %d from %s, across servers", i, s.name)
		after := fmt.Sprintf("after groupchat %d from %s", i, s.name)
		fedSend(t, s.c, fedGroupchat(room, body))
		fedSend(t, s.c, fedGroupchat(room, after))
		for name, c := range occupants {
			got := fedUntil(t, c, fmt.Sprintf("%q", after), func(e *xmlstream.Element) bool { return fedBody(e) == after })
			n := 0
			for _, e := range got {
				if fedBody(e) != body {
					continue
				}
				n++
				if stanza.From(e) != s.nick || stanza.Type(e) != stanza.MessageGroupchat {
					t.Errorf("%s got %s, want a groupchat from %s", name, e, s.nick)
				}
			}
			if n != 1 {
				t.Errorf("%s got %q %d times before %q, want once", name, body, n, after)
			}
		}
	}
}

// fedPrivate has from send a private message (XEP-0045 §7.5) to the
// occupant toNick, which to receives from fromNick with the muc#user <x/>.
func fedPrivate(t *testing.T, from, to *client.Client, fromNick, toNick string) {
	t.Helper()
	body := "private from " + fromNick
	fedSend(t, from, stanza.NewMessage(stanza.NSClient, stanza.MessageChat, toNick, "", "").
		Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(body)).
		Append(xmlstream.NewElement(fedNSMUCUser, "x")))
	m := fedAwait(t, to, "the private message", func(e *xmlstream.Element) bool { return fedBody(e) == body })
	if stanza.From(m) != fromNick || stanza.Type(m) != stanza.MessageChat || m.Child(fedNSMUCUser, "x") == nil {
		t.Errorf("%s got the private message %s, want a chat from %s with the muc#user <x/>", to.JID(), m, fromNick)
	}
}

// fedInstant accepts the default configuration of a new room (XEP-0045
// §10.1.2: an instant room).
func fedInstant(t *testing.T, owner *client.Client, room string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	iq := stanza.NewIQ(stanza.NSClient, stanza.IQSet, room, "", "").Append(
		xmlstream.NewElement(fedNSMUCOwner, "query").Append(
			xmlstream.NewElement(fedNSData, "x").SetAttr("type", "submit")))
	if res, err := owner.IQ(ctx, iq); err != nil || stanza.Type(res) != stanza.IQResult {
		t.Fatalf("instant room %s: %v %s", room, err, res)
	}
}

// fedEnter is the presence that enters a room as room/nick, with the MUC
// <x/> and no history.
func fedEnter(nick string) *xmlstream.Element {
	return stanza.NewPresence(stanza.NSClient, "", nick, "", "").Append(
		xmlstream.NewElement(fedNSMUC, "x").Append(
			xmlstream.NewElement(fedNSMUC, "history").SetAttr("maxstanzas", "0")))
}

func fedGroupchat(room, body string) *xmlstream.Element {
	return stanza.NewMessage(stanza.NSClient, stanza.MessageGroupchat, room, "", "").
		Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(body))
}

func fedSend(t *testing.T, c *client.Client, e *xmlstream.Element) {
	t.Helper()
	if err := c.Send(e); err != nil {
		t.Fatalf("%s: send %s: %v", c.JID(), e, err)
	}
}

// fedAwait returns the first stanza c receives that match accepts.
func fedAwait(t *testing.T, c *client.Client, what string, match func(*xmlstream.Element) bool) *xmlstream.Element {
	t.Helper()
	got := fedUntil(t, c, what, match)
	return got[len(got)-1]
}

// fedUntil returns what c receives up to the first stanza match accepts,
// which is last; it fails the test after 10 s, listing what came.
func fedUntil(t *testing.T, c *client.Client, what string, match func(*xmlstream.Element) bool) []*xmlstream.Element {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []*xmlstream.Element
	for {
		e, err := c.Recv(ctx)
		if err != nil {
			var b strings.Builder
			for _, e := range got {
				fmt.Fprintf(&b, "\n  %s", e)
			}
			t.Fatalf("%s: waiting for %s: %v; received:%s", c.JID(), what, err, b.String())
		}
		got = append(got, e)
		if match(e) {
			return got
		}
	}
}

func fedPresence(typ, from string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool {
		return e.Name.Local == "presence" && stanza.Type(e) == typ && stanza.From(e) == from
	}
}

// fedBody returns the body of a message, or "".
func fedBody(e *xmlstream.Element) string {
	if e.Name.Local != "message" {
		return ""
	}
	if b := e.Child(stanza.NSClient, "body"); b != nil {
		return b.Text()
	}
	return ""
}

// fedHasStatus reports whether a MUC presence carries the status code.
func fedHasStatus(p *xmlstream.Element, code string) bool {
	if x := p.Child(fedNSMUCUser, "x"); x != nil {
		for _, s := range x.ChildrenNS(fedNSMUCUser) {
			if s.Name.Local == "status" && s.Attribute("code") == code {
				return true
			}
		}
	}
	return false
}
