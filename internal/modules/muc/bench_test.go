package muc_test

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/muc"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// BenchmarkRoomFanout: one room of n occupants (real sessions over
// loopback TLS), one of them writing groupchat messages in batches of
// 16; every occupant's socket is read by a byte counter. It reports the
// cost per delivered copy (ns and allocations per recipient), the time
// the last occupant's entry took, and the server's heap per occupant.
func BenchmarkRoomFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchFanout(b, n) })
	}
}

func benchFanout(b *testing.B, n int) {
	srv := xmpptest.Start(b, func(c *config.Config) {
		cfg := *muc.Info.Config.(*muc.Config)
		cfg.MessagesPerSecond = 1e9
		c.Modules.Settings["muc"] = &cfg
		c.C2S.OutboundQueueBytes = 4 << 20
	})
	var m0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	raws := make([]*xmpptest.Raw, n)
	var lastJoin time.Duration
	for i := range n {
		local := fmt.Sprintf("u%d", i)
		srv.AddUser(b, local, "pw")
		r := srv.DialRaw(b)
		r.Login(local, "pw")
		r.Bind("r")
		t0 := time.Now()
		r.Send(fmt.Sprintf(`<presence to='%s/%s'/>`, room, local)) // no MUC <x/>: an instant room
		// Read up to the subject: every occupant's presence, then ours.
		for {
			e := r.Next()
			if e.Name.Local == "message" {
				break
			}
		}
		if i == n-1 {
			lastJoin = time.Since(t0)
		}
		raws[i] = r
	}
	for _, r := range raws {
		_ = r.Conn().SetDeadline(time.Time{})
	}
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	msg := []byte(`<message to='` + room + `' type='groupchat'><body>Hello, how are you doing today? A typical chat line.</body></message>`)
	const batch = 16
	chunk := bytes.Repeat(msg, batch)
	marker := fmt.Sprintf(`<message to='%s' type='groupchat'><body>start</body></message>`, room)
	raws[0].Send(marker)
	// Every reader first skips to the marker's end, so that nothing
	// but the measured messages follows.
	ready := make(chan error, n)
	for _, r := range raws {
		go func() { ready <- skipTo(r, []byte("<body>start</body>")) }()
	}
	for range n {
		if err := <-ready; err != nil {
			b.Fatal(err)
		}
	}
	done := make(chan error, n)
	for _, r := range raws {
		go func() { done <- xmpptest.CountMessages(r.Conn(), b.N, false) }()
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; sent += batch {
		p := chunk
		if b.N-sent < batch {
			p = chunk[:len(msg)*(b.N-sent)]
		}
		if _, err := raws[0].Conn().Write(p); err != nil {
			b.Fatal(err)
		}
	}
	for range n {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	copies := float64(b.N) * float64(n)
	b.ReportMetric(float64(elapsed.Nanoseconds())/copies, "ns/copy")
	b.ReportMetric(copies/elapsed.Seconds(), "copies/s")
	b.ReportMetric(float64(lastJoin.Microseconds())/1000, "last-join-ms")
	b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/float64(n)/1024, "heap-KiB/occupant")
}

// skipTo reads r's connection until pat has been seen, and the end of
// the message holding it.
func skipTo(r *xmpptest.Raw, pat []byte) error {
	buf := make([]byte, 0, 1<<20)
	tmp := make([]byte, 64<<10)
	for {
		k, err := r.Conn().Read(tmp)
		if err != nil {
			return err
		}
		buf = append(buf, tmp[:k]...)
		if i := bytes.Index(buf, pat); i >= 0 && bytes.Contains(buf[i:], []byte("</message>")) {
			return nil // the marker is the last thing sent before the measure
		}
		if len(buf) > 512<<10 {
			buf = append(buf[:0], buf[len(buf)-64:]...)
		}
	}
}
