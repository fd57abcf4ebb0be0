package sasl

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTripWithoutTLS(t *testing.T) {
	for _, mech := range allSCRAM[3:] {
		t.Run(mech, func(t *testing.T) {
			s := mustServer(t, mech, ServerConfig{Lookup: testLookup()})
			c := mustClient(t, mech, ClientConfig{Username: testUser, Password: testPassword})
			if se, ce := exchange(c, s); se != nil || ce != nil {
				t.Fatalf("server %v, client %v", se, ce)
			}
			if s.Username() != testUser || s.AuthzID() != "" || s.Mechanism() != mech || c.Mechanism() != mech {
				t.Errorf("username %q authzid %q mechanisms %s/%s", s.Username(), s.AuthzID(), s.Mechanism(), c.Mechanism())
			}
		})
	}
	for _, mech := range allSCRAM[:3] {
		if _, err := NewServer(mech, ServerConfig{Lookup: testLookup()}); err == nil {
			t.Errorf("NewServer(%s) without TLS succeeded", mech)
		}
		if _, err := NewClient(mech, ClientConfig{Username: testUser, Password: testPassword}); err == nil {
			t.Errorf("NewClient(%s) without TLS succeeded", mech)
		}
	}
}

func TestRoundTripTLS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version uint16
		cb      string // expected automatic channel binding
	}{{"TLS1.2", tls.VersionTLS12, "tls-server-end-point"}, {"TLS1.3", tls.VersionTLS13, "tls-exporter"}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTLSPair(t, tc.version, ecdsaCert())
			scfg := ServerConfig{Lookup: testLookup(), TLS: p.server, ServerCertificate: p.der}
			for _, mech := range allSCRAM {
				t.Run(mech, func(t *testing.T) {
					s := mustServer(t, mech, scfg)
					c := mustClient(t, mech, ClientConfig{Username: testUser, Password: testPassword, TLS: p.client})
					first, err := c.Start()
					if err != nil {
						t.Fatal(err)
					}
					wantFlag := "n,,"
					if strings.HasSuffix(mech, "-PLUS") {
						wantFlag = "p=" + tc.cb + ",,"
					}
					if !bytes.HasPrefix(first, []byte(wantFlag)) {
						t.Fatalf("client-first %q, want prefix %q", first, wantFlag)
					}
					// Replay the exchange from the stored first message.
					c2 := mustClient(t, mech, ClientConfig{Username: testUser, Password: testPassword, TLS: p.client})
					if se, ce := exchange(c2, s); se != nil || ce != nil {
						t.Fatalf("server %v, client %v", se, ce)
					}
					if s.Username() != testUser {
						t.Errorf("username %q", s.Username())
					}
				})
			}
			// ClientSelect against what the server offers picks the
			// strongest -PLUS mechanism.
			c, err := ClientSelect(ServerMechanisms(scfg, true), ClientConfig{Username: testUser, Password: testPassword, TLS: p.client})
			if err != nil || c.Mechanism() != "SCRAM-SHA-512-PLUS" {
				t.Fatalf("ClientSelect: %v, %v", c, err)
			}
			if se, ce := exchange(c, mustServer(t, c.Mechanism(), scfg)); se != nil || ce != nil {
				t.Fatalf("server %v, client %v", se, ce)
			}
		})
	}
}

// TestExplicitChannelBinding uses tls-server-end-point on TLS 1.3.
func TestExplicitChannelBinding(t *testing.T) {
	p := newTLSPair(t, tls.VersionTLS13, ecdsaCert())
	scfg := ServerConfig{Lookup: testLookup(), TLS: p.server, ServerCertificate: p.der}
	c := mustClient(t, "SCRAM-SHA-256-PLUS", ClientConfig{Username: testUser, Password: testPassword, TLS: p.client, ChannelBinding: "tls-server-end-point"})
	if se, ce := exchange(c, mustServer(t, "SCRAM-SHA-256-PLUS", scfg)); se != nil || ce != nil {
		t.Fatalf("server %v, client %v", se, ce)
	}
	for _, cb := range []string{"tls-unique", "bogus"} {
		if _, err := NewClient("SCRAM-SHA-256-PLUS", ClientConfig{Username: testUser, Password: testPassword, TLS: p.client, ChannelBinding: cb}); err == nil {
			t.Errorf("channel binding %q accepted", cb)
		}
	}
	p12 := newTLSPair(t, tls.VersionTLS12, ecdsaCert())
	if _, err := NewClient("SCRAM-SHA-256-PLUS", ClientConfig{Username: testUser, Password: testPassword, TLS: p12.client, ChannelBinding: "tls-exporter"}); err == nil {
		t.Error("tls-exporter on TLS 1.2 accepted")
	}
	// Without our certificate a TLS 1.2 server has no channel binding.
	if _, err := NewServer("SCRAM-SHA-256-PLUS", ServerConfig{Lookup: testLookup(), TLS: p12.server}); err == nil {
		t.Error("-PLUS on TLS 1.2 without a certificate accepted")
	}
	// A client asking for a type the server cannot check fails.
	s := mustServer(t, "SCRAM-SHA-256-PLUS", ServerConfig{Lookup: testLookup(), TLS: p.server})
	c = mustClient(t, "SCRAM-SHA-256-PLUS", ClientConfig{Username: testUser, Password: testPassword, TLS: p.client, ChannelBinding: "tls-server-end-point"})
	se, _ := exchange(c, s)
	wantFailure(t, se, NotAuthorized)
}

