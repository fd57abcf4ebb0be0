package storage

import (
	"context"
	"time"
)

// ArchivedMessage is one message in an account's archive (XEP-0313): a
// message the account sent or received.
type ArchivedMessage struct {
	// Local and Domain are the archive's owner.
	Local, Domain string
	// ID is the message's archive id (also its XEP-0359 stanza-id),
	// chosen by the caller and unique in the owner's archive. The
	// archive is ordered by ID in byte order, so callers choose IDs that
	// sort as the messages arrived.
	ID string
	// With is the bare JID of the other party; WithResource its resource
	// ("" for none).
	With, WithResource string
	// Stamp is when the server received the message; kept to the
	// millisecond.
	Stamp time.Time
	// Outgoing is set for messages the owner sent.
	Outgoing bool
	// Stanza is the serialised message as it was delivered.
	Stanza []byte
}

// ArchiveQuery selects messages of one archive. Zero fields do not
// filter.
type ArchiveQuery struct {
	// With keeps the messages exchanged with that bare JID, and
	// WithResource (only with With) those with that resource of it.
	With, WithResource string
	// Start and End keep the messages stamped in [Start, End].
	Start, End time.Time
	// StartID and EndID, if set, bound the ids of the messages Start and
	// End keep, for an archive whose ids sort by time (the mam module's
	// ULIDs): every message stamped at or after Start has an id ≥
	// StartID, every one stamped at or before End an id ≤ EndID. A store
	// may find a time range through its id index with them; they never
	// widen the selection.
	StartID, EndID string
	// AfterID and BeforeID keep the messages after or before those ids
	// (exclusive). Each must be in the archive, else ErrNotFound.
	AfterID, BeforeID string
	// IDs keeps the messages with those ids; each must be in the
	// archive, else ErrNotFound.
	IDs []string
	// Max is the most messages returned (0: none, only Complete is
	// told).
	Max int
	// Last takes the page at the end of the selection rather than at
	// its start (paging backwards).
	Last bool
}

// ArchivePage is the answer to an ArchiveQuery.
type ArchivePage struct {
	// Messages are in archive order, oldest first.
	Messages []ArchivedMessage
	// Complete means no selected message is left beyond the page in the
	// paging direction (after it, or before it with Last).
	Complete bool
}

// Archive stores per-account message archives (XEP-0313). Deleting an
// account deletes its archive.
type Archive interface {
	// AppendArchive stores msgs in one transaction and returns how many
	// it stored: messages of accounts that do not exist, and those whose
	// ID is already in their owner's archive, are skipped.
	AppendArchive(ctx context.Context, msgs []ArchivedMessage) (int, error)
	// QueryArchive returns a page of the account's archive; Local and
	// Domain are set in the messages. An account that does not exist
	// has an empty archive.
	QueryArchive(ctx context.Context, local, domain string, q ArchiveQuery) (ArchivePage, error)
	// ArchiveBounds returns the first and the last message of the
	// account's archive (without their stanzas), or ErrNotFound if it is
	// empty.
	ArchiveBounds(ctx context.Context, local, domain string) (first, last ArchivedMessage, err error)
	// DeleteArchived deletes the messages of every archive stamped before
	// before, and returns how many it deleted.
	DeleteArchived(ctx context.Context, before time.Time) (int, error)
}
