package interop_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
)

type imRoster struct {
	Items map[string]string `json:"items"`
	Ver   *string           `json:"ver"`
}

type imPush struct {
	JID          string `json:"jid"`
	Subscription string `json:"subscription"`
	Ask          string `json:"ask"`
}

type imMessage struct {
	Type          string `json:"type"`
	From          string `json:"from"`
	Body          string `json:"body"`
	DelayCount    int    `json:"delay_count"`
	DelayStamp    string `json:"delay_stamp"`
	DelayFrom     string `json:"delay_from"`
	AfterPresence bool   `json:"after_presence"`
}

type imResult struct {
	Events            []string            `json:"events"`
	Failures          []string            `json:"failures"`
	Error             string              `json:"error"`
	JIDs              map[string]string   `json:"jids"`
	LoginRoster       map[string]imRoster `json:"login_roster"`
	B2LoginRoster     imRoster            `json:"b2_login_roster"`
	Pushes            map[string][]imPush `json:"pushes"`
	SubscribeFrom     map[string][]string `json:"subscribe_from"`
	AvailableFrom     map[string][]string `json:"available_from"`
	UnavailableFrom   map[string][]string `json:"unavailable_from"`
	FinalSubscription map[string]string   `json:"final_subscription"`
	OfflineMessage    *imMessage          `json:"offline_message"`
	OfflineSentAt     string              `json:"offline_sent_at"`
	OfflineReceivedAt string              `json:"offline_received_at"`
	PingOK            bool                `json:"ping_ok"`
	PingError         string              `json:"ping_error"`
	DiscoFeatures     []string            `json:"disco_features"`
	DiscoIdentities   []string            `json:"disco_identities"`
	DiscoError        string              `json:"disco_error"`
}

