package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// slixmppPeer is one slixmpp the tests run with Debian's interpreter.
type slixmppPeer struct {
	// version is what slixmpp.__version__ must say.
	version string
	// path is the PYTHONPATH that loads it, relative to test/interop; ""
	// is the system package.
	path string
	// from says where install-peers.sh gets it.
	from string
}

var (
	// slixmppDebian is Debian 12's python3-slixmpp, the system package.
	slixmppDebian = slixmppPeer{version: "1.8.3", from: "Debian 12's python3-slixmpp, installed as the system package"}
	// slixmppBackports is bookworm-backports' python3-slixmpp, unpacked
	// (not installed) by install-peers.sh.
	slixmppBackports = slixmppPeer{
		version: "1.10.0",
		path:    ".peers/slixmpp-1.10/usr/lib/python3/dist-packages",
		from:    "bookworm-backports' python3-slixmpp, unpacked into test/interop/.peers/slixmpp-1.10",
	}
)

// command runs python with args and this slixmpp on its path.
func (p slixmppPeer) command(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	path := ""
	if p.path != "" {
		abs, err := filepath.Abs(p.path)
		if err != nil {
			t.Fatal(err)
		}
		path = abs
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Env = append(cmd.Environ(), "PYTHONPATH="+path)
	return cmd
}

// scenario runs cmd, a scenario script that command made, and decodes
// the JSON object it prints (harness.py) into res. It logs the script's events and stops
// the test when the script could not run, printed no result, or reports
// that a step failed.
func (slixmppPeer) scenario(t *testing.T, cmd *exec.Cmd, res any) {
	t.Helper()
	out, err := cmd.Output()
	var common struct {
		Version string   `json:"version"`
		Events  []string `json:"events"`
		Error   string   `json:"error"`
	}
	jerr := json.Unmarshal(out, res)
	if jerr == nil {
		jerr = json.Unmarshal(out, &common)
	}
	if jerr != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("slixmpp script: %v / %v\nstdout: %s\nstderr: %s", err, jerr, out, stderr)
	}
	t.Logf("slixmpp %s events:\n  %s", common.Version, strings.Join(common.Events, "\n  "))
	if common.Error != "" || err != nil {
		t.Fatalf("slixmpp scenario stopped: %s (exit: %v)", common.Error, err)
	}
}

// need fails the test, saying how to install it, unless this slixmpp
// is the one python loads.
func (p slixmppPeer) need(t *testing.T) {
	t.Helper()
	out, err := p.command(t.Context(), t, "-c", "import slixmpp; print(slixmpp.__version__)").CombinedOutput()
	version := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(version, '\n'); i >= 0 {
		version = version[i+1:] // after slixmpp's notes about its slow stringprep
	}
	got := "slixmpp " + version
	if err != nil {
		got = fmt.Sprintf("no slixmpp (%v: %s)", err, out)
	}
	if err != nil || version != p.version {
		t.Fatalf("slixmpp %s (%s) is missing: %s with PYTHONPATH=%q loads %s\nrun `make peers` (bash test/interop/install-peers.sh)",
			p.version, p.from, python, p.path, got)
	}
}

// saslAttempt is one <auth/> slixmpp sent: the mechanism, SCRAM's GS2
// channel-binding flag, "success" or the failure's condition, and the
// failure's text.
type saslAttempt struct {
	Mech    string `json:"mech"`
	GS2     string `json:"gs2"`
	Outcome string `json:"outcome"`
	Text    string `json:"text"`
}

// String is "mechanism [GS2 flag]: outcome", what the tests compare.
func (a saslAttempt) String() string {
	if a.GS2 == "" {
		return a.Mech + ": " + a.Outcome
	}
	return a.Mech + " " + a.GS2 + ": " + a.Outcome
}

type loginResult struct {
	Version  string        `json:"version"`
	Module   string        `json:"module"`
	Python   string        `json:"python"`
	Attempts []saslAttempt `json:"attempts"`
	MechUsed string        `json:"mech_used"`
	TLS      string        `json:"tls"`
	JID      string        `json:"jid"`
	Events   []string      `json:"events"`
	Error    string        `json:"error"`
}

