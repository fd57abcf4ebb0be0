package sqlite_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/bench"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/storagetest"
)

func TestArchive(t *testing.T) { storagetest.TestArchive(t, openTemp) }

// archiveRows is the size of the archive BenchmarkQueryArchive queries.
const archiveRows = 1_000_000

// BenchmarkQueryArchive queries the latest 50 messages (RSM <before/>) of
// one account whose archive holds archiveRows messages, alongside 10
// other accounts' archives of 1,000 each, with and without a 'with'
// filter; it reports the p50 and p99 of the query times and the database
// bytes per archived message.
func BenchmarkQueryArchive(b *testing.B) {
	path := filepath.Join(b.TempDir(), "ode.db")
	s := open(b, path)
	ctx := b.Context()
	for _, local := range []string{"alice", "o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9"} {
		if err := s.CreateAccount(ctx, local, "example.org", nil); err != nil {
			b.Fatal(err)
		}
	}
	fileBefore := dbBytes(b, path)
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
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	perMessage := float64(dbBytes(b, path)-fileBefore) / float64(archiveRows+10000)
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

// reportCPU reports the process's CPU time (user and system) since
// start, per operation of b.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((bench.SelfCPU()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

func dbBytes(b *testing.B, path string) int64 {
	b.Helper()
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// BenchmarkQueryArchiveShared queries the latest 50 messages of one of
// 1,000 accounts whose archives share one table, filled in time order
// (each account's rows scattered among the others', as a server writes
// them): 1,000 rows each by default, 10,000 each (10 million rows, a few
// minutes to fill) with ODE_BENCH_LARGE=1.
func BenchmarkQueryArchiveShared(b *testing.B) {
	const users = 1000
	perUser := 1000
	if os.Getenv("ODE_BENCH_LARGE") == "1" {
		perUser = 10_000
	}
	path := filepath.Join(b.TempDir(), "ode.db")
	s := open(b, path)
	ctx := b.Context()
	for u := range users {
		if err := s.CreateAccount(ctx, fmt.Sprintf("u%d", u), "example.org", nil); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
	total := users * perUser
	batch := make([]storage.ArchivedMessage, 0, 5000)
	t0 := time.Now()
	for i := range total {
		local := fmt.Sprintf("u%d", i%users)
		with := fmt.Sprintf("u%d@example.org", (i*7+1)%users)
		batch = append(batch, storage.ArchivedMessage{
			Local: local, Domain: "example.org", ID: fmt.Sprintf("%026d", i),
			With: with, WithResource: "phone", Stamp: start.Add(time.Duration(i) * time.Millisecond), Outgoing: i%2 == 1,
			Stanza: fmt.Appendf(nil, `<message xmlns="jabber:client" from="%s/phone" to="%s@example.org/laptop" type="chat" id="a1b2c3d4-%d">`+
				`<body>Hello, how are you doing today? A typical chat line, message %d.</body></message>`, with, local, i, i),
		})
		if len(batch) == cap(batch) || i == total-1 {
			if _, err := s.AppendArchive(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.Logf("appended %d rows for %d accounts in %v (%.0f rows/s)", total, users, time.Since(t0), float64(total)/time.Since(t0).Seconds())
	b.Run("latest50", func(b *testing.B) {
		var times []time.Duration
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			local := fmt.Sprintf("u%d", (n*389)%users) // a different account each time: cold pages too
			n++
			t := time.Now()
			p, err := s.QueryArchive(ctx, local, "example.org", storage.ArchiveQuery{Max: 50, Last: true})
			times = append(times, time.Since(t))
			if err != nil || len(p.Messages) != 50 {
				b.Fatalf("%d messages, %v", len(p.Messages), err)
			}
		}
		slices.Sort(times)
		b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
	})
}

// BenchmarkAppendArchive appends batches of messages spread over 1,000
// accounts, as the mam writer does under load (each message in the
// sender's and the receiver's archive), in batches of 1,024 and of
// 16,384 rows (the writer's largest); it reports the cost per row, also
// as the process's CPU time (cpu-µs/op: steadier than the wall time when
// other work shares the cores). Each
// account talks to one other (pairs=fixed, the benchmark before
// 2026-12-02) or to anyone (pairs=random, as under ode bench chat: rows
// land all over archive_by_with).
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
	path := filepath.Join(b.TempDir(), "ode.db")
	s := open(b, path)
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
	cpu := bench.SelfCPU()
	defer func() { reportCPU(b, cpu) }()
	for i := range b.N {
		batch = append(batch, storagetest.ArchiveTraffic(i, accounts, random, start))
		if len(batch) == cap(batch) || i == b.N-1 {
			if _, err := s.AppendArchive(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}
