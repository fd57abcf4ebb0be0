package httpd_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ode-xmpp/ode/sasl"
)

// TestWebSocketTLSResumption: a WebSocket client that keeps its TLS
// session tickets resumes the HTTPS session on its next connections, and
// SCRAM-SHA-256-PLUS with tls-server-end-point works on the resumed
// session, also after the server's certificate was replaced: the ticket
// carries the certificate of the session's first handshake, which is the
// one the client holds and binds to (the server's current one would fail
// the binding). A new session gets the new certificate.
func TestWebSocketTLSResumption(t *testing.T) {
	srv := startHTTP(t, nil)
	srv.AddUser(t, "romeo", "juliet!")
	cfg := srv.TLSConfig()
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	login := func(t *testing.T, wantResumed bool) *tls.ConnectionState {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, "wss://"+srv.HTTPAddr+"/xmpp-websocket", &websocket.DialOptions{
			Subprotocols: []string{"xmpp"},
			HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}},
		})
		if err != nil {
			t.Fatalf("websocket dial: %v", err)
		}
		defer c.CloseNow()
		st := resp.TLS
		if st == nil || st.DidResume != wantResumed {
			t.Fatalf("TLS state %v: want resumed %v", st, wantResumed)
		}
		w := &wsClient{t: t, srv: srv, c: c}
		if f := w.open(); !strings.Contains(f.String(), "SCRAM-SHA-256-PLUS") {
			t.Fatalf("no SCRAM-SHA-256-PLUS offered: %s", f)
		}
		sc, err := sasl.NewClient("SCRAM-SHA-256-PLUS", sasl.ClientConfig{Username: "romeo", Password: "juliet!",
			TLS: st, ChannelBinding: "tls-server-end-point"})
		if err != nil {
			t.Fatal(err)
		}
		first, err := sc.Start()
		if err != nil {
			t.Fatal(err)
		}
		w.send(`<auth xmlns='` + nsSASL + `' mechanism='SCRAM-SHA-256-PLUS'>` + base64.StdEncoding.EncodeToString(first) + `</auth>`)
		for {
			e := w.next()
			data, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Text()))
			switch e.Name.Local {
			case "challenge":
				resp, err := sc.Next(data)
				if err != nil {
					t.Fatal(err)
				}
				w.send(`<response xmlns='` + nsSASL + `'>` + base64.StdEncoding.EncodeToString(resp) + `</response>`)
				continue
			case "success":
				if _, err := sc.Next(data); err != nil {
					t.Fatalf("server not verified: %v", err)
				}
			default:
				t.Fatalf("SCRAM-SHA-256-PLUS with tls-server-end-point (resumed %v): %s", st.DidResume, e)
			}
			break
		}
		w.send(`<close xmlns='` + nsFraming + `'/>`)
		return st
	}
	first := login(t, false)
	old := first.PeerCertificates[0].Raw
	login(t, true)

	srv.ReplaceCertificate(t)
	if st := login(t, true); !bytes.Equal(st.PeerCertificates[0].Raw, old) {
		t.Fatal("the resumed session's certificate is not its first handshake's")
	}
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	if st := login(t, false); bytes.Equal(st.PeerCertificates[0].Raw, old) {
		t.Fatal("a new session got the old certificate")
	}
	login(t, true)
}
