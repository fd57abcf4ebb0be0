// Package session is a bound client session, independent of the transport
// that carries it: its full JID, its presence, typed per-module state, and
// the queue of stanzas to the client with the counters of XEP-0198 stream
// management.
//
// A session is created by resource binding (RFC 6120 §7) and outlives its
// connection when stream management with resumption is on: the c2s layer
// detaches it when the connection drops, it keeps receiving, and a new
// connection resumes it (XEP-0198 §5) without the router or modules seeing
// it leave.
package session

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/internal/metrics"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Owner is the layer that runs a session's connections (c2s).
type Owner interface {
	// CloseSession ends s with the stream error se: its stream is closed
	// with it if a connection is attached, and the session ends without
	// waiting for a resumption.
	CloseSession(s *Session, se *stream.Error)
}

// Session is a bound client resource.
type Session struct {
	full  jid.JID
	q     *Queue
	owner Owner

	presence   atomic.Uint32 // 0: unavailable; else 0x100|(priority+128)
	lastActive atomic.Int64  // Unix nanoseconds of the last element from the client
	in         atomic.Uint32 // stanzas handled from the client (XEP-0198 h)
	detached   atomic.Bool   // no connection: waiting for a resumption

	values Values
	info   atomic.Pointer[Info]

	// Stream management, set by the owner on the reader goroutine; the
	// resumption fields are read under the owner's lock.
	SMID          string        // resumption id, "" when not resumable
	ResumeTimeout time.Duration // how long a detached session waits
}

// New returns a session for the full JID, whose stanzas go to q.
func New(full jid.JID, q *Queue, owner Owner) *Session {
	s := &Session{full: full, q: q, owner: owner}
	s.Touch()
	return s
}

// Info is what the server's administrators see of a session.
type Info struct {
	// Transport names the connection's carrier: "tcp" (STARTTLS),
	// "tls" (direct TLS), "websocket" or "bosh".
	Transport string
	// Remote is the client's address (as a trusted proxy reported it).
	Remote string
	// Client is the client's software, as it named itself (the SASL2
	// user-agent, XEP-0388), or "".
	Client string
	// Since is when the session was bound.
	Since time.Time
}

// SetInfo records what administrators see of the session (at binding
// and each resumption).
func (s *Session) SetInfo(i Info) { s.info.Store(&i) }

// Info returns what SetInfo recorded (zero if nothing).
func (s *Session) Info() Info {
	if p := s.info.Load(); p != nil {
		return *p
	}
	return Info{}
}

// JID returns the session's full JID.
func (s *Session) JID() jid.JID { return s.full }

// Queue returns the session's outbound queue.
func (s *Session) Queue() *Queue { return s.q }

// Values returns the session's per-module state.
func (s *Session) Values() *Values { return &s.values }

// Presence returns the priority of the session's last broadcast presence
// and whether the resource is available (RFC 6121 §4.2).
func (s *Session) Presence() (int, bool) {
	v := s.presence.Load()
	if v == 0 {
		return 0, false
	}
	return int(v&0xff) - 128, true
}

// UpdatePresence records availability and priority from a broadcast
// presence the client sent (RFC 6121 §4.2, §4.7.2.3).
func (s *Session) UpdatePresence(e *xmlstream.Element) {
	switch stanza.Type(e) {
	case "":
		prio := 0
		if p := e.Child("", "priority"); p != nil {
			if n, err := strconv.Atoi(strings.TrimSpace(p.Text())); err == nil && n >= -128 && n <= 127 {
				prio = n
			}
		}
		s.presence.Store(0x100 | uint32(prio+128))
	case stanza.PresenceUnavailable:
		s.presence.Store(0)
	}
}

// Detached reports whether the session has no connection and waits for
// a resumption (XEP-0198 §5): what is delivered to it is held until the
// client comes back (or the session expires), which is when push
// notifications (XEP-0357) wake the client's device.
func (s *Session) Detached() bool { return s.detached.Load() }

// SetDetached records, for the owner, whether the session is detached.
func (s *Session) SetDetached(d bool) { s.detached.Store(d) }

// Touch records activity from the client.
func (s *Session) Touch() { s.lastActive.Store(time.Now().UnixNano()) }

// LastActive returns when the client last sent an element.
func (s *Session) LastActive() time.Time { return time.Unix(0, s.lastActive.Load()) }

