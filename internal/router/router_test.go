package router_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// fake is a bound session that records what it is given.
type fake struct {
	full   jid.JID
	prio   int
	avail  bool
	values session.Values

	mu  sync.Mutex
	got []*xmlstream.Element
}

func (f *fake) JID() jid.JID            { return f.full }
func (f *fake) Presence() (int, bool)   { return f.prio, f.avail }
func (f *fake) Close(*stream.Error)     {}
func (f *fake) LastActive() time.Time   { return time.Time{} }
func (f *fake) Detached() bool          { return false }
func (f *fake) Values() *session.Values { return &f.values }
func (f *fake) Deliver(e *xmlstream.Element) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, e)
	return nil
}

func (f *fake) received() []*xmlstream.Element {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*xmlstream.Element(nil), f.got...)
}

func newRouter() *router.Router {
	return router.New([]string{"example.org"}, slog.New(slog.DiscardHandler))
}

func bind(r *router.Router, full string) *fake {
	f := &fake{full: jid.MustParse(full), avail: true}
	r.Bind(f)
	return f
}

func iq(from, to string) *xmlstream.Element {
	e := stanza.NewIQ(stanza.NSClient, stanza.IQGet, to, from, "q1")
	return e.Append(xmlstream.NewElement("urn:test", "q"))
}

// TestIQClasses checks that each IQ reaches the handler of its address
// class, with the parsed addresses and the origin session.
func TestIQClasses(t *testing.T) {
	r := newRouter()
	alice := bind(r, "alice@example.org/phone")
	type seen struct {
		class    router.Class
		from, to string
		origin   router.Session
	}
	var got []seen
	h := func(_ context.Context, ev *router.Event) (*xmlstream.Element, error) {
		got = append(got, seen{ev.Class, ev.From.String(), ev.To.String(), ev.Origin})
		return nil, nil
	}
	r.HandleIQ(stanza.IQGet, router.ClassLocal, "urn:test", "q", h)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		to   string
		want router.Class
		wTo  string
	}{
		{"", router.ClassSelf, "alice@example.org"},
		{"alice@example.org", router.ClassSelf, "alice@example.org"},
		{"example.org", router.ClassServer, "example.org"},
		{"bob@example.org", router.ClassBare, "bob@example.org"},
	} {
		got = nil
		r.RouteFrom(t.Context(), alice, iq(alice.full.String(), tc.to))
		if len(got) != 1 || got[0].class != tc.want || got[0].to != tc.wTo || got[0].from != "alice@example.org/phone" || got[0].origin != alice {
			t.Errorf("to %q: handler saw %+v, want class %s to %s", tc.to, got, tc.want, tc.wTo)
		}
	}
	// From another server (no origin session), and a result came back to
	// alice each time.
	got = nil
	r.Route(t.Context(), iq("romeo@remote.example/x", "example.org"))
	if len(got) != 1 || got[0].origin != nil || got[0].class != router.ClassServer {
		t.Errorf("remote sender: %+v", got)
	}
	if n := len(alice.received()); n != 4 {
		t.Errorf("alice got %d results, want 4", n)
	}
}

func TestDuplicateIQHandler(t *testing.T) {
	r := newRouter()
	h := func(context.Context, *router.Event) (*xmlstream.Element, error) { return nil, nil }
	r.HandleIQ(stanza.IQGet, router.ClassServer, "urn:test", "q", h)
	r.HandleIQ(stanza.IQSet, router.ClassServer, "urn:test", "q", h) // another type: fine
	r.HandleIQ(stanza.IQGet, router.ClassBare, "urn:test", "q", h)   // another class: fine
	if err := r.Err(); err != nil {
		t.Fatalf("distinct registrations: %v", err)
	}
	r.HandleIQ(stanza.IQGet, router.ClassLocal, "urn:test", "q", h)
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "two handlers") {
		t.Fatalf("duplicate registration: err = %v", err)
	}
}

