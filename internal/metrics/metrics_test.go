package metrics_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/metrics"
)

// value returns the sum of the series name with labels (k=v pairs)
// among its labels, and whether there is one, from a scrape of Handler.
func value(t *testing.T, name string, labels ...string) (float64, bool) {
	t.Helper()
	w := httptest.NewRecorder()
	metrics.Handler(nil).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("scrape: %d %s", w.Code, w.Body)
	}
	return parse(t, w.Body.String()).get(name, labels...)
}

func TestTransportOf(t *testing.T) {
	for _, tt := range []struct {
		kind   string
		direct bool
		want   string
	}{{"", false, "tcp"}, {"", true, "tls"}, {"websocket", false, "websocket"}, {"bosh", false, "bosh"}} {
		if got := metrics.TransportOf(tt.kind, tt.direct).String(); got != tt.want {
			t.Errorf("TransportOf(%q, %v) = %s, want %s", tt.kind, tt.direct, got, tt.want)
		}
	}
}

// TestLoginLabels checks that what a client names cannot add series:
// unknown mechanisms and conditions are "other".
func TestLoginLabels(t *testing.T) {
	metrics.LoginFailed(metrics.SASL2, "X-EVIL-"+strings.Repeat("A", 100), "bogus-condition")
	metrics.LoginFailed(metrics.SASL, "", "invalid-mechanism")
	metrics.Login(metrics.SASL2, "HT-SHA-256-NONE")
	for _, c := range [][]string{
		{"ode_c2s_login_failures_total", "profile=sasl2", "mechanism=other", "reason=other"},
		{"ode_c2s_login_failures_total", "profile=sasl", "mechanism=none", "reason=invalid-mechanism"},
		{"ode_c2s_logins_total", "profile=sasl2", "mechanism=HT-SHA-256-NONE"},
	} {
		if v, ok := value(t, c[0], c[1:]...); !ok || v < 1 {
			t.Errorf("%v = %v, %v; want at least 1", c, v, ok)
		}
	}
	if _, ok := value(t, "ode_c2s_login_failures_total", "profile=sasl2", "mechanism=X-EVIL-"+strings.Repeat("A", 100), "reason=other"); ok {
		t.Error("a client's mechanism name became a label value")
	}
}

// TestStanzaKinds checks the pre-resolved counters and that nonzas are
// not stanzas.
func TestStanzaKinds(t *testing.T) {
	before, _ := value(t, "ode_stanzas_total", "stream=s2s", "direction=out", "kind=presence")
	metrics.S2SOut("presence")
	metrics.S2SOut("r") // XEP-0198's <r/>: not counted
	after, _ := value(t, "ode_stanzas_total", "stream=s2s", "direction=out", "kind=presence")
	if after-before != 1 {
		t.Errorf("presence counted %v times, want 1", after-before)
	}
	if _, ok := value(t, "ode_stanzas_total", "stream=s2s", "direction=out", "kind=r"); ok {
		t.Error("a nonza was counted as a stanza kind")
	}
}

// TestRouteSampling checks that one stanza in 64 is timed, the first
// one included.
func TestRouteSampling(t *testing.T) {
	before, _ := value(t, "ode_route_duration_seconds_count", "stream=s2s", "kind=iq")
	var rt metrics.RouteTimer
	for range 129 {
		rt.Start()
		rt.S2SDone("iq")
	}
	after, _ := value(t, "ode_route_duration_seconds_count", "stream=s2s", "kind=iq")
	if after-before != 3 { // stanzas 1, 65 and 129
		t.Errorf("%v of 129 stanzas timed, want 3", after-before)
	}
}

func TestS2SStates(t *testing.T) {
	get := func(dir, state string) float64 {
		v, _ := value(t, "ode_s2s_streams", "direction="+dir, "state="+state)
		return v
	}
	c0, e0 := get("out", "connecting"), get("out", "established")
	metrics.S2SStream(metrics.Out, metrics.S2SNone, metrics.S2SConnecting)
	if get("out", "connecting") != c0+1 {
		t.Fatal("a new stream is not connecting")
	}
	metrics.S2SStream(metrics.Out, metrics.S2SConnecting, metrics.S2SEstablished)
	if get("out", "connecting") != c0 || get("out", "established") != e0+1 {
		t.Fatal("an established stream is not counted as such")
	}
	metrics.S2SStream(metrics.Out, metrics.S2SEstablished, metrics.S2SNone)
	if get("out", "connecting") != c0 || get("out", "established") != e0 {
		t.Fatal("a closed stream is still counted")
	}
	if _, ok := value(t, "ode_s2s_streams", "direction=out", "state="); ok {
		t.Error("a series for no state")
	}
}

func TestOverflowNames(t *testing.T) {
	for q, name := range map[metrics.Queue]string{metrics.C2SQueue: "c2s", metrics.C2SUnacked: "c2s_unacked",
		metrics.C2SStalled: "c2s_stalled", metrics.S2SQueue: "s2s", metrics.ArchiveQueue: "mam"} {
		before, _ := value(t, "ode_queue_overflows_total", "queue="+name)
		metrics.Overflow(q)
		if after, _ := value(t, "ode_queue_overflows_total", "queue="+name); after != before+1 {
			t.Errorf("Overflow(%s) did not count", name)
		}
	}
}
