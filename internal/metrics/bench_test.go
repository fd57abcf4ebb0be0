package metrics_test

import (
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/metrics"
)

// BenchmarkStanza is what the metrics add to one message routed between
// two local sessions: counted in from the sender, timed (one in 64),
// counted out to the receiver.
func BenchmarkStanza(b *testing.B) {
	var t metrics.RouteTimer
	b.ReportAllocs()
	for b.Loop() {
		metrics.C2SIn("message")
		t.Start()
		t.C2SDone("message")
		metrics.C2SOut("message")
	}
}

// BenchmarkCounter is one pre-resolved counter.
func BenchmarkCounter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		metrics.C2SOut("presence")
	}
}

// BenchmarkTimedEveryStanza is the cost the sampling avoids: the clock
// read twice and a histogram observation for every stanza.
func BenchmarkTimedEveryStanza(b *testing.B) {
	b.ReportAllocs()
	var t metrics.RouteTimer
	for b.Loop() {
		for range 64 { // one Start in 64 reads the clock
			t.Start()
			t.C2SDone("iq")
		}
	}
}

// BenchmarkClock is one time.Now and time.Since.
func BenchmarkClock(b *testing.B) {
	b.ReportAllocs()
	var d time.Duration
	for b.Loop() {
		d += time.Since(time.Now())
	}
	_ = d
}
