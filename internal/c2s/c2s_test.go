package c2s_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
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

// recvMessage returns the next message, skipping anything else.
func recvMessage(t *testing.T, c *client.Client) *xmlstream.Element {
	t.Helper()
	for {
		e, err := c.Recv(ctxT(t))
		if err != nil {
			t.Fatalf("%s: receive: %v", c.JID(), err)
		}
		if e.Name.Local == "message" {
			return e
		}
	}
}

// streamEnd waits until the server ends c's stream and returns why.
func streamEnd(t *testing.T, c *client.Client) error {
	t.Helper()
	ctx := ctxT(t)
	for {
		if _, err := c.Recv(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: stream still open", c.JID())
			}
			return err
		}
	}
}

func wantStreamError(t *testing.T, err error, cond stream.Condition) {
	t.Helper()
	var se *stream.Error
	if !errors.As(err, &se) || se.Condition != cond {
		t.Fatalf("got %v, want stream error %s", err, cond)
	}
}

func wantStanzaError(t *testing.T, e *xmlstream.Element, cond stanza.Condition) {
	t.Helper()
	se, ok := stanza.ParseError(e)
	if !ok || se.Condition != cond {
		t.Fatalf("got %s, want stanza error %s", e, cond)
	}
}

func TestChatBetweenTwoClients(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	alice := srv.Dial(t, srv.AddUser(t, "alice", "wonderland"), "wonderland")
	bob := srv.Dial(t, srv.AddUser(t, "bob", "builder"), "builder")
	// Bare JID delivery needs an available resource (RFC 6121 §8.5.2.1).
	if err := bob.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
		t.Fatal(err)
	}
	// A full JID reaches exactly that resource.
	if err := alice.Send(chat(bob.JID().String(), "to your resource")); err != nil {
		t.Fatal(err)
	}
	m := recvMessage(t, bob)
	if body(m) != "to your resource" || stanza.From(m) != alice.JID().String() {
		t.Fatalf("bob got %s", m)
	}
	// The server answers a ping on the same stream, so bob's presence is
	// through the router before alice writes to his bare JID.
	if _, err := bob.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, srv.Domain, "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping"))); err != nil {
		t.Fatal(err)
	}
	if err := alice.Send(chat(bob.JID().Bare().String(), "to your bare JID")); err != nil {
		t.Fatal(err)
	}
	if m := recvMessage(t, bob); body(m) != "to your bare JID" {
		t.Fatalf("bob got %s", m)
	}
	if err := bob.Send(chat(alice.JID().String(), "ciao <&> ünïcode")); err != nil {
		t.Fatal(err)
	}
	if m := recvMessage(t, alice); body(m) != "ciao <&> ünïcode" || stanza.From(m) != bob.JID().String() {
		t.Fatalf("alice got %s", m)
	}
}

func TestMechanisms(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	u := srv.AddUser(t, "juliet", "r0m3o!")
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512-PLUS", "PLAIN", ""} {
			for _, direct := range []bool{false, true} {
				name := fmt.Sprintf("%s/tls%x/direct=%v", mech, version, direct)
				t.Run(name, func(t *testing.T) {
					cfg := srv.ClientConfig(u, "r0m3o!")
					cfg.Mechanism = mech
					cfg.TLS.MaxVersion = version
					if direct {
						cfg.DirectTLS = true
						cfg.Addr = srv.DirectAddr
					}
					c, err := client.Dial(ctxT(t), cfg)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					st := c.TLSState()
					if st == nil || st.Version != version {
						t.Fatalf("TLS state %+v", st)
					}
					if direct && st.NegotiatedProtocol != "xmpp-client" {
						t.Errorf("ALPN %q, want xmpp-client", st.NegotiatedProtocol)
					}
					if c.JID().Bare().String() != "juliet@localhost" || c.JID().Resource() == "" {
						t.Errorf("bound %s", c.JID())
					}
				})
			}
		}
	}
}

func TestWrongPasswordAndUnknownUser(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	u := srv.AddUser(t, "juliet", "right")
	ghost, _ := jid.New("ghost", srv.Domain, "")
	for _, tc := range []struct {
		j    jid.JID
		pass string
		mech string
	}{{u, "wrong", "SCRAM-SHA-256"}, {u, "wrong", "PLAIN"}, {ghost, "x", "SCRAM-SHA-1"}, {ghost, "x", "PLAIN"}} {
		cfg := srv.ClientConfig(tc.j, tc.pass)
		cfg.Mechanism = tc.mech
		_, err := client.Dial(ctxT(t), cfg)
		var ae *client.AuthError
		if !errors.As(err, &ae) || ae.Condition != sasl.NotAuthorized {
			t.Errorf("%s %s: got %v, want not-authorized", tc.j, tc.mech, err)
		}
	}
}

