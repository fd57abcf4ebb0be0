package session_test

import (
	"errors"
	"testing"

	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stream"
)

// owner records the sessions it was asked to close.
type owner struct{ closed []stream.Condition }

func (o *owner) CloseSession(_ *session.Session, se *stream.Error) {
	o.closed = append(o.closed, se.Condition)
}

func newSession(t *testing.T, q *session.Queue) (*session.Session, *owner) {
	t.Helper()
	full, err := jid.Parse("alice@example.org/phone")
	if err != nil {
		t.Fatal(err)
	}
	o := &owner{}
	return session.New(full, q, o), o
}

func TestSessionPresence(t *testing.T) {
	q, l := session.NewQueue(1<<16, &conn{})
	defer l.Close(nil)
	s, _ := newSession(t, q)
	if _, ok := s.Presence(); ok {
		t.Fatal("available before any presence")
	}
	for _, tc := range []struct {
		presence string
		prio     int
		ok       bool
	}{
		{`<presence/>`, 0, true},
		{`<presence><priority>5</priority></presence>`, 5, true},
		{`<presence><priority> -128 </priority></presence>`, -128, true},
		{`<presence><priority>200</priority></presence>`, 0, true},   // out of range: 0
		{`<presence type='subscribe' to='b@example.org'/>`, 0, true}, // not a broadcast: no change
		{`<presence type='unavailable'/>`, 0, false},
	} {
		s.UpdatePresence(parse(t, tc.presence))
		if prio, ok := s.Presence(); prio != tc.prio || ok != tc.ok {
			t.Errorf("after %s: Presence() = %d, %v; want %d, %v", tc.presence, prio, ok, tc.prio, tc.ok)
		}
	}
}

// TestSessionDeliverOverflow: a stanza the queue cannot take closes the
// session with the matching stream error.
func TestSessionDeliverOverflow(t *testing.T) {
	w := &conn{gate: make(chan struct{})}
	q, l := session.NewQueue(600, w)
	s, o := newSession(t, q)
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		err = s.Deliver(msg(t, "m"))
	}
	if !errors.Is(err, session.ErrQueueFull) || len(o.closed) != 1 || o.closed[0] != stream.PolicyViolation {
		t.Errorf("queue full: %v, closed with %v", err, o.closed)
	}
	close(w.gate)
	<-l.Close(nil)

	q2, l2 := sm(t, &conn{}, 0, 1)
	s2, o2 := newSession(t, q2)
	if err := s2.Deliver(msg(t, "m1")); err != nil {
		t.Fatal(err)
	}
	if err := s2.Deliver(msg(t, "m2")); !errors.Is(err, session.ErrTooManyUnacked) || len(o2.closed) != 1 || o2.closed[0] != stream.ResourceConstraint {
		t.Errorf("too many unacked: %v, closed with %v", err, o2.closed)
	}
	<-l2.Close(nil)
}

func TestSessionHandledCount(t *testing.T) {
	q, l := session.NewQueue(1<<16, &conn{})
	defer l.Close(nil)
	s, _ := newSession(t, q)
	s.SetHandledCount(1<<32 - 1)
	if h := s.Handled(); h != 0 {
		t.Errorf("handled count after 2^32-1 is %d, want 0 (XEP-0198 §4)", h)
	}
	if s.HandledCount() != 0 {
		t.Errorf("HandledCount %d", s.HandledCount())
	}
}

var (
	countKey = session.NewKey[int]()
	nameKey  = session.NewKey[string]()
)

func TestValues(t *testing.T) {
	q, l := session.NewQueue(1<<16, &conn{})
	defer l.Close(nil)
	s, _ := newSession(t, q)
	v := s.Values()
	if _, ok := countKey.Get(v); ok {
		t.Error("a value before Set")
	}
	countKey.Set(v, 3)
	nameKey.Set(v, "x")
	if n, ok := countKey.Get(v); !ok || n != 3 {
		t.Errorf("Get = %d, %v", n, ok)
	}
	if n := countKey.GetOrInit(v, func() int { return 9 }); n != 3 {
		t.Errorf("GetOrInit replaced a value: %d", n)
	}
	countKey.Delete(v)
	if n := countKey.GetOrInit(v, func() int { return 9 }); n != 9 {
		t.Errorf("GetOrInit after Delete: %d", n)
	}
	if name, _ := nameKey.Get(v); name != "x" {
		t.Errorf("another key's value: %q", name)
	}
}