// TestPhases: outbound sees the origin, inbound the local recipient,
// delivered the sessions that got a message, undeliverable the message no
// resource took.
func TestPhases(t *testing.T) {
	r := newRouter()
	alice := bind(r, "alice@example.org/phone")
	bob := bind(r, "bob@example.org/laptop")
	var log []string
	r.HookOutbound(0, func(_ context.Context, ev *router.Event) bool {
		log = append(log, "outbound from "+ev.Origin.JID().String())
		return false
	})
	r.HookInbound(0, func(_ context.Context, ev *router.Event) bool {
		log = append(log, "inbound to "+ev.To.String()+" class "+ev.Class.String())
		return stanza.ID(ev.El) == "stop"
	})
	r.HookDelivered(0, func(_ context.Context, ev *router.Event, to []router.Session) {
		for _, s := range to {
			log = append(log, "delivered to "+s.JID().String())
		}
	})
	r.HookUndeliverable(0, func(_ context.Context, ev *router.Event) bool {
		log = append(log, "undeliverable to "+ev.To.String())
		return true
	})
	msg := func(to, id string) *xmlstream.Element {
		return stanza.NewMessage(stanza.NSClient, stanza.MessageChat, to, alice.full.String(), id).
			Append(xmlstream.NewElement("", "body").AppendText("hi"))
	}
	r.RouteFrom(t.Context(), alice, msg("bob@example.org", "m1"))
	r.RouteFrom(t.Context(), alice, msg("bob@example.org/laptop", "m2"))
	r.RouteFrom(t.Context(), alice, msg("bob@example.org", "stop"))
	r.RouteFrom(t.Context(), alice, msg("carol@example.org", "m3"))
	want := []string{
		"outbound from alice@example.org/phone", "inbound to bob@example.org class bare", "delivered to bob@example.org/laptop",
		"outbound from alice@example.org/phone", "inbound to bob@example.org/laptop class full", "delivered to bob@example.org/laptop",
		"outbound from alice@example.org/phone", "inbound to bob@example.org class bare",
		"outbound from alice@example.org/phone", "inbound to carol@example.org class bare", "undeliverable to carol@example.org",
	}
	if strings.Join(log, "\n") != strings.Join(want, "\n") {
		t.Errorf("phases:\n%s\nwant:\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
	if n := len(bob.received()); n != 2 {
		t.Errorf("bob got %d messages, want 2", n)
	}
}

// TestMalformedTo bounces jid-malformed before any hook runs.
func TestMalformedTo(t *testing.T) {
	r := newRouter()
	alice := bind(r, "alice@example.org/phone")
	ran := false
	r.HookOutbound(0, func(context.Context, *router.Event) bool { ran = true; return false })
	r.RouteFrom(t.Context(), alice, stanza.NewMessage(stanza.NSClient, stanza.MessageChat, "a@b@c", alice.full.String(), "x"))
	if ran {
		t.Error("outbound hook ran for a malformed 'to'")
	}
	got := alice.received()
	if len(got) != 1 || stanza.Type(got[0]) != "error" || !strings.Contains(got[0].String(), "jid-malformed") {
		t.Errorf("alice got %v", got)
	}
}

// TestRedeliver: a message handed back by an ended session reaches the
// other resources without running the delivered hooks again.
func TestRedeliver(t *testing.T) {
	r := newRouter()
	bob := bind(r, "bob@example.org/laptop")
	ran := 0
	r.HookDelivered(0, func(context.Context, *router.Event, []router.Session) { ran++ })
	m := stanza.NewMessage(stanza.NSClient, stanza.MessageChat, "bob@example.org/phone", "alice@example.org/x", "m").
		Append(xmlstream.NewElement("", "body").AppendText("hi"))
	r.Redeliver(t.Context(), m, jid.MustParse("bob@example.org"))
	if len(bob.received()) != 1 || ran != 0 {
		t.Errorf("Redeliver: bob got %d, delivered hooks ran %d times", len(bob.received()), ran)
	}
	r.DeliverLocal(t.Context(), m, jid.MustParse("bob@example.org"))
	if len(bob.received()) != 2 || ran != 1 {
		t.Errorf("DeliverLocal: bob got %d, delivered hooks ran %d times", len(bob.received()), ran)
	}
}

// TestSessionsSharedSliceStable checks the contract of Sessions: a slice
// it returned keeps its elements while sessions bind, rebind and unbind,
// and a caller's append does not reach the table.
func TestSessionsSharedSliceStable(t *testing.T) {
	r := newRouter()
	bare := jid.MustParse("alice@example.org")
	phone := bind(r, "alice@example.org/phone")
	laptop := bind(r, "alice@example.org/laptop")
	got := r.Sessions(bare)
	if len(got) != 2 || got[0] != phone || got[1] != laptop {
		t.Fatalf("Sessions = %v, want [phone laptop]", got)
	}
	_ = append(got, &fake{full: jid.MustParse("alice@example.org/extra")})
	bind(r, "alice@example.org/phone") // replaces phone
	bind(r, "alice@example.org/tablet")
	r.Unbind(laptop)
	if got[0] != phone || got[1] != laptop {
		t.Fatalf("held slice changed to %v", got)
	}
	if n := r.SessionCount(bare); n != 2 {
		t.Fatalf("SessionCount = %d, want 2 (new phone, tablet)", n)
	}
}

// BenchmarkSessions measures the session-table lookup each routed
// message makes for its recipient.
func BenchmarkSessions(b *testing.B) {
	r := newRouter()
	bind(r, "bob@example.org/phone")
	bob := jid.MustParse("bob@example.org")
	b.ReportAllocs()
	for b.Loop() {
		if len(r.Sessions(bob)) != 1 {
			b.Fatal("no session")
		}
	}
}
