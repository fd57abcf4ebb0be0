package session

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSSM is the namespace of XEP-0198 stream management, version 3.
const NSSM = "urn:xmpp:sm:3"

// ErrQueueFull is returned when a stanza would pass the queue's byte
// limit: the receiver is too slow and its stream is closed.
var ErrQueueFull = errors.New("session: outbound queue full")

// ErrTooManyUnacked is returned when a stream-managed session would pass
// its limit of unacknowledged stanzas (XEP-0198 §5).
var ErrTooManyUnacked = errors.New("session: too many unacknowledged stanzas")

// ErrClosed is returned after the queue was closed.
var ErrClosed = errors.New("session: stream closing")

// ErrAckTooHigh is returned by Ack for an h above what was sent
// (XEP-0198 §4: handled-count-too-high).
var ErrAckTooHigh = errors.New("session: acknowledged more stanzas than were sent")

// Writer is what a queue writes to: one transport's connection.
type Writer interface {
	// Write writes p to the connection (with its own deadline).
	Write(p []byte) error
	// Close closes the connection after the last write.
	Close()
}

// Link is a queue's attachment to one connection: what that connection's
// reader uses to write its own elements (features, SASL, stream
// management) and to close it. Once the queue was detached from it or
// attached elsewhere, its methods do nothing and return ErrClosed.
type Link struct {
	q       *Queue
	w       Writer
	closing bool   // no more writes after what is pending and final
	final   []byte // written last, before Close
	done    chan struct{}
	writing bool // its writer goroutine runs
	failed  bool // a write failed: the connection is dead
}

// Queue is a session's outbound queue, bounded in bytes: senders append
// serialised stanzas without blocking, and a writer goroutine, started on
// demand and gone when there is nothing to write, drains it to the
// attached connection. An idle session holds no goroutine and no buffer.
//
// With stream management (XEP-0198) on, the queue also keeps each stanza
// it counted until the client acknowledges it, so that it can be resent
// on a new connection (Attach) or handed elsewhere when the session ends
// (TakeUnacked). The queue outlives its connection: Detach leaves it
// collecting stanzas for a later Attach.
type Queue struct {
	mu      sync.Mutex
	pend    []byte // bytes not yet handed to the writer
	spare   []byte // the writer's other buffer
	limit   int
	closed  bool // no more stanzas: the session is over
	att     *Link
	drained chan struct{} // closed by the writer when pend is at most low
	low     int

	// Client state indication (XEP-0352).
	inactive bool
	held     []heldStanza

	// deferred: a Batch starts the writer when its reader is done.
	deferred bool

	// Stream management; all zero while off.
	sm         bool
	unacked    []byte // the bytes of the unacknowledged stanzas, in order
	ends       []int  // end offset in unacked of each of them
	out        uint32 // stanzas counted (the h the client will reach)
	acked      uint32 // the client's last h
	maxUnacked int    // limit on len(ends)
	requested  bool   // an <r/> is outstanding
}

// NewQueue returns a queue bounded to limit bytes, attached to w.
func NewQueue(limit int, w Writer) (*Queue, *Link) {
	q := &Queue{limit: limit}
	q.att = &Link{q: q, w: w, done: make(chan struct{})}
	return q, q.att
}

// Send enqueues bytes that are not a stanza (stream headers, features,
// SASL and stream-management elements): they are never counted nor
// resent.
func (l *Link) Send(p []byte) error {
	q := l.q
	q.mu.Lock()
	if q.att != l || l.closing {
		q.mu.Unlock()
		return ErrClosed
	}
	if len(q.pend)+len(p) > q.limit {
		q.mu.Unlock()
		return ErrQueueFull
	}
	q.fill()
	q.pend = append(q.pend, p...)
	q.kick()
	return nil
}

// SendElement enqueues e, serialised in the jabber:client scope, as Send
// does.
func (l *Link) SendElement(e *xmlstream.Element) error {
	return l.Send(e.AppendXML(nil, stanza.NSClient))
}

