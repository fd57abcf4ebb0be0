package httpd_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ode-xmpp/ode/internal/config"
)

// BenchmarkRouteMessageWebSocket is c2s's BenchmarkRouteMessage over
// WebSocket (RFC 7395): alice sends chat messages, one per WebSocket
// message, to bob's full JID, and bob only counts his messages, so the
// work measured is the server's: read a frame, parse, stamp 'from',
// route, serialise, declare the namespaces, write a frame.
func BenchmarkRouteMessageWebSocket(b *testing.B) {
	// As c2s's benchmark: every module but the archive (measured by mam).
	srv := startHTTP(b, func(c *config.Config) { c.Modules.Disabled = append(c.Modules.Disabled, "mam") })
	alice := newWS(b, srv)
	alice.login("alice", "pw")
	alice.bind("a")
	bob := newWS(b, srv)
	bob.login("bob", "pw")
	bobJID := bob.bind("b")
	msg := []byte(fmt.Sprintf(`<message xmlns='jabber:client' to='%s' type='chat' id='m1'><body>Hello, how are you doing today? A typical chat line.</body>`+
		`<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>`, bobJID))

	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for seen := 0; seen < b.N; {
			_, p, err := bob.c.Read(ctx)
			if err != nil {
				done <- fmt.Errorf("after %d messages: %w", seen, err)
				return
			}
			if bytes.HasPrefix(p, []byte("<message")) {
				seen++
			}
		}
		done <- nil
	}()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := time.Now()
	ctx := context.Background()
	for range b.N {
		if err := alice.c.Write(ctx, websocket.MessageText, msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
