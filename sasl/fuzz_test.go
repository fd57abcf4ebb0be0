package sasl

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// fuzzTLS is one TLS 1.3 connection for the fuzz targets.
var (
	fuzzTLSOnce sync.Once
	fuzzTLS     tlsPair
)

func fuzzPair(t testing.TB) tlsPair {
	fuzzTLSOnce.Do(func() { fuzzTLS = newTLSPair(t, tls.VersionTLS13, ecdsaCert()) })
	return fuzzTLS
}

// FuzzServerSCRAM feeds arbitrary client-first and client-final messages
// to a server with a fixed nonce: it must not panic, and it must only
// succeed with a proof made from the password.
func FuzzServerSCRAM(f *testing.F) {
	for _, v := range scramVectors {
		f.Add([]byte(v.clientFirst), []byte(v.clientFinal), false)
	}
	f.Add([]byte("p=tls-exporter,a=x=2Cy,n=user,r=abc,e=f"), []byte("c=cD10bHMtZXhwb3J0ZXIsLA==,r=abc"+"3rfcNHYJY1ZVvWVs7j,p=AAAA"), true)
	f.Add([]byte("y,,n=user,r=abc"), []byte("c=eSws,r=abc3rfcNHYJY1ZVvWVs7j,x=y,p=AAAA"), false)
	f.Add([]byte("n,,m=x,n=user,r=abc"), []byte(""), false)
	f.Add([]byte("n,,n=gh=2Cost,r=abc"), []byte("c=biws,r=abc3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="), false)
	f.Add([]byte{}, []byte("n,,n=user,r=x"), false)
	p := fuzzPair(f)
	// The server holds the RFC 5802 verifier for SCRAM-SHA-1 so that the
	// vector seed authenticates, and random ones for the other hashes.
	creds := map[Hash]Credential{SHA1: vectorCredential(f, scramVectors[0]), SHA256: vectorCredential(f, scramVectors[1])}
	lookup := lookupFor("user", creds)
	f.Fuzz(func(t *testing.T, first, final []byte, plus bool) {
		mech := "SCRAM-SHA-1"
		if len(first) > 0 && first[0] == 'p' || plus {
			mech += "-PLUS"
		}
		s, err := NewServer(mech, ServerConfig{Lookup: lookup, TLS: p.server, ServerCertificate: p.der})
		if err != nil {
			t.Fatal(err)
		}
		s.(*scramServer).nonce = scramVectors[0].serverNonce
		ctx := context.Background()
		chal, done, err := s.Next(ctx, first)
		if done || (err == nil) == (chal == nil) {
			t.Fatalf("first: %q, %v, %v", chal, done, err)
		}
		if err != nil {
			return
		}
		if !utf8.Valid(chal) {
			t.Fatalf("challenge %q", chal)
		}
		if len(first) == 0 {
			// An empty challenge; final is the client-first-message.
			if _, done, _ := s.Next(ctx, final); done {
				t.Fatal("done after the client-first-message")
			}
			return
		}
		v, done, err := s.Next(ctx, final)
		if err == nil {
			if !done || !strings.HasPrefix(string(v), "v=") || s.Username() != "user" {
				t.Fatalf("final: %q, %v, %q", v, done, s.Username())
			}
		}
		if _, done, err := s.Next(ctx, final); done || err == nil {
			t.Fatal("exchange went on")
		}
	})
}

// FuzzServerPLAIN feeds arbitrary PLAIN messages to a server.
func FuzzServerPLAIN(f *testing.F) {
	for _, s := range []string{"\x00user\x00pencil", "admin\x00user\x00pencil", "\x00user\x00wrong", "\x00\x00", "", "\xff\x00a\x00b", "\x00ghost\x00x\x00"} {
		f.Add([]byte(s))
	}
	p := fuzzPair(f)
	// One iteration keeps the known user fast; unknown users cost 4096.
	cred, err := NewCredential(testPassword, SHA256, []byte("salt"), 1)
	if err != nil {
		f.Fatal(err)
	}
	lookup := lookupFor(testUser, map[Hash]Credential{SHA256: cred})
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := NewServer("PLAIN", ServerConfig{Lookup: lookup, TLS: p.server})
		if err != nil {
			t.Fatal(err)
		}
		chal, done, err := s.Next(context.Background(), msg)
		if len(msg) == 0 {
			if done || err != nil || chal == nil || len(chal) != 0 {
				t.Fatalf("empty message: %q, %v, %v", chal, done, err)
			}
			return
		}
		if done != (err == nil) {
			t.Fatalf("done %v with %v", done, err)
		}
		if done {
			parts := strings.Split(string(msg), "\x00")
			if len(parts) != 3 || s.Username() != testUser || s.AuthzID() != parts[0] {
				t.Fatalf("%q authenticated as %q/%q", msg, s.Username(), s.AuthzID())
			}
		}
	})
}

// FuzzParseAttributes checks the attribute parser: what it accepts is
// well formed and joins back to the input.
func FuzzParseAttributes(f *testing.F) {
	for _, s := range []string{"r=abc,s=QQ==,i=4096", "n=user", "a=", ",", "r=a,,b=c", "v=x=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		attrs, err := parseAttributes(s)
		if err != nil {
			return
		}
		parts := make([]string, len(attrs))
		for i, a := range attrs {
			if !isAlpha(a.key) || a.val == "" || strings.Contains(a.val, ",") {
				t.Fatalf("%q: attribute %q=%q", s, a.key, a.val)
			}
			parts[i] = string(a.key) + "=" + a.val
		}
		if strings.Join(parts, ",") != s {
			t.Fatalf("%q parsed as %v", s, attrs)
		}
	})
}

// FuzzSASLName checks that decoding inverts encoding and accepts only
// well-escaped names.
func FuzzSASLName(f *testing.F) {
	for _, s := range []string{"user", "a,b=c", "=2C", "=3d", "=", ","} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s != "" {
			if got, ok := decodeSASLName(encodeSASLName(s)); !ok || got != s {
				t.Fatalf("round trip of %q: %q, %v", s, got, ok)
			}
		}
		if got, ok := decodeSASLName(s); ok && encodeSASLName(got) != s {
			t.Fatalf("%q decoded to %q", s, got)
		}
	})
}

// FuzzClientSCRAM feeds arbitrary server messages to a client.
func FuzzClientSCRAM(f *testing.F) {
	v := scramVectors[0]
	f.Add([]byte(v.serverFirst), []byte(v.serverFinal))
	f.Add([]byte("r=fyko+d2lbbFgONRv9qkxdawLx,s=QQ==,i=4096,m=x"), []byte("e=other-error"))
	f.Add([]byte("r=x,s=QQ==,i=1"), []byte(""))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		c, err := NewClient(v.mech, ClientConfig{Username: testUser, Password: testPassword})
		if err != nil {
			t.Fatal(err)
		}
		c.(*scramClient).nonce = v.clientNonce
		if _, err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Next(first); err != nil {
			return
		}
		r, err := c.Next(final)
		if err == nil && (r != nil || string(first) != v.serverFirst) {
			t.Fatalf("verified %q then %q", first, final)
		}
	})
}