// TestChannelBindingMismatch runs the client on one TLS connection and the
// server on another, as a man in the middle would.
func TestChannelBindingMismatch(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		a := newTLSPair(t, version, ecdsaCert())
		b := newTLSPair(t, version, newCert(false)) // another certificate too
		scfg := ServerConfig{Lookup: testLookup(), TLS: b.server, ServerCertificate: b.der}
		for _, mech := range allSCRAM[:3] {
			s := mustServer(t, mech, scfg)
			c := mustClient(t, mech, ClientConfig{Username: testUser, Password: testPassword, TLS: a.client})
			se, ce := exchange(c, s)
			if ce != nil {
				t.Fatal(ce)
			}
			if f := wantFailure(t, se, NotAuthorized); f.Text != "channel binding mismatch" {
				t.Errorf("%x %s: %v", version, mech, f)
			}
		}
	}
}

// TestTamperedChannelBindingFlag rewrites the GS2 header of the
// client-final-message: the server must notice.
func TestTamperedChannelBindingFlag(t *testing.T) {
	s := mustServer(t, "SCRAM-SHA-256", ServerConfig{Lookup: testLookup()})
	c := mustClient(t, "SCRAM-SHA-256", ClientConfig{Username: testUser, Password: testPassword})
	ctx := context.Background()
	first, _ := c.Start()
	sf, _, err := s.Next(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	final, err := c.Next(sf)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(final, []byte("c=biws,"), []byte("c=eSws,"), 1) // "y,,"
	_, _, err = s.Next(ctx, tampered)
	wantFailure(t, err, NotAuthorized)
}

func TestDowngradeDetection(t *testing.T) {
	p := newTLSPair(t, tls.VersionTLS13, ecdsaCert())
	ccfg := ClientConfig{Username: testUser, Password: testPassword, TLS: p.client}
	// An attacker removed the -PLUS mechanisms from the offer.
	c, err := ClientSelect([]string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := c.Start()
	if !bytes.HasPrefix(first, []byte("y,,")) {
		t.Fatalf("client-first %q, want the y flag", first)
	}
	s := mustServer(t, c.Mechanism(), ServerConfig{Lookup: testLookup(), TLS: p.server, ServerCertificate: p.der, StrictChannelBinding: true})
	_, _, err = s.Next(context.Background(), first)
	wantFailure(t, err, NotAuthorized)
	if !errors.Is(err, ErrChannelBinding) {
		t.Errorf("strict downgrade refusal %v does not wrap ErrChannelBinding", err)
	}

	// By default "y" is accepted: clients that know only tls-unique send
	// it over TLS 1.3 (slixmpp 1.8), and the login goes on with SCRAM.
	c, _ = ClientSelect([]string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}, ccfg)
	if se, ce := exchange(c, mustServer(t, c.Mechanism(), ServerConfig{Lookup: testLookup(), TLS: p.server, ServerCertificate: p.der})); se != nil || ce != nil {
		t.Fatalf("lenient server: server %v, client %v", se, ce)
	}

	// A server without channel binding accepts "y".
	c, _ = ClientSelect([]string{"SCRAM-SHA-256"}, ccfg)
	if se, ce := exchange(c, mustServer(t, "SCRAM-SHA-256", ServerConfig{Lookup: testLookup()})); se != nil || ce != nil {
		t.Fatalf("server %v, client %v", se, ce)
	}
	// So does a TLS 1.2 server that does not know its certificate.
	p12 := newTLSPair(t, tls.VersionTLS12, ecdsaCert())
	c, _ = ClientSelect([]string{"SCRAM-SHA-256"}, ClientConfig{Username: testUser, Password: testPassword, TLS: p12.client})
	if se, ce := exchange(c, mustServer(t, "SCRAM-SHA-256", ServerConfig{Lookup: testLookup(), TLS: p12.server})); se != nil || ce != nil {
		t.Fatalf("server %v, client %v", se, ce)
	}

	// An explicitly chosen mechanism says "n": the user opted out.
	c = mustClient(t, "SCRAM-SHA-256", ccfg)
	first, _ = c.Start()
	if !bytes.HasPrefix(first, []byte("n,,")) {
		t.Fatalf("client-first %q, want the n flag", first)
	}
	// When -PLUS was offered but not chosen the client also says "n".
	c, _ = ClientSelect([]string{"SCRAM-SHA3-512-PLUS", "SCRAM-SHA-256"}, ccfg)
	first, _ = c.Start()
	if !bytes.HasPrefix(first, []byte("n,,")) {
		t.Fatalf("client-first %q, want the n flag", first)
	}
}

func TestWrongPasswordAndUnknownUser(t *testing.T) {
	for _, mech := range allSCRAM[3:] {
		t.Run(mech, func(t *testing.T) {
			run := func(user, pass string) (*Failure, string) {
				s := mustServer(t, mech, ServerConfig{Lookup: testLookup()})
				c := mustClient(t, mech, ClientConfig{Username: user, Password: pass})
				first, _ := c.Start()
				sf, _, err := s.Next(context.Background(), first)
				if err != nil {
					t.Fatal(err)
				}
				final, err := c.Next(sf)
				if err != nil {
					t.Fatal(err)
				}
				_, done, err := s.Next(context.Background(), final)
				if done || s.Username() != "" {
					t.Fatalf("%s/%s authenticated as %q", user, pass, s.Username())
				}
				return wantFailure(t, err, NotAuthorized), string(sf)
			}
			wrong, sf1 := run(testUser, "wrong")
			unknown, sf2 := run("ghost", testPassword)
			if !reflect.DeepEqual(wrong, unknown) {
				t.Errorf("wrong password %#v, unknown user %#v", wrong, unknown)
			}
			// The fake salt is stable and looks like a real one.
			_, sf3 := run("ghost", "other")
			salt := func(sf string) string { return strings.SplitN(sf, ",", 2)[1] }
			if salt(sf2) != salt(sf3) || len(salt(sf1)) != len(salt(sf2)) || !strings.HasSuffix(sf2, ",i=4096") {
				t.Errorf("server-first messages %q, %q, %q", sf1, sf2, sf3)
			}
			// A different user gets a different salt.
			_, sf4 := run("ghost2", "x")
			if salt(sf4) == salt(sf2) {
				t.Error("two unknown users share a salt")
			}
		})
	}
}

func TestAuthzIDAndEscaping(t *testing.T) {
	creds := testCreds()
	for _, tc := range []struct{ user, authz, wantFirst string }{
		{"user", "juliet@example.com/a,b=c", "n,a=juliet@example.com/a=2Cb=3Dc,n=user,r="},
		{"a,b=c", "", "n,,n=a=2Cb=3Dc,r="},
	} {
		s := mustServer(t, "SCRAM-SHA-256", ServerConfig{Lookup: lookupFor(tc.user, creds)})
		c := mustClient(t, "SCRAM-SHA-256", ClientConfig{Username: tc.user, Password: testPassword, AuthzID: tc.authz})
		first, _ := c.Start()
		if !strings.HasPrefix(string(first), tc.wantFirst) {
			t.Errorf("client-first %q, want prefix %q", first, tc.wantFirst)
		}
		c = mustClient(t, "SCRAM-SHA-256", ClientConfig{Username: tc.user, Password: testPassword, AuthzID: tc.authz})
		if se, ce := exchange(c, s); se != nil || ce != nil {
			t.Fatalf("server %v, client %v", se, ce)
		}
		if s.Username() != tc.user || s.AuthzID() != tc.authz {
			t.Errorf("username %q authzid %q", s.Username(), s.AuthzID())
		}
	}
}

// TestUsernamePreparation checks that a width-variant username reaches
// the lookup prepared but with its case kept.
func TestUsernamePreparation(t *testing.T) {
	var got string
	lookup := func(ctx context.Context, u string, h Hash) (Credential, error) {
		got = u
		return testLookup()(ctx, u, h)
	}
	s := mustServer(t, "SCRAM-SHA-1", ServerConfig{Lookup: lookup})
	if _, _, err := s.Next(context.Background(), []byte("n,,n=\uff35ser,r=abc")); err != nil {
		t.Fatal(err)
	}
	if got != "User" {
		t.Errorf("lookup got %q, want %q", got, "User")
	}
}

func TestServerMalformedFirst(t *testing.T) {
	p := newTLSPair(t, tls.VersionTLS13, ecdsaCert())
	for _, tc := range []struct {
		name, mech, msg string
		want            Condition
	}{
		{"no header", "SCRAM-SHA-256", "n=user,r=abc", MalformedRequest},
		{"one comma", "SCRAM-SHA-256", "n,n=user", MalformedRequest},
		{"bad flag", "SCRAM-SHA-256", "x,,n=user,r=abc", MalformedRequest},
		{"p on non-PLUS", "SCRAM-SHA-256", "p=tls-exporter,,n=user,r=abc", MalformedRequest},
		{"n on PLUS", "SCRAM-SHA-256-PLUS", "n,,n=user,r=abc", MalformedRequest},
		{"y on PLUS", "SCRAM-SHA-256-PLUS", "y,,n=user,r=abc", MalformedRequest},
		{"bad cb name", "SCRAM-SHA-256-PLUS", "p=tls exporter,,n=user,r=abc", MalformedRequest},
		{"unknown cb", "SCRAM-SHA-256-PLUS", "p=tls-unique,,n=user,r=abc", NotAuthorized},
		{"authzid without a=", "SCRAM-SHA-256", "n,z=x,n=user,r=abc", MalformedRequest},
		{"empty authzid", "SCRAM-SHA-256", "n,a=,n=user,r=abc", InvalidAuthzID},
		{"bad authzid escape", "SCRAM-SHA-256", "n,a=x=2Gy,n=user,r=abc", InvalidAuthzID},
		{"truncated authzid escape", "SCRAM-SHA-256", "n,a=x=2,n=user,r=abc", InvalidAuthzID},
		{"m extension", "SCRAM-SHA-256", "n,,m=ext,n=user,r=abc", MalformedRequest},
		{"no nonce", "SCRAM-SHA-256", "n,,n=user", MalformedRequest},
		{"nonce first", "SCRAM-SHA-256", "n,,r=abc,n=user", MalformedRequest},
		{"empty nonce", "SCRAM-SHA-256", "n,,n=user,r=", MalformedRequest},
		{"space in nonce", "SCRAM-SHA-256", "n,,n=user,r=a bc", MalformedRequest},
		{"control in nonce", "SCRAM-SHA-256", "n,,n=user,r=a\x01bc", MalformedRequest},
		{"non-ASCII nonce", "SCRAM-SHA-256", "n,,n=user,r=abcé", MalformedRequest},
		{"bad username escape", "SCRAM-SHA-256", "n,,n=us=er,r=abc", MalformedRequest},
		{"empty username", "SCRAM-SHA-256", "n,,n=,r=abc", MalformedRequest},
		{"empty attribute", "SCRAM-SHA-256", "n,,n=user,,r=abc", MalformedRequest},
		{"NUL", "SCRAM-SHA-256", "n,,n=us\x00er,r=abc", MalformedRequest},
		{"bad UTF-8", "SCRAM-SHA-256", "n,,n=us\xffer,r=abc", MalformedRequest},
		{"too long", "SCRAM-SHA-256", "n,,n=user,r=" + strings.Repeat("a", maxMessage), MalformedRequest},
		{"too many attributes", "SCRAM-SHA-256", "n,,n=user,r=abc" + strings.Repeat(",x=y", maxAttributes), MalformedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustServer(t, tc.mech, ServerConfig{Lookup: testLookup(), TLS: p.server})
			_, done, err := s.Next(context.Background(), []byte(tc.msg))
			if done {
				t.Fatal("done")
			}
			wantFailure(t, err, tc.want)
			_, _, err = s.Next(context.Background(), []byte("c=biws,r=abc,p=AAAA"))
			wantFailure(t, err, MalformedRequest)
		})
	}
	// Extensions after the nonce are ignored, and so is an unknown user
	// whose name the username profile rejects.
	for _, msg := range []string{"n,,n=user,r=abc,x=ext,y=more", "n,,n=a b,r=abc"} {
		s := mustServer(t, "SCRAM-SHA-256", ServerConfig{Lookup: testLookup()})
		if _, _, err := s.Next(context.Background(), []byte(msg)); err != nil {
			t.Errorf("%q: %v", msg, err)
		}
	}
}