// login runs slixmpp_login.py: one client logs in with mech ("default" for
// slixmpp's own choice).
func (p slixmppPeer) login(t *testing.T, srv *xmpptest.Server, mech, user, password string) loginResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	host, port, _ := strings.Cut(srv.Addr, ":")
	cmd := p.command(ctx, t, "slixmpp_login.py", host, port, srv.CAFile, mech, user, password)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("slixmpp_login.py's stderr:\n%s", stderr.String())
		}
	})
	var res loginResult
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		t.Fatalf("slixmpp_login.py: %v / %v\nstdout: %s", err, jerr, out)
	}
	t.Logf("slixmpp %s (%s, Python %s)", res.Version, res.Module, res.Python)
	for _, a := range res.Attempts {
		if a.Text != "" {
			t.Logf("  sent %s (%s)", a, a.Text)
		} else {
			t.Logf("  sent %s", a)
		}
	}
	if res.Version != p.version {
		t.Fatalf("the script loaded slixmpp %s from %s, want %s (%s): run `make peers`", res.Version, res.Module, p.version, p.from)
	}
	if err != nil || res.Error != "" {
		t.Fatalf("slixmpp did not log in: %v: %s\nattempts: %+v\nevents:\n  %s", err, res.Error, res.Attempts, strings.Join(res.Events, "\n  "))
	}
	return res
}

