package pep_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// BenchmarkPublishFanout: alice has 500 contacts online (real sessions
// over loopback TLS, each subscribed to her presence, their clients of 5
// kinds whose caps want the node's notifications); she publishes b.N
// items (a 200-byte payload, pipelined 16 at a time) and every contact's
// socket is read by a byte counter. It reports the cost per notification
// (ns, allocations of the whole process), publishes per second, and the
// caps cache's hit rate after the contacts' login storm.
func BenchmarkPublishFanout(b *testing.B) {
	const n = 500
	f := startFanout(b, n, 0)
	alice, conns, node, stats := f.alice, f.conns, f.node, f.stats
	_ = alice.Conn().SetDeadline(time.Time{})
	go func() { _, _ = io.Copy(io.Discard, alice.Conn()) }() // the publish results
	payload := `<entry xmlns='urn:example'>A status of about two hundred bytes, as a mood, a tune or a device list carries: ` +
		`the quick brown fox jumps over the lazy dog, twice over.</entry>`
	done := make(chan error, n)
	for _, c := range conns {
		go func() { done <- xmpptest.CountMessages(c, b.N, false) }()
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	const batch = 16
	for sent := 0; sent < b.N; {
		var chunk []byte
		for k := 0; k < batch && sent < b.N; k++ {
			chunk = fmt.Appendf(chunk, `<iq type='set' id='p%d'><pubsub xmlns='%s'><publish node='%s'><item id='current'>%s</item></publish></pubsub></iq>`,
				sent, pep.NSPubSub, node, payload)
			sent++
		}
		if _, err := alice.Conn().Write(chunk); err != nil {
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
	runtime.ReadMemStats(&m1)
	copies := float64(b.N) * n
	b.ReportMetric(float64(elapsed.Nanoseconds())/copies, "ns/notification")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/copies, "allocs/notification")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/copies, "B/notification")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "publishes/s")
	b.ReportMetric(100*float64(stats.Hits)/float64(stats.Hits+stats.Misses), "caps-hit-%")
	b.ReportMetric(float64(stats.Queries), "caps-queries")
}

// fanout is alice with her contacts online, for the benchmarks.
type fanout struct {
	alice *xmpptest.Raw
	raws  []*xmpptest.Raw // the contacts
	conns []io.ReadWriter // their connections
	node  string
	stats pep.CapsStats // the caps cache after every login
}

