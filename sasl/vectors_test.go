package sasl

import (
	"context"
	"encoding/base64"
	"testing"
)

// scramVector is an exchange from an RFC.
type scramVector struct {
	mech                     string
	salt                     string // base64
	clientNonce, serverNonce string
	clientFirst, serverFirst string
	clientFinal, serverFinal string
}

var scramVectors = []scramVector{{
	// RFC 5802 §5.
	mech:        "SCRAM-SHA-1",
	salt:        "QSXCR+Q6sek8bf92",
	clientNonce: "fyko+d2lbbFgONRv9qkxdawL",
	serverNonce: "3rfcNHYJY1ZVvWVs7j",
	clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
	serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
	clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
}, {
	// RFC 7677 §3.
	mech:        "SCRAM-SHA-256",
	salt:        "W22ZaJ0SNY7soEsUEjb6gQ==",
	clientNonce: "rOprNGfwEbeRWgbNEkqO",
	serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
	clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
	serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
}}

// vectorCredential derives the verifier the vector's server holds.
func vectorCredential(t testing.TB, v scramVector) Credential {
	t.Helper()
	h, _, _ := parseSCRAMName(v.mech)
	salt, err := base64.StdEncoding.DecodeString(v.salt)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCredential(testPassword, h, salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSCRAMVectorsServer(t *testing.T) {
	for _, v := range scramVectors {
		t.Run(v.mech, func(t *testing.T) {
			cred := vectorCredential(t, v)
			s := mustServer(t, v.mech, ServerConfig{Lookup: lookupFor("user", map[Hash]Credential{cred.Hash: cred})})
			s.(*scramServer).nonce = v.serverNonce
			ctx := context.Background()
			got, done, err := s.Next(ctx, []byte(v.clientFirst))
			if err != nil || done || string(got) != v.serverFirst {
				t.Fatalf("server-first: %q, %v, %v; want %q", got, done, err, v.serverFirst)
			}
			got, done, err = s.Next(ctx, []byte(v.clientFinal))
			if err != nil || !done || string(got) != v.serverFinal {
				t.Fatalf("server-final: %q, %v, %v; want %q", got, done, err, v.serverFinal)
			}
			if s.Username() != "user" || s.AuthzID() != "" {
				t.Errorf("username %q authzid %q", s.Username(), s.AuthzID())
			}
		})
	}
}

func TestSCRAMVectorsClient(t *testing.T) {
	for _, v := range scramVectors {
		t.Run(v.mech, func(t *testing.T) {
			c := mustClient(t, v.mech, ClientConfig{Username: "user", Password: testPassword})
			c.(*scramClient).nonce = v.clientNonce
			got, err := c.Start()
			if err != nil || string(got) != v.clientFirst {
				t.Fatalf("client-first: %q, %v; want %q", got, err, v.clientFirst)
			}
			got, err = c.Next([]byte(v.serverFirst))
			if err != nil || string(got) != v.clientFinal {
				t.Fatalf("client-final: %q, %v; want %q", got, err, v.clientFinal)
			}
			got, err = c.Next([]byte(v.serverFinal))
			if err != nil || got != nil {
				t.Fatalf("server-final: %q, %v", got, err)
			}
			if _, err := c.Next(nil); err == nil {
				t.Error("Next after the end succeeded")
			}
		})
	}
}

// TestSCRAMVectorsTamperedSignature checks that the client rejects a
// server-final-message with a wrong signature.
func TestSCRAMVectorsTamperedSignature(t *testing.T) {
	v := scramVectors[0]
	c := mustClient(t, v.mech, ClientConfig{Username: "user", Password: testPassword})
	c.(*scramClient).nonce = v.clientNonce
	if _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next([]byte(v.serverFirst)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next([]byte("v=smF9pqV8S7suAoZWja4dJRkFsKQ=")); err == nil {
		t.Fatal("wrong server signature accepted")
	}
}