// Deliver enqueues a stanza for the client, counted when stream
// management is on. While detached, a stream-managed queue keeps the
// stanza for resumption. While the client is inactive (XEP-0352),
// presence updates and chat states are held, the latest per sender.
func (q *Queue) Deliver(st *xmlstream.Element) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.inactive {
		if key, ok := holdKey(st); ok && len(q.held) < maxHeld {
			q.hold(key, st.Copy())
			q.mu.Unlock()
			return nil
		}
		if st.Name.Local == "message" {
			// A message makes a chat state held from its sender stale.
			q.unhold("c:" + stanza.From(st))
		}
	}
	if err := q.add(st, nil, ""); err != nil {
		q.mu.Unlock()
		return err
	}
	q.kick()
	return nil
}

// DeliverShared is Deliver for the stanza sh addressed to to: the queue
// copies the bytes sh holds, with to spliced in, instead of serialising
// the element.
func (q *Queue) DeliverShared(sh *Shared, to string) error {
	return q.DeliverSharedIn(nil, sh, to)
}

// DeliverSharedIn is DeliverShared under the batch b (nil for none): if
// b is active, the writer starts when b is flushed.
func (q *Queue) DeliverSharedIn(b *Batch, sh *Shared, to string) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.inactive {
		if key, ok := holdKey(sh.El); ok && len(q.held) < maxHeld {
			q.hold(key, sh.Addressed(to))
			q.mu.Unlock()
			return nil
		}
		if sh.El.Name.Local == "message" {
			q.unhold("c:" + stanza.From(sh.El))
		}
	}
	if err := q.add(nil, sh, to); err != nil {
		q.mu.Unlock()
		return err
	}
	if b != nil && (q.att == nil || !q.att.writing) && b.deferQueue(q) {
		q.mu.Unlock()
		return nil
	}
	q.kick()
	return nil
}

// add appends st, or sh addressed to to, to the queue; q.mu is held.
func (q *Queue) add(st *xmlstream.Element, sh *Shared, to string) error {
	attached := q.att != nil && !q.att.closing
	if !q.sm {
		if !attached {
			return ErrClosed
		}
		q.fill()
		n := len(q.pend)
		if sh != nil {
			q.pend = sh.AppendTo(q.pend, to)
		} else {
			q.pend = st.AppendXML(q.pend, stanza.NSClient)
		}
		if len(q.pend) > q.limit {
			q.pend = q.pend[:n]
			return ErrQueueFull
		}
		return nil
	}
	if len(q.ends) >= q.maxUnacked {
		return ErrTooManyUnacked
	}
	n := len(q.unacked)
	if sh != nil {
		q.unacked = sh.AppendTo(q.unacked, to)
	} else {
		q.unacked = st.AppendXML(q.unacked, stanza.NSClient)
	}
	if len(q.unacked) > unackedBytes*q.limit {
		q.unacked = q.unacked[:n]
		return ErrTooManyUnacked
	}
	q.ends = append(q.ends, len(q.unacked))
	q.out++
	if attached {
		q.fill()
		q.pend = append(q.pend, q.unacked[n:]...)
	}
	return nil
}

// unackedBytes is how many times the queue's byte limit the
// unacknowledged stanzas of a stream-managed session may hold: a client
// acknowledges a burst one round trip after it arrived.
const unackedBytes = 4

// maxHeld bounds the stanzas held for an inactive client; past it they
// go out at once.
const maxHeld = 1000

// heldStanza is a stanza held while the client is inactive.
type heldStanza struct {
	key string
	st  *xmlstream.Element
}

// holdKey says whether st may wait while the client is inactive
// (XEP-0352 §4: presence updates and chat states), and under which key
// a later one replaces it.
func holdKey(st *xmlstream.Element) (string, bool) {
	switch st.Name.Local {
	case "presence":
		if t := stanza.Type(st); t == "" || t == stanza.PresenceUnavailable {
			return "p:" + stanza.From(st), true
		}
	case "message":
		if t := stanza.Type(st); t == stanza.MessageError || t == stanza.MessageGroupchat {
			return "", false
		}
		state := false
		for _, ch := range st.Children {
			switch {
			case ch.Elem == nil:
			case ch.Elem.Name.Space == NSChatStates:
				state = true
			case ch.Elem.Name.Local == "thread", ch.Elem.Name.Space == NSHints:
			default:
				return "", false // a body, or anything else: urgent
			}
		}
		if state {
			return "c:" + stanza.From(st), true
		}
	}
	return "", false
}

