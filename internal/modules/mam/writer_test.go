package mam

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
)

// slowArchive records the batches it is given; each waits for release.
type slowArchive struct {
	storage.Archive
	release chan struct{}
	mu      sync.Mutex
	batches []int
}

func (a *slowArchive) AppendArchive(ctx context.Context, msgs []storage.ArchivedMessage) (int, error) {
	<-a.release
	a.mu.Lock()
	defer a.mu.Unlock()
	a.batches = append(a.batches, len(msgs))
	return len(msgs), nil
}

func (a *slowArchive) total() (rows, batches int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.batches {
		rows += n
	}
	return rows, len(a.batches)
}

// TestWriterGroupCommit: rows queued while a transaction runs go in the
// next one together; a full queue makes enqueue wait (until there is room
// or its context ends); sync waits for what was queued before it; stop
// writes everything.
func TestWriterGroupCommit(t *testing.T) {
	a := &slowArchive{release: make(chan struct{})}
	w := newWriter(a.AppendArchive, slog.New(slog.DiscardHandler))
	row := func(size int) storage.ArchivedMessage {
		return storage.ArchivedMessage{ID: "x", Stanza: []byte(strings.Repeat("m", size))}
	}
	ctx := t.Context()
	if err := w.enqueue(ctx, row(10)); err != nil { // taken at once: the first transaction
		t.Fatal(err)
	}
	for range 100 {
		if err := w.enqueue(ctx, row(10)); err != nil {
			t.Fatal(err)
		}
	}
	// The queue is full once queueBytes of stanzas wait.
	if err := w.enqueue(ctx, row(queueBytes-2000)); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := w.enqueue(short, row(4000)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("enqueue into a full queue = %v, want it to wait until its context ends", err)
	}
	synced := make(chan error, 1)
	go func() { synced <- w.sync(ctx) }()
	select {
	case err := <-synced:
		t.Fatalf("sync returned %v before anything was written", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(a.release) // every transaction may go now
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if rows, batches := a.total(); rows != 102 || batches > 3 {
		t.Errorf("%d rows in %d transactions, want 102 in at most 3 (1, then the queued ones together)", rows, batches)
	}
	if err := w.enqueue(ctx, row(10)); err != nil {
		t.Fatal(err)
	}
	w.stop()
	if rows, _ := a.total(); rows != 103 {
		t.Errorf("after stop, %d rows written, want 103", rows)
	}
	if err := w.enqueue(ctx, row(10)); !errors.Is(err, errStopped) {
		t.Errorf("enqueue after stop = %v", err)
	}
}

// TestIDs: ids are 26 characters, increase within a millisecond and when
// the clock steps back, and carry the time.
func TestIDs(t *testing.T) {
	var g ids
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 1000 {
		at := now
		if i == 500 {
			at = now.Add(-time.Hour) // the clock steps back
		}
		id, stamp := g.next(at)
		if len(id) != 26 || id <= prev || stamp.Before(now) {
			t.Fatalf("id %d: %s (stamp %v) after %s", i, id, stamp, prev)
		}
		prev = id
	}
	later, _ := g.next(now.Add(time.Millisecond))
	if later <= prev || later[:10] == prev[:10] {
		t.Errorf("id a millisecond later %s, last %s: want a greater time part", later, prev)
	}
}