func TestServerMalformedFinal(t *testing.T) {
	const first = "n,,n=user,r=cnonce"
	const nonce = "cnoncesnonce"
	for _, tc := range []struct {
		name, msg string
		want      Condition
	}{
		{"empty", "", MalformedRequest},
		{"no proof", "c=biws,r=" + nonce, MalformedRequest},
		{"proof not last", "c=biws,r=" + nonce + ",p=AAAA,x=y", MalformedRequest},
		{"order", "r=" + nonce + ",c=biws,p=AAAA", MalformedRequest},
		{"bad cb base64", "c=b!ws,r=" + nonce + ",p=AAAA", MalformedRequest},
		{"bad proof base64", "c=biws,r=" + nonce + ",p=A!AA", MalformedRequest},
		{"wrong cb", "c=eSws,r=" + nonce + ",p=AAAA", NotAuthorized},
		{"wrong nonce", "c=biws,r=cnonce,p=AAAA", NotAuthorized},
		{"short proof", "c=biws,r=" + nonce + ",p=AAAA", NotAuthorized},
		{"wrong proof", "c=biws,r=" + nonce + ",p=" + strings.Repeat("A", 43) + "=", NotAuthorized},
		{"bad UTF-8", "c=biws,r=" + nonce + ",p=\xff", MalformedRequest},
		{"too long", "c=biws,r=" + nonce + ",x=" + strings.Repeat("a", maxMessage) + ",p=AAAA", MalformedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustServer(t, "SCRAM-SHA-256", ServerConfig{Lookup: testLookup()})
			s.(*scramServer).nonce = "snonce"
			if _, _, err := s.Next(context.Background(), []byte(first)); err != nil {
				t.Fatal(err)
			}
			_, done, err := s.Next(context.Background(), []byte(tc.msg))
			if done {
				t.Fatal("done")
			}
			wantFailure(t, err, tc.want)
		})
	}
}