// NSChatStates is XEP-0085's namespace.
const NSChatStates = "http://jabber.org/protocol/chatstates"

// NSHints is XEP-0334's namespace (message processing hints).
const NSHints = "urn:xmpp:hints"

// hold keeps st, replacing an earlier stanza with the same key; q.mu is
// held.
func (q *Queue) hold(key string, st *xmlstream.Element) {
	q.unhold(key)
	q.held = append(q.held, heldStanza{key, st})
}

// unhold forgets the held stanza with key; q.mu is held.
func (q *Queue) unhold(key string) {
	for i, h := range q.held {
		if h.key == key {
			q.held = append(q.held[:i], q.held[i+1:]...)
			return
		}
	}
}

// SetInactive records the client's state (XEP-0352): while inactive,
// presence updates and chat states wait; becoming active sends them.
func (q *Queue) SetInactive(inactive bool) {
	q.mu.Lock()
	q.inactive = inactive
	if inactive || len(q.held) == 0 {
		q.mu.Unlock()
		return
	}
	held := q.held
	q.held = nil
	for _, h := range held {
		if err := q.add(h.st, nil, ""); err != nil {
			break
		}
	}
	q.kick()
}

// Inactive reports whether the client said it is inactive, and how many
// stanzas are held for it.
func (q *Queue) Inactive() (bool, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.inactive, len(q.held)
}

// startDeferred starts a's writer if a batch deferred it, so that a wait
// for the queue to drain does not wait for the batch's reader; q.mu is
// held and is released.
func (q *Queue) startDeferred(a *Link) {
	if q.deferred && q.att == a {
		q.kick()
		return
	}
	q.mu.Unlock()
}

// kick starts the writer if needed; q.mu is held and is released.
func (q *Queue) kick() {
	a := q.att
	start := a != nil && !a.writing
	if start {
		a.writing = true
	}
	q.mu.Unlock()
	if start {
		go q.run(a)
	}
}

// run is the writer goroutine of one attachment.
func (q *Queue) run(a *Link) {
	for {
		q.mu.Lock()
		if q.drained != nil && len(q.pend) <= q.low {
			close(q.drained)
			q.drained = nil
		}
		if q.att != a {
			// Detached while writing: the connection is gone.
			a.writing = false
			q.mu.Unlock()
			a.w.Close()
			close(a.done)
			return
		}
		if len(q.pend) == 0 || a.failed {
			if !a.closing {
				a.writing = false
				// An idle session holds no buffer: both go back to the
				// pool.
				release(q.spare)
				release(q.pend)
				q.spare, q.pend = nil, nil
				q.mu.Unlock()
				return
			}
			final, failed := a.final, a.failed
			a.final = nil
			q.pend = nil
			q.mu.Unlock()
			if !failed && len(final) > 0 {
				_ = a.w.Write(final)
			}
			a.w.Close()
			close(a.done)
			return
		}
		if q.sm && !q.requested && len(q.ends) > 0 {
			// Ask for an acknowledgement after each burst (XEP-0198 §4).
			q.pend = append(q.pend, "<r xmlns='"+NSSM+"'/>"...)
			q.requested = true
		}
		out := q.pend
		q.pend = q.spare[:0]
		q.spare = nil
		q.mu.Unlock()

		err := a.w.Write(out)

		if err != nil {
			// The connection is dead: close it so that its reader sees
			// it too, and write nothing more to it.
			a.w.Close()
		}
		q.mu.Lock()
		if err != nil {
			a.failed = true
		}
		if cap(out) <= maxPooled {
			q.spare = out[:0]
		}
		q.mu.Unlock()
	}
}

