package router_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// TestStageCommit swaps the registry while stanzas are routed: every IQ
// is answered by the old handler or the new one, never by none, the
// session table is kept, and after Commit no call reaches the old handler.
func TestStageCommit(t *testing.T) {
	r := newRouter()
	alice := bind(r, "alice@example.org/a")
	var oldCalls, newCalls atomic.Int64
	handler := func(n *atomic.Int64) router.IQHandler {
		return func(context.Context, *router.Event) (*xmlstream.Element, error) {
			n.Add(1)
			return nil, nil
		}
	}
	regs := r.Record(func(r *router.Router) {
		r.AddFeature("urn:test:old")
		r.HandleIQ(stanza.IQGet, router.ClassLocal, "urn:test", "q", handler(&oldCalls))
	})
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	const routed = 200
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < routed; i++ {
			q := stanza.NewIQ(stanza.NSClient, stanza.IQGet, "example.org", "alice@example.org/a", "x")
			q.Append(xmlstream.NewElement("urn:test", "q"))
			r.RouteFrom(t.Context(), alice, q)
		}
		<-stop
	}()

	staged := r.Stage([]string{"example.org", "example.net"})
	staged.HandleIQ(stanza.IQGet, router.ClassLocal, "urn:test", "q", handler(&newCalls))
	staged.AddFeature("urn:test:new")
	if got := staged.Features(); len(got) != 1 || got[0] != "urn:test:new" {
		t.Fatalf("staged features = %v", got)
	}
	if r.Hosts("example.net") {
		t.Fatal("the live router hosts a staged domain before Commit")
	}
	if err := r.Commit(t.Context(), staged); err != nil {
		t.Fatal(err)
	}
	before := oldCalls.Load()
	close(stop)
	wg.Wait()
	if !r.Hosts("example.net") || !staged.Hosts("example.net") {
		t.Fatal("example.net not hosted after Commit")
	}
	if got := r.Features(); len(got) != 1 || got[0] != "urn:test:new" {
		t.Fatalf("features after Commit = %v", got)
	}
	if oldCalls.Load() != before {
		t.Fatalf("the old handler ran after Commit returned")
	}
	// Every IQ got a result: none was answered with an error.
	for _, e := range alice.received() {
		if stanza.Type(e) != stanza.IQResult {
			t.Fatalf("got %s", e.AppendXML(nil, stanza.NSClient))
		}
	}
	if n := int(oldCalls.Load() + newCalls.Load()); n != routed {
		t.Fatalf("%d handler calls for %d IQs", n, routed)
	}
	if r.Session(alice.JID()) == nil {
		t.Fatal("the session table lost alice")
	}

	// Replay declares the recorded registrations on a new registry.
	again := r.Stage([]string{"example.org"})
	again.Replay(regs)
	if err := r.Commit(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if got := r.Features(); len(got) != 1 || got[0] != "urn:test:old" {
		t.Fatalf("features after Replay = %v", got)
	}
}

// TestCommitRefusesFailedRegistry keeps the live registry when the staged
// one has a registration error.
func TestCommitRefusesFailedRegistry(t *testing.T) {
	r := newRouter()
	r.AddFeature("urn:test:live")
	staged := r.Stage([]string{"example.org"})
	h := func(context.Context, *router.Event) (*xmlstream.Element, error) { return nil, nil }
	staged.HandleIQ(stanza.IQGet, router.ClassLocal, "urn:test", "q", h)
	staged.HandleIQ(stanza.IQGet, router.ClassLocal, "urn:test", "q", h)
	if err := r.Commit(t.Context(), staged); err == nil {
		t.Fatal("Commit accepted a registry with two handlers for one IQ")
	}
	if got := r.Features(); len(got) != 1 || got[0] != "urn:test:live" {
		t.Fatalf("live features = %v", got)
	}
	if err := r.Commit(t.Context(), r); err == nil {
		t.Fatal("Commit of the live router itself succeeded")
	}
}

// TestCommitWaitsForCallsInFlight shows that Commit returns only once a
// hook running on the old registry has returned.
func TestCommitWaitsForCallsInFlight(t *testing.T) {
	r := newRouter()
	entered, release := make(chan struct{}), make(chan struct{})
	var returned atomic.Bool
	r.OnSync(func(context.Context) error {
		close(entered)
		<-release
		returned.Store(true)
		return nil
	})
	go func() { _ = r.Sync(context.Background()) }()
	<-entered
	done := make(chan error, 1)
	go func() { done <- r.Commit(context.Background(), r.Stage([]string{"example.org"})) }()
	select {
	case err := <-done:
		t.Fatalf("Commit returned (%v) while a sync hook of the old registry ran", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !returned.Load() {
		t.Fatal("Commit returned before the hook")
	}
}