func TestServerWithoutInitialResponse(t *testing.T) {
	for _, mech := range []string{"SCRAM-SHA-256", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			p := newTLSPair(t, tls.VersionTLS13, ecdsaCert())
			scfg := ServerConfig{Lookup: testLookup(), TLS: p.server}
			s := mustServer(t, mech, scfg)
			chal, done, err := s.Next(context.Background(), nil)
			if err != nil || done || chal == nil || len(chal) != 0 {
				t.Fatalf("got %q, %v, %v; want an empty challenge", chal, done, err)
			}
			c := mustClient(t, mech, ClientConfig{Username: testUser, Password: testPassword, TLS: p.client})
			if se, ce := exchange(c, s); se != nil || ce != nil {
				t.Fatalf("server %v, client %v", se, ce)
			}
			// Two empty messages in a row are an error.
			s = mustServer(t, mech, scfg)
			s.Next(context.Background(), []byte{})
			_, _, err = s.Next(context.Background(), []byte{})
			wantFailure(t, err, MalformedRequest)
		})
	}
}

func TestServerAfterDone(t *testing.T) {
	s := mustServer(t, "SCRAM-SHA-1", ServerConfig{Lookup: testLookup()})
	c := mustClient(t, "SCRAM-SHA-1", ClientConfig{Username: testUser, Password: testPassword})
	if se, ce := exchange(c, s); se != nil || ce != nil {
		t.Fatalf("server %v, client %v", se, ce)
	}
	_, done, err := s.Next(context.Background(), []byte("n,,n=user,r=abc"))
	if done {
		t.Fatal("done again")
	}
	wantFailure(t, err, MalformedRequest)
}