// Wait blocks until at most low bytes are pending (or the connection
// closes), for at most timeout, and reports whether the level was
// reached. A connection's reader calls it before reading more, so that a
// client that does not read what its own stanzas produce is slowed down
// rather than overflowing its queue. Before it blocks it flushes b, the
// reader's batch (nil for none), whose deferred writers would otherwise
// wait as long as it does.
func (l *Link) Wait(b *Batch, low int, timeout time.Duration) bool {
	q, a := l.q, l
	q.mu.Lock()
	if len(q.pend) <= low || q.att != a || a.closing {
		q.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	q.drained, q.low = ch, low
	q.startDeferred(a)
	if b != nil {
		b.Flush()
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-a.done:
		return true
	case <-t.C:
		q.mu.Lock()
		q.drained = nil
		q.mu.Unlock()
		return false
	}
}

// Flush waits until everything enqueued so far was written, for the last
// bytes before a change of layer (STARTTLS, a resumed session taking the
// connection over). It fails when the connection closes or timeout
// passes. Like Wait, it is called by the connection's reader only.
func (l *Link) Flush(timeout time.Duration) error {
	q, a := l.q, l
	q.mu.Lock()
	if q.att != a || a.closing || a.failed {
		q.mu.Unlock()
		return ErrClosed
	}
	if !a.writing && len(q.pend) == 0 {
		q.mu.Unlock()
		return nil
	}
	// The writer closes drained at the top of its loop, after its last
	// write returned, once nothing is pending.
	ch := make(chan struct{})
	q.drained, q.low = ch, 0
	q.startDeferred(a)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.att != a || a.closing || a.failed {
			return ErrClosed
		}
		return nil
	case <-a.done:
		return ErrClosed
	case <-t.C:
		q.mu.Lock()
		q.drained = nil
		q.mu.Unlock()
		return ErrClosed
	}
}

// Pending returns the number of bytes not yet handed to a connection.
func (q *Queue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pend)
}

// Close closes the connection: what is pending is written, then final,
// then the connection is closed. Only the first call's final counts. It
// returns a channel closed when the connection is closed. On a link that
// is no longer the queue's, it only closes the connection.
func (l *Link) Close(final []byte) <-chan struct{} {
	q, a := l.q, l
	q.mu.Lock()
	if q.att != a {
		q.mu.Unlock()
		return a.done
	}
	if a.closing {
		q.mu.Unlock()
		return a.done
	}
	a.closing = true
	a.final = final
	start := !a.writing
	a.writing = true
	q.mu.Unlock()
	if start {
		go q.run(a)
	}
	return a.done
}

// Close ends the session's queue: no more stanzas are accepted. It does
// not touch the connection (see CloseWriter).
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// Detach separates the queue from the link's connection, whose writer
// closes it once its current write returns. A stream-managed queue goes
// on collecting stanzas for Attach; pending bytes are dropped, since the
// unacknowledged stanzas are resent from the start on resumption. It does
// nothing when the queue was already attached elsewhere.
func (l *Link) Detach() {
	q, a := l.q, l
	q.mu.Lock()
	if q.att != a {
		q.mu.Unlock()
		return
	}
	q.att = nil
	q.pend = nil
	q.requested = false
	if !a.writing {
		q.mu.Unlock()
		a.w.Close()
		close(a.done)
		return
	}
	q.mu.Unlock()
}

// Attach makes w the queue's connection (after a resumption): the
// unacknowledged stanzas are written to it first, then what arrives. prefix
// (the <resumed/> element) goes before them.
func (q *Queue) Attach(w Writer, prefix []byte) *Link {
	q.mu.Lock()
	l := &Link{q: q, w: w, done: make(chan struct{})}
	old := q.att
	q.att = l
	q.pend = append(append([]byte(nil), prefix...), q.unacked...)
	q.requested = false
	if old != nil && !old.writing {
		defer func() { old.w.Close(); close(old.done) }()
	}
	q.kick()
	return l
}

// Done returns a channel closed when the link's connection has been
// closed.
func (l *Link) Done() <-chan struct{} { return l.done }

