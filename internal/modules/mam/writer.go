package mam

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/metrics"
	"github.com/ode-xmpp/ode/internal/storage"
)

// The archive writer's limits.
const (
	// queueBytes bounds the stanza bytes waiting to be written; past it
	// archiving a message waits (backpressure on the sender). It holds
	// more than gatherDelay of traffic at full speed.
	queueBytes = 32 << 20
	// batchRows and batchBytes bound one transaction.
	batchRows  = 16384
	batchBytes = 16 << 20
	// retryEvery is the pause after a failed transaction; a batch is
	// tried retries times and then dropped (logged).
	retryEvery = 200 * time.Millisecond
	retries    = 5
	// gatherDelay is how long the writer waits for a full batch once
	// rows are queued. Rows of many accounts land on many index pages
	// (one per account and index), and each commit rewrites every page it
	// touched: a commit must hold several rows per account before the
	// pages are shared. Under ode bench chat with 1,000 users this is the
	// difference between 4,000 and 16,000 messages/s. A Sync (an
	// acknowledgement, a query) shortens the wait to syncDelay.
	gatherDelay = 250 * time.Millisecond
	syncDelay   = 10 * time.Millisecond
)

// writer writes archived messages in batches (group commit, DESIGN
// "Storage"): hooks enqueue rows without waiting for the disk, and one
// goroutine takes whatever has accumulated, up to batchRows, and writes it
// in one transaction; while it commits, the next batch accumulates. A
// crash loses what was queued and not yet committed: at most the messages
// of the last few transactions' time, bounded by queueBytes.
type writer struct {
	store AppendFunc
	log   *slog.Logger

	mu      sync.Mutex
	rows    []storage.ArchivedMessage
	bytes   int
	room    chan struct{} // closed when bytes drop below queueBytes; nil when not full
	queued  uint64        // rows ever enqueued
	written uint64        // rows ever taken and committed (or dropped)
	waiters []waiter      // Sync calls
	closed  bool

	wake chan struct{} // cap 1: rows are waiting
	done chan struct{} // the goroutine ended
}

type waiter struct {
	upTo uint64
	ch   chan struct{}
}

func newWriter(store AppendFunc, log *slog.Logger) *writer {
	w := &writer{store: store, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// enqueue queues m for writing. It waits only while the queue is full,
// until there is room or ctx ends (then m is not archived).
func (w *writer) enqueue(ctx context.Context, m storage.ArchivedMessage) error {
	for waited := false; ; waited = true {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return errStopped
		}
		if w.bytes == 0 || w.bytes+len(m.Stanza) <= queueBytes {
			w.rows = append(w.rows, m)
			w.bytes += len(m.Stanza)
			w.queued++
			w.mu.Unlock()
			metrics.ArchiveQueued(len(m.Stanza))
			select {
			case w.wake <- struct{}{}:
			default:
			}
			return nil
		}
		if w.room == nil {
			w.room = make(chan struct{})
		}
		room := w.room
		w.mu.Unlock()
		if !waited {
			metrics.Overflow(metrics.ArchiveQueue)
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sync waits until every row enqueued before the call is committed, so
// that a query sees the messages its sender has already received.
func (w *writer) sync(ctx context.Context) error {
	w.mu.Lock()
	if w.written >= w.queued {
		w.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	w.waiters = append(w.waiters, waiter{upTo: w.queued, ch: ch})
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}: // end the writer's gathering
	default:
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop writes what is queued and ends the goroutine.
func (w *writer) stop() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}

func (w *writer) run() {
	defer close(w.done)
	for {
		<-w.wake
		w.gather()
		for {
			batch, closed := w.take()
			if len(batch) == 0 {
				if closed {
					return
				}
				break
			}
			w.write(batch)
			w.committed(len(batch))
		}
	}
}

// gather waits up to gatherDelay for a full batch, or syncDelay once a
// Sync waits, or not at all when the queue is full or the writer stops.
func (w *writer) gather() {
	t := time.NewTimer(gatherDelay)
	defer t.Stop()
	short := false
	for {
		w.mu.Lock()
		full := len(w.rows) >= batchRows || w.closed || w.room != nil
		waiting := len(w.waiters) > 0
		w.mu.Unlock()
		if full {
			return
		}
		if waiting && !short {
			short = true
			t.Reset(syncDelay)
		}
		select {
		case <-w.wake:
		case <-t.C:
			return
		}
	}
}

// take removes the next batch from the queue.
func (w *writer) take() ([]storage.ArchivedMessage, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, size := 0, 0
	for n < len(w.rows) && n < batchRows && (n == 0 || size+len(w.rows[n].Stanza) <= batchBytes) {
		size += len(w.rows[n].Stanza)
		n++
	}
	batch := make([]storage.ArchivedMessage, n)
	copy(batch, w.rows)
	clear(w.rows[:n])
	w.rows = w.rows[n:]
	if len(w.rows) == 0 {
		w.rows = nil // let the backing array go
	}
	w.bytes -= size
	metrics.ArchiveTaken(n, size)
	if w.room != nil && w.bytes < queueBytes {
		close(w.room)
		w.room = nil
	}
	return batch, w.closed
}

// committed counts n rows as written and releases the Sync calls that
// waited for them.
func (w *writer) committed(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written += uint64(n)
	keep := w.waiters[:0]
	for _, wt := range w.waiters {
		if wt.upTo <= w.written {
			close(wt.ch)
		} else {
			keep = append(keep, wt)
		}
	}
	clear(w.waiters[len(keep):])
	w.waiters = keep
}

// write stores one batch, retrying a failed transaction a few times.
func (w *writer) write(batch []storage.ArchivedMessage) {
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := w.store(ctx, batch)
		cancel()
		if err == nil {
			metrics.ArchiveWritten(true, len(batch))
			return
		}
		if try == retries {
			metrics.ArchiveWritten(false, len(batch))
			w.log.Error("archive: batch dropped", "messages", len(batch), "err", err)
			return
		}
		w.log.Warn("archive: write failed, retrying", "messages", len(batch), "err", err)
		// A pause before the next try, also while stopping: the queue is
		// written out, not dropped.
		<-time.After(retryEvery)
	}
}
