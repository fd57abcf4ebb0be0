package ping_test

import (
	"context"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/ping"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fastPings makes the server ping after 100ms of quiet and wait 400ms.
func fastPings(c *config.Config) {
	c.Modules.Settings["ping"] = &ping.Config{
		Interval: config.Duration(100 * time.Millisecond),
		Timeout:  config.Duration(400 * time.Millisecond),
	}
}

func isPing(e *xmlstream.Element) bool {
	return e.Name.Local == "iq" && stanza.Type(e) == stanza.IQGet && e.Child(stanza.NSPing, "ping") != nil
}

func TestClientPingsServer(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	for _, to := range []string{srv.Domain, "", "juliet@localhost"} {
		iq := stanza.NewIQ(stanza.NSClient, stanza.IQGet, to, "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping"))
		res, err := c.IQ(ctxT(t), iq)
		if err != nil {
			t.Fatalf("ping to %q: %v", to, err)
		}
		if stanza.Type(res) != stanza.IQResult || res.FirstChild() != nil {
			t.Fatalf("ping to %q: got %s", to, res)
		}
	}
}

// TestAnsweringClientStays has a client answer several server pings, with
// a result or with an error; both count as alive.
func TestAnsweringClientStays(t *testing.T) {
	for _, answer := range []string{"result", "error"} {
		t.Run(answer, func(t *testing.T) {
			srv := xmpptest.Start(t, fastPings)
			c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
			for n := 0; n < 3; {
				e, err := c.Recv(ctxT(t))
				if err != nil {
					t.Fatalf("after %d pings: %v", n, err)
				}
				if !isPing(e) {
					continue
				}
				n++
				if stanza.From(e) != srv.Domain || stanza.To(e) != c.JID().String() {
					t.Fatalf("ping addressed %s → %s", stanza.From(e), stanza.To(e))
				}
				reply := stanza.IQResultFor(e)
				if answer == "error" {
					reply = stanza.ErrorReply(e, stanza.NewError(stanza.ServiceUnavailable, ""))
				}
				reply.RemoveAttr("from")
				if err := c.Send(reply); err != nil {
					t.Fatal(err)
				}
			}
			// Three pings took longer than one timeout: an unanswered
			// one would have closed the stream by now.
			if _, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, srv.Domain, "", "").
				Append(xmlstream.NewElement(stanza.NSPing, "ping"))); err != nil {
				t.Fatalf("stream closed: %v", err)
			}
		})
	}
}

// TestSilentClientTimesOut: a client that never answers is pinged once and
// then disconnected with connection-timeout.
func TestSilentClientTimesOut(t *testing.T) {
	srv := xmpptest.Start(t, fastPings)
	srv.AddUser(t, "romeo", "orchard")
	r := srv.DialRaw(t)
	r.Login("romeo", "orchard")
	full := r.Bind("silent").String()
	pings := 0
	for {
		e := r.Next()
		if e.Name.Space == stream.NS && e.Name.Local == "error" {
			if se, err := stream.ParseError(e); err != nil || se.Condition != stream.ConnectionTimeout {
				t.Fatalf("got stream error %s, want %s", e, stream.ConnectionTimeout)
			}
			break
		}
		if !isPing(e) {
			continue
		}
		pings++
		if stanza.From(e) != srv.Domain || stanza.To(e) != full {
			t.Errorf("ping addressed %s → %s", stanza.From(e), stanza.To(e))
		}
	}
	r.ExpectEnd()
	if pings != 1 {
		t.Errorf("got %d pings before the timeout, want 1 (no ping while one is outstanding)", pings)
	}
}