func TestLookupErrors(t *testing.T) {
	dbErr := errors.New("database down")
	failing := func(context.Context, string, Hash) (Credential, error) { return Credential{}, dbErr }
	for _, mech := range []string{"SCRAM-SHA-256", "PLAIN"} {
		p := newTLSPair(t, tls.VersionTLS13, ecdsaCert())
		s := mustServer(t, mech, ServerConfig{Lookup: failing, TLS: p.server})
		c := mustClient(t, mech, ClientConfig{Username: testUser, Password: testPassword, TLS: p.client})
		se, _ := exchange(c, s)
		var f *Failure
		if !errors.Is(se, dbErr) || errors.As(se, &f) {
			t.Errorf("%s: got %v, want a plain error wrapping %v", mech, se, dbErr)
		}
	}
	// A verifier for the wrong hash or with wrong key sizes is internal.
	bad := testCreds()[SHA1]
	for _, cred := range []Credential{bad, {Hash: SHA256, Salt: []byte("s"), Iterations: 1, StoredKey: []byte("k"), ServerKey: []byte("k")}} {
		lookup := func(context.Context, string, Hash) (Credential, error) { return cred, nil }
		s := mustServer(t, "SCRAM-SHA-256", ServerConfig{Lookup: lookup})
		_, _, err := s.Next(context.Background(), []byte("n,,n=user,r=abc"))
		var f *Failure
		if err == nil || errors.As(err, &f) {
			t.Errorf("credential %+v: got %v, want an internal error", cred, err)
		}
	}
}

