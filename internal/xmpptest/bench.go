package xmpptest

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"
)

// BenchRouteMessages is the routing benchmark of c2s and the modules
// that sit on the message path: it creates alice and bob on srv, logs
// both in over STARTTLS (with stream management and resumption when sm
// is set, bob answering every <r/>), and measures b.N chat messages that
// alice writes, pre-encoded in batches of 64, to bob's full JID while
// bob's socket is read by a byte counter, so that the allocations are
// the server's. It reports msgs/s.
func BenchRouteMessages(b *testing.B, srv *Server, sm bool) {
	b.Helper()
	srv.AddUser(b, "alice", "pw")
	srv.AddUser(b, "bob", "pw")
	alice := srv.DialRaw(b)
	alice.Login("alice", "pw")
	alice.Bind("a")
	bob := srv.DialRaw(b)
	bob.Login("bob", "pw")
	bobJID := bob.Bind("b")
	if sm {
		for _, r := range []*Raw{alice, bob} {
			r.Send(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`)
			r.Expect("urn:xmpp:sm:3", "enabled")
		}
	}
	_ = alice.Conn().SetDeadline(time.Time{})
	_ = bob.Conn().SetDeadline(time.Time{})

	msg := []byte(fmt.Sprintf(`<message to='%s' type='chat' id='m1'><body>Hello, how are you doing today? A typical chat line.</body>`+
		`<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>`, bobJID))
	const batch = 64
	chunk := bytes.Repeat(msg, batch)

	done := make(chan error, 1)
	go func() { done <- CountMessages(bob.Conn(), b.N, sm) }()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; sent += batch {
		p := chunk
		if b.N-sent < batch {
			p = chunk[:len(msg)*(b.N-sent)]
		}
		if _, err := alice.Conn().Write(p); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// CountMessages reads r until it has seen n closing message tags; with
// ack it answers each <r/> of stream management with <a h/>.
func CountMessages(r io.ReadWriter, n int, ack bool) error {
	end := []byte("</message>")
	req := []byte("<r xmlns='urn:xmpp:sm:3'/>")
	const tail = 32 // longer than either pattern
	buf := make([]byte, 64<<10)
	keep := 0
	for seen := 0; seen < n; {
		m, err := r.Read(buf[keep:])
		if err != nil {
			return fmt.Errorf("after %d messages: %w", seen, err)
		}
		data := buf[:keep+m]
		// Count the patterns that end in the new bytes: the kept tail
		// was searched before.
		seen += countEndingAfter(data, end, keep)
		if ack && countEndingAfter(data, req, keep) > 0 {
			if _, err := fmt.Fprintf(r, "<a xmlns='urn:xmpp:sm:3' h='%d'/>", seen); err != nil {
				return err
			}
		}
		keep = min(tail, len(data))
		copy(buf, data[len(data)-keep:])
	}
	return nil
}

// countEndingAfter counts the occurrences of pat in data that end after
// offset from.
func countEndingAfter(data, pat []byte, from int) int {
	n := 0
	start := max(0, from-len(pat)+1)
	for {
		i := bytes.Index(data[start:], pat)
		if i < 0 {
			return n
		}
		n++
		start += i + len(pat)
	}
}
