package s2s_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/s2s"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pair starts servers for a.test and b.test that know where the other
// listens; each edit (may be nil) adjusts one server's configuration.
func pair(t testing.TB, caA, caB *xmpptest.CA, editA, editB func(*config.Config)) (a, b *xmpptest.Server) {
	t.Helper()
	addrA, addrB := xmpptest.FreeAddr(t), xmpptest.FreeAddr(t)
	a = xmpptest.StartWithCA(t, caA, func(c *config.Config) {
		c.Server.Domains = []string{"a.test"}
		c.S2S.Listen = []string{addrA}
		c.S2S.Hosts = map[string]string{"b.test": addrB}
		if editA != nil {
			editA(c)
		}
	})
	b = xmpptest.StartWithCA(t, caB, func(c *config.Config) {
		c.Server.Domains = []string{"b.test"}
		c.S2S.Listen = []string{addrB}
		c.S2S.Hosts = map[string]string{"a.test": addrA}
		if editB != nil {
			editB(c)
		}
	})
	return a, b
}

func newCA(t testing.TB) *xmpptest.CA {
	t.Helper()
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func noDialback(c *config.Config) { c.S2S.Dialback = false }

// next returns the next stanza c receives that match accepts.
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

func message(from string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool {
		return e.Name.Local == "message" && stanza.From(e) == from
	}
}

func presence(typ, from string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool {
		return e.Name.Local == "presence" && stanza.Type(e) == typ && stanza.From(e) == from
	}
}

func chat(to, body string) *xmlstream.Element {
	return stanza.NewMessage(stanza.NSClient, stanza.MessageChat, to, "", "").
		Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(body))
}

func ping(to string) *xmlstream.Element {
	return stanza.NewIQ(stanza.NSClient, stanza.IQGet, to, "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping"))
}

func send(t *testing.T, c *client.Client, e *xmlstream.Element) {
	t.Helper()
	if err := c.Send(e); err != nil {
		t.Fatal(err)
	}
}

// exchange checks messages both ways and an iq to the other server.
func exchange(t *testing.T, alice, bob *client.Client) {
	t.Helper()
	for _, c := range []*client.Client{alice, bob} {
		send(t, c, stanza.NewPresence(stanza.NSClient, "", "", "", ""))
	}
	send(t, alice, chat("bob@b.test", "hello from a"))
	m := next(t, bob, "alice's message", message(alice.JID().String()))
	if body := m.Child(stanza.NSClient, "body"); body == nil || body.Text() != "hello from a" {
		t.Fatalf("bob got %s", m)
	}
	send(t, bob, chat(alice.JID().String(), "hello from b"))
	m = next(t, alice, "bob's message", message(bob.JID().String()))
	if body := m.Child(stanza.NSClient, "body"); body == nil || body.Text() != "hello from b" {
		t.Fatalf("alice got %s", m)
	}
	res, err := alice.IQ(ctxT(t), ping("b.test"))
	if err != nil {
		t.Fatalf("ping b.test from alice: %v", err)
	}
	if stanza.Type(res) != stanza.IQResult || stanza.From(res) != "b.test" {
		t.Fatalf("ping reply %s", res)
	}
}

