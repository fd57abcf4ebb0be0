package mam_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// BenchmarkRouteMessage is c2s's BenchmarkRouteMessage with the archive
// on (the default) and off: alice writes chat messages to bob's full JID
// in batches of 64, bob's socket is read by a byte counter. With the
// archive on, each message is two rows (alice's and bob's archive), its
// preferences are read twice, and bob's copy gets a stanza-id; the rows
// are written by the group-commit writer while the messages flow.
func BenchmarkRouteMessage(b *testing.B) {
	b.Run("mam", func(b *testing.B) { benchRoute(b, true) })
	b.Run("nomam", func(b *testing.B) { benchRoute(b, false) })
}

func benchRoute(b *testing.B, archive bool) {
	srv := xmpptest.Start(b, func(c *config.Config) {
		if !archive {
			c.Modules.Disabled = append(c.Modules.Disabled, "mam")
		}
	})
	srv.AddUser(b, "alice", "pw")
	srv.AddUser(b, "bob", "pw")
	alice := srv.DialRaw(b)
	alice.Login("alice", "pw")
	alice.Bind("a")
	bob := srv.DialRaw(b)
	bob.Login("bob", "pw")
	bobJID := bob.Bind("b")
	_ = alice.Conn().SetDeadline(time.Time{})
	_ = bob.Conn().SetDeadline(time.Time{})

	msg := []byte(fmt.Sprintf(`<message to='%s' type='chat' id='m1'><body>Hello, how are you doing today? A typical chat line.</body>`+
		`<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>`, bobJID))
	const batch = 64
	chunk := bytes.Repeat(msg, batch)
	done := make(chan error, 1)
	go func() { done <- countMessages(bob.Conn(), b.N) }()
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
		start := max(0, keep-len(end)+1)
		for {
			i := bytes.Index(data[start:], end)
			if i < 0 {
				break
			}
			seen++
			start += i + len(end)
		}
		keep = min(len(end), len(data))
		copy(buf, data[len(data)-keep:])
	}
	return nil
}
