package sasl

import (
	"context"
	"testing"
)

func BenchmarkNewCredentials(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewCredentials(testPassword, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSCRAMSHA256Exchange is a whole exchange, both sides; the
// client's PBKDF2 dominates.
func BenchmarkSCRAMSHA256Exchange(b *testing.B) {
	lookup := testLookup()
	b.ReportAllocs()
	for b.Loop() {
		s, err := NewServer("SCRAM-SHA-256", ServerConfig{Lookup: lookup})
		if err != nil {
			b.Fatal(err)
		}
		c, err := NewClient("SCRAM-SHA-256", ClientConfig{Username: testUser, Password: testPassword})
		if err != nil {
			b.Fatal(err)
		}
		if se, ce := exchange(c, s); se != nil || ce != nil {
			b.Fatal(se, ce)
		}
	}
}

// BenchmarkSCRAMSHA256Server is the server's share of an exchange: it
// replays the RFC 7677 messages, so no PBKDF2 runs.
func BenchmarkSCRAMSHA256Server(b *testing.B) {
	v := scramVectors[1]
	cred := vectorCredential(b, v)
	lookup := lookupFor("user", map[Hash]Credential{SHA256: cred})
	ctx := context.Background()
	first, final := []byte(v.clientFirst), []byte(v.clientFinal)
	b.ReportAllocs()
	for b.Loop() {
		s, err := NewServer("SCRAM-SHA-256", ServerConfig{Lookup: lookup})
		if err != nil {
			b.Fatal(err)
		}
		s.(*scramServer).nonce = v.serverNonce
		if _, _, err := s.Next(ctx, first); err != nil {
			b.Fatal(err)
		}
		if _, done, err := s.Next(ctx, final); err != nil || !done {
			b.Fatal(err)
		}
	}
}

// BenchmarkHTSHA256NoneExchange is a whole HT-SHA-256-NONE exchange
// (XEP-0484 FAST), both sides: two HMACs each, no PBKDF2.
func BenchmarkHTSHA256NoneExchange(b *testing.B) {
	token := NewToken()
	cfg := ServerConfig{Tokens: tokenLookup(testUser, token), Encrypted: true}
	b.ReportAllocs()
	for b.Loop() {
		s, err := NewServer(HTSHA256None, cfg)
		if err != nil {
			b.Fatal(err)
		}
		c, err := NewClient(HTSHA256None, ClientConfig{Username: testUser, Token: token})
		if err != nil {
			b.Fatal(err)
		}
		if se, ce := exchange(c, s); se != nil || ce != nil {
			b.Fatal(se, ce)
		}
	}
}

// BenchmarkHTSHA256NoneServer is the server's share of an HT exchange,
// against two stored tokens (a client's two slots).
func BenchmarkHTSHA256NoneServer(b *testing.B) {
	token := NewToken()
	cfg := ServerConfig{Tokens: tokenLookup(testUser, NewToken(), token), Encrypted: true}
	c, err := NewClient(HTSHA256None, ClientConfig{Username: testUser, Token: token})
	if err != nil {
		b.Fatal(err)
	}
	first, _ := c.Start()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := NewServer(HTSHA256None, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, done, err := s.Next(ctx, first); err != nil || !done {
			b.Fatal(err)
		}
	}
}
