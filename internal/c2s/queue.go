package c2s

import (
	"errors"
	"sync"
	"time"
)

// errQueueFull is returned by enqueue when the outbound queue would pass its
// byte limit: the receiver is too slow and its stream is closed.
var errQueueFull = errors.New("c2s: outbound queue full")

// errQueueClosed is returned by enqueue after the stream started closing.
var errQueueClosed = errors.New("c2s: stream closing")

// outQueue is a connection's bounded outbound queue, in bytes. Senders only
// append; a writer goroutine, started on demand and gone when the queue is
// empty, drains it to the socket, so an idle session holds no goroutine and
// no buffer for writing.
type outQueue struct {
	mu      sync.Mutex
	buf     []byte // pending bytes
	limit   int
	writing bool // a writer goroutine is running
	closing bool // no more enqueues; the writer closes the socket when done
	final   []byte
	done    chan struct{} // closed when the socket has been closed by the writer
	drained chan struct{} // closed by the writer when buf is at most low
	low     int           // the level drained waits for

	write func(p []byte) error // writes to the socket (with a deadline)
	close func()               // closes the socket
}

func newOutQueue(limit int, write func([]byte) error, closeFn func()) *outQueue {
	return &outQueue{limit: limit, write: write, close: closeFn, done: make(chan struct{})}
}

// enqueue appends the bytes that fill() adds to the queue, without
// blocking on the socket.
func (q *outQueue) enqueue(fill func([]byte) []byte) error {
	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		return errQueueClosed
	}
	n := len(q.buf)
	q.buf = fill(q.buf)
	if len(q.buf) > q.limit {
		q.buf = q.buf[:n]
		q.mu.Unlock()
		return errQueueFull
	}
	start := !q.writing
	q.writing = true
	q.mu.Unlock()
	if start {
		go q.run()
	}
	return nil
}

// wait blocks until at most low bytes are pending (or the queue closes),
// for at most timeout. It reports whether the level was reached. The
// connection's reader calls it before reading more input so that a client
// that does not read what its own stanzas produce (replies, bounces) is
// slowed down rather than overflowing its queue.
func (q *outQueue) wait(low int, timeout time.Duration) bool {
	q.mu.Lock()
	if len(q.buf) <= low || q.closing {
		q.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	q.drained, q.low = ch, low
	q.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-q.done:
		return true
	case <-t.C:
		q.mu.Lock()
		q.drained = nil
		q.mu.Unlock()
		return false
	}
}

// pending returns the number of bytes not yet handed to the socket.
func (q *outQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf)
}

// closeWith stops further enqueues; the writer sends what is pending, then
// final, then closes the socket. It is safe to call more than once: only
// the first final counts.
func (q *outQueue) closeWith(final []byte) {
	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		return
	}
	q.closing = true
	q.final = final
	start := !q.writing
	q.writing = true
	q.mu.Unlock()
	if start {
		go q.run()
	}
}

// run is the writer goroutine.
func (q *outQueue) run() {
	var spare []byte
	failed := false
	for {
		q.mu.Lock()
		if q.drained != nil && len(q.buf) <= q.low {
			close(q.drained)
			q.drained = nil
		}
		if len(q.buf) == 0 {
			if !q.closing {
				q.writing = false
				if cap(q.buf) > 4096 {
					q.buf = nil // an idle session keeps no large buffer
				}
				q.mu.Unlock()
				return
			}
			final := q.final
			q.final = nil
			q.mu.Unlock()
			if !failed && len(final) > 0 {
				_ = q.write(final)
			}
			q.close()
			close(q.done)
			return
		}
		out := q.buf
		q.buf = spare[:0]
		q.mu.Unlock()

		if !failed {
			if err := q.write(out); err != nil {
				failed = true
				q.mu.Lock()
				q.closing = true
				q.mu.Unlock()
			}
		}
		if cap(out) <= 64<<10 {
			spare = out[:0]
		} else {
			spare = nil
		}
	}
}