// Handled counts one stanza handled from the client (XEP-0198) and
// returns the new count.
func (s *Session) Handled() uint32 { return s.in.Add(1) }

// HandledCount returns the count of stanzas handled from the client.
func (s *Session) HandledCount() uint32 { return s.in.Load() }

// SetHandledCount sets the count (when stream management is enabled).
func (s *Session) SetHandledCount(h uint32) { s.in.Store(h) }

// Deliver enqueues st for the client without blocking. An error means
// the stanza was not accepted; a queue that overflowed also ends the
// session (a receiver that does not read must not make the server hold
// its traffic).
func (s *Session) Deliver(st *xmlstream.Element) error {
	return s.delivered(s.q.Deliver(st), st.Name.Local)
}

// DeliverShared is Deliver for a stanza serialised once for many
// recipients, addressed to to (this session's full JID), under the batch
// b (nil for none: see Batch).
func (s *Session) DeliverShared(b *Batch, sh *Shared, to string) error {
	return s.delivered(s.q.DeliverSharedIn(b, sh, to), sh.El.Name.Local)
}

// delivered counts a stanza named local that the queue accepted, and
// closes the session when its queue refused it for being too slow or too
// far behind.
func (s *Session) delivered(err error, local string) error {
	switch err {
	case nil:
		metrics.C2SOut(local)
	case ErrQueueFull:
		metrics.Overflow(metrics.C2SQueue)
		s.owner.CloseSession(s, &stream.Error{Condition: stream.PolicyViolation, Text: "too slow to read its stream"})
	case ErrTooManyUnacked:
		metrics.Overflow(metrics.C2SUnacked)
		s.owner.CloseSession(s, &stream.Error{Condition: stream.ResourceConstraint, Text: "too many unacknowledged stanzas"})
	}
	return err
}

// Close ends the session with the stream error se.
func (s *Session) Close(se *stream.Error) { s.owner.CloseSession(s, se) }

// QueriedArchive is set by the message archive module (XEP-0313) on a
// session that queried its archive. When such a session ends without
// acknowledging a message that carries the account's stanza-id
// (XEP-0359), the message is archived and the client fetches it from
// there: it is dropped rather than handed to offline storage, which would
// deliver it twice (the rule Prosody follows).
var QueriedArchive = NewKey[bool]()

// KeepDetached is set by a module that wants the session to wait longer
// for a resumption once detached than the client asked for: the push
// module (XEP-0357) on a session that enabled push notifications, whose
// device it can wake. The owner waits for the longer of the two.
var KeepDetached = NewKey[time.Duration]()

// Carbons is set on a session that enabled XEP-0280 message carbons: by
// the carbons module's IQ, or by c2s when a client asks for them inline
// in XEP-0386 Bind2 (c2s offers that only when the router lists the
// carbons feature, that is, when the module runs).
var Carbons = NewKey[bool]()

// Values holds a session's per-module state under typed keys (Key). It is
// safe for concurrent use and empty (no allocation) until a value is set.
type Values struct {
	mu sync.Mutex
	m  map[any]any
}

// Key is a typed key for a module's state in a session: a module declares
// one as a package variable (var stateKey = session.NewKey[*myState]()).
// The state lives as long as the session, resumptions included.
type Key[T any] struct{ _ byte }

// NewKey returns a new key, distinct from every other.
func NewKey[T any]() *Key[T] { return new(Key[T]) }

// Get returns the value stored under k, if any.
func (k *Key[T]) Get(v *Values) (T, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	x, ok := v.m[k]
	if !ok {
		var zero T
		return zero, false
	}
	return x.(T), true
}

// Set stores x under k.
func (k *Key[T]) Set(v *Values, x T) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = make(map[any]any, 2)
	}
	v.m[k] = x
}

// GetOrInit returns the value under k, storing init() first if there is
// none.
func (k *Key[T]) GetOrInit(v *Values, init func() T) T {
	v.mu.Lock()
	defer v.mu.Unlock()
	if x, ok := v.m[k]; ok {
		return x.(T)
	}
	if v.m == nil {
		v.m = make(map[any]any, 2)
	}
	x := init()
	v.m[k] = x
	return x
}

// Delete removes the value under k.
func (k *Key[T]) Delete(v *Values) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, k)
}
