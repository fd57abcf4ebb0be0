package server_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/offline"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// backends are the storage configurations the benchmarks compare. Run
// them with ODE_PG_DURABLE=1, so that PostgreSQL commits as durably as
// SQLite does (fsync and synchronous_commit on).
func backends(b *testing.B) map[string]func(*config.Config) {
	c := pgtestShared(b)
	return map[string]func(*config.Config){
		"sqlite": func(*config.Config) {},
		"postgres": func(cfg *config.Config) {
			cfg.Storage.Driver = "postgres"
			cfg.Storage.Postgres.DSN = c.Schema(b)
		},
	}
}

// BenchmarkOfflineMessages measures messages stored offline: each of
// senders sessions writes its share of b.N chat messages to its own
// offline recipient, then a ping; a message is committed to storage
// before the next stanza of its stream is handled, so the last pong means
// all are stored. The archive (mam) is off, so that offline storage is
// what is measured. It reports msgs/s.
func BenchmarkOfflineMessages(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, senders := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/senders=%d", backend, senders), func(b *testing.B) {
				benchOffline(b, backends(b)[backend], senders)
			})
		}
	}
}

func benchOffline(b *testing.B, backend func(*config.Config), senders int) {
	srv := xmpptest.Start(b, func(cfg *config.Config) {
		backend(cfg)
		cfg.Modules.Disabled = []string{"mam"}
		cfg.Modules.Settings["offline"] = &offline.Config{Quota: 1 << 30}
	})
	raws := make([]*xmpptest.Raw, senders)
	for i := range raws {
		srv.AddUser(b, fmt.Sprint("s", i), "pw")
		srv.AddUser(b, fmt.Sprint("r", i), "pw")
		raws[i] = srv.DialRaw(b)
		raws[i].Login(fmt.Sprint("s", i), "pw")
		raws[i].Bind("a")
		_ = raws[i].Conn().SetDeadline(time.Time{})
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, r := range raws {
		n := b.N / senders
		if i < b.N%senders {
			n++
		}
		wg.Go(func() {
			msg := fmt.Sprintf(`<message to='r%d@%s' type='chat'><body>Hello, how are you doing today? A typical chat line.</body></message>`, i, srv.Domain)
			const batch = 64
			for sent := 0; sent < n; sent += batch {
				if _, err := r.Conn().Write(bytes.Repeat([]byte(msg), min(batch, n-sent))); err != nil {
					b.Error(err)
					return
				}
			}
			r.Send(`<iq type='get' id='done'><ping xmlns='urn:xmpp:ping'/></iq>`)
			for {
				e, err := r.NextErr()
				if err != nil {
					b.Error(err)
					return
				}
				if e.Attribute("id") == "done" {
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	total := 0
	for i := range senders {
		n, err := srv.Store().CountOffline(context.Background(), fmt.Sprint("r", i), srv.Domain)
		if err != nil {
			b.Fatal(err)
		}
		total += n
	}
	if total != b.N {
		b.Fatalf("%d messages stored, want %d", total, b.N)
	}
}

// BenchmarkLogin measures logins over STARTTLS with SCRAM (the client's
// choice, with channel binding) and resource binding, four at a time; the
// server reads the account's credentials from storage for each. Client
// and server share the machine's cores. It reports logins/s.
func BenchmarkLogin(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			srv := xmpptest.Start(b, backends(b)[backend])
			j := srv.AddUser(b, "alice", "wonderland")
			cfg := srv.ClientConfig(j, "wonderland")
			b.SetParallelism(2) // 2 × GOMAXPROCS logins at once
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					c, err := client.Dial(ctx, cfg)
					cancel()
					if err != nil {
						b.Error(err)
						return
					}
					c.Close()
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "logins/s")
		})
	}
}
