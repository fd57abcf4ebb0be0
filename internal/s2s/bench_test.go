package s2s_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
)

// BenchmarkFederatedMessage measures chat messages from a client of a.test
// to a client of b.test through one s2s stream (SASL EXTERNAL), both
// servers in this process on loopback TLS: c2s read, route, s2s write and
// read, route, c2s write. Allocations count both servers and both clients.
func BenchmarkFederatedMessage(b *testing.B) {
	ca := newCA(b)
	big := func(c *config.Config) { c.S2S.QueueBytes = 256 << 20; c.C2S.OutboundQueueBytes = 256 << 20 }
	a, bs := pair(b, ca, ca, big, big)
	alice := a.Dial(b, a.AddUser(b, "alice", "pw"), "pw")
	bob := bs.Dial(b, bs.AddUser(b, "bob", "pw"), "pw")
	if _, err := alice.IQ(context.Background(), ping("b.test")); err != nil { // set the stream up
		b.Fatal(err)
	}
	msg := []byte(fmt.Sprintf(`<message to='%s' type='chat'><body>Hello, how are you doing today? A typical chat line.</body></message>`, bob.JID()))
	const batch = 64
	chunk := bytes.Repeat(msg, batch)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() {
		for sent := 0; sent < b.N; sent += batch {
			p := chunk
			if b.N-sent < batch {
				p = chunk[:len(msg)*(b.N-sent)]
			}
			if err := alice.SendRaw(p); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for got := 0; got < b.N; {
		e, err := bob.Recv(ctx)
		if err != nil {
			b.Fatalf("after %d messages: %v", got, err)
		}
		if e.Name.Local == "message" {
			got++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
