package session_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/session"
)

// writes is a session.Writer that counts its writes, over conn.
type writes struct {
	conn
	mu sync.Mutex
	n  int
}

func (w *writes) Write(p []byte) error {
	w.mu.Lock()
	w.n++
	w.mu.Unlock()
	return w.conn.Write(p)
}

func (w *writes) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// TestBatchDefersWriters: under an active batch the recipients' writers
// start only at Flush, and each then writes everything it got at once.
func TestBatchDefersWriters(t *testing.T) {
	b := new(session.Batch)
	ctx := session.WithBatch(context.Background(), b)
	if session.BatchFrom(ctx) != b || session.BatchFrom(context.Background()) != nil {
		t.Fatal("BatchFrom does not return the batch")
	}
	var ws [3]*writes
	var ls [3]*session.Link
	var qs [3]*session.Queue
	for i := range ws {
		ws[i] = &writes{}
		qs[i], ls[i] = session.NewQueue(1<<16, ws[i])
	}
	msg := session.NewShared(parse(t, `<message from='r@c.x/n' type='groupchat' id='g'><body>hi</body></message>`))
	b.Begin()
	for range 5 {
		for _, q := range qs {
			if err := q.DeliverSharedIn(b, msg, "a@x/1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, w := range ws {
		// No writer was started: nothing can have been written.
		if w.count() != 0 || qs[i].Pending() == 0 {
			t.Fatalf("queue %d written before the batch was flushed", i)
		}
	}
	b.Flush()
	for i, w := range ws {
		flush(t, ls[i])
		if n, got := w.count(), ids(w.elements(t)); n != 1 || got != "g g g g g" {
			t.Errorf("queue %d: %d writes of %q, want one of five messages", i, n, got)
		}
	}

	// Once flushed, the batch is inactive: deliveries start their
	// writers at once (as from a goroutine that outlived the read).
	if err := qs[0].DeliverSharedIn(b, msg, "a@x/1"); err != nil {
		t.Fatal(err)
	}
	flush(t, ls[0])
	if got := ids(ws[0].elements(t)); got != "g" {
		t.Errorf("after the flush: %q", got)
	}
}

// TestBatchWaitStartsOwnWriter: a reader waiting for its own queue to
// drain does not wait for its own batch.
func TestBatchWaitStartsOwnWriter(t *testing.T) {
	b := new(session.Batch)
	w := &writes{}
	q, l := session.NewQueue(1<<16, w)
	msg := session.NewShared(parse(t, `<message from='r@c.x/n' type='groupchat' id='g'><body>hi</body></message>`))
	b.Begin()
	for range 3 {
		if err := q.DeliverSharedIn(b, msg, "a@x/1"); err != nil {
			t.Fatal(err)
		}
	}
	if !l.Wait(nil, 0, 5*time.Second) {
		t.Fatal("Wait timed out on a deferred writer")
	}
	if err := q.DeliverSharedIn(b, msg, "a@x/1"); err != nil { // still deferred by b
		t.Fatal(err)
	}
	flush(t, l)
	if got := ids(w.elements(t)); got != "g g g g" {
		t.Errorf("written: %q", got)
	}
	b.Flush()
}