// TestSlixmppIM: two slixmpp clients (default negotiation, STARTTLS) go
// through RFC 6121 with the server: mutual subscription with roster pushes
// and presence, unavailable presence when one disconnects, a message stored
// while it is offline and delivered with an XEP-0203 delay at its next
// initial presence; then XEP-0199 ping and XEP-0030 disco#info of the
// server. slixmpp_im.py describes the scenario.
func TestSlixmppIM(t *testing.T) {
	needSlixmpp(t)
	srv := xmpptest.Start(t, nil)
	alice := srv.AddUser(t, "alice", "wonderland")
	bob := srv.AddUser(t, "bob", "builder pass")
	a, b := alice.String(), bob.String()
	host, port, _ := strings.Cut(srv.Addr, ":")

	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "slixmpp_im.py", host, port, srv.CAFile, srv.Domain,
		a, "wonderland", b, "builder pass")
	out, err := cmd.Output()
	var res imResult
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

	aJID, bJID, b2JID := res.JIDs["a"], res.JIDs["b"], res.JIDs["b2"]
	if !strings.HasPrefix(aJID, a+"/") || !strings.HasPrefix(bJID, b+"/") || !strings.HasPrefix(b2JID, b+"/") {
		t.Errorf("bound JIDs a=%q b=%q b (again)=%q", aJID, bJID, b2JID)
	}

	// Login: empty rosters at first.
	for _, name := range []string{"a", "b"} {
		if r := res.LoginRoster[name]; len(r.Items) != 0 {
			t.Errorf("%s's roster at first login = %v, want empty", name, r.Items)
		}
	}

	// Subscription: both end at "both", through pushes, from bare JIDs.
	for _, c := range []struct{ name, peer string }{{"a", b}, {"b", a}} {
		if got := res.FinalSubscription[c.name]; got != "both" {
			t.Errorf("%s's roster item for %s: subscription %q, want \"both\"", c.name, c.peer, got)
		}
		var pushes []imPush
		for _, p := range res.Pushes[c.name] {
			if p.JID == c.peer {
				pushes = append(pushes, p)
			}
		}
		if len(pushes) == 0 {
			t.Errorf("%s got no roster push for %s (RFC 6121 §2.1.6, §3.1)", c.name, c.peer)
		} else if last := pushes[len(pushes)-1]; last.Subscription != "both" {
			t.Errorf("%s's last roster push for %s = %+v, want subscription \"both\"", c.name, c.peer, last)
		}
		if from := res.SubscribeFrom[c.name]; len(from) != 1 || from[0] != c.peer {
			t.Errorf("%s got subscription requests from %q, want exactly one from the bare JID %s (RFC 6121 §3.1.3)", c.name, from, c.peer)
		}
	}
	// A's first push after its outbound subscribe carries ask="subscribe".
	if ps := res.Pushes["a"]; len(ps) == 0 || ps[0].JID != b || ps[0].Subscription != "none" || ps[0].Ask != "subscribe" {
		t.Errorf("a's first roster push = %+v, want %s with subscription none, ask subscribe (RFC 6121 §3.1.2)", first(ps), b)
	}

	// Presence: each saw the other available; a saw b go unavailable.
	// Each session is implicitly subscribed to its own presence (RFC 6121 §4.2.2).
	for name, full := range map[string]string{"a": aJID, "b": bJID, "b2": b2JID} {
		if !slices.Contains(res.AvailableFrom[name], full) {
			t.Errorf("%s saw available presence from %q, not its own initial presence as %s (RFC 6121 §4.2.2)", name, res.AvailableFrom[name], full)
		}
	}
	if !slices.Contains(res.AvailableFrom["a"], bJID) {
		t.Errorf("a saw available presence from %q, want it from %s", res.AvailableFrom["a"], bJID)
	}
	if !slices.Contains(res.AvailableFrom["b"], aJID) {
		t.Errorf("b saw available presence from %q, want it from %s", res.AvailableFrom["b"], aJID)
	}
	if !slices.Contains(res.UnavailableFrom["a"], bJID) {
		t.Errorf("a saw unavailable presence from %q, want it from %s after b disconnected (RFC 6121 §4.5.2)", res.UnavailableFrom["a"], bJID)
	}
	if !slices.Contains(res.AvailableFrom["a"], b2JID) {
		t.Errorf("a saw available presence from %q, want it from b's new session %s", res.AvailableFrom["a"], b2JID)
	}
	if !slices.Contains(res.AvailableFrom["b2"], aJID) {
		t.Errorf("b's new session saw available presence from %q, want it from %s (presence probe, RFC 6121 §4.3)", res.AvailableFrom["b2"], aJID)
	}
	if got := res.B2LoginRoster.Items[a]; got != "both" {
		t.Errorf("b's roster at its second login = %v, want %s with subscription both", res.B2LoginRoster.Items, a)
	}

	// Offline message with a delay.
	switch m := res.OfflineMessage; {
	case m == nil:
		t.Errorf("b did not get the offline message \"while you were away\"")
	default:
		if m.Body != "while you were away" || m.Type != "chat" || !strings.HasPrefix(m.From, a+"/") {
			t.Errorf("offline message = %+v, want chat \"while you were away\" from %s/...", m, a)
		}
		if !m.AfterPresence {
			t.Errorf("offline message arrived before b's initial presence (RFC 6121 §8.5.2.1.1: at the next initial presence)")
		}
		if m.DelayCount != 1 {
			t.Errorf("offline message has %d <delay xmlns='urn:xmpp:delay'/> elements, want 1 (XEP-0160, XEP-0203)", m.DelayCount)
		}
		stamp, perr := time.Parse(time.RFC3339Nano, m.DelayStamp)
		switch {
		case perr != nil:
			t.Errorf("delay stamp %q: %v (XEP-0082 date-time)", m.DelayStamp, perr)
		case stamp.Before(start.Add(-time.Second).Truncate(time.Second)) || stamp.After(time.Now().Add(time.Second)):
			t.Errorf("delay stamp %s is outside the test's run %s..now", stamp, start.UTC())
		}
		if m.DelayStamp != "" && !strings.HasSuffix(m.DelayStamp, "Z") {
			t.Errorf("delay stamp %q is not in UTC (XEP-0203 §3: MUST be UTC, \"Z\")", m.DelayStamp)
		}
		if m.DelayFrom != srv.Domain {
			t.Errorf("delay from = %q, want the server %q (XEP-0160 §5)", m.DelayFrom, srv.Domain)
		}
	}

	// Ping and disco.
	if !res.PingOK {
		t.Errorf("ping of %s failed: %s", srv.Domain, res.PingError)
	}
	switch {
	case res.DiscoError != "":
		t.Errorf("disco#info of %s failed: %s (is the disco module registered?)", srv.Domain, res.DiscoError)
	case !slices.Contains(res.DiscoFeatures, "urn:xmpp:ping"):
		t.Errorf("disco#info of %s lists features %q, without urn:xmpp:ping", srv.Domain, res.DiscoFeatures)
	}

	if err != nil && !t.Failed() {
		t.Errorf("slixmpp script: %v; its failures: %q", err, res.Failures)
	}
}

func first(ps []imPush) any {
	if len(ps) == 0 {
		return "none"
	}
	return ps[0]
}