// TestFederationEXTERNAL: servers whose certificates verify authenticate
// each other with SASL EXTERNAL (dialback is off on both), then carry
// messages, iqs, a mutual subscription and presence.
func TestFederationEXTERNAL(t *testing.T) {
	ca := newCA(t)
	a, b := pair(t, ca, ca, noDialback, noDialback)
	aliceJID := a.AddUser(t, "alice", "pw")
	bobJID := b.AddUser(t, "bob", "pw")
	alice, bob := a.Dial(t, aliceJID, "pw"), b.Dial(t, bobJID, "pw")
	exchange(t, alice, bob)
	if n := a.S2S().OutboundCount(); n != 1 {
		t.Errorf("a.test has %d outbound streams, want 1 (reused)", n)
	}

	// RFC 6121 across servers: alice subscribes to bob, bob approves and
	// subscribes back, and each then sees the other's presence.
	send(t, alice, stanza.NewPresence(stanza.NSClient, stanza.PresenceSubscribe, "bob@b.test", "", ""))
	next(t, bob, "subscription request", presence(stanza.PresenceSubscribe, "alice@a.test"))
	send(t, bob, stanza.NewPresence(stanza.NSClient, stanza.PresenceSubscribed, "alice@a.test", "", ""))
	next(t, alice, "subscribed", presence(stanza.PresenceSubscribed, "bob@b.test"))
	next(t, alice, "bob's presence", presence("", bob.JID().String()))
	send(t, bob, stanza.NewPresence(stanza.NSClient, stanza.PresenceSubscribe, "alice@a.test", "", ""))
	next(t, alice, "bob's request", presence(stanza.PresenceSubscribe, "bob@b.test"))
	send(t, alice, stanza.NewPresence(stanza.NSClient, stanza.PresenceSubscribed, "bob@b.test", "", ""))
	next(t, bob, "alice's presence", presence("", alice.JID().String()))

	// A message to a remote user who is offline is stored there.
	bob.Close()
	next(t, alice, "bob unavailable", presence(stanza.PresenceUnavailable, bob.JID().String()))
	send(t, alice, chat("bob@b.test", "while you were away"))
	if _, err := alice.IQ(ctxT(t), ping("b.test")); err != nil { // in order behind the message
		t.Fatal(err)
	}
	bob = b.Dial(t, bobJID, "pw")
	send(t, bob, stanza.NewPresence(stanza.NSClient, "", "", "", ""))
	m := next(t, bob, "offline message", message(alice.JID().String()))
	if m.Child("urn:xmpp:delay", "delay") == nil {
		t.Errorf("offline message without delay: %s", m)
	}
	// An iq to a remote user's resource that does not exist is answered
	// by the remote server.
	_, err := alice.IQ(ctxT(t), ping("bob@b.test/nowhere"))
	if !errors.Is(err, stanza.NewError(stanza.ServiceUnavailable, "")) {
		t.Errorf("iq to a missing remote resource: %v, want service-unavailable", err)
	}
}

// TestFederationDialback: each server's certificate comes from a CA the
// other does not trust, so they fall back to dialback.
func TestFederationDialback(t *testing.T) {
	a, b := pair(t, newCA(t), newCA(t), nil, nil)
	alice := a.Dial(t, a.AddUser(t, "alice", "pw"), "pw")
	bob := b.Dial(t, b.AddUser(t, "bob", "pw"), "pw")
	exchange(t, alice, bob)
}

// TestFederationDialbackOff: with untrusted certificates and dialback off,
// no stream is set up and the sender gets remote-server-not-found.
func TestFederationDialbackOff(t *testing.T) {
	a, b := pair(t, newCA(t), newCA(t), noDialback, nil)
	alice := a.Dial(t, a.AddUser(t, "alice", "pw"), "pw")
	b.AddUser(t, "bob", "pw")
	_, err := alice.IQ(ctxT(t), ping("b.test"))
	if !errors.Is(err, stanza.NewError(stanza.RemoteServerNotFound, "")) {
		t.Fatalf("ping over an unauthenticated stream: %v, want remote-server-not-found", err)
	}
}

// TestFederationWrongName: b.test presents a certificate, from a trusted
// CA, for another name; a.test, which does not allow dialback, refuses it.
func TestFederationWrongName(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	cert, key, _, err := ca.WriteFiles(dir, "wrong.test")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := pair(t, ca, ca, noDialback, func(c *config.Config) {
		c.TLS.Cert, c.TLS.Key = cert, key
	})
	alice := a.Dial(t, a.AddUser(t, "alice", "pw"), "pw")
	send(t, alice, chat("bob@b.test", "hi"))
	e := next(t, alice, "bounce", func(e *xmlstream.Element) bool { return e.Name.Local == "message" })
	if se, ok := stanza.ParseError(e); !ok || se.Condition != stanza.RemoteServerNotFound || stanza.From(e) != "bob@b.test" {
		t.Fatalf("bounce %s, want remote-server-not-found from bob@b.test", e)
	}
}

