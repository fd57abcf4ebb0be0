package client_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
)

// fakeServer accepts one plaintext connection and runs a SCRAM-SHA-256
// exchange with a real sasl server, then answers with success; signed says
// whether the success carries the server signature.
func fakeServer(t *testing.T, signed bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	creds, err := sasl.NewCredentials("secret", 4096)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(_ context.Context, user string, h sasl.Hash) (sasl.Credential, error) {
		for _, c := range creds {
			if c.Hash == h && user == "juliet" {
				return c, nil
			}
		}
		return sasl.Credential{}, sasl.ErrUnknownUser
	}
	payload := regexp.MustCompile(`<(?:auth|response)[^>]*>([^<]*)</`)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		readUntil := func(end string) string {
			var b strings.Builder
			for !strings.HasSuffix(b.String(), end) {
				ch, err := r.ReadByte()
				if err != nil {
					return b.String()
				}
				b.WriteByte(ch)
			}
			return b.String()
		}
		readUntil("version='1.0'>") // stream header (after any XML declaration)
		c.Write([]byte(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='example.org' id='x' version='1.0'>` +
			`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>`))
		srv, err := sasl.NewServer("SCRAM-SHA-256", sasl.ServerConfig{Lookup: lookup})
		if err != nil {
			return
		}
		end := "</auth>"
		for {
			m := payload.FindStringSubmatch(readUntil(end))
			end = "</response>"
			if m == nil {
				return
			}
			in, _ := base64.StdEncoding.DecodeString(m[1])
			out, done, err := srv.Next(context.Background(), in)
			if err != nil {
				c.Write([]byte(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`))
				return
			}
			if done {
				if signed {
					c.Write([]byte(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>` + base64.StdEncoding.EncodeToString(out) + `</success>`))
				} else {
					c.Write([]byte(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`))
				}
				readUntil(">") // the client's restart, if any
				return
			}
			c.Write([]byte(`<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>` + base64.StdEncoding.EncodeToString(out) + `</challenge>`))
		}
	}()
	return ln.Addr().String()
}

// TestSCRAMSuccessWithoutSignature: a server that says <success/> without
// proving it knows the verifier (RFC 5802 §5.1 server-final-message) is
// not trusted.
func TestSCRAMSuccessWithoutSignature(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := client.Dial(ctx, client.Config{JID: jid.MustParse("juliet@example.org"), Password: "secret",
		Addr: fakeServer(t, false), AllowPlaintext: true})
	if err == nil || !strings.Contains(err.Error(), "without server signature") {
		t.Fatalf("Dial = %v, want an unverified-server error", err)
	}
	var ae *client.AuthError
	if errors.As(err, &ae) {
		t.Fatalf("reported as an authentication failure: %v", err)
	}
}

// TestSCRAMSuccessWithSignature: the same exchange with the signature gets
// past SASL (the fake server then hangs up on the restarted stream).
func TestSCRAMSuccessWithSignature(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := client.Dial(ctx, client.Config{JID: jid.MustParse("juliet@example.org"), Password: "secret",
		Addr: fakeServer(t, true), AllowPlaintext: true})
	if err == nil || strings.Contains(err.Error(), "sasl") {
		t.Fatalf("Dial = %v, want a failure after SASL (the fake server stops there)", err)
	}
}