func TestClientRejectsBadServer(t *testing.T) {
	const cnonce = "cnonce"
	for _, tc := range []struct{ name, serverFirst string }{
		{"empty", ""},
		{"m extension", "m=x,r=cnonceS,s=QSXCR+Q6sek8bf92,i=4096"},
		{"nonce not extended", "r=cnonce,s=QSXCR+Q6sek8bf92,i=4096"},
		{"other nonce", "r=xnonceS,s=QSXCR+Q6sek8bf92,i=4096"},
		{"bad nonce chars", "r=cnonce S,s=QSXCR+Q6sek8bf92,i=4096"},
		{"missing salt", "r=cnonceS,i=4096"},
		{"empty salt", "r=cnonceS,s=,i=4096"},
		{"bad salt", "r=cnonceS,s=!!!!,i=4096"},
		{"low iterations", "r=cnonceS,s=QSXCR+Q6sek8bf92,i=4095"},
		{"huge iterations", "r=cnonceS,s=QSXCR+Q6sek8bf92,i=99999999999999999999"},
		{"signed iterations", "r=cnonceS,s=QSXCR+Q6sek8bf92,i=+4096"},
		{"order", "s=QSXCR+Q6sek8bf92,r=cnonceS,i=4096"},
		{"too long", "r=cnonceS,s=QSXCR+Q6sek8bf92,i=4096,x=" + strings.Repeat("a", maxMessage)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustClient(t, "SCRAM-SHA-1", ClientConfig{Username: testUser, Password: testPassword})
			c.(*scramClient).nonce = cnonce
			c.Start()
			if r, err := c.Next([]byte(tc.serverFirst)); err == nil {
				t.Fatalf("accepted, answered %q", r)
			}
			if _, err := c.Next([]byte("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")); err == nil {
				t.Fatal("Next after an error succeeded")
			}
		})
	}
	v := scramVectors[0]
	for _, final := range []string{"e=invalid-proof", "", "v=!!", "x=y", "v=" + strings.Repeat("A", 28)} {
		c := mustClient(t, v.mech, ClientConfig{Username: testUser, Password: testPassword})
		c.(*scramClient).nonce = v.clientNonce
		c.Start()
		if _, err := c.Next([]byte(v.serverFirst)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Next([]byte(final)); err == nil {
			t.Errorf("server-final %q accepted", final)
		}
	}
	c := mustClient(t, "SCRAM-SHA-1", ClientConfig{Username: testUser, Password: testPassword})
	if _, err := c.Next(nil); err == nil {
		t.Error("Next before Start succeeded")
	}
	c.Start()
	if _, err := c.Start(); err == nil {
		t.Error("second Start succeeded")
	}
}

func TestNewClientErrors(t *testing.T) {
	for _, tc := range []struct {
		mech string
		cfg  ClientConfig
	}{
		{"SCRAM-SHA-256", ClientConfig{Password: "x"}},
		{"SCRAM-SHA-256", ClientConfig{Username: "u"}},
		{"SCRAM-SHA-256", ClientConfig{Username: "a b", Password: "x"}},
		{"SCRAM-MD5", ClientConfig{Username: "u", Password: "x"}},
		{"PLAIN", ClientConfig{Username: "u", Password: "x"}},
		{"DIGEST-MD5", ClientConfig{Username: "u", Password: "x"}},
	} {
		if _, err := NewClient(tc.mech, tc.cfg); err == nil {
			t.Errorf("NewClient(%s, %+v) succeeded", tc.mech, tc.cfg)
		}
	}
}