func TestTooManyAuthFailures(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "juliet", "right")
	r := srv.DialRaw(t)
	r.Open()
	r.StartTLS()
	for i := 0; i < srv.Config.C2S.MaxAuthFailures; i++ {
		r.SendPlain("juliet", "wrong")
		if c := r.ExpectSASLFailure(); c != "not-authorized" {
			t.Fatalf("attempt %d: %s", i, c)
		}
	}
	r.ExpectStreamError(stream.NotAuthorized)
}

func TestSASLAbortAndMalformed(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "juliet", "right")
	r := srv.DialRaw(t)
	r.Open()
	r.StartTLS()
	// A SCRAM exchange the client aborts after the first challenge.
	r.Send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>` +
		b64("n,,n=juliet,r=abcdefghijklmnop") + `</auth>`)
	if e := r.Next(); e.Name.Local != "challenge" {
		t.Fatalf("got %s", e)
	}
	r.Send(`<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
	if c := r.ExpectSASLFailure(); c != "aborted" {
		t.Fatalf("abort: %s", c)
	}
	r.Send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>`)
	if c := r.ExpectSASLFailure(); c != "invalid-mechanism" {
		t.Fatalf("unknown mechanism: %s", c)
	}
	r.Send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!not base64!!</auth>`)
	if c := r.ExpectSASLFailure(); c != "incorrect-encoding" {
		t.Fatalf("bad base64: %s", c)
	}
	// A correct login still works after failures below the limit.
	r.SendPlain("juliet", "right")
	r.Expect(stream.NSSASL, "success")
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestPlainWithoutTLS(t *testing.T) {
	// With TLS required, nothing is offered but STARTTLS and PLAIN is refused.
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "juliet", "right")
	r := srv.DialRaw(t)
	f := r.Open()
	if !f.StartTLS || !f.StartTLSRequired || len(f.Mechanisms) != 0 {
		t.Fatalf("features before TLS: %+v", f)
	}
	r.SendPlain("juliet", "right")
	if c := r.ExpectSASLFailure(); c != "encryption-required" {
		t.Fatalf("PLAIN before TLS: %s", c)
	}
	// Stanzas before TLS are a policy violation.
	r.Send(`<message to='x@localhost'><body>hi</body></message>`)
	r.ExpectStreamError(stream.PolicyViolation)

	// With TLS optional, SCRAM is offered in the clear but PLAIN is not.
	srv2 := xmpptest.Start(t, func(c *config.Config) { c.C2S.RequireTLS = false })
	srv2.AddUser(t, "juliet", "right")
	r2 := srv2.DialRaw(t)
	f = r2.Open()
	if !f.StartTLS || f.StartTLSRequired {
		t.Fatalf("features: %+v", f)
	}
	for _, m := range f.Mechanisms {
		if m == "PLAIN" || strings.HasSuffix(m, "-PLUS") {
			t.Errorf("%s offered without TLS", m)
		}
	}
	r2.SendPlain("juliet", "right")
	if c := r2.ExpectSASLFailure(); c != "encryption-required" {
		t.Fatalf("PLAIN without TLS: %s", c)
	}
}

func TestStreamHeaderErrors(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	for _, tc := range []struct {
		name   string
		header string
		cond   stream.Condition
	}{
		{"host-unknown", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>`, stream.HostUnknown},
		{"no to", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`, stream.HostUnknown},
		{"version 2", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='2.0'>`, stream.UnsupportedVersion},
		{"content namespace", `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`, stream.InvalidNamespace},
		{"stream namespace", `<stream:stream xmlns='jabber:client' xmlns:stream='http://example.org/streams' to='localhost' version='1.0'>`, stream.InvalidNamespace},
		{"not xml", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", stream.NotWellFormed},
		{"doctype", `<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol">]><stream:stream>`, stream.RestrictedXML},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.DialRaw(t)
			r.Send(tc.header)
			r.ReadHeader()
			r.ExpectStreamError(tc.cond)
		})
	}
}

