package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/sasl"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSASL2AndFAST: against ode, the client logs in with SASL2 and Bind2
// (the server picks the resource, Software its prefix), gets a FAST
// token, logs in with it without the password, and falls back to the
// password once a password change invalidated the token.
func TestSASL2AndFAST(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	u := srv.AddUser(t, "juliet", "r0m3o!")
	cfg := srv.ClientConfig(u, "r0m3o!")
	cfg.Software = "ode-test"
	cfg.UserAgentID = "0b3f1c52-6d8e-4a1b-9c2d-3e4f5a6b7c8d"
	cfg.RequestFASTToken = true
	c, err := client.Dial(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.JID().Resource(); !strings.HasPrefix(r, "ode-test/") {
		t.Errorf("Bind2 resource %q, want ode-test/…", r)
	}
	tok := c.FASTToken()
	if tok == nil || tok.Mechanism != sasl.HTSHA256Expr || time.Until(tok.Expiry) < 20*24*time.Hour {
		t.Fatalf("token %+v, want HT-SHA-256-EXPR for 21 days", tok)
	}
	c.Close()

	// The token instead of the password.
	fast := cfg
	fast.Password, fast.RequestFASTToken, fast.FASTToken = "", false, tok
	c, err = client.Dial(ctxT(t), fast)
	if err != nil {
		t.Fatalf("FAST login: %v", err)
	}
	if c.FASTRefused() || c.FASTToken() != nil {
		t.Errorf("FAST login: refused %v, new token %+v", c.FASTRefused(), c.FASTToken())
	}
	c.Close()

	// A password change invalidates it: without a password the login
	// fails with credentials-expired; with one the client falls back.
	cs, err := sasl.NewCredentials("n3w!", 0)
	if err != nil {
		t.Fatal(err)
	}
	var creds []storage.Credential
	for _, x := range cs {
		creds = append(creds, storage.Credential{Hash: string(x.Hash), Salt: x.Salt, Iterations: x.Iterations, StoredKey: x.StoredKey, ServerKey: x.ServerKey})
	}
	if err := srv.Store().SetCredentials(t.Context(), u.Local(), u.DomainString(), creds); err != nil {
		t.Fatal(err)
	}
	_, err = client.Dial(ctxT(t), fast)
	var ae *client.AuthError
	if !errors.As(err, &ae) || ae.Condition != sasl.CredentialsExpired {
		t.Fatalf("FAST login after a password change: %v, want credentials-expired", err)
	}
	fast.Password = "n3w!"
	c, err = client.Dial(ctxT(t), fast)
	if err != nil {
		t.Fatal(err)
	}
	if !c.FASTRefused() {
		t.Error("FASTRefused is false after a fallback to the password")
	}
	c.Close()
}

// TestSASL2Resource: a resource in the JID is bound with an IQ after
// SASL2 success; NoSASL2 keeps RFC 6120 SASL.
func TestSASL2Resource(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	u := srv.AddUser(t, "juliet", "r0m3o!")
	for _, noSASL2 := range []bool{false, true} {
		full, err := u.WithResource("balcony")
		if err != nil {
			t.Fatal(err)
		}
		cfg := srv.ClientConfig(full, "r0m3o!")
		cfg.NoSASL2 = noSASL2
		c, err := client.Dial(ctxT(t), cfg)
		if err != nil {
			t.Fatalf("NoSASL2=%v: %v", noSASL2, err)
		}
		if c.JID().Resource() != "balcony" {
			t.Errorf("NoSASL2=%v: bound %s", noSASL2, c.JID())
		}
		c.Close()
	}
}

// TestFASTWithTLSResumption: a client that keeps a TLS session cache
// beside its FAST token reconnects with both, as a phone does: the TLS
// session resumes (TLS 1.3 over STARTTLS and direct TLS, TLS 1.2) and
// the token's channel binding (-EXPR on TLS 1.3, -ENDP on TLS 1.2) holds
// on the resumed session.
func TestFASTWithTLSResumption(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	u := srv.AddUser(t, "juliet", "r0m3o!")
	for _, tc := range []struct {
		name    string
		version uint16
		direct  bool
		mech    string
	}{
		{"TLS1.3", tls.VersionTLS13, false, sasl.HTSHA256Expr},
		{"TLS1.3 direct", tls.VersionTLS13, true, sasl.HTSHA256Expr},
		{"TLS1.2", tls.VersionTLS12, false, sasl.HTSHA256Endp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := srv.ClientConfig(u, "r0m3o!")
			cfg.TLS.MaxVersion = tc.version
			if tc.direct {
				cfg.Addr, cfg.DirectTLS = srv.DirectAddr, true
			}
			cfg.UserAgentID = "7a1d2e3f-4b5c-4d6e-8f70-" + fmt.Sprintf("%012d", tc.version)
			cfg.TLSSessionCache = tls.NewLRUClientSessionCache(1)
			cfg.RequestFASTToken = true
			c, err := client.Dial(ctxT(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			tok := c.FASTToken()
			if c.TLSState().DidResume || tok == nil || tok.Mechanism != tc.mech {
				t.Fatalf("password login: resumed %v, token %+v, want a new session and %s", c.TLSState().DidResume, tok, tc.mech)
			}
			c.Close()
			fast := cfg
			fast.Password, fast.RequestFASTToken, fast.FASTToken = "", false, tok
			for i := range 2 {
				c, err = client.Dial(ctxT(t), fast)
				if err != nil {
					t.Fatalf("reconnect %d: %v", i, err)
				}
				if st := c.TLSState(); !st.DidResume || st.Version != tc.version {
					t.Errorf("reconnect %d: resumed %v, version %x", i, st.DidResume, st.Version)
				}
				c.Close()
			}
		})
	}
}