// TestFederationUnreachable: nothing listens, or a peer never answers.
func TestFederationUnreachable(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	srv := xmpptest.Start(t, func(c *config.Config) {
		c.S2S.ConnectTimeout = config.Duration(time.Second)
		c.S2S.Hosts = map[string]string{"closed.test": xmpptest.FreeAddr(t), "silent.test": silent.Addr().String()}
		c.S2S.Refuse = []string{"refused.test"}
	})
	alice := srv.Dial(t, srv.AddUser(t, "alice", "pw"), "pw")
	for domain, cond := range map[string]stanza.Condition{
		"closed.test":  stanza.RemoteServerNotFound,
		"silent.test":  stanza.RemoteServerTimeout,
		"refused.test": stanza.RemoteServerNotFound,
	} {
		_, err := alice.IQ(ctxT(t), ping(domain))
		if !errors.Is(err, stanza.NewError(cond, "")) {
			t.Errorf("ping %s: %v, want %s", domain, err, cond)
		}
	}
	// Several queued stanzas all bounce.
	for i := range 3 {
		send(t, alice, chat("x@silent.test", strings.Repeat("x", i)))
	}
	for range 3 {
		e := next(t, alice, "bounce", func(e *xmlstream.Element) bool { return e.Name.Local == "message" })
		if se, ok := stanza.ParseError(e); !ok || se.Condition != stanza.RemoteServerTimeout {
			t.Fatalf("bounce %s", e)
		}
	}
}

// rawPeer speaks the initiating side of a server stream to srv by hand:
// STARTTLS with a certificate for a.test from ca, then SASL EXTERNAL.
type rawPeer struct {
	t  *testing.T
	nc net.Conn
	r  *xmlstream.Reader
}

