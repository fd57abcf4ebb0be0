package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// TestGaugesAfterShutdown checks that the gauges count down what they
// counted up: after two federating servers with clients (one of them
// detached, waiting for a resumption) shut down, every gauge is back
// where it was.
func TestGaugesAfterShutdown(t *testing.T) {
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	// Scraped from a server that stays up.
	watcher := xmpptest.Start(t, nil)
	before := scrape(t, watcher)

	addrA, addrB := xmpptest.FreeAddr(t), xmpptest.FreeAddr(t)
	a := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"a.test"}
		c.S2S.Listen = []string{addrA}
		c.S2S.Hosts = map[string]string{"b.test": addrB}
	})
	b := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"b.test"}
		c.S2S.Listen = []string{addrB}
		c.S2S.Hosts = map[string]string{"a.test": addrA}
	})
	alice := a.Dial(t, a.AddUser(t, "alice", "pw"), "pw")
	bob := b.Dial(t, b.AddUser(t, "bob", "pw"), "pw")
	a.AddUser(t, "carol", "pw")
	ws := wsLogin(t, a, "carol", "pw")
	wsDone := make(chan struct{})
	go func() { // reads until the server closes, answering its close handshake
		defer close(wsDone)
		for {
			if _, _, err := ws.c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	// dave's connection drops with stream management on: detached.
	a.AddUser(t, "dave", "pw")
	dave := a.DialRaw(t)
	dave.Login("dave", "pw")
	dave.Bind("d")
	dave.Send(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`)
	dave.Expect("urn:xmpp:sm:3", "enabled")
	dave.Drop()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	msg := stanza.NewMessage(stanza.NSClient, stanza.MessageChat, bob.JID().String(), "", "").
		Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText("across"))
	if err := alice.Send(msg); err != nil {
		t.Fatal(err)
	}
	for {
		e, err := bob.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e.Name.Local == "message" {
			break
		}
	}
	xmpptest.WaitFor(t, 20*time.Second, "dave's session to be detached", func() bool {
		return delta(before, scrape(t, watcher), "ode_c2s_sessions_detached") >= 1
	})
	up := scrape(t, watcher)
	for _, g := range [][]string{
		{"ode_c2s_sessions", "transport=tcp"}, {"ode_c2s_sessions", "transport=websocket"},
		{"ode_c2s_connections", "transport=tcp"}, {"ode_s2s_streams", "state=established"},
	} {
		if d := delta(before, up, g[0], g[1:]...); d < 1 {
			t.Errorf("%v moved by %v while the servers run", g, d)
		}
	}

	for _, s := range []*xmpptest.Server{a, b} {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := s.Shutdown(sctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	<-wsDone
	after := scrape(t, watcher)
	for _, name := range []string{"ode_c2s_sessions", "ode_c2s_connections", "ode_c2s_sessions_detached",
		"ode_s2s_streams", "ode_mam_queue_rows", "ode_mam_queue_bytes"} {
		for _, s := range after {
			if s.name != name {
				continue
			}
			var labels []string
			for k, v := range s.labels {
				labels = append(labels, k+"="+v)
			}
			if d := delta(before, after, name, labels...); d != 0 {
				t.Errorf("%s%v is %v off after the servers stopped", name, s.labels, d)
			}
		}
	}
}