func TestBadXML(t *testing.T) {
	srv := xmpptest.Start(t, func(c *config.Config) { c.C2S.MaxStanzaBytes = 10000 })
	for _, tc := range []struct {
		name, data string
		cond       stream.Condition
	}{
		{"comment", `<!-- hello -->`, stream.RestrictedXML},
		{"processing instruction", `<?php echo 1; ?>`, stream.RestrictedXML},
		{"entity", `<message><body>&ent;</body></message>`, stream.RestrictedXML},
		{"mismatched tags", `<message><body></message>`, stream.NotWellFormed},
		{"unbound prefix", `<foo:message/>`, stream.BadNamespacePrefix},
		{"oversized", `<message><body>` + strings.Repeat("x", 12000) + `</body></message>`, stream.PolicyViolation},
		{"deep", strings.Repeat("<a>", 100000), stream.PolicyViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.DialRaw(t)
			r.Open()
			r.Send(tc.data)
			r.ExpectStreamError(tc.cond)
		})
	}
}

func TestOversizedStanzaAfterLogin(t *testing.T) {
	srv := xmpptest.Start(t, func(c *config.Config) { c.C2S.MaxStanzaBytes = 16384 })
	alice := srv.Dial(t, srv.AddUser(t, "alice", "pw"), "pw")
	if err := alice.Send(chat("alice@localhost", strings.Repeat("x", 10<<20))); err != nil {
		// The server may close before all 10 MB are written.
		t.Logf("send: %v", err)
	}
	wantStreamError(t, streamEnd(t, alice), stream.PolicyViolation)
}

func TestResourceConflict(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	u := srv.AddUser(t, "romeo", "pw")
	full, _ := u.WithResource("orchard")
	first := srv.Dial(t, full, "pw")
	second := srv.Dial(t, full, "pw")
	if !second.JID().Equal(full) {
		t.Fatalf("second bound %s", second.JID())
	}
	wantStreamError(t, streamEnd(t, first), stream.Conflict)
	// The new session works.
	if _, err := second.IQ(ctxT(t), ping(srv.Domain)); err != nil {
		t.Fatal(err)
	}
}

func ping(to string) *xmlstream.Element {
	return stanza.NewIQ(stanza.NSClient, stanza.IQGet, to, "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping"))
}

func TestServerGeneratedResourceAndBindErrors(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "romeo", "pw")
	r := srv.DialRaw(t)
	f := r.Login("romeo", "pw")
	if !f.Bind {
		t.Fatalf("no bind feature after SASL: %+v", f)
	}
	// A stanza before binding closes the stream... but first an invalid
	// resource is refused with bad-request (RFC 6120 §7.7.2.1).
	// U+0085 (NEL) is an XML character but a control character, which
	// OpaqueString disallows.
	r.Send(`<iq type='set' id='bad'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>` + "\u0085" + `</resource></bind></iq>`)
	wantStanzaError(t, r.Next(), stanza.BadRequest)
	// A control character that is not even XML is a stream error.
	r.Send(`<iq type='set' id='bad2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>` + "\u0007" + `</resource></bind></iq>`)
	r.ExpectStreamError(stream.NotWellFormed)
	r = srv.DialRaw(t)
	r.Login("romeo", "pw")
	r.Send(`<iq type='set' id='nbsp'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>a` + "\u00a0" + `b</resource></bind></iq>`)
	// OpaqueString maps U+00A0 to U+0020 (RFC 8265 §4.2.2).
	e := r.Next()
	if j := e.Child(stream.NSBind, "bind"); stanza.ID(e) != "nbsp" || j == nil || j.Child(stream.NSBind, "jid").Text() != "romeo@localhost/a b" {
		t.Fatalf("got %s", e)
	}
	r = srv.DialRaw(t)
	r.Login("romeo", "pw")
	if j := r.Bind(""); j.Bare().String() != "romeo@localhost" {
		t.Fatalf("generated %s", j)
	}
	// The legacy session iq gets a result (RFC 3921 §3, RFC 6121 Appendix E).
	r.Send(`<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`)
	if e := r.Next(); e.Attribute("type") != "result" || stanza.ID(e) != "s1" {
		t.Fatalf("session: %s", e)
	}
	// Whitespace keepalives are fine.
	r.Send("  \n  ")
	r.Send(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if e := r.Next(); e.Attribute("type") != "result" || stanza.ID(e) != "p1" {
		t.Fatalf("ping: %s", e)
	}
}

func TestStanzaBeforeBind(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "romeo", "pw")
	r := srv.DialRaw(t)
	r.Login("romeo", "pw")
	r.Send(`<message to='romeo@localhost'><body>x</body></message>`)
	r.ExpectStreamError(stream.NotAuthorized)
}