func dialRaw(t *testing.T, srv *xmpptest.Server, ca *xmpptest.CA, certName, from string) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", srv.S2SAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	p := &rawPeer{t: t, nc: nc, r: xmlstream.NewReader(nc, xmlstream.Limits{})}
	p.open(from, srv.Domain)
	p.write("<starttls xmlns='" + stream.NSTLS + "'/>")
	if e := p.next(); e.Name.Local != "proceed" {
		t.Fatalf("starttls: %s", e)
	}
	certPEM, keyPEM, err := ca.Issue(certName)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	// The peer does not check b.test: the tests are about what b.test accepts.
	tc := tls.Client(nc, &tls.Config{ServerName: srv.Domain, InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	p.nc = tc
	p.r.Reset(tc)
	return p
}

func (p *rawPeer) write(s string) {
	p.t.Helper()
	if _, err := p.nc.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) next() *xmlstream.Element {
	p.t.Helper()
	e, err := p.r.Next()
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	return e
}

// authedPeer is dialRaw as a.test (certificate from ca) to b.test, with
// SASL EXTERNAL done and the stream restarted.
func authedPeer(t *testing.T, b *xmpptest.Server, ca *xmpptest.CA) *rawPeer {
	t.Helper()
	p := dialRaw(t, b, ca, "a.test", "a.test")
	p.open("a.test", "b.test")
	p.external("a.test", "b.test")
	return p
}

// open sends a stream header and returns the features.
func (p *rawPeer) open(from, to string) stream.Features {
	p.t.Helper()
	p.write("<stream:stream xmlns='jabber:server' xmlns:stream='" + stream.NS + "' xmlns:db='jabber:server:dialback' version='1.0' from='" + from + "' to='" + to + "'>")
	if _, err := p.r.ReadStart(); err != nil {
		p.t.Fatal(err)
	}
	f, err := stream.ParseFeatures(p.next())
	if err != nil {
		p.t.Fatal(err)
	}
	return f
}

// external authenticates as domain and restarts the stream.
func (p *rawPeer) external(domain, to string) {
	p.t.Helper()
	p.write("<auth xmlns='" + stream.NSSASL + "' mechanism='EXTERNAL'>" + base64.StdEncoding.EncodeToString([]byte(domain)) + "</auth>")
	if e := p.next(); e.Name.Local != "success" {
		p.t.Fatalf("EXTERNAL: %s", e)
	}
	p.r.Reset(p.nc)
	p.open(domain, to)
}

// streamError reads until a stream error and returns its condition.
func (p *rawPeer) streamError() stream.Condition {
	p.t.Helper()
	for {
		e, err := p.r.Next()
		if err != nil {
			p.t.Fatalf("stream ended without a stream error: %v", err)
		}
		if e.Name.Space == stream.NS && e.Name.Local == "error" {
			se, _ := stream.ParseError(e)
			return se.Condition
		}
	}
}

// TestInboundChecks drives b.test's inbound listener by hand: EXTERNAL is
// offered only for a certificate that names the claimed domain, and after
// authentication a stanza from another domain (spoofed 'from') gets
// invalid-from, one to a domain b.test does not host host-unknown.
func TestInboundChecks(t *testing.T) {
	ca := newCA(t)
	b := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"b.test"}
		c.S2S.Dialback = false
	})
	bob := b.Dial(t, b.AddUser(t, "bob", "pw"), "pw")
	send(t, bob, stanza.NewPresence(stanza.NSClient, "", "", "", ""))

	t.Run("spoofed from", func(t *testing.T) {
		p := dialRaw(t, b, ca, "a.test", "a.test")
		f := p.open("a.test", "b.test")
		if len(f.Mechanisms) != 1 || f.Mechanisms[0] != "EXTERNAL" {
			t.Fatalf("mechanisms %q, want EXTERNAL", f.Mechanisms)
		}
		p.external("a.test", "b.test")
		p.write("<message from='alice@a.test/x' to='bob@b.test' type='chat'><body>real</body></message>")
		m := next(t, bob, "message over s2s", message("alice@a.test/x"))
		if m.Child(stanza.NSClient, "body") == nil {
			t.Fatalf("message %s: body not in jabber:client", m)
		}
		p.write("<message from='mallory@evil.test' to='bob@b.test'><body>spoof</body></message>")
		if c := p.streamError(); c != stream.InvalidFrom {
			t.Fatalf("spoofed from: %s, want invalid-from", c)
		}
	})
	t.Run("host unknown", func(t *testing.T) {
		p := authedPeer(t, b, ca)
		p.write("<message from='alice@a.test' to='carol@c.test'><body>relay?</body></message>")
		if c := p.streamError(); c != stream.HostUnknown {
			t.Fatalf("relay: %s, want host-unknown", c)
		}
	})
	t.Run("wrong certificate", func(t *testing.T) {
		p := dialRaw(t, b, ca, "other.test", "a.test")
		f := p.open("a.test", "b.test")
		if len(f.Mechanisms) != 0 {
			t.Fatalf("mechanisms %q offered for a certificate that does not name a.test", f.Mechanisms)
		}
		p.write("<auth xmlns='" + stream.NSSASL + "' mechanism='EXTERNAL'>" + base64.StdEncoding.EncodeToString([]byte("a.test")) + "</auth>")
		if e := p.next(); e.Name.Local != "failure" || e.Child(stream.NSSASL, "not-authorized") == nil {
			t.Fatalf("EXTERNAL with a wrong certificate: %s", e)
		}
		p.write("<message from='alice@a.test' to='bob@b.test'><body>x</body></message>")
		if c := p.streamError(); c != stream.NotAuthorized {
			t.Fatalf("stanza before authentication: %s, want not-authorized", c)
		}
	})
	t.Run("missing addresses", func(t *testing.T) {
		p := authedPeer(t, b, ca)
		p.write("<message to='bob@b.test'><body>who?</body></message>")
		if c := p.streamError(); c != stream.ImproperAddressing {
			t.Fatalf("no from: %s, want improper-addressing", c)
		}
	})
	t.Run("hostile input", func(t *testing.T) {
		for name, tc := range map[string]struct {
			input string
			want  stream.Condition
		}{
			"oversized stanza": {"<message from='alice@a.test' to='bob@b.test'><body>" + strings.Repeat("x", 300<<10) + "</body></message>", stream.PolicyViolation},
			"deep nesting":     {"<message from='alice@a.test' to='bob@b.test'>" + strings.Repeat("<x>", 100000), stream.PolicyViolation},
			"comment":          {"<!-- hi -->", stream.RestrictedXML},
			"entity":           {"<message from='alice@a.test' to='bob@b.test'><body>&xxe;</body></message>", stream.RestrictedXML},
		} {
			t.Run(name, func(t *testing.T) {
				p := authedPeer(t, b, ca)
				go p.nc.Write([]byte(tc.input)) // the server may close before reading it all
				if c := p.streamError(); c != tc.want {
					t.Fatalf("got %s, want %s", c, tc.want)
				}
			})
		}
	})
	t.Run("peer stream error", func(t *testing.T) {
		p := authedPeer(t, b, ca)
		p.write("<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
		e, err := p.r.Next()
		if !errors.Is(err, xmlstream.ErrStreamEnd) {
			t.Fatalf("after the peer's stream error: %v %v, want the end of the stream without an error of ours", e, err)
		}
	})
	t.Run("plaintext", func(t *testing.T) {
		nc, err := net.Dial("tcp", b.S2SAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		p := &rawPeer{t: t, nc: nc, r: xmlstream.NewReader(nc, xmlstream.Limits{})}
		f := p.open("a.test", "b.test")
		if !f.StartTLS || !f.StartTLSRequired || len(f.Mechanisms) != 0 {
			t.Fatalf("features before TLS: %+v", f)
		}
		p.write("<db:result from='a.test' to='b.test'>abc</db:result>")
		if c := p.streamError(); c != stream.PolicyViolation {
			t.Fatalf("dialback before TLS: %s, want policy-violation", c)
		}
	})
	t.Run("unknown host in header", func(t *testing.T) {
		nc, err := net.Dial("tcp", b.S2SAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		p := &rawPeer{t: t, nc: nc, r: xmlstream.NewReader(nc, xmlstream.Limits{})}
		p.write("<stream:stream xmlns='jabber:server' xmlns:stream='" + stream.NS + "' version='1.0' from='a.test' to='c.test'>")
		if _, err := p.r.ReadStart(); err != nil {
			t.Fatal(err)
		}
		if c := p.streamError(); c != stream.HostUnknown {
			t.Fatalf("header to c.test: %s, want host-unknown", c)
		}
	})
}

// TestForgedDialback: a peer that is not a.test asks b.test to accept it
// as a.test with a made-up dialback key; b.test asks a.test's
// authoritative server, which says invalid, so b.test answers invalid and
// refuses a.test's stanzas on that stream.
func TestForgedDialback(t *testing.T) {
	ca := newCA(t)
	_, b := pair(t, ca, ca, nil, nil)
	bob := b.Dial(t, b.AddUser(t, "bob", "pw"), "pw")
	send(t, bob, stanza.NewPresence(stanza.NSClient, "", "", "", ""))

	p := dialRaw(t, b, newCA(t), "a.test", "a.test") // a certificate b.test does not trust
	f := p.open("a.test", "b.test")
	if len(f.Mechanisms) != 0 {
		t.Fatalf("EXTERNAL offered for an untrusted certificate: %q", f.Mechanisms)
	}
	p.write("<db:result from='a.test' to='b.test'>0123456789abcdef</db:result>")
	e := p.next()
	if e.Name.Space != s2s.NSDialback || e.Name.Local != "result" || e.Attribute("type") != "invalid" || e.Attribute("from") != "b.test" || e.Attribute("to") != "a.test" {
		t.Fatalf("verdict %s, want <db:result type='invalid'/>", e)
	}
	p.write("<message from='alice@a.test' to='bob@b.test'><body>forged</body></message>")
	if c := p.streamError(); c != stream.InvalidFrom && c != stream.NotAuthorized {
		t.Fatalf("stanza after a failed dialback: %s, want not-authorized or invalid-from", c)
	}
}

// TestIdleStreamCloses: an outbound stream that carries nothing for
// idle_timeout is closed, and the next stanza sets up a new one.
func TestIdleStreamCloses(t *testing.T) {
	ca := newCA(t)
	idle := func(c *config.Config) { c.S2S.IdleTimeout = config.Duration(300 * time.Millisecond) }
	a, b := pair(t, ca, ca, idle, idle)
	alice := a.Dial(t, a.AddUser(t, "alice", "pw"), "pw")
	b.AddUser(t, "bob", "pw")
	if _, err := alice.IQ(ctxT(t), ping("b.test")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.S2S().OutboundCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle outbound stream still open")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := alice.IQ(ctxT(t), ping("b.test")); err != nil {
		t.Fatalf("after the idle close: %v", err)
	}
}

// TestDirectTLSListener: the direct TLS listener (XEP-0368) starts with
// TLS, announces the xmpp-server ALPN protocol and offers EXTERNAL at once.
func TestDirectTLSListener(t *testing.T) {
	ca := newCA(t)
	b := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"b.test"}
		c.S2S.DirectTLS = []string{"127.0.0.1:0"}
	})
	_, direct := b.S2SAddrs()
	if len(direct) != 1 {
		t.Fatalf("direct TLS listeners: %v", direct)
	}
	certPEM, keyPEM, err := ca.Issue("a.test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tls.Dial("tcp", direct[0].String(), &tls.Config{
		ServerName: "b.test", RootCAs: ca.Pool, Certificates: []tls.Certificate{cert},
		NextProtos: []string{"xmpp-server"}, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if p := tc.ConnectionState().NegotiatedProtocol; p != "xmpp-server" {
		t.Errorf("ALPN protocol %q, want xmpp-server", p)
	}
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	p := &rawPeer{t: t, nc: tc, r: xmlstream.NewReader(tc, xmlstream.Limits{})}
	f := p.open("a.test", "b.test")
	if f.StartTLS || len(f.Mechanisms) != 1 || f.Mechanisms[0] != "EXTERNAL" {
		t.Fatalf("features on direct TLS: %+v", f)
	}
	p.external("a.test", "b.test")
}

// TestUnauthenticatedStreamEnds: a peer that keeps an inbound stream busy
// without authenticating (here with dialback verification questions) is
// cut off after twice connect_timeout.
func TestUnauthenticatedStreamEnds(t *testing.T) {
	ca := newCA(t)
	b := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"b.test"}
		c.S2S.ConnectTimeout = config.Duration(300 * time.Millisecond)
	})
	p := dialRaw(t, b, newCA(t), "a.test", "a.test")
	p.open("a.test", "b.test")
	start := time.Now()
	done := make(chan stream.Condition, 1)
	go func() {
		for {
			e, err := p.r.Next()
			if err != nil {
				done <- ""
				return
			}
			if e.Name.Space == stream.NS && e.Name.Local == "error" {
				se, _ := stream.ParseError(e)
				done <- se.Condition
				return
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case c := <-done:
			if c != stream.ConnectionTimeout {
				t.Fatalf("stream ended with %q, want connection-timeout", c)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("cut off after %v", d)
			}
			return
		case <-tick.C:
			_, _ = p.nc.Write([]byte("<db:verify from='a.test' to='b.test' id='x'>k</db:verify>"))
		}
	}
}
