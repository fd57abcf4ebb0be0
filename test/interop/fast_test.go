package interop_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
)

type xmppjsFASTResult struct {
	Events        []string `json:"events"`
	Error         string   `json:"error"`
	First, Second struct {
		Mech           string `json:"mech"`
		RequestToken   string `json:"request_token"`
		FAST           bool   `json:"fast"`
		JID            string `json:"jid"`
		Token          bool   `json:"token"`
		TokenMechanism string `json:"token_mechanism"`
	}
}

// TestWebXMPPJSFAST: @xmpp/client 0.14 logs in with SASL2 and Bind2 and
// its password, gets a FAST token (XEP-0484: it asks for one with
// <request-token/> when the server offers FAST), then logs in again with
// the token and a wrong password, over WebSocket and over TCP (STARTTLS).
func TestWebXMPPJSFAST(t *testing.T) {
	needNodeModules(t)
	srv := xmpptest.Start(t, nil)
	alice := srv.AddUser(t, "alice", "wonderland")
	_, httpPort, _ := strings.Cut(srv.HTTPAddr, ":")
	_, tcpPort, _ := strings.Cut(srv.Addr, ":")
	for _, service := range []string{"wss://localhost:" + httpPort + "/xmpp-websocket", "xmpp://localhost:" + tcpPort} {
		t.Run(strings.SplitN(service, ":", 2)[0], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
			defer cancel()
			node := startNode(t, ctx, []string{"NODE_EXTRA_CA_CERTS=" + srv.CAFile},
				"--experimental-websocket", "--no-warnings", "xmppjs_fast.mjs", service, srv.Domain, alice.Local(), "wonderland")
			var line string
			for l := range node.lines {
				line = l
			}
			<-node.done
			var res xmppjsFASTResult
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatalf("xmpp.js script: %v / %v\nstdout: %s\nstderr: %s", node.err, err, line, node.stderr.String())
			}
			t.Logf("xmpp.js:\n  %s", strings.Join(res.Events, "\n  "))
			if res.Error != "" || node.err != nil {
				t.Fatalf("xmpp.js script failed: %v: %s\nstderr: %s", node.err, res.Error, node.stderr.String())
			}
			f, s := res.First, res.Second
			if f.Mech != "SCRAM-SHA-1" || f.RequestToken != "HT-SHA-256-NONE" || !f.Token || !strings.HasPrefix(f.JID, "alice@localhost/xmppjs/") {
				t.Errorf("password login: %+v, want SCRAM-SHA-1 asking for and getting an HT-SHA-256-NONE token, bound with Bind2", f)
			}
			if s.Mech != "HT-SHA-256-NONE" || !s.FAST || !strings.HasPrefix(s.JID, "alice@localhost/xmppjs/") {
				t.Errorf("token login: %+v, want HT-SHA-256-NONE with <fast/>, bound", s)
			}
		})
	}
}
