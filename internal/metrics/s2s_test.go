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

// TestScrapeFederation federates a.test and b.test over loopback and
// checks the server-to-server series: streams established both ways,
// stanzas in and out, a sample of their routing timed, and a failed
// connection to a domain that does not answer.
func TestScrapeFederation(t *testing.T) {
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	addrA, addrB, dead := xmpptest.FreeAddr(t), xmpptest.FreeAddr(t), xmpptest.FreeAddr(t)
	a := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"a.test"}
		c.S2S.Listen = []string{addrA}
		c.S2S.Hosts = map[string]string{"b.test": addrB, "dead.test": dead}
		c.S2S.ConnectTimeout = config.Duration(5 * time.Second)
	})
	b := xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{"b.test"}
		c.S2S.Listen = []string{addrB}
		c.S2S.Hosts = map[string]string{"a.test": addrA}
	})
	alice := a.Dial(t, a.AddUser(t, "alice", "pw"), "pw")
	bob := b.Dial(t, b.AddUser(t, "bob", "pw"), "pw")
	before := scrape(t, a)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	chat := func(to string) *xmlstream.Element {
		return stanza.NewMessage(stanza.NSClient, stanza.MessageChat, to, "", "").
			Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText("across"))
	}
	await := func(c interface {
		Recv(context.Context) (*xmlstream.Element, error)
	}, from string) {
		t.Helper()
		for {
			e, err := c.Recv(ctx)
			if err != nil {
				t.Fatalf("waiting for a message from %s: %v", from, err)
			}
			if e.Name.Local == "message" && stanza.From(e) == from {
				return
			}
		}
	}
	if err := alice.Send(chat(bob.JID().String())); err != nil {
		t.Fatal(err)
	}
	await(bob, alice.JID().String())
	if err := bob.Send(chat(alice.JID().String())); err != nil {
		t.Fatal(err)
	}
	await(alice, bob.JID().String())
	// A domain whose server does not listen: the stanza is bounced.
	if err := alice.Send(chat("someone@dead.test")); err != nil {
		t.Fatal(err)
	}
	for {
		e, err := alice.Recv(ctx)
		if err != nil {
			t.Fatalf("waiting for the bounce from dead.test: %v", err)
		}
		if e.Name.Local == "message" && stanza.Type(e) == stanza.MessageError {
			break
		}
	}

	var during series
	xmpptest.WaitFor(t, 20*time.Second, "the failed stream to leave the connecting state", func() bool {
		during = scrape(t, a)
		return delta(before, during, "ode_s2s_connect_failures_total") >= 1 &&
			delta(before, during, "ode_s2s_streams", "direction=out", "state=connecting") <= 0
	})
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"ode_s2s_streams", []string{"direction=out", "state=established"}, 2}, // a → b and b → a
		{"ode_s2s_streams", []string{"direction=in", "state=established"}, 2},
		{"ode_stanzas_total", []string{"stream=s2s", "direction=out", "kind=message"}, 2},
		{"ode_stanzas_total", []string{"stream=s2s", "direction=in", "kind=message"}, 2},
		{"ode_route_duration_seconds_count", []string{"stream=s2s"}, 1},
		{"ode_s2s_connect_failures_total", nil, 1},
	} {
		if d := delta(before, during, c.name, c.labels...); d < c.min {
			t.Errorf("%s%v moved by %v, want at least %v", c.name, c.labels, d, c.min)
		}
	}
}
