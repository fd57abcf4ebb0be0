package sasl

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// tokenLookup serves the keys of tokens for user, for any mechanism.
func tokenLookup(user string, tokens ...string) TokenLookup {
	return func(_ context.Context, u, _ string) ([][]byte, error) {
		if u != user {
			return nil, nil
		}
		var keys [][]byte
		for _, t := range tokens {
			keys = append(keys, TokenKey(t))
		}
		return keys, nil
	}
}

func TestHTRoundTrip(t *testing.T) {
	token, other := NewToken(), NewToken()
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		p := newTLSPair(t, version, ecdsaCert())
		scfg := ServerConfig{Tokens: tokenLookup(testUser, other, token), TLS: p.server, ServerCertificate: p.der}
		offered := TokenMechanisms(scfg)
		want := []string{HTSHA256Endp, HTSHA256None}
		if version == tls.VersionTLS13 {
			want = append([]string{HTSHA256Expr}, want...)
		}
		if !slices.Equal(offered, want) {
			t.Errorf("TLS %x: TokenMechanisms %q, want %q", version, offered, want)
		}
		if got := SelectTokenMechanism(offered, p.client); got != want[0] {
			t.Errorf("TLS %x: SelectTokenMechanism %q, want %q", version, got, want[0])
		}
		for _, mech := range offered {
			t.Run(fmt.Sprintf("%s/tls%x", mech, version), func(t *testing.T) {
				c := mustClient(t, mech, ClientConfig{Username: testUser, Token: token, TLS: p.client})
				s := mustServer(t, mech, scfg)
				if se, ce := exchange(c, s); se != nil || ce != nil {
					t.Fatalf("server %v, client %v", se, ce)
				}
				ts := s.(TokenServer)
				if s.Username() != testUser || ts.Token() != 1 || s.Mechanism() != mech || c.Mechanism() != mech {
					t.Errorf("username %q token %d mechanism %q", s.Username(), ts.Token(), s.Mechanism())
				}

				// A token the server does not hold (invalidated, expired):
				// credentials-expired, so that the client falls back to
				// its password.
				c = mustClient(t, mech, ClientConfig{Username: testUser, Token: NewToken(), TLS: p.client})
				s = mustServer(t, mech, scfg)
				se, _ := exchange(c, s)
				wantFailure(t, se, CredentialsExpired)
				if s.(TokenServer).Token() != -1 || s.Username() != "" {
					t.Errorf("failed exchange: token %d, username %q", s.(TokenServer).Token(), s.Username())
				}
			})
		}
		if version == tls.VersionTLS13 {
			// The exporter of another connection does not match.
			q := newTLSPair(t, version, ecdsaCert())
			c := mustClient(t, HTSHA256Expr, ClientConfig{Username: testUser, Token: token, TLS: q.client})
			se, _ := exchange(c, mustServer(t, HTSHA256Expr, scfg))
			wantFailure(t, se, CredentialsExpired)
		}
	}
}

// TestHTKeyedByHash checks what storing TokenKey rests on: HMAC-SHA-256
// keyed with a token longer than the block equals HMAC keyed with its
// SHA-256 (RFC 2104 §2), so the client, which keys HMAC with the token
// text (as xmpp.js does), and the server agree.
func TestHTKeyedByHash(t *testing.T) {
	token := NewToken()
	if len(token) <= hmacBlock {
		t.Fatalf("token of %d bytes", len(token))
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("Initiator"))
	if !bytes.Equal(m.Sum(nil), htSum(TokenKey(token), "Initiator", nil)) {
		t.Fatal("HMAC with the token and with its key differ")
	}
	short := "short-token"
	if string(TokenKey(short)) != short {
		t.Errorf("TokenKey of a short token is %q", TokenKey(short))
	}
	if NewToken() == token {
		t.Error("two equal tokens")
	}
}