// TestSlixmppSCRAM: slixmpp 1.8.3 (Debian 12) and 1.10.0 (bookworm-backports)
// log in over STARTTLS (TLS 1.3) with SCRAM, both with their defaults and
// with sasl_mech="SCRAM-SHA-1", checked on both sides: the <auth/>s the
// client sent and what the server logged.
//
// Neither can bind a channel on TLS 1.3: Python 3.11's ssl knows only
// tls-unique, which TLS 1.3 does not define. By default both first try
// each -PLUS mechanism the server offers, best first, and are refused
// without that counting as a failed login: 1.8.3 asks for tls-unique
// anyway (the server binds only tls-exporter and tls-server-end-point),
// 1.10.0 sends "n" (no binding) on them. Then 1.8.3 sends SCRAM-SHA-512
// with "y" (it could bind, it thinks the server cannot), which ode accepts
// unless strict_channel_binding is on; 1.10.0 sends "n" there too.
//
// With strict_channel_binding (RFC 5802 §6's downgrade rule) 1.8.3 is
// refused "y" on every non-PLUS SCRAM as well (again not counted) and logs
// in with PLAIN, its last choice; 1.10.0, sending "n", still gets SCRAM.
// That is 7 <auth/>s on one stream: were the refusals counted,
// max_auth_failures (3) would end it at the third.
//
// Each case has its own server, whose Info-level log (ODE_TEST_LOG) the
// test reads through serverLog.
func TestSlixmppSCRAM(t *testing.T) {
	// Info-level server logs, which say which mechanism authenticated.
	t.Setenv("ODE_TEST_LOG", "1")
	// <auth/>s as saslAttempt.String shows them. Each -PLUS mechanism
	// the server offers, best first, refused:
	plusTLSUnique := []string{ // asking for tls-unique (slixmpp 1.8.3),
		"SCRAM-SHA-512-PLUS p=tls-unique: not-authorized",
		"SCRAM-SHA-256-PLUS p=tls-unique: not-authorized",
		"SCRAM-SHA-1-PLUS p=tls-unique: not-authorized",
	}
	plusNoBinding := []string{ // or with no binding (1.10.0).
		"SCRAM-SHA-512-PLUS n: malformed-request",
		"SCRAM-SHA-256-PLUS n: malformed-request",
		"SCRAM-SHA-1-PLUS n: malformed-request",
	}
	// With strict_channel_binding: every non-PLUS SCRAM with "y", refused.
	scramYStrict := []string{
		"SCRAM-SHA-512 y: not-authorized",
		"SCRAM-SHA-256 y: not-authorized",
		"SCRAM-SHA-1 y: not-authorized",
	}
	then := func(refused []string, more ...string) []string {
		return append(append([]string(nil), refused...), more...)
	}
	for _, tc := range []struct {
		name   string
		peer   slixmppPeer
		mech   string   // "default", or the sasl_mech to force
		strict bool     // [c2s] strict_channel_binding
		want   []string // the <auth/>s sent; the last one succeeds
	}{
		{"1.8.3/default", slixmppDebian, "default", false,
			then(plusTLSUnique, "SCRAM-SHA-512 y: success")},
		{"1.8.3/SCRAM-SHA-1", slixmppDebian, "SCRAM-SHA-1", false,
			[]string{"SCRAM-SHA-1 y: success"}},
		{"1.8.3/default/strict", slixmppDebian, "default", true,
			then(then(plusTLSUnique, scramYStrict...), "PLAIN: success")},
		{"1.10.0/default", slixmppBackports, "default", false,
			then(plusNoBinding, "SCRAM-SHA-512 n: success")},
		{"1.10.0/SCRAM-SHA-1", slixmppBackports, "SCRAM-SHA-1", false,
			[]string{"SCRAM-SHA-1 n: success"}},
		{"1.10.0/default/strict", slixmppBackports, "default", true,
			then(plusNoBinding, "SCRAM-SHA-512 n: success")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.peer.need(t)
			logs := &serverLog{TB: t}
			srv := xmpptest.Start(logs, func(cfg *config.Config) {
				cfg.C2S.StrictChannelBinding = tc.strict
			})
			defer func() {
				if t.Failed() {
					t.Logf("server log:\n%s", strings.Join(logs.lines(), "\n"))
				}
			}()
			alice := srv.AddUser(t, "alice", "wonderland")
			res := tc.peer.login(t, srv, tc.mech, alice.String(), "wonderland")

			// The client's side.
			var sent []string
			for _, a := range res.Attempts {
				sent = append(sent, a.String())
			}
			if d := cmp.Diff(tc.want, sent); d != "" {
				t.Errorf("<auth/>s sent (-want +got):\n%s", d)
			}
			used := mechOf(tc.want[len(tc.want)-1])
			if res.MechUsed != used {
				t.Errorf("slixmpp logged in with %q, want %q", res.MechUsed, used)
			}
			if !tc.strict && !strings.HasPrefix(res.MechUsed, "SCRAM-") {
				t.Errorf("slixmpp logged in with %q, want a SCRAM mechanism", res.MechUsed)
			}
			if res.TLS != "TLSv1.3" {
				t.Errorf("TLS version = %q, want TLSv1.3", res.TLS)
			}
			if !strings.HasPrefix(res.JID, alice.String()+"/") {
				t.Errorf("bound JID %q, want %s/…", res.JID, alice)
			}

			// The server's side: it logged the login once, with that
			// mechanism, and every refusal as a negotiation failure
			// ("sasl channel binding not negotiated"), not as a failed
			// login ("sasl failure").
			var authed, refused []string
			for _, r := range logs.records() {
				switch r["msg"] {
				case "authenticated":
					authed = append(authed, r["jid"]+" "+r["mechanism"])
				case "sasl channel binding not negotiated":
					refused = append(refused, r["mechanism"])
					t.Logf("server refused %s: %s", r["mechanism"], r["why"])
				case "sasl failure":
					t.Errorf("server counted a failed login: %s %s: %s", r["mechanism"], r["condition"], r["why"])
				}
				if r["level"] == "ERROR" {
					t.Errorf("server error: %s", r["line"])
				}
			}
			if d := cmp.Diff([]string{alice.String() + " " + used}, authed); d != "" {
				t.Errorf("server's \"authenticated\" lines (-want +got):\n%s", d)
			}
			var wantRefused []string
			for _, a := range tc.want[:len(tc.want)-1] {
				wantRefused = append(wantRefused, mechOf(a))
			}
			if d := cmp.Diff(wantRefused, refused); d != "" {
				t.Errorf("server's refusals (-want +got):\n%s", d)
			}
		})
	}
}

// mechOf is the mechanism of a saslAttempt.String.
func mechOf(attempt string) string {
	m, _, _ := strings.Cut(attempt, ":")
	m, _, _ = strings.Cut(m, " ")
	return m
}

// serverLog is the testing.TB given to xmpptest.Start: it keeps the lines
// the server logs (xmpptest writes them with Log) for the test to read.
type serverLog struct {
	testing.TB
	mu  sync.Mutex
	buf []string
}

func (l *serverLog) Log(args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, strings.TrimSuffix(fmt.Sprint(args...), "\n"))
}

func (l *serverLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.buf...)
}

// slogAttr is one key=value of log/slog's text format; quoted values are
// Go strings.
var slogAttr = regexp.MustCompile(`([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// records parses the lines into their attributes, plus "line", the line.
func (l *serverLog) records() []map[string]string {
	var out []map[string]string
	for _, line := range l.lines() {
		r := map[string]string{"line": line}
		for _, m := range slogAttr.FindAllStringSubmatch(line, -1) {
			v := m[2]
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
			r[m[1]] = v
		}
		out = append(out, r)
	}
	return out
}
