package c2s_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// BenchmarkRouteMessage measures messages routed between two authenticated
// sessions over loopback TLS. The sender writes pre-encoded stanzas and the
// receiver only counts bytes, so the allocations are the server's: read,
// parse, stamp 'from', route, serialise, write.
func BenchmarkRouteMessage(b *testing.B) {
	srv := xmpptest.Start(b, nil)
	srv.AddUser(b, "alice", "pw")
	srv.AddUser(b, "bob", "pw")
	alice := dialRaw(b, srv)
	alice.login("alice", "pw")
	alice.bind("a")
	bob := dialRaw(b, srv)
	bob.login("bob", "pw")
	bobJID := bob.bind("b")
	_ = alice.conn.SetDeadline(time.Time{})
	_ = bob.conn.SetDeadline(time.Time{})

	msg := []byte(fmt.Sprintf(`<message to='%s' type='chat' id='m1'><body>Hello, how are you doing today? A typical chat line.</body>`+
		`<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>`, bobJID))
	const batch = 64
	chunk := bytes.Repeat(msg, batch)

	done := make(chan error, 1)
	go func() { done <- countMessages(bob.conn, b.N) }()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; sent += batch {
		p := chunk
		if b.N-sent < batch {
			p = chunk[:len(msg)*(b.N-sent)]
		}
		if _, err := alice.conn.Write(p); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// countMessages reads until it has seen n closing message tags.
func countMessages(r io.Reader, n int) error {
	end := []byte("</message>")
	buf := make([]byte, 64<<10)
	keep := 0
	for seen := 0; seen < n; {
		m, err := r.Read(buf[keep:])
		if err != nil {
			return fmt.Errorf("after %d messages: %w", seen, err)
		}
		data := buf[:keep+m]
		seen += bytes.Count(data, end)
		// Keep a tail that might hold the start of a split tag.
		keep = min(len(end)-1, len(data))
		if i := bytes.LastIndex(data, end); i >= 0 && len(data)-(i+len(end)) < keep {
			keep = len(data) - (i + len(end))
		}
		copy(buf, data[len(data)-keep:])
	}
	return nil
}