func TestHTServerRefuses(t *testing.T) {
	p := newTLSPair(t, tls.VersionTLS12, ecdsaCert())
	lookup := tokenLookup(testUser, "t0k3n")
	for _, tc := range []struct {
		name string
		mech string
		cfg  ServerConfig
		want Condition
	}{
		{"no lookup", HTSHA256None, ServerConfig{TLS: p.server}, InvalidMechanism},
		{"no TLS", HTSHA256None, ServerConfig{Tokens: lookup}, EncryptionRequired},
		{"EXPR on TLS 1.2", HTSHA256Expr, ServerConfig{Tokens: lookup, TLS: p.server, ServerCertificate: p.der}, InvalidMechanism},
		{"ENDP without the certificate", HTSHA256Endp, ServerConfig{Tokens: lookup, TLS: p.server}, InvalidMechanism},
		{"unknown", "HT-SHA-256-UNIQ", ServerConfig{Tokens: lookup, TLS: p.server}, InvalidMechanism},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewServer(tc.mech, tc.cfg)
			wantFailure(t, err, tc.want)
		})
	}
	if m := TokenMechanisms(ServerConfig{Tokens: lookup}); m != nil {
		t.Errorf("TokenMechanisms without TLS: %q", m)
	}
	if m := TokenMechanisms(ServerConfig{Tokens: lookup, Encrypted: true}); !slices.Equal(m, []string{HTSHA256None}) {
		t.Errorf("TokenMechanisms behind a TLS proxy: %q", m)
	}

	proof := htSum(TokenKey("t0k3n"), "Initiator", nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		msg  []byte
		want Condition
	}{
		{"empty", nil, MalformedRequest},
		{"no NUL", []byte("user"), MalformedRequest},
		{"no authcid", append([]byte{0}, proof...), MalformedRequest},
		{"short proof", append([]byte("user\x00"), proof[:31]...), MalformedRequest},
		{"long proof", append(append([]byte("user\x00"), proof...), 'x'), MalformedRequest},
		{"bad UTF-8", append([]byte("us\xffer\x00"), proof...), MalformedRequest},
		{"unknown user", append([]byte("ghost\x00"), proof...), CredentialsExpired},
		{"unpreparable user", append([]byte("a b\x00"), proof...), CredentialsExpired},
		{"wrong proof", append([]byte("user\x00"), make([]byte, 32)...), CredentialsExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustServer(t, HTSHA256None, ServerConfig{Tokens: lookup, TLS: p.server})
			_, done, err := s.Next(ctx, tc.msg)
			if done {
				t.Fatal("done")
			}
			wantFailure(t, err, tc.want)
			if _, _, err := s.Next(ctx, tc.msg); err == nil {
				t.Error("second message accepted")
			}
		})
	}
	s := mustServer(t, HTSHA256None, ServerConfig{Tokens: lookup, TLS: p.server})
	if v, done, err := s.Next(ctx, append([]byte("user\x00"), proof...)); !done || err != nil || !bytes.Equal(v, htSum(TokenKey("t0k3n"), "Responder", nil)) {
		t.Fatalf("good proof: %x, %v, %v", v, done, err)
	}

	// A lookup error is internal, not a failure to report as such.
	broken := func(context.Context, string, string) ([][]byte, error) { return nil, errors.New("disk on fire") }
	s = mustServer(t, HTSHA256None, ServerConfig{Tokens: broken, TLS: p.server})
	_, _, err := s.Next(ctx, append([]byte("user\x00"), proof...))
	var f *Failure
	if err == nil || errors.As(err, &f) {
		t.Errorf("lookup error: %v", err)
	}
}

func TestHTClient(t *testing.T) {
	p := newTLSPair(t, tls.VersionTLS12, ecdsaCert())
	for _, cfg := range []ClientConfig{{Username: testUser}, {Token: "x"}, {Username: "a\x00b", Token: "x"}} {
		if _, err := NewClient(HTSHA256None, cfg); err == nil {
			t.Errorf("NewClient(%+v) accepted", cfg)
		}
	}
	if _, err := NewClient(HTSHA256Expr, ClientConfig{Username: testUser, Token: "x", TLS: p.client}); err == nil {
		t.Error("EXPR on TLS 1.2 accepted")
	}
	if m := SelectTokenMechanism([]string{HTSHA256Expr}, p.client); m != "" {
		t.Errorf("SelectTokenMechanism chose %q on TLS 1.2", m)
	}
	c := mustClient(t, HTSHA256None, ClientConfig{Username: testUser, Token: "x"})
	first, err := c.Start()
	if err != nil || !strings.HasPrefix(string(first), testUser+"\x00") || len(first) != len(testUser)+1+32 {
		t.Fatalf("Start: %q, %v", first, err)
	}
	if _, err := c.Start(); err == nil {
		t.Error("second Start")
	}
	if _, err := c.Next(make([]byte, 32)); err == nil {
		t.Error("wrong server answer accepted")
	}
	if _, err := c.Next(nil); err == nil {
		t.Error("second Next accepted")
	}
	if !IsTokenMechanism(HTSHA256Endp) || IsTokenMechanism("SCRAM-SHA-1") {
		t.Error("IsTokenMechanism")
	}
}

// FuzzServerHT feeds arbitrary initial responses to an HT-SHA-256-NONE
// server: no panic, and success only with the proof made from the token.
func FuzzServerHT(f *testing.F) {
	token := "fuzz-token"
	good := append([]byte(testUser+"\x00"), htSum(TokenKey(token), "Initiator", nil)...)
	f.Add(good)
	f.Add([]byte("user\x00"))
	f.Add([]byte("\x00\x00"))
	f.Add(append([]byte("us\xffer\x00"), make([]byte, 32)...))
	p := fuzzPair(f)
	lookup := tokenLookup(testUser, token)
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := NewServer(HTSHA256None, ServerConfig{Tokens: lookup, TLS: p.server})
		if err != nil {
			t.Fatal(err)
		}
		v, done, err := s.Next(context.Background(), msg)
		if done != (err == nil) {
			t.Fatalf("done %v, err %v", done, err)
		}
		if done && (!bytes.Equal(msg, good) || !bytes.Equal(v, htSum(TokenKey(token), "Responder", nil))) {
			t.Fatalf("accepted %q", msg)
		}
	})
}
