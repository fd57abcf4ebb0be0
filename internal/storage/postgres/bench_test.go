package postgres_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/bench"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/postgres"
	"github.com/ode-xmpp/ode/internal/storage/postgres/pgtest"
	"github.com/ode-xmpp/ode/internal/storage/storagetest"
)

// BenchmarkStoreOffline stores offline messages for one account, one
// call at a time (as one sender's stream does) and from many goroutines
// to as many accounts (as many senders do; commits then share the WAL's
// flushes). Run with ODE_PG_DURABLE=1 for the figures of a server that
// commits durably.
func BenchmarkStoreOffline(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		b.Run(fmt.Sprint("parallel=", parallel), func(b *testing.B) {
			s := open(b, pgtest.Shared(b).Schema(b), postgres.Options{})
			ctx := b.Context()
			for i := range 64 {
				if err := s.CreateAccount(ctx, fmt.Sprint("u", i), "example.org", nil); err != nil {
					b.Fatal(err)
				}
			}
			m := storage.OfflineMessage{Stanza: []byte(`<message to='u@example.org' type='chat'><body>Hello, how are you doing today?</body></message>`), Stamp: time.Now()}
			b.ReportAllocs()
			if !parallel {
				for b.Loop() {
					if err := s.StoreOffline(ctx, "u0", "example.org", m, 1<<30); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.SetParallelism(8)
			next := make(chan int, 64)
			for i := range 64 {
				next <- i
			}
			b.RunParallel(func(pb *testing.PB) {
				u := fmt.Sprint("u", <-next)
				for pb.Next() {
					if err := s.StoreOffline(ctx, u, "example.org", m, 1<<30); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// archiveRows is the size of the archive BenchmarkQueryArchive queries.
const archiveRows = 1_000_000

// BenchmarkQueryArchive is sqlite's BenchmarkQueryArchive on PostgreSQL:
// the latest 50 messages (RSM <before/>) of one account whose archive
// holds archiveRows messages, alongside 10 other accounts' archives of
// 1,000 each, with and without a 'with' filter, and a page after an id;
// it reports the p50 and p99 of the query times and the table's and its
// indexes' bytes per archived message.
func BenchmarkQueryArchive(b *testing.B) {
	dsn := pgtest.Shared(b).Schema(b)
	s := open(b, dsn, postgres.Options{})
	ctx := b.Context()
	for _, local := range []string{"alice", "o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9"} {
		if err := s.CreateAccount(ctx, local, "example.org", nil); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
	fill := func(local string, n int) {
		batch := make([]storage.ArchivedMessage, 0, 5000)
		for i := range n {
			with := fmt.Sprintf("contact%d@example.com", i%20)
			batch = append(batch, storage.ArchivedMessage{
				Local: local, Domain: "example.org", ID: fmt.Sprintf("%026d", i),
				With: with, WithResource: "phone", Stamp: start.Add(time.Duration(i) * time.Second), Outgoing: i%2 == 1,
				Stanza: fmt.Appendf(nil, `<message xmlns="jabber:client" from="%s/phone" to="%s@example.org/laptop" type="chat" id="a1b2c3d4-%d">`+
					`<body>Hello, how are you doing today? A typical chat line, message %d.</body>`+
					`<stanza-id xmlns="urn:xmpp:sid:0" by="%s@example.org" id="%026d"/></message>`, with, local, i, i, local, i),
			})
			if len(batch) == cap(batch) || i == n-1 {
				if _, err := s.AppendArchive(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	t0 := time.Now()
	fill("alice", archiveRows)
	for i := range 10 {
		fill(fmt.Sprintf("o%d", i), 1000)
	}
	b.Logf("appended %d rows in %v (%.0f rows/s)", archiveRows+10000, time.Since(t0), float64(archiveRows+10000)/time.Since(t0).Seconds())
	if _, err := s.Pool().Exec(ctx, `VACUUM ANALYZE archive`); err != nil {
		b.Fatal(err)
	}
	var size int64
	if err := s.Pool().QueryRow(ctx, `SELECT pg_total_relation_size('archive')`).Scan(&size); err != nil {
		b.Fatal(err)
	}
	perMessage := float64(size) / float64(archiveRows+10000)
	for _, q := range []struct {
		name string
		q    storage.ArchiveQuery
	}{
		{"latest50", storage.ArchiveQuery{Max: 50, Last: true}},
		{"latest50with", storage.ArchiveQuery{Max: 50, Last: true, With: "contact7@example.com"}},
		{"after", storage.ArchiveQuery{Max: 50, AfterID: fmt.Sprintf("%026d", archiveRows/2)}},
	} {
		b.Run(q.name, func(b *testing.B) {
			var times []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				t := time.Now()
				p, err := s.QueryArchive(ctx, "alice", "example.org", q.q)
				times = append(times, time.Since(t))
				if err != nil || len(p.Messages) != 50 {
					b.Fatalf("%d messages, %v", len(p.Messages), err)
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(perMessage, "db-bytes/msg")
		})
	}
}

// BenchmarkAppendArchive is sqlite's BenchmarkAppendArchive on
// PostgreSQL: one operation is one archived row, in batches of 1,024 and
// 16,384 (the mam writer's largest group commit) spread over 1,000
// accounts, each row's other party fixed or random. Besides the wall time
// it reports the CPU time of the PostgreSQL server's processes per row
// (pg-cpu-µs/op) and of this process (cpu-µs/op).
func BenchmarkAppendArchive(b *testing.B) {
	for _, size := range []int{1024, 16384} {
		for _, random := range []bool{false, true} {
			b.Run(fmt.Sprintf("batch=%d/pairs=%s", size, map[bool]string{false: "fixed", true: "random"}[random]), func(b *testing.B) {
				benchmarkAppendArchive(b, size, random)
			})
		}
	}
}

func benchmarkAppendArchive(b *testing.B, size int, random bool) {
	cluster := pgtest.Shared(b)
	s := open(b, cluster.Schema(b), postgres.Options{})
	ctx := b.Context()
	const accounts = 1000
	for i := range accounts {
		if err := s.CreateAccount(ctx, fmt.Sprint("u", i), "example.org", nil); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
	batch := make([]storage.ArchivedMessage, 0, size)
	b.ReportAllocs()
	b.ResetTimer()
	self := bench.SelfCPU()
	server, err := cluster.CPU()
	if err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		batch = append(batch, storagetest.ArchiveTraffic(i, accounts, random, start))
		if len(batch) == cap(batch) || i == b.N-1 {
			if got, err := s.AppendArchive(ctx, batch); err != nil || got != len(batch) {
				b.Fatalf("AppendArchive = %d of %d, %v", got, len(batch), err)
			}
			batch = batch[:0]
		}
	}
	b.StopTimer()
	after, err := cluster.CPU()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((after-server).Microseconds())/float64(b.N), "pg-cpu-µs/op")
	b.ReportMetric(float64((bench.SelfCPU()-self).Microseconds())/float64(b.N), "cpu-µs/op")
}
