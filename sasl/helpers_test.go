package sasl

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

const (
	testUser     = "user"
	testPassword = "pencil"
)

// testCreds are the verifiers of testUser, computed once.
var testCreds = sync.OnceValue(func() map[Hash]Credential {
	cs, err := NewCredentials(testPassword, 4096)
	if err != nil {
		panic(err)
	}
	m := make(map[Hash]Credential)
	for _, c := range cs {
		m[c.Hash] = c
	}
	return m
})

// lookupFor returns a lookup that knows user with creds.
func lookupFor(user string, creds map[Hash]Credential) CredentialLookup {
	return func(_ context.Context, username string, h Hash) (Credential, error) {
		if c, ok := creds[h]; ok && username == user {
			return c, nil
		}
		return Credential{}, fmt.Errorf("test lookup %q: %w", username, ErrUnknownUser)
	}
}

// testLookup knows testUser with testPassword.
func testLookup() CredentialLookup { return lookupFor(testUser, testCreds()) }

// newCert makes a self-signed certificate for localhost with an ECDSA
// P-256 key, or an Ed25519 key.
func newCert(edwards bool) tls.Certificate {
	var pub, priv any
	if edwards {
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		pub, priv = p, k
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		pub, priv = &k.PublicKey, k
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}
}

var (
	ecdsaCert   = sync.OnceValue(func() tls.Certificate { return newCert(false) })
	ed25519Cert = sync.OnceValue(func() tls.Certificate { return newCert(true) })
)

// tlsPair is both ends of one TLS connection.
type tlsPair struct {
	client, server *tls.ConnectionState
	der            []byte // the server's leaf certificate
}

// newTLSPair runs a real TLS handshake of version over loopback TCP.
func newTLSPair(t testing.TB, version uint16, cert tls.Certificate) tlsPair {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		st  tls.ConnectionState
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer c.Close()
		s := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: version, MaxVersion: version})
		err = s.Handshake()
		ch <- result{s.ConnectionState(), err}
	}()
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: version, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	cst := c.ConnectionState()
	r := <-ch
	c.Close()
	if r.err != nil {
		t.Fatal(r.err)
	}
	if cst.Version != version || r.st.Version != version {
		t.Fatalf("negotiated %x/%x, want %x", cst.Version, r.st.Version, version)
	}
	return tlsPair{client: &cst, server: &r.st, der: cert.Certificate[0]}
}

// errRounds means an exchange did not finish.
var errRounds = errors.New("too many rounds")

// exchange runs c against s and returns the server's and the client's
// error; both nil means success verified by both sides.
func exchange(c Client, s Server) (serverErr, clientErr error) {
	ctx := context.Background()
	resp, err := c.Start()
	if err != nil {
		return nil, err
	}
	for range 5 {
		chal, done, err := s.Next(ctx, resp)
		if err != nil {
			return err, nil
		}
		if done {
			if len(chal) > 0 {
				r, err := c.Next(chal)
				if err != nil {
					return nil, err
				}
				if r != nil {
					return nil, fmt.Errorf("response %q to the success data", r)
				}
			}
			return nil, nil
		}
		if resp, err = c.Next(chal); err != nil {
			return nil, err
		}
	}
	return errRounds, nil
}

// wantFailure checks that err is a *Failure with cond.
func wantFailure(t *testing.T, err error, cond Condition) *Failure {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("got error %v, want a %s failure", err, cond)
	}
	if f.Condition != cond {
		t.Fatalf("got %v, want condition %s", err, cond)
	}
	return f
}

func mustServer(t testing.TB, mech string, cfg ServerConfig) Server {
	t.Helper()
	s, err := NewServer(mech, cfg)
	if err != nil {
		t.Fatalf("NewServer(%s): %v", mech, err)
	}
	return s
}

func mustClient(t testing.TB, mech string, cfg ClientConfig) Client {
	t.Helper()
	c, err := NewClient(mech, cfg)
	if err != nil {
		t.Fatalf("NewClient(%s): %v", mech, err)
	}
	return c
}

var allSCRAM = []string{"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"}
