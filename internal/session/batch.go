package session

import (
	"context"
	"sync"
)

// Batch defers the start of queues' writers while one reader goroutine
// handles what a single read of its connection brought: a room's
// messages, a burst of publishes. Each recipient's writer then starts
// once, after the last of them, and sends them all in one write instead
// of one TLS record and one system call per stanza per recipient (the
// "flush at the end of the read loop" of nats-server).
//
// The reader calls Begin before it handles elements and Flush before it
// blocks on its connection again; deliveries made while the batch is not
// active (from other goroutines that inherited the context after the
// reader flushed) start their writers at once, so nothing waits for a
// read that may never come.
type Batch struct {
	mu     sync.Mutex
	active bool
	qs     []*Queue
}

type batchKey struct{}

// WithBatch returns ctx carrying b, for the deliveries made under it.
func WithBatch(ctx context.Context, b *Batch) context.Context {
	return context.WithValue(ctx, batchKey{}, b)
}

// BatchFrom returns the batch ctx carries, or nil.
func BatchFrom(ctx context.Context) *Batch {
	b, _ := ctx.Value(batchKey{}).(*Batch)
	return b
}

// Begin makes b defer the writers of the queues it is given until Flush.
func (b *Batch) Begin() {
	b.mu.Lock()
	b.active = true
	b.mu.Unlock()
}

// Flush starts the writers b deferred and makes it inactive: until the
// next Begin, deliveries under it start their writers at once.
func (b *Batch) Flush() {
	b.mu.Lock()
	b.active = false
	qs := b.qs
	b.qs = nil
	b.mu.Unlock()
	if len(qs) == 0 {
		return
	}
	for i, q := range qs {
		q.mu.Lock()
		q.deferred = false
		q.kick()
		qs[i] = nil
	}
	if cap(qs) <= maxBatched {
		// Only the reader calls Begin: nothing was added since.
		b.mu.Lock()
		b.qs = qs[:0]
		b.mu.Unlock()
	}
}

// maxBatched bounds the slice a batch keeps between reads.
const maxBatched = 4096

// deferQueue records q, whose writer is not running, to be started by Flush,
// and reports whether it did (false: b is not active, start it now);
// q.mu is held.
func (b *Batch) deferQueue(q *Queue) bool {
	if q.deferred {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.active {
		return false
	}
	q.deferred = true
	b.qs = append(b.qs, q)
	return true
}
