package interop_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

type federationMessage struct {
	Type string `json:"type"`
	From string `json:"from"`
	Body string `json:"body"`
}

type federationResult struct {
	Events            []string                       `json:"events"`
	Failures          []string                       `json:"failures"`
	Error             string                         `json:"error"`
	JIDs              map[string]string              `json:"jids"`
	SubscribeFrom     map[string][]string            `json:"subscribe_from"`
	AvailableFrom     map[string][]string            `json:"available_from"`
	FinalSubscription map[string]string              `json:"final_subscription"`
	Messages          map[string][]federationMessage `json:"messages"`
	Pings             map[string]string              `json:"pings"`
}

// TestProsodyFederation federates ode (ode.test) with Prosody
// (prosody.test, Debian's package) on loopback, in both directions: alice
// on ode and bob on Prosody, two slixmpp clients, subscribe to each other,
// see each other's presence, exchange messages and ping each other's
// server and each other (slixmpp_federation.py).
//
// ode finds Prosody through s2s.hosts; Prosody finds ode through DNS, as it
// would on the Internet: an SRV record and an A record served by the test's
// own DNS server (xmpptest.DNS), which is the only one Prosody asks.
//
// "certificates": one test CA signs both servers' certificates and both
// trust it; Prosody has s2s_secure_auth and neither server allows dialback,
// so each stream is authenticated with SASL EXTERNAL (XEP-0178).
// "dialback": each server's certificate is from a CA the other does not
// trust, so neither offers SASL EXTERNAL and both use dialback (XEP-0220):
// Prosody asks ode's listener, found again through DNS, to verify the key
// ode sent, and ode asks Prosody's.
// "direct TLS": as "certificates", but ode publishes only its direct TLS
// listener (_xmpps-server._tcp, XEP-0368), so Prosody's streams to ode
// start with TLS.
func TestProsodyFederation(t *testing.T) {
	needSlixmpp(t)
	needProsody(t)
	for _, tc := range []struct {
		name      string
		sameCA    bool // one CA for both, which both trust; else each its own
		dialback  bool // allowed on both sides; otherwise s2s_secure_auth
		directTLS bool // ode publishes its direct TLS listener, not STARTTLS
	}{
		{"certificates", true, false, false},
		{"dialback", false, true, false},
		{"direct TLS", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prosodyCA, odeCA := newCA(t), newCA(t)
			if tc.sameCA {
				odeCA = prosodyCA
			}
			dns := xmpptest.StartDNS(t)
			p := newProsody(t, prosodyOptions{Domain: "prosody.test", CA: prosodyCA, DNS: dns.Addr,
				SecureAuth: !tc.dialback, Dialback: tc.dialback})
			srv := xmpptest.StartWithCA(t, odeCA, func(c *config.Config) {
				c.Server.Domains = []string{"ode.test"}
				c.S2S.Dialback = tc.dialback
				if tc.sameCA {
					c.S2S.CAFile = p.CAFile
				}
				c.S2S.Hosts = map[string]string{p.Domain: p.S2SAddr}
				if tc.directTLS {
					c.S2S.DirectTLS = []string{"127.0.0.1:0"}
				}
			})
			service, addr := "xmpp-server", srv.S2SAddr
			if tc.directTLS {
				_, dt := srv.S2SAddrs()
				service, addr = "xmpps-server", dt[0].String()
			}
			s2sAddr, err := netip.ParseAddrPort(addr)
			if err != nil {
				t.Fatalf("ode's s2s listener %q: %v", addr, err)
			}
			publishService(dns, service, srv.Domain, s2sAddr)
			alice := srv.AddUser(t, "alice", "wonderland").String()
			bob := p.AddUser(t, "bob", "builder pass")
			p.Start(t)

			res := runFederation(t, srv, p, alice, "wonderland", bob, "builder pass")
			checkFederation(t, res, alice, bob)
			if q := "SRV _" + service + "._tcp.ode.test. -> 0 0"; !slices.ContainsFunc(dns.Queries(), func(s string) bool { return strings.HasPrefix(s, q) }) {
				t.Errorf("Prosody did not get the answer %s…: it did not find ode through DNS", q)
			}
		})
	}
}

func newCA(t *testing.T) *xmpptest.CA {
	t.Helper()
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// runFederation runs slixmpp_federation.py with a on ode and b on Prosody.
func runFederation(t *testing.T, srv *xmpptest.Server, p *prosodyPeer, a, aPass, b, bPass string) federationResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	odeHost, odePort, _ := strings.Cut(srv.Addr, ":")
	pHost, pPort, _ := strings.Cut(p.C2SAddr, ":")
	cmd := exec.CommandContext(ctx, python, "slixmpp_federation.py",
		odeHost, odePort, srv.CAFile, a, aPass, pHost, pPort, p.CAFile, b, bPass)
	out, err := cmd.Output()
	var res federationResult
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("slixmpp script: %v / %v\nstdout: %s\nstderr: %s", err, jerr, out, stderr)
	}
	t.Logf("slixmpp events:\n  %s", strings.Join(res.Events, "\n  "))
	if res.Error != "" {
		t.Fatalf("slixmpp scenario stopped: %s (exit: %v; other failures: %q)", res.Error, err, res.Failures)
	}
	if err != nil {
		t.Errorf("slixmpp script: %v; its failures: %q", err, res.Failures)
	}
	return res
}

func checkFederation(t *testing.T, res federationResult, a, b string) {
	t.Helper()
	aJID, bJID := res.JIDs["a"], res.JIDs["b"]
	if !strings.HasPrefix(aJID, a+"/") || !strings.HasPrefix(bJID, b+"/") {
		t.Errorf("bound JIDs a=%q b=%q, want %s/… and %s/…", aJID, bJID, a, b)
	}
	for _, c := range []struct{ name, peer, peerFull string }{{"a", b, bJID}, {"b", a, aJID}} {
		if got := res.FinalSubscription[c.name]; got != "both" {
			t.Errorf("%s's roster item for %s: subscription %q, want \"both\"", c.name, c.peer, got)
		}
		if from := res.SubscribeFrom[c.name]; len(from) != 1 || from[0] != c.peer {
			t.Errorf("%s got subscription requests from %q, want exactly one from the bare JID %s (RFC 6121 §3.1.3)", c.name, from, c.peer)
		}
		if !slices.Contains(res.AvailableFrom[c.name], c.peerFull) {
			t.Errorf("%s saw available presence from %q, want it from %s", c.name, res.AvailableFrom[c.name], c.peerFull)
		}
	}
	for _, c := range []struct{ to, from, body string }{
		{"b", aJID, "hello from a, across servers"},
		{"a", bJID, "hello from b, across servers"},
	} {
		want := federationMessage{Type: "chat", From: c.from, Body: c.body}
		if !slices.Contains(res.Messages[c.to], want) {
			t.Errorf("%s got messages %+v, want %+v", c.to, res.Messages[c.to], want)
		}
	}
	for _, key := range []string{"a_to_server_b", "b_to_server_a", "a_to_b", "b_to_a"} {
		if got := res.Pings[key]; got != "result" {
			t.Errorf("ping %s: %q, want a result (XEP-0199)", key, got)
		}
	}
}
