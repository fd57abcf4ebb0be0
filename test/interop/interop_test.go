// Package interop drives ode with real third-party XMPP software from
// Debian's packages. The peers are installed by install-peers.sh (make
// peers); a missing peer fails the test with that instruction.
package interop_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// python is Debian's interpreter, which has Debian's python3-* packages.
const python = "/usr/bin/python3"

func needSlixmpp(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		t.Fatalf("python3-slixmpp is not installed for %s (%v): run `make peers` (bash test/interop/install-peers.sh), which installs Debian's python3-slixmpp", python, err)
	}
}

type chatResult struct {
	Mech      string   `json:"mech"`
	Events    []string `json:"events"`
	Error     string   `json:"error"`
	ATLS      string   `json:"a_tls"`
	AMech     string   `json:"a_mech"`
	AJID      string   `json:"a_jid"`
	BJID      string   `json:"b_jid"`
	AReceived struct {
		From, Body string
	} `json:"a_received"`
	BReceived struct {
		From, Body string
	} `json:"b_received"`
}

// TestSlixmppChat: two slixmpp clients log in over STARTTLS and exchange
// messages both ways (one to a bare JID, one to a full JID). "default" is
// slixmpp's own negotiation: it tries each SCRAM-*-PLUS with tls-unique,
// which TLS 1.3 lacks (refused, not counted as failed logins), then
// SCRAM-SHA-512 with the "y" flag, which ode accepts unless
// strict_channel_binding is on (TestSlixmppSCRAM has the details). The
// forced SCRAM runs turn slixmpp's channel binding off, so they send "n".
func TestSlixmppChat(t *testing.T) {
	needSlixmpp(t)
	srv := xmpptest.Start(t, nil)
	alice := srv.AddUser(t, "alice", "wonderland")
	bob := srv.AddUser(t, "bob", "builder pass")
	host, port, _ := strings.Cut(srv.Addr, ":")
	for _, mech := range []string{"default", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, "slixmpp_chat.py", host, port, srv.CAFile, mech,
				alice.String(), "wonderland", bob.String(), "builder pass")
			out, err := cmd.Output()
			var res chatResult
			if jerr := json.Unmarshal(out, &res); jerr != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("slixmpp script: %v / %v\nstdout: %s\nstderr: %s", err, jerr, out, stderr)
			}
			if err != nil || res.Error != "" {
				t.Fatalf("slixmpp script failed: %v: %s\nevents: %s", err, res.Error, strings.Join(res.Events, "\n  "))
			}
			wantMech := mech
			if mech == "default" {
				wantMech = "SCRAM-SHA-512"
			}
			if res.AMech != wantMech {
				t.Errorf("mechanism = %q, want %q", res.AMech, wantMech)
			}
			if res.ATLS != "TLSv1.3" {
				t.Errorf("TLS version = %q, want TLSv1.3", res.ATLS)
			}
			if !strings.HasPrefix(res.AJID, alice.String()+"/") || !strings.HasPrefix(res.BJID, bob.String()+"/") {
				t.Errorf("bound JIDs %q, %q", res.AJID, res.BJID)
			}
			if res.BReceived.Body != "hello from a" || res.BReceived.From != res.AJID {
				t.Errorf("bob received %+v, want \"hello from a\" from %s", res.BReceived, res.AJID)
			}
			if res.AReceived.Body != "hello from b" || res.AReceived.From != res.BJID {
				t.Errorf("alice received %+v, want \"hello from b\" from %s", res.AReceived, res.BJID)
			}
		})
	}
}
