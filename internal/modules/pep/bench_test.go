package pep_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
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
	const n, kinds = 500, 5
	srv := xmpptest.Start(b, func(c *config.Config) { c.C2S.OutboundQueueBytes = 4 << 20 })
	ctx := context.Background()
	srv.AddUser(b, "alice", "pw")
	node := "urn:example:bench"
	accounts := make([]storage.NewAccount, 0, n)
	for i := range n {
		accounts = append(accounts, storage.NewAccount{Local: fmt.Sprintf("c%d", i), Domain: srv.Domain})
	}
	if _, err := srv.Store().CreateAccounts(ctx, accounts); err != nil {
		b.Fatal(err)
	}
	// Accounts without credentials cannot log in: give them passwords.
	for i := range n {
		if err := srv.Store().DeleteAccount(ctx, fmt.Sprintf("c%d", i), srv.Domain); err != nil {
			b.Fatal(err)
		}
		srv.AddUser(b, fmt.Sprintf("c%d", i), "pw")
		contact := fmt.Sprintf("c%d@%s", i, srv.Domain)
		for _, p := range [][2]string{{"alice", contact}, {fmt.Sprintf("c%d", i), "alice@" + srv.Domain}} {
			if _, err := srv.Store().PutRosterItem(ctx, p[0], srv.Domain, storage.RosterItem{Contact: p[1], Subscription: storage.SubBoth}, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	alice := srv.DialRaw(b)
	alice.Login("alice", "pw")
	ownerJID := alice.Bind("bench") // no presence: she receives no presence and no notifications
	m := srv.Module("pep").(*pep.Module)
	conns := make([]io.ReadWriter, n)
	for i := range n {
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
		conns[i] = r.Conn()
	}
	xmpptest.WaitFor(b, 60*time.Second, "every contact's caps", func() bool { return len(m.Interested(ownerJID.Bare(), node)) == n })
	stats := m.CapsStats()
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