// startFanout logs in alice (without presence: she receives no
// presence and no notifications), n contacts with a presence
// subscription both ways and then others users who are not her contacts,
// every one of them sending presence with the caps of one of 5 client
// kinds whose features include the node's +notify, answering the caps
// queries the server sends to the first client of each kind.
func startFanout(b *testing.B, n, others int) fanout {
	const kinds = 5
	srv := xmpptest.Start(b, func(c *config.Config) { c.C2S.OutboundQueueBytes = 4 << 20 })
	ctx := context.Background()
	srv.AddUser(b, "alice", "pw")
	node := "urn:example:bench"
	total := n + others
	accounts := make([]storage.NewAccount, 0, total)
	for i := range total {
		accounts = append(accounts, storage.NewAccount{Local: fmt.Sprintf("c%d", i), Domain: srv.Domain})
	}
	if _, err := srv.Store().CreateAccounts(ctx, accounts); err != nil {
		b.Fatal(err)
	}
	// Accounts without credentials cannot log in: give them passwords.
	for i := range total {
		if err := srv.Store().DeleteAccount(ctx, fmt.Sprintf("c%d", i), srv.Domain); err != nil {
			b.Fatal(err)
		}
		srv.AddUser(b, fmt.Sprintf("c%d", i), "pw")
		if i >= n {
			continue
		}
		contact := fmt.Sprintf("c%d@%s", i, srv.Domain)
		for _, p := range [][2]string{{"alice", contact}, {fmt.Sprintf("c%d", i), "alice@" + srv.Domain}} {
			if _, err := srv.Store().PutRosterItem(ctx, p[0], srv.Domain, storage.RosterItem{Contact: p[1], Subscription: storage.SubBoth}, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	alice := srv.DialRaw(b)
	alice.Login("alice", "pw")
	ownerJID := alice.Bind("bench")
	m := srv.Module("pep").(*pep.Module)
	f := fanout{alice: alice, node: node}
	for i := range total {
		r := srv.DialRaw(b)
		r.Login(fmt.Sprintf("c%d", i), "pw")
		r.Bind("r")
		features := []string{stanza.NSDiscoInfo, node + "+notify", fmt.Sprintf("urn:example:kind%d", i%kinds)}
		q := xmlstream.NewElement(stanza.NSDiscoInfo, "query")
		for _, f := range features {
			q.Append(xmlstream.NewElement(stanza.NSDiscoInfo, "feature").SetAttr("var", f))
		}
		ver, _ := pep.CapsHash("sha-1", q)
		r.Send(`<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='bench' ver='` + ver + `'/></presence>`)
		// Read up to our own presence, answering a caps query (the first
		// client of each kind gets one, from alice's account and from
		// its own).
		for own := false; !own || (i < kinds && len(m.Interested(ownerJID.Bare(), node)) <= i); {
			_ = r.Conn().SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			e, err := r.NextErr()
			if err != nil {
				continue // the caps answer is still being checked
			}
			switch {
			case e.Name.Local == "presence":
				own = true
			case e.Name.Local == "iq" && stanza.Type(e) == stanza.IQGet:
				q.SetAttr("node", e.Child(stanza.NSDiscoInfo, "query").Attribute("node"))
				r.Send(`<iq type='result' id='` + e.Attribute("id") + `' to='` + e.Attribute("from") + `'>` + string(q.AppendXML(nil, stanza.NSClient)) + `</iq>`)
			}
		}
		_ = r.Conn().SetDeadline(time.Time{})
		if i < n {
			f.raws = append(f.raws, r)
			f.conns = append(f.conns, r.Conn())
		}
	}
	xmpptest.WaitFor(b, 60*time.Second, "every contact's caps", func() bool { return len(m.Interested(ownerJID.Bare(), node)) == n })
	f.stats = m.CapsStats()
	return f
}

// BenchmarkPublishLatency: a login storm of 1,000 users of 5 client
// kinds, 500 of them alice's contacts; then alice publishes b.N items one
// at a time, each after the previous one reached every contact. It
// reports the fan-out latency (from the publish's write to the last
// contact's read of its notification: p50, p99, max) and the latency of
// single notifications (p99), and the caps cache's hit rate after the
// storm.
func BenchmarkPublishLatency(b *testing.B) {
	const n, others = 500, 500
	f := startFanout(b, n, others)
	_ = f.alice.Conn().SetDeadline(time.Time{})
	go func() { _, _ = io.Copy(io.Discard, f.alice.Conn()) }() // the publish results
	type receipt struct {
		id string
		at time.Time
	}
	got := make(chan receipt, n)
	for _, r := range f.raws {
		go func() {
			for {
				e, err := r.NextErr()
				if err != nil {
					return // the server closed the stream at the end
				}
				items := e.Child(pep.NSEvent, "event")
				if e.Name.Local != "message" || items == nil {
					continue
				}
				if items = items.Child(pep.NSEvent, "items"); items == nil {
					continue
				}
				if it := items.Child(pep.NSEvent, "item"); it != nil {
					got <- receipt{it.Attribute("id"), time.Now()}
				}
			}
		}()
	}
	payload := `<entry xmlns='urn:example'>A status of about two hundred bytes, as a mood, a tune or a device list carries: ` +
		`the quick brown fox jumps over the lazy dog, twice over.</entry>`
	fanouts := make([]time.Duration, 0, b.N)
	singles := make([]time.Duration, 0, b.N*n)
	b.ReportAllocs()
	b.ResetTimer()
	for k := range b.N {
		id := fmt.Sprintf("l%d", k)
		start := time.Now()
		if _, err := fmt.Fprintf(f.alice.Conn(), `<iq type='set' id='%s'><pubsub xmlns='%s'><publish node='%s'><item id='%s'>%s</item></publish></pubsub></iq>`,
			id, pep.NSPubSub, f.node, id, payload); err != nil {
			b.Fatal(err)
		}
		var last time.Duration
		for range n {
			select {
			case rc := <-got:
				if rc.id != id {
					b.Fatalf("notification of %s while waiting for %s", rc.id, id)
				}
				d := rc.at.Sub(start)
				singles = append(singles, d)
				last = max(last, d)
			case <-time.After(30 * time.Second):
				b.Fatalf("publish %s: not every contact was notified", id)
			}
		}
		fanouts = append(fanouts, last)
	}
	b.StopTimer()
	slices.Sort(fanouts)
	slices.Sort(singles)
	at := func(d []time.Duration, q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(fanouts, 0.5), "fanout-p50-ms")
	b.ReportMetric(at(fanouts, 0.99), "fanout-p99-ms")
	b.ReportMetric(at(fanouts, 1), "fanout-max-ms")
	b.ReportMetric(at(singles, 0.99), "notification-p99-ms")
	b.ReportMetric(100*float64(f.stats.Hits)/float64(f.stats.Hits+f.stats.Misses), "caps-hit-%")
	b.ReportMetric(float64(f.stats.Queries), "caps-queries")
}