func TestSpoofedFrom(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	alice := srv.Dial(t, srv.AddUser(t, "alice", "pw"), "pw")
	srv.AddUser(t, "bob", "pw")
	m := chat("alice@localhost", "forged")
	m.SetAttr("from", "bob@localhost/x")
	if err := alice.Send(m); err != nil {
		t.Fatal(err)
	}
	wantStreamError(t, streamEnd(t, alice), stream.InvalidFrom)
}

func TestFromStampedAndOwnFromAccepted(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	alice := srv.Dial(t, srv.AddUser(t, "alice", "pw"), "pw")
	bob := srv.Dial(t, srv.AddUser(t, "bob", "pw"), "pw")
	m := chat(bob.JID().String(), "bare from")
	m.SetAttr("from", "alice@localhost") // the bare JID is the sender's own
	if err := alice.Send(m); err != nil {
		t.Fatal(err)
	}
	if got := recvMessage(t, bob); stanza.From(got) != alice.JID().String() {
		t.Fatalf("from not stamped with the full JID: %s", got)
	}
}

func TestRoutingErrors(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	alice := srv.Dial(t, srv.AddUser(t, "alice", "pw"), "pw")
	bob := srv.Dial(t, srv.AddUser(t, "bob", "pw"), "pw")
	srv.AddUser(t, "carol", "pw")
	ctx := ctxT(t)

	// iq to an offline full JID: service-unavailable.
	res, err := alice.IQ(ctx, ping("carol@localhost/gone"))
	if !errors.Is(err, stanza.NewError(stanza.ServiceUnavailable, "")) {
		t.Fatalf("iq to offline full JID: %v %s", err, res)
	}
	// iq to the server that no handler takes: service-unavailable.
	q := stanza.NewIQ(stanza.NSClient, stanza.IQGet, srv.Domain, "", "").Append(xmlstream.NewElement("urn:example:none", "query"))
	if _, err := alice.IQ(ctx, q); !errors.Is(err, stanza.NewError(stanza.ServiceUnavailable, "")) {
		t.Fatalf("unhandled iq: %v", err)
	}
	// iq with no 'to' is for the server: ping answered.
	if _, err := alice.IQ(ctx, ping("")); err != nil {
		t.Fatalf("ping: %v", err)
	}
	// A message to an account that does not exist (a message to an
	// existing account without available resources is kept offline).
	if err := alice.Send(chat("nobody@localhost", "anyone?")); err != nil {
		t.Fatal(err)
	}
	wantStanzaError(t, recvMessage(t, alice), stanza.ServiceUnavailable)
	// Another domain: no federation yet.
	if err := alice.Send(chat("someone@example.net", "hi")); err != nil {
		t.Fatal(err)
	}
	wantStanzaError(t, recvMessage(t, alice), stanza.RemoteServerNotFound)
	// A malformed 'to'.
	if err := alice.Send(chat("@@", "hi")); err != nil {
		t.Fatal(err)
	}
	wantStanzaError(t, recvMessage(t, alice), stanza.JIDMalformed)
	// An iq without id is bad-request.
	if err := alice.SendRaw([]byte(`<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>`)); err != nil {
		t.Fatal(err)
	}
	e, err := alice.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantStanzaError(t, e, stanza.BadRequest)

	// A message to an offline full JID of an online user goes to the
	// bare JID, so to bob's available resource; presence to it is dropped.
	if err := bob.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.IQ(ctx, ping("")); err != nil {
		t.Fatal(err)
	}
	if err := alice.Send(stanza.NewPresence(stanza.NSClient, "", "bob@localhost/nothere", "", "")); err != nil {
		t.Fatal(err)
	}
	if err := alice.Send(chat("bob@localhost/nothere", "redirected")); err != nil {
		t.Fatal(err)
	}
	for {
		e, err := bob.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e.Name.Local == "presence" && stanza.From(e) == alice.JID().String() {
			t.Fatalf("presence to an offline full JID was delivered: %s", e)
		}
		if e.Name.Local == "message" {
			if body(e) != "redirected" {
				t.Fatalf("bob got %s", e)
			}
			break
		}
	}
	// An error or result iq is never answered with an error.
	if err := alice.Send(stanza.NewIQ(stanza.NSClient, stanza.IQResult, "carol@localhost/gone", "", "r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.IQ(ctx, ping("")); err != nil {
		t.Fatal(err)
	}
	if e, err := alice.Recv(contextWithTimeout(t, 200*time.Millisecond)); err == nil {
		t.Fatalf("an iq result was answered: %s", e)
	}
}

func contextWithTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestAuthTimeout(t *testing.T) {
	srv := xmpptest.Start(t, func(c *config.Config) { c.C2S.AuthTimeout = config.Duration(300 * time.Millisecond) })
	r := srv.DialRaw(t)
	r.Open()
	r.ExpectStreamError(stream.ConnectionTimeout)
}

func TestSlowReaderIsDisconnected(t *testing.T) {
	srv := xmpptest.Start(t, func(c *config.Config) {
		c.C2S.OutboundQueueBytes = 64 << 10
		c.C2S.MaxStanzaBytes = 16384
		c.Modules.Disabled = []string{"mam"} // 64 MB of archive writes would be the test's time
	})
	alice := srv.Dial(t, srv.AddUser(t, "alice", "pw"), "pw")
	srv.AddUser(t, "bob", "pw")
	// bob logs in by hand and then never reads.
	r := srv.DialRaw(t)
	r.Login("bob", "pw")
	bobJID := r.Bind("slow").String()
	big := strings.Repeat("y", 8000)
	// alice reads what comes back (errors for messages sent after bob's
	// stream was closed), as a client would.
	go func() {
		for {
			if _, err := alice.Recv(t.Context()); err != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 4000; i++ {
			if err := alice.Send(chat(bobJID, big)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(150 * time.Second): // 32 MB through TLS under -race: ~45 s on a loaded 2-core machine
		t.Fatal("the sender blocked on a slow receiver")
	}
	// alice is still served.
	if _, err := alice.IQ(ctxT(t), ping("")); err != nil {
		t.Fatal(err)
	}
	// bob's stream was closed with policy-violation, after the queued data.
	_ = r.Conn().SetDeadline(time.Now().Add(30 * time.Second))
	r.ExpectStreamError(stream.PolicyViolation)
}

func TestShutdownSendsSystemShutdown(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	alice := srv.Dial(t, srv.AddUser(t, "alice", "pw"), "pw")
	r := srv.DialRaw(t)
	r.Open()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wantStreamError(t, streamEnd(t, alice), stream.SystemShutdown)
	r.ExpectStreamError(stream.SystemShutdown)
}

// TestBareJIDPriority: a message to a bare JID goes to the available
// resource(s) of highest non-negative priority; a headline to all of them
// with non-negative priority (RFC 6121 §8.5.2.1.1).
func TestBareJIDPriority(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	alice := srv.Dial(t, srv.AddUser(t, "alice", "pw"), "pw")
	bobJID := srv.AddUser(t, "bob", "pw")
	ctx := ctxT(t)
	prios := []int{5, 1, 5, -1}
	bobs := make([]*client.Client, len(prios))
	for i, p := range prios {
		full, err := bobJID.WithResource(fmt.Sprintf("r%d", i))
		if err != nil {
			t.Fatal(err)
		}
		c := srv.Dial(t, full, "pw")
		bobs[i] = c
		pres := stanza.NewPresence(stanza.NSClient, "", "", "", "").Append(xmlstream.NewElement(stanza.NSClient, "priority").AppendText(fmt.Sprint(p)))
		if err := c.Send(pres); err != nil {
			t.Fatal(err)
		}
		if _, err := c.IQ(ctx, ping("")); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.Send(chat("bob@localhost", "to the best")); err != nil {
		t.Fatal(err)
	}
	headline := stanza.NewMessage(stanza.NSClient, stanza.MessageHeadline, "bob@localhost", "", "").
		Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText("news"))
	if err := alice.Send(headline); err != nil {
		t.Fatal(err)
	}
	// Everything alice sent is routed once her ping comes back.
	if _, err := alice.IQ(ctx, ping("")); err != nil {
		t.Fatal(err)
	}
	for i, c := range bobs {
		var got []string
		for {
			e, err := c.Recv(contextWithTimeout(t, 300*time.Millisecond))
			if err != nil {
				break
			}
			if e.Name.Local == "message" {
				got = append(got, body(e))
			}
		}
		var want []string
		switch prios[i] {
		case 5:
			want = []string{"to the best", "news"}
		case 1:
			want = []string{"news"}
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("resource %d (priority %d) got %q, want %q", i, prios[i], got, want)
		}
	}
}
