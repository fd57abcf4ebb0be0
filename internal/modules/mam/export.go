package mam

import (
	"context"
	"log/slog"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
)

// AppendFunc stores a batch of archived messages in one transaction and
// reports how many it stored (storage.Archive.AppendArchive, or a room
// archive's).
type AppendFunc func(ctx context.Context, msgs []storage.ArchivedMessage) (int, error)

// Writer writes archive rows behind delivery, in batches (group commit),
// as the user archives are written: Enqueue waits only while its bounded
// queue is full, Sync until what was enqueued before is committed. The
// MUC service writes its rooms' archives with one.
type Writer struct{ w *writer }

// NewWriter starts a writer that stores batches with store.
func NewWriter(store AppendFunc, log *slog.Logger) *Writer {
	return &Writer{w: newWriter(store, log)}
}

// Enqueue queues m to be written.
func (w *Writer) Enqueue(ctx context.Context, m storage.ArchivedMessage) error {
	return w.w.enqueue(ctx, m)
}

// Sync waits until every row enqueued before the call is committed.
func (w *Writer) Sync(ctx context.Context) error { return w.w.sync(ctx) }

// Stop writes what is queued and ends the writer.
func (w *Writer) Stop() { w.w.stop() }

// IDs makes archive ids (XEP-0359 stanza-ids) that sort as the messages
// arrived: ULIDs, increasing within the process. The zero value is ready.
type IDs struct{ g ids }

// Next returns a new id and the time it stands for.
func (g *IDs) Next(now time.Time) (string, time.Time) { return g.g.next(now) }
