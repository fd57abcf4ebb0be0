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

// BenchmarkRouteTimer64 is 64 stanzas through the sampling timer, one
// of which reads the clock and is observed.
func BenchmarkRouteTimer64(b *testing.B) {
	b.ReportAllocs()
	var t metrics.RouteTimer
	for b.Loop() {
		for range 64 {
			t.Start()
			t.C2SDone("iq")
		}
	}
}

// BenchmarkClock is one time.Now and time.Since: what timing every
// stanza would add twice over, before the histogram.
func BenchmarkClock(b *testing.B) {
	b.ReportAllocs()
	var d time.Duration
	for b.Loop() {
		d += time.Since(time.Now())
	}
	_ = d
}