// Queue returns the queue the link belongs to.
func (l *Link) Queue() *Queue { return l.q }

// EnableSM turns stream management on and enqueues enabled (the
// <enabled/> element) on the link: every stanza after it is counted and
// kept until acknowledged, at most maxUnacked of them. start is the
// initial count (0 but in tests of the 2^32 wrap).
func (l *Link) EnableSM(maxUnacked int, start uint32, enabled []byte) error {
	q := l.q
	q.mu.Lock()
	if q.att != l || l.closing {
		q.mu.Unlock()
		return ErrClosed
	}
	q.sm = true
	q.maxUnacked = maxUnacked
	q.out, q.acked = start, start
	q.pend = append(q.pend, enabled...)
	q.kick()
	return nil
}

// SM reports whether stream management is on.
func (q *Queue) SM() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.sm
}

// Ack records the client's count of handled stanzas (an <a/> or the h of
// <resume/>, mod 2^32) and drops the stanzas it covers. An h lower than
// the last one is ignored; one above what was sent is ErrAckTooHigh.
func (q *Queue) Ack(h uint32) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.requested = false
	n := h - q.acked // mod 2^32
	if n == 0 {
		return nil
	}
	if int64(n) > int64(len(q.ends)) {
		if q.acked-h < 1<<31 {
			return nil // an older, lower count
		}
		return ErrAckTooHigh
	}
	q.drop(int(n))
	q.acked = h
	return nil
}

// drop removes the first n unacknowledged stanzas.
func (q *Queue) drop(n int) {
	if n == len(q.ends) {
		q.ends = q.ends[:0]
		q.unacked = q.unacked[:0]
		if cap(q.unacked) > 4096 {
			q.unacked, q.ends = nil, nil
		}
	} else {
		cut := q.ends[n-1]
		copy(q.unacked, q.unacked[cut:])
		q.unacked = q.unacked[:len(q.unacked)-cut]
		copy(q.ends, q.ends[n:])
		q.ends = q.ends[:len(q.ends)-n]
		for i := range q.ends {
			q.ends[i] -= cut
		}
	}
}

// Counts returns the number of stanzas counted (h the client should
// reach) and the client's last acknowledged h.
func (q *Queue) Counts() (sent, acked uint32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.out, q.acked
}

// TakeUnacked returns the unacknowledged stanzas and forgets them, for a
// session that ends without resumption: messages go to offline storage,
// IQs are answered with an error.
func (q *Queue) TakeUnacked() []*xmlstream.Element {
	q.mu.Lock()
	b, ends := q.unacked, q.ends
	q.unacked, q.ends = nil, nil
	q.acked = q.out
	q.mu.Unlock()
	out := make([]*xmlstream.Element, 0, len(ends))
	start := 0
	for _, end := range ends {
		e, err := xmlstream.ParseElement(b[start:end], stanza.NSClient)
		start = end
		if err == nil {
			out = append(out, e)
		}
	}
	return out
}

// AckElement returns <a h='…'/> for h (XEP-0198 §4).
func AckElement(h uint32) []byte {
	b := append([]byte("<a xmlns='"+NSSM+"' h='"), strconv.FormatUint(uint64(h), 10)...)
	return append(b, "'/>"...)
}

// Write buffers of queues that went idle wait in a pool for the next
// burst of any queue, so that a burst takes no allocation while an idle
// session holds no buffer. The pool is bounded (free buffers beyond it
// are left to the garbage collector).
var pool = make(chan []byte, 1024)

const (
	minPooled = 4 << 10  // a new buffer's capacity
	maxPooled = 64 << 10 // larger buffers are not kept
)

// fill gives an empty pend a buffer from the pool; q.mu is held.
func (q *Queue) fill() {
	if q.pend != nil {
		return
	}
	select {
	case b := <-pool:
		q.pend = b
	default:
		q.pend = make([]byte, 0, minPooled)
	}
}

// release puts b, no longer used, into the pool.
func release(b []byte) {
	if cap(b) < minPooled || cap(b) > maxPooled {
		return
	}
	select {
	case pool <- b[:0]:
	default:
	}
}
