package session_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// conn is a session.Writer that records what it is given. While gate is
// not nil, each Write waits for a value on it.
type conn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
	gate   chan struct{}
}

func (c *conn) Write(p []byte) error {
	if c.gate != nil {
		<-c.gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("closed")
	}
	c.buf.Write(p)
	return nil
}

func (c *conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// take returns what was written so far and forgets it.
func (c *conn) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.buf.String()
	c.buf.Reset()
	return s
}

// elements parses what was written as a sequence of jabber:client elements.
func (c *conn) elements(t *testing.T) []*xmlstream.Element {
	t.Helper()
	r := xmlstream.NewReader(strings.NewReader(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`+c.take()), xmlstream.Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	var out []*xmlstream.Element
	for {
		e, err := r.Next()
		if err != nil {
			return out
		}
		out = append(out, e)
	}
}

func parse(t *testing.T, s string) *xmlstream.Element {
	t.Helper()
	e, err := xmlstream.ParseElement([]byte(s), stanza.NSClient)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return e
}

func msg(t *testing.T, id string) *xmlstream.Element {
	return parse(t, `<message to='a@example.org/r' from='b@example.org/x' id='`+id+`' type='chat'><body>`+id+`</body></message>`)
}

// ids returns the id attributes of es, and the local name of those
// without one.
func ids(es []*xmlstream.Element) string {
	s := make([]string, len(es))
	for i, e := range es {
		if s[i] = stanza.ID(e); s[i] == "" {
			s[i] = e.Name.Local
		}
	}
	return strings.Join(s, " ")
}

func flush(t *testing.T, l *session.Link) {
	t.Helper()
	if err := l.Flush(5 * time.Second); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func TestQueueDeliverAndClose(t *testing.T) {
	w := &conn{}
	q, l := session.NewQueue(1<<16, w)
	if err := l.Send([]byte("<stream:features/>")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := q.Deliver(msg(t, fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-l.Close([]byte("</stream:stream>")):
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not finish")
	}
	got := w.take()
	if !strings.HasPrefix(got, "<stream:features/><message") || !strings.HasSuffix(got, "</message></stream:stream>") || strings.Count(got, "<message") != 3 {
		t.Errorf("written: %s", got)
	}
	if !w.isClosed() {
		t.Error("the connection was not closed")
	}
	if err := l.Send([]byte("x")); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	// Without stream management a queue without a connection takes nothing.
	if err := q.Deliver(msg(t, "late")); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Deliver after Close: %v", err)
	}
	q.Close()
	if err := q.Deliver(msg(t, "later")); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Deliver to a closed queue: %v", err)
	}
}

// TestQueueFull: while the writer is stuck, stanzas pile up to the
// queue's byte limit and then are refused.
func TestQueueFull(t *testing.T) {
	w := &conn{gate: make(chan struct{})}
	q, l := session.NewQueue(1000, w)
	if err := q.Deliver(msg(t, "first")); err != nil { // taken by the writer, stuck in Write
		t.Fatal(err)
	}
	var err error
	n := 0
	for ; n < 100 && err == nil; n++ {
		err = q.Deliver(msg(t, "more"))
	}
	if !errors.Is(err, session.ErrQueueFull) || n < 5 {
		t.Fatalf("after %d stanzas: %v", n, err)
	}
	if p := q.Pending(); p > 1000 || p < 900 {
		t.Errorf("pending %d bytes, want at most 1000 and close to it", p)
	}
	close(w.gate)
	flush(t, l)
	if got := len(w.elements(t)); got != n {
		t.Errorf("%d stanzas written, want %d", got, n)
	}
}

// sm returns a stream-managed queue whose counters start at start.
func sm(t *testing.T, w session.Writer, start uint32, maxUnacked int) (*session.Queue, *session.Link) {
	t.Helper()
	q, l := session.NewQueue(1<<16, w)
	if err := l.EnableSM(maxUnacked, start, []byte("<enabled xmlns='urn:xmpp:sm:3'/>")); err != nil {
		t.Fatal(err)
	}
	return q, l
}

func deliver(t *testing.T, q *session.Queue, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := q.Deliver(msg(t, id)); err != nil {
			t.Fatalf("deliver %s: %v", id, err)
		}
	}
}

func TestQueueAck(t *testing.T) {
	for _, start := range []uint32{0, 1<<32 - 2} {
		t.Run(fmt.Sprint("start=", start), func(t *testing.T) {
			w := &conn{}
			q, l := sm(t, w, start, 100)
			deliver(t, q, "m1", "m2", "m3", "m4")
			flush(t, l)
			// The server asks for an acknowledgement once, after the
			// first write with stanzas (which may hold any of them).
			got := ids(w.elements(t))
			if strings.Count(got, " r") != 1 || strings.ReplaceAll(got, " r", "") != "enabled m1 m2 m3 m4" || strings.HasPrefix(got, "enabled r") {
				t.Errorf("written: %s", got)
			}
			sent, acked := q.Counts()
			if sent != start+4 || acked != start {
				t.Fatalf("counts %d %d, want %d %d", sent, acked, start+4, start)
			}
			steps := []struct {
				h       uint32
				err     error
				acked   uint32
				unacked string
			}{
				{start + 2, nil, start + 2, "m3 m4"},                   // across the wrap when start is 2^32-2
				{start + 1, nil, start + 2, "m3 m4"},                   // lower: an old count, ignored
				{start + 2, nil, start + 2, "m3 m4"},                   // the same again
				{start + 5, session.ErrAckTooHigh, start + 2, "m3 m4"}, // one more than sent
				{start + 4, nil, start + 4, ""},
			}
			for _, st := range steps {
				if err := q.Ack(st.h); !errors.Is(err, st.err) {
					t.Errorf("Ack(%d): %v, want %v", st.h, err, st.err)
				}
				if _, acked := q.Counts(); acked != st.acked {
					t.Errorf("after Ack(%d): acked %d, want %d", st.h, acked, st.acked)
				}
			}
			// A new burst gets a new <r/>.
			deliver(t, q, "m5")
			flush(t, l)
			if got := ids(w.elements(t)); got != "m5 r" {
				t.Errorf("written: %s", got)
			}
			if got := ids(q.TakeUnacked()); got != "m5" {
				t.Errorf("unacked %s, want m5", got)
			}
			if sent, acked := q.Counts(); sent != acked || sent != start+5 {
				t.Errorf("after TakeUnacked: counts %d %d", sent, acked)
			}
			if got := q.TakeUnacked(); len(got) != 0 {
				t.Errorf("TakeUnacked twice: %s", ids(got))
			}
			l.Close(nil)
		})
	}
}

func TestQueueTooManyUnacked(t *testing.T) {
	w := &conn{}
	q, l := sm(t, w, 0, 2)
	deliver(t, q, "m1", "m2")
	if err := q.Deliver(msg(t, "m3")); !errors.Is(err, session.ErrTooManyUnacked) {
		t.Fatalf("third unacked stanza: %v", err)
	}
	if err := q.Ack(1); err != nil {
		t.Fatal(err)
	}
	deliver(t, q, "m3")
	<-l.Close(nil)
}

// TestQueueDetachAttach: a stream-managed queue keeps what arrives while
// detached, and a new connection gets the prefix and then every stanza
// not acknowledged, in order, once.
func TestQueueDetachAttach(t *testing.T) {
	w1 := &conn{}
	q, l1 := sm(t, w1, 0, 100)
	deliver(t, q, "m1", "m2", "m3")
	flush(t, l1)
	w1.take()
	if err := q.Ack(1); err != nil {
		t.Fatal(err)
	}
	l1.Detach()
	<-l1.Done()
	if !w1.isClosed() {
		t.Error("Detach did not close the old connection")
	}
	deliver(t, q, "m4", "m5")
	if err := l1.Send([]byte("<a/>")); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Send on a detached link: %v", err)
	}
	if q.Pending() != 0 {
		t.Errorf("%d bytes pending while detached", q.Pending())
	}

	w2 := &conn{}
	l2 := q.Attach(w2, []byte("<resumed xmlns='urn:xmpp:sm:3' h='0' previd='x'/>"))
	flush(t, l2)
	if got := ids(w2.elements(t)); got != "resumed m2 m3 m4 m5 r" {
		t.Errorf("after Attach: %s", got)
	}
	if err := q.Ack(5); err != nil {
		t.Fatal(err)
	}
	// A third connection takes over from the second while it is attached.
	w3 := &conn{}
	l3 := q.Attach(w3, []byte("<resumed xmlns='urn:xmpp:sm:3' h='0' previd='x'/>"))
	<-l2.Done()
	if !w2.isClosed() {
		t.Error("Attach did not close the connection it replaced")
	}
	deliver(t, q, "m6")
	flush(t, l3)
	if got := ids(w3.elements(t)); got != "resumed m6 r" {
		t.Errorf("on the third connection: %s", got)
	}
	if w2.take() != "" {
		t.Error("written to a replaced connection")
	}
	<-l3.Close(nil)
}

func TestQueueWaitAndFlush(t *testing.T) {
	w := &conn{gate: make(chan struct{})}
	q, l := session.NewQueue(1<<16, w)
	deliver(t, q, "m1", "m2", "m3")
	if l.Wait(nil, 0, 10*time.Millisecond) {
		t.Error("Wait reached 0 pending bytes with a stuck writer")
	}
	if err := l.Flush(10 * time.Millisecond); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Flush with a stuck writer: %v", err)
	}
	close(w.gate)
	if !l.Wait(nil, 0, 5*time.Second) {
		t.Error("Wait did not see the queue drain")
	}
	flush(t, l)
	if got := ids(w.elements(t)); got != "m1 m2 m3" {
		t.Errorf("written: %s", got)
	}
	<-l.Close(nil)
}

// TestCSIHolding: while the client is inactive, presence updates and
// chat states wait, the latest per sender and kind; everything else goes
// at once, and a message makes its sender's held chat state stale
// (XEP-0352 §4).
func TestCSIHolding(t *testing.T) {
	w := &conn{}
	q, l := session.NewQueue(1<<16, w)
	q.SetInactive(true)
	for _, s := range []string{
		`<presence from='b@x/1' id='pb1'><show>away</show></presence>`,
		`<presence from='c@x/1' id='pc1'/>`,
		`<presence from='b@x/1' id='pb2'><show>dnd</show></presence>`, // replaces pb1, goes last
		`<presence from='d@x/1' type='subscribe' id='sub'/>`,          // not an update: now
		`<presence from='c@x/1' type='unavailable' id='pc2'/>`,        // replaces pc1
		`<message from='b@x/1' type='chat' id='cb1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
		`<message from='b@x/1' type='chat' id='cb2'><thread>t</thread><paused xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/></message>`,
		`<message from='e@x/1' type='chat' id='ce'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
		`<message from='e@x/1' type='chat' id='body'><body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`, // now; ce is stale
		`<message from='f@x' type='groupchat' id='gc'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,            // now
		`<message from='f@x' type='error' id='err'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,               // now
		`<message from='g@x/1' id='hint'><store xmlns='urn:xmpp:hints'/></message>`,                                                    // no chat state: now
		`<iq from='h@x/1' type='get' id='iq'><ping xmlns='urn:xmpp:ping'/></iq>`,                                                       // now
	} {
		if err := q.Deliver(parse(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, l)
	if got := ids(w.elements(t)); got != "sub body gc err hint iq" {
		t.Errorf("while inactive: %s", got)
	}
	if inactive, held := q.Inactive(); !inactive || held != 3 {
		t.Errorf("Inactive() = %v, %d; want true, 3", inactive, held)
	}
	q.SetInactive(false)
	flush(t, l)
	if got := ids(w.elements(t)); got != "pb2 pc2 cb2" {
		t.Errorf("when active again: %s", got)
	}
	if inactive, held := q.Inactive(); inactive || held != 0 {
		t.Errorf("Inactive() = %v, %d; want false, 0", inactive, held)
	}
	deliver(t, q, "m1")
	flush(t, l)
	if got := ids(w.elements(t)); got != "m1" {
		t.Errorf("active: %s", got)
	}
	<-l.Close(nil)
}

// TestCSIHeldAreCounted: with stream management, held stanzas are
// counted when they are sent, not when they arrive.
func TestCSIHeldAreCounted(t *testing.T) {
	w := &conn{}
	q, l := sm(t, w, 0, 100)
	q.SetInactive(true)
	if err := q.Deliver(parse(t, `<presence from='b@x/1' id='p'/>`)); err != nil {
		t.Fatal(err)
	}
	if sent, _ := q.Counts(); sent != 0 {
		t.Errorf("a held stanza was counted: %d", sent)
	}
	q.SetInactive(false)
	flush(t, l)
	if sent, _ := q.Counts(); sent != 1 {
		t.Errorf("sent %d, want 1", sent)
	}
	if got := ids(w.elements(t)); got != "enabled p r" {
		t.Errorf("written: %s", got)
	}
	<-l.Close(nil)
}
