package session_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/session"
)

// testTimeout bounds the waits of these tests.
const testTimeout = 10 * time.Second

// direct is a session.DirectWriter: TryWrite takes p while accept is set
// (failing with fail), and records in which calls it was used.
type direct struct {
	conn
	mu      sync.Mutex
	accept  bool
	fail    error
	tries   int
	written int // bytes taken by TryWrite
}

func (d *direct) TryWrite(p []byte) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tries++
	if !d.accept {
		return false, nil
	}
	if d.fail != nil {
		return true, d.fail
	}
	d.written += len(p)
	return true, d.conn.Write(p)
}

func (d *direct) counts() (tries, written int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tries, d.written
}

// TestDirectWrite: while the connection takes a write at once, the
// delivering goroutine writes the stanza itself: it has been written when
// Deliver returns.
func TestDirectWrite(t *testing.T) {
	w := &direct{accept: true}
	q, l := session.NewQueue(1<<20, w)
	for i := range 3 {
		if err := q.Deliver(parse(t, `<message to='a@b' id='`+string(rune('0'+i))+`'><body>hi</body></message>`)); err != nil {
			t.Fatal(err)
		}
		if got := w.take(); got != `<message to="a@b" id="`+string(rune('0'+i))+`"><body>hi</body></message>` {
			t.Fatalf("after Deliver %d: written %q", i, got)
		}
	}
	if tries, _ := w.counts(); tries != 3 {
		t.Errorf("%d direct tries, want 3", tries)
	}
	if err := l.Flush(testTimeout); err != nil {
		t.Fatal(err)
	}
	<-l.Close([]byte("</stream:stream>"))
	if got := w.take(); got != "</stream:stream>" || !w.isClosed() {
		t.Errorf("after Close: %q, closed %v", got, w.isClosed())
	}
}

// TestDirectWriteDeclined: when the connection would block, the writer
// goroutine writes, in order, what the direct attempt gave back and what
// came after it.
func TestDirectWriteDeclined(t *testing.T) {
	w := &direct{}
	w.gate = make(chan struct{})
	q, l := session.NewQueue(1<<20, w)
	if err := q.Deliver(parse(t, `<message id='1'/>`)); err != nil {
		t.Fatal(err)
	}
	// The writer goroutine is stuck in Write: more stanzas wait behind it.
	for _, id := range []string{"2", "3"} {
		if err := q.Deliver(parse(t, `<message id='`+id+`'/>`)); err != nil {
			t.Fatal(err)
		}
	}
	close(w.gate)
	if err := l.Flush(testTimeout); err != nil {
		t.Fatal(err)
	}
	if got := w.take(); got != `<message id="1"/><message id="2"/><message id="3"/>` {
		t.Errorf("written %q", got)
	}
	if tries, written := w.counts(); tries != 1 || written != 0 {
		t.Errorf("%d direct tries writing %d bytes, want 1 and 0", tries, written)
	}
	<-l.Close(nil)
}

// TestDirectWriteFails: a failed direct write closes the connection and
// nothing more is written to it.
func TestDirectWriteFails(t *testing.T) {
	w := &direct{accept: true, fail: errors.New("broken pipe")}
	q, l := session.NewQueue(1<<20, w)
	if err := q.Deliver(parse(t, `<message id='1'/>`)); err != nil {
		t.Fatal(err)
	}
	<-l.Close(nil)
	if !w.isClosed() {
		t.Error("connection not closed")
	}
	if err := q.Deliver(parse(t, `<message id='2'/>`)); err != nil && !errors.Is(err, session.ErrClosed) {
		t.Fatal(err)
	}
	if got := w.take(); got != "" {
		t.Errorf("written after the failure: %q", got)
	}
}
