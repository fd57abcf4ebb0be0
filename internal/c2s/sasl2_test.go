package c2s_test

import (
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

const (
	nsBind2 = "urn:xmpp:bind:0"
	nsFAST  = "urn:xmpp:fast:0"
)

// sasl2Offer is what SASL2 offers on a stream: its mechanisms, the FAST
// mechanisms inline, and the XEP-0440 channel-binding types beside it.
type sasl2Offer struct {
	mechs, fast, cb []string
	bind2           []string // Bind2's inline features
}

func offerOf(t *testing.T, f stream.Features) sasl2Offer {
	t.Helper()
	auth := xmpptest.SASL2Feature(f)
	if auth == nil {
		t.Fatal("no SASL2 offered")
	}
	var o sasl2Offer
	for _, m := range auth.ChildrenNS(xmpptest.NSSASL2) {
		if m.Name.Local == "mechanism" {
			o.mechs = append(o.mechs, m.Text())
		}
	}
	if in := auth.Child(xmpptest.NSSASL2, "inline"); in != nil {
		if fast := in.Child(nsFAST, "fast"); fast != nil {
			for _, m := range fast.ChildrenNS(nsFAST) {
				o.fast = append(o.fast, m.Text())
			}
		}
		if b := in.Child(nsBind2, "bind"); b != nil && b.Child(nsBind2, "inline") != nil {
			for _, fe := range b.Child(nsBind2, "inline").ChildrenNS(nsBind2) {
				o.bind2 = append(o.bind2, fe.Attribute("var"))
			}
		}
	}
	for _, e := range f.Other {
		if e.Name.Space == "urn:xmpp:sasl-cb:0" {
			for _, cb := range e.Children {
				if cb.Elem != nil {
					o.cb = append(o.cb, cb.Elem.Attribute("type"))
				}
			}
		}
	}
	return o
}

// tlsStream dials, starts TLS (at most TLS version max, 0 for any) and
// returns the stream and what SASL2 offers.
func tlsStream(t *testing.T, srv *xmpptest.Server, max uint16) (*xmpptest.Raw, sasl2Offer) {
	t.Helper()
	r := srv.DialRaw(t)
	r.Open()
	r.Send(`<starttls xmlns='` + stream.NSTLS + `'/>`)
	r.Expect(stream.NSTLS, "proceed")
	cfg := srv.TLSConfig()
	cfg.MaxVersion = max
	r.TLSHandshakeWith(cfg)
	return r, offerOf(t, r.Open())
}

func scram(t *testing.T, r *xmpptest.Raw, mech, user, password string, ssdp *sasl.SSDP) sasl.Client {
	t.Helper()
	c, err := sasl.NewClient(mech, sasl.ClientConfig{Username: user, Password: password, TLS: r.TLSState(), SSDP: ssdp})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func htClient(t *testing.T, r *xmpptest.Raw, mech, user, token string) sasl.Client {
	t.Helper()
	c, err := sasl.NewClient(mech, sasl.ClientConfig{Username: user, Token: token, TLS: r.TLSState()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantSuccess(t *testing.T, e *xmlstream.Element) *xmlstream.Element {
	t.Helper()
	if e.Name.Local != "success" {
		t.Fatalf("got %s, want SASL2 success", e)
	}
	return e
}

func wantSASL2Failure(t *testing.T, e *xmlstream.Element, cond string) {
	t.Helper()
	if got := xmpptest.SASL2Condition(e); got != cond {
		t.Fatalf("got %s, want a SASL2 failure %s", e, cond)
	}
}

func authzid(e *xmlstream.Element) string {
	if a := e.Child(xmpptest.NSSASL2, "authorization-identifier"); a != nil {
		return a.Text()
	}
	return ""
}

// TestSASL2SCRAM logs in with SCRAM over SASL2, the -PLUS variants
// included, with XEP-0474: the client checks the server's hash of the
// SASL2 mechanisms and channel-binding types. The FAST mechanisms are not
// in that hash (ejabberd 24.12 put them in, and Monal, go-sendxmpp and
// Movim refused to connect: processone/ejabberd#4331).
func TestSASL2SCRAM(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "juliet", "r0m3o!")
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS"} {
			r, o := tlsStream(t, srv, version)
			if len(o.fast) == 0 {
				t.Fatal("no FAST mechanisms offered")
			}
			ssdp := &sasl.SSDP{Mechanisms: o.mechs, ChannelBindings: o.cb}
			succ := wantSuccess(t, r.SASL2(scram(t, r, mech, "juliet", "r0m3o!", ssdp), ""))
			if authzid(succ) != "juliet@localhost" {
				t.Errorf("%s: authorization identifier in %s", mech, succ)
			}
			if f := r.Features(); !f.Bind {
				t.Errorf("%s: no bind offered after success", mech)
			}
			r.Bind("balcony")
			r.Close()

			// Had the server hashed the FAST mechanisms too, the
			// client would see a downgrade.
			r, o = tlsStream(t, srv, version)
			withFAST := &sasl.SSDP{Mechanisms: append(append([]string{}, o.mechs...), o.fast...), ChannelBindings: o.cb}
			c := scram(t, r, mech, "juliet", "r0m3o!", withFAST)
			first, _ := c.Start()
			r.Send(`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='` + mech + `'><initial-response>` + base64.StdEncoding.EncodeToString(first) + `</initial-response></authenticate>`)
			chal := r.Expect(xmpptest.NSSASL2, "challenge")
			data, _ := base64.StdEncoding.DecodeString(chal.Text())
			if _, err := c.Next(data); err == nil || !strings.Contains(err.Error(), "XEP-0474") {
				t.Errorf("%s: the server's hash covers the FAST mechanisms (%v)", mech, err)
			}
			r.Drop()
		}
	}
}

// TestSASL1DowngradeProtection: XEP-0474 on RFC 6120 SASL, over the
// <mechanisms/> list.
func TestSASL1DowngradeProtection(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "juliet", "r0m3o!")
	r := srv.DialRaw(t)
	f := r.StartTLS()
	o := offerOf(t, f)
	for _, ssdp := range []*sasl.SSDP{{Mechanisms: f.Mechanisms, ChannelBindings: o.cb}, {Mechanisms: f.Mechanisms[1:], ChannelBindings: o.cb}} {
		c := scram(t, r, "SCRAM-SHA-256", "juliet", "r0m3o!", ssdp)
		first, _ := c.Start()
		r.Send(`<auth xmlns='` + stream.NSSASL + `' mechanism='SCRAM-SHA-256'>` + base64.StdEncoding.EncodeToString(first) + `</auth>`)
		chal := r.Expect(stream.NSSASL, "challenge")
		data, _ := base64.StdEncoding.DecodeString(chal.Text())
		_, err := c.Next(data)
		r.Send(`<abort xmlns='` + stream.NSSASL + `'/>`)
		r.ExpectSASLFailure()
		if ok := len(ssdp.Mechanisms) == len(f.Mechanisms); (err == nil) != ok {
			t.Errorf("mechanisms %q: client error %v", ssdp.Mechanisms, err)
		}
	}
}

// fastLogin logs in with SCRAM over SASL2 asking for a token for mech,
// binding with Bind2, and returns the token.
func fastLogin(t *testing.T, srv *xmpptest.Server, user, password, mech, clientID string) (token string, expiry time.Time) {
	t.Helper()
	r, _ := tlsStream(t, srv, 0)
	ua := ""
	if clientID != "" {
		ua = `<user-agent id='` + clientID + `'><software>ode tests</software></user-agent>`
	}
	succ := wantSuccess(t, r.SASL2(scram(t, r, "SCRAM-SHA-256-PLUS", user, password, nil),
		ua+`<bind xmlns='urn:xmpp:bind:0'><tag>test</tag></bind><request-token xmlns='urn:xmpp:fast:0' mechanism='`+mech+`'/>`))
	tok := succ.Child(nsFAST, "token")
	if tok == nil || len(tok.Attribute("token")) < 65 {
		t.Fatalf("no token in %s", succ)
	}
	exp, err := time.Parse(time.RFC3339, tok.Attribute("expiry"))
	if err != nil {
		t.Fatalf("expiry: %v", err)
	}
	r.Features()
	r.Close()
	return tok.Attribute("token"), exp
}

// fastAttempt authenticates with token over a new stream and returns the
// outcome and the stream, for more.
func fastAttempt(t *testing.T, srv *xmpptest.Server, mech, user, token, extra string) (*xmlstream.Element, *xmpptest.Raw) {
	t.Helper()
	r, _ := tlsStream(t, srv, 0)
	return r.SASL2(htClient(t, r, mech, user, token), extra), r
}

const ua1 = `<user-agent id='9c1e3a8f-2b4d-4c6e-8f0a-1b2c3d4e5f60'><software>ode tests</software></user-agent>`

// TestFAST: a token asked for at a password login (with a user-agent
// id, and without one, which ejabberd answered with no token), then
// logins with it without the password in one round trip, bound to its
// mechanism and client; invalidation on request, by a password change
// and by "log out everywhere", all with credentials-expired.
func TestFAST(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	u := srv.AddUser(t, "romeo", "juliet!")
	for _, mech := range []string{sasl.HTSHA256None, sasl.HTSHA256Endp, sasl.HTSHA256Expr} {
		t.Run(mech, func(t *testing.T) {
			token, exp := fastLogin(t, srv, "romeo", "juliet!", mech, "9c1e3a8f-2b4d-4c6e-8f0a-1b2c3d4e5f60")
			if d := time.Until(exp); d < 20*24*time.Hour || d > 22*24*time.Hour {
				t.Errorf("token expires in %v, want 21 days", d)
			}
			succ, r := fastAttempt(t, srv, mech, "romeo", token, ua1+`<fast xmlns='urn:xmpp:fast:0'/><bind xmlns='urn:xmpp:bind:0'/>`)
			wantSuccess(t, succ)
			if succ.Child(nsFAST, "token") != nil {
				t.Errorf("a fresh token was rotated: %s", succ)
			}
			if j, err := jid.Parse(authzid(succ)); err != nil || j.Bare().String() != "romeo@localhost" || j.Resource() == "" {
				t.Errorf("authorization identifier %q", authzid(succ))
			}
			r.Features()
			r.Close()
			// The token is bound to its mechanism and its client.
			other := sasl.HTSHA256None
			if mech == sasl.HTSHA256None {
				other = sasl.HTSHA256Endp
			}
			succ, r = fastAttempt(t, srv, other, "romeo", token, ua1+`<fast xmlns='urn:xmpp:fast:0'/>`)
			wantSASL2Failure(t, succ, "credentials-expired")
			r.Drop()
			succ, r = fastAttempt(t, srv, mech, "romeo", token, `<user-agent id='another-client'/><fast xmlns='urn:xmpp:fast:0'/>`)
			wantSASL2Failure(t, succ, "credentials-expired")
			r.Drop()
			// Invalidation by the client: this login works, the next
			// does not.
			wantSuccess(t, first(fastAttempt(t, srv, mech, "romeo", token, ua1+`<fast xmlns='urn:xmpp:fast:0' invalidate='true'/>`)))
			succ, r = fastAttempt(t, srv, mech, "romeo", token, ua1+`<fast xmlns='urn:xmpp:fast:0'/>`)
			wantSASL2Failure(t, succ, "credentials-expired")
			// The client falls back to its password on the same stream.
			wantSuccess(t, r.SASL2(scram(t, r, "SCRAM-SHA-256", "romeo", "juliet!", nil), ""))
			r.Features()
			r.Close()
		})
	}

	t.Run("without user-agent id", func(t *testing.T) {
		token, _ := fastLogin(t, srv, "romeo", "juliet!", sasl.HTSHA256None, "")
		wantSuccess(t, first(fastAttempt(t, srv, sasl.HTSHA256None, "romeo", token, `<fast xmlns='urn:xmpp:fast:0'/>`)))
	})

	t.Run("password change", func(t *testing.T) {
		token, _ := fastLogin(t, srv, "romeo", "juliet!", sasl.HTSHA256None, "9c1e3a8f-2b4d-4c6e-8f0a-1b2c3d4e5f60")
		setPassword(t, srv, u, "new")
		succ, r := fastAttempt(t, srv, sasl.HTSHA256None, "romeo", token, ua1+`<fast xmlns='urn:xmpp:fast:0'/>`)
		wantSASL2Failure(t, succ, "credentials-expired")
		r.Drop()
		setPassword(t, srv, u, "juliet!")
	})

	t.Run("log out everywhere", func(t *testing.T) {
		token, _ := fastLogin(t, srv, "romeo", "juliet!", sasl.HTSHA256None, "9c1e3a8f-2b4d-4c6e-8f0a-1b2c3d4e5f60")
		if n, err := srv.Store().DeleteFASTTokens(t.Context(), u.Local(), u.DomainString()); err != nil || n != 1 {
			t.Fatalf("DeleteFASTTokens = %d, %v", n, err)
		}
		succ, r := fastAttempt(t, srv, sasl.HTSHA256None, "romeo", token, ua1+`<fast xmlns='urn:xmpp:fast:0'/>`)
		wantSASL2Failure(t, succ, "credentials-expired")
		r.Drop()
	})

	t.Run("failures count", func(t *testing.T) {
		// c2s.max_auth_failures (3) bad tokens close the stream.
		r, _ := tlsStream(t, srv, 0)
		for range 3 {
			succ := r.SASL2(htClient(t, r, sasl.HTSHA256None, "romeo", sasl.NewToken()), ua1+`<fast xmlns='urn:xmpp:fast:0'/>`)
			wantSASL2Failure(t, succ, "credentials-expired")
		}
		r.ExpectStreamError(stream.NotAuthorized)
	})
}

func first[A, B any](a A, _ B) A { return a }

// setPassword changes u's password in storage, as a password change does.
func setPassword(t *testing.T, srv *xmpptest.Server, u jid.JID, password string) {
	t.Helper()
	cs, err := sasl.NewCredentials(password, 0)
	if err != nil {
		t.Fatal(err)
	}
	var creds []storage.Credential
	for _, c := range cs {
		creds = append(creds, storage.Credential{Hash: string(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey})
	}
	if err := srv.Store().SetCredentials(t.Context(), u.Local(), u.DomainString(), creds); err != nil {
		t.Fatal(err)
	}
}

// TestFASTRotation: a login with a token due for rotation gets a new
// one; the old one stays valid until the new one is used (XEP-0484 §4.5).
func TestFASTRotation(t *testing.T) {
	// Every token is due for rotation at once.
	srv := xmpptest.Start(t, func(c *config.Config) { c.C2S.FASTTokenRotateAfter = config.Duration(time.Nanosecond) })
	srv.AddUser(t, "romeo", "juliet!")
	old, _ := fastLogin(t, srv, "romeo", "juliet!", sasl.HTSHA256None, "9c1e3a8f-2b4d-4c6e-8f0a-1b2c3d4e5f60")
	succ, r := fastAttempt(t, srv, sasl.HTSHA256None, "romeo", old, ua1+`<fast xmlns='urn:xmpp:fast:0'/>`)
	wantSuccess(t, succ)
	tok := succ.Child(nsFAST, "token")
	if tok == nil {
		t.Fatalf("no rotation: %s", succ)
	}
	r.Drop()
	// The client did not get the new token (lost connection): the old
	// one still works, and yields yet another.
	succ, r = fastAttempt(t, srv, sasl.HTSHA256None, "romeo", old, ua1+`<fast xmlns='urn:xmpp:fast:0'/>`)
	wantSuccess(t, succ)
	newer := succ.Child(nsFAST, "token").Attribute("token")
	r.Drop()
	// The first rotation's token was never used and is gone.
	wantSASL2Failure(t, first(fastAttempt(t, srv, sasl.HTSHA256None, "romeo", tok.Attribute("token"), ua1+`<fast xmlns='urn:xmpp:fast:0'/>`)), "credentials-expired")
	// Using the newer one invalidates the old one.
	wantSuccess(t, first(fastAttempt(t, srv, sasl.HTSHA256None, "romeo", newer, ua1+`<fast xmlns='urn:xmpp:fast:0'/>`)))
	wantSASL2Failure(t, first(fastAttempt(t, srv, sasl.HTSHA256None, "romeo", old, ua1+`<fast xmlns='urn:xmpp:fast:0'/>`)), "credentials-expired")
}

// bind2Login logs in user with PLAIN over SASL2 and Bind2 (inner: the
// <bind/>'s children), reads the features and returns the stream and
// <success/>.
func bind2Login(t *testing.T, srv *xmpptest.Server, user, password, clientID, inner string) (*xmpptest.Raw, *xmlstream.Element) {
	t.Helper()
	r, _ := tlsStream(t, srv, 0)
	ua := ""
	if clientID != "" {
		ua = `<user-agent id='` + clientID + `'/>`
	}
	succ := wantSuccess(t, r.SASL2(plain(t, r, user, password), ua+`<bind xmlns='urn:xmpp:bind:0'>`+inner+`</bind>`))
	r.Features()
	return r, succ
}

func plain(t *testing.T, r *xmpptest.Raw, user, password string) sasl.Client {
	t.Helper()
	c, err := sasl.NewClient("PLAIN", sasl.ClientConfig{Username: user, Password: password, TLS: r.TLSState()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBind2: resources from the tag and the user-agent id (a stable part
// for the client and a random suffix), earlier sessions of the same
// client replaced, carbons enabled inline.
func TestBind2(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	phone, s1 := bind2Login(t, srv, "alice", "pw", "phone-id", `<tag>Chat</tag><enable xmlns='urn:xmpp:carbons:2'/>`)
	p1, _ := jid.Parse(authzid(s1))
	again, s2 := bind2Login(t, srv, "alice", "pw", "phone-id", `<tag>Chat</tag><enable xmlns='urn:xmpp:carbons:2'/>`)
	p2, _ := jid.Parse(authzid(s2))
	r1, r2 := p1.Resource(), p2.Resource()
	if !strings.HasPrefix(r1, "Chat/") || r1 == r2 || r1[:len(r1)-4] != r2[:len(r2)-4] {
		t.Errorf("resources %q and %q: want Chat/<stable>.<random>", r1, r2)
	}
	if strings.Contains(r1, "phone-id") {
		t.Errorf("resource %q shows the user-agent id", r1)
	}
	// The first session of the same client ended.
	phone.ExpectStreamError(stream.Conflict)
	laptop, s3 := bind2Login(t, srv, "alice", "pw", "laptop-id", `<tag>Chat</tag>`)
	p3, _ := jid.Parse(authzid(s3))
	if p3.Resource()[:len(r1)-4] == r1[:len(r1)-4] {
		t.Errorf("two clients share the resource prefix: %q, %q", r1, p3.Resource())
	}
	noID, s4 := bind2Login(t, srv, "alice", "pw", "", ``)
	if p4, _ := jid.Parse(authzid(s4)); p4.Resource() == "" || strings.Contains(p4.Resource(), "/") {
		t.Errorf("resource without tag and id: %q", p4.Resource())
	}
	noID.Close()

	// Carbons: a message from bob to the laptop reaches the session that
	// enabled them inline.
	bob := srv.DialRaw(t)
	bob.Login("bob", "pw")
	bob.Bind("desk")
	bob.Send(`<message type='chat' to='` + p3.String() + `'><body>hi</body></message>`)
	if m := laptop.Expect(stanza.NSClient, "message"); m.Child(stanza.NSClient, "body").Text() != "hi" {
		t.Fatalf("laptop got %s", m)
	}
	m := again.Expect(stanza.NSClient, "message")
	if m.Child("urn:xmpp:carbons:2", "received") == nil {
		t.Fatalf("the carbons-enabled session got %s", m)
	}
}

// TestSASL2Resume: XEP-0198 resumption inline in SASL2 (the unacknowledged
// stanza resent after <success/> and the features), and a failed one
// followed by the Bind2 request.
func TestSASL2Resume(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	r, succ := bind2Login(t, srv, "alice", "pw", "c1", `<enable xmlns='urn:xmpp:sm:3' resume='true'/>`)
	full := authzid(succ)
	en := succ.Child(nsBind2, "bound").Child(nsSM, "enabled")
	id := en.Attribute("id")
	bob := srv.DialRaw(t)
	bob.Login("bob", "pw")
	bob.Bind("desk")
	bob.Send(`<message type='chat' to='` + full + `'><body>while you were away</body></message>`)
	r.Expect(stanza.NSClient, "message")
	r.Drop()

	r, _ = tlsStream(t, srv, 0)
	succ = wantSuccess(t, r.SASL2(plain(t, r, "alice", "pw"), `<user-agent id='c1'/><resume xmlns='urn:xmpp:sm:3' previd='`+id+`' h='0'/><bind xmlns='urn:xmpp:bind:0'/>`))
	if res := succ.Child(nsSM, "resumed"); res == nil || res.Attribute("previd") != id || succ.Child(nsBind2, "bound") != nil {
		t.Fatalf("success %s, want <resumed/> and no <bound/>", succ)
	}
	if authzid(succ) != full {
		t.Errorf("authorization identifier %q, want %q", authzid(succ), full)
	}
	if f := r.Features(); f.Bind || hasSM(f) {
		t.Errorf("features after resumption offer bind or sm: %+v", f)
	}
	if m := r.Expect(stanza.NSClient, "message"); m.Child(stanza.NSClient, "body").Text() != "while you were away" {
		t.Fatalf("resent %s", m)
	}
	r.Close()

	// A resumption that fails: <failed/> in <success/>, then the bind.
	r, _ = tlsStream(t, srv, 0)
	succ = wantSuccess(t, r.SASL2(plain(t, r, "alice", "pw"), `<resume xmlns='urn:xmpp:sm:3' previd='nonsense' h='0'/><bind xmlns='urn:xmpp:bind:0'><enable xmlns='urn:xmpp:sm:3'/></bind>`))
	if succ.Child(nsSM, "failed") == nil || succ.Child(nsBind2, "bound").Child(nsSM, "enabled") == nil {
		t.Fatalf("success %s, want <failed/> and <bound><enabled/></bound>", succ)
	}
	r.Features()
	r.Close()
}

func hasSM(f stream.Features) bool {
	for _, o := range f.Other {
		if o.Name.Space == nsSM {
			return true
		}
	}
	return false
}

// TestBind2Inactive: a session bound with <inactive/> inline starts
// inactive (XEP-0352): a presence for it is held, the answer to its own
// ping is not, and <active/> releases the presence.
func TestBind2Inactive(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	alice, succ := bind2Login(t, srv, "alice", "pw", "", `<inactive xmlns='urn:xmpp:csi:0'/>`)
	full := authzid(succ)
	bob := srv.DialRaw(t)
	bob.Login("bob", "pw")
	bob.Bind("desk")
	bob.Send(`<presence to='` + full + `'><status>here</status></presence>`)
	// bob's ping is answered after his presence reached alice's queue.
	bob.Send(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`)
	bob.Expect(stanza.NSClient, "iq")
	alice.Send(`<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if e := alice.Next(); e.Name.Local != "iq" || e.Attribute("id") != "p2" {
		t.Fatalf("inactive session got %s before its ping's answer", e)
	}
	alice.Send(`<active xmlns='urn:xmpp:csi:0'/>`)
	if e := alice.Expect(stanza.NSClient, "presence"); e.Attribute("from") != "bob@localhost/desk" {
		t.Fatalf("got %s", e)
	}
}

// TestBind2ArchiveMetadata: <bound/> carries the XEP-0313 metadata of the
// account's archive at binding (XEP-0386 §3.2): empty, then the first and
// last message once there are some.
func TestBind2ArchiveMetadata(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	alice, succ := bind2Login(t, srv, "alice", "pw", "", "")
	md := succ.Child(nsBind2, "bound").Child("urn:xmpp:mam:2", "metadata")
	if md == nil || len(md.Children) != 0 {
		t.Fatalf("bound %s, want an empty <metadata/>", succ)
	}
	bob := srv.DialRaw(t)
	bob.Login("bob", "pw")
	bob.Bind("desk")
	for _, body := range []string{"one", "two"} {
		bob.Send(`<message type='chat' to='` + authzid(succ) + `'><body>` + body + `</body></message>`)
		alice.Expect(stanza.NSClient, "message")
	}
	_, succ = bind2Login(t, srv, "alice", "pw", "", "")
	md = succ.Child(nsBind2, "bound").Child("urn:xmpp:mam:2", "metadata")
	start, end := md.Child("urn:xmpp:mam:2", "start"), md.Child("urn:xmpp:mam:2", "end")
	if start == nil || end == nil || start.Attribute("id") == "" || start.Attribute("id") == end.Attribute("id") || end.Attribute("timestamp") == "" {
		t.Fatalf("metadata %s, want the first and last of two messages", md)
	}
}
