package storage

import (
	"context"
	"errors"
	"time"
)

// ErrLimit means a write would pass a configured limit (roster size,
// offline quota); nothing was written.
var ErrLimit = errors.New("storage: limit reached")

// Subscription is the subscription state of a roster item (RFC 6121 §2.1.2.5).
type Subscription string

// The subscription states a roster item stores.
const (
	SubNone Subscription = "none"
	SubTo   Subscription = "to"
	SubFrom Subscription = "from"
	SubBoth Subscription = "both"
)

// RosterItem is one contact in a user's roster, with the whole state RFC
// 6121 Appendix A needs.
type RosterItem struct {
	// Contact is the contact's bare JID in canonical form.
	Contact string
	// Name is the user-given name; empty for none.
	Name string
	// Groups are the group names, in the order the client gave them,
	// without duplicates.
	Groups []string
	// Subscription is none, to, from or both.
	Subscription Subscription
	// AskOut means the user asked to subscribe to the contact and the
	// contact has not answered (pending out; ask='subscribe').
	AskOut bool
	// PendingIn means the contact asked to subscribe to the user and the
	// user has not answered (pending in).
	PendingIn bool
	// Approved means the user pre-approved a subscription request from the
	// contact (RFC 6121 §3.4).
	Approved bool
	// Version is the roster version at which this item last changed; set
	// by the store.
	Version int64
}

// RosterChange is an item changed since a roster version: the item, or a
// removal when Removed is set (then only Contact and Version are set).
type RosterChange struct {
	Item    RosterItem
	Removed bool
}

// Rosters stores rosters (RFC 6121 §2) with versions (§2.6): every change
// to a user's roster increments its version, and the store remembers
// removals so that a client can fetch only what changed.
type Rosters interface {
	// Roster returns the user's items, sorted by Contact, and the roster's
	// current version (0 for a roster never written).
	Roster(ctx context.Context, local, domain string) ([]RosterItem, int64, error)

	// RosterItem returns one item, or ErrNotFound.
	RosterItem(ctx context.Context, local, domain, contact string) (RosterItem, error)

	// PutRosterItem creates or replaces the item for item.Contact and
	// returns the new roster version (also stored as the item's Version).
	// Creating an item when the roster already holds max items returns
	// ErrLimit (max <= 0: no limit). The account must exist (ErrNotFound).
	PutRosterItem(ctx context.Context, local, domain string, item RosterItem, max int) (int64, error)

	// DeleteRosterItem removes the item and returns the new version, or
	// ErrNotFound if there was no such item.
	DeleteRosterItem(ctx context.Context, local, domain, contact string) (int64, error)

	// RosterChanges returns the changes after version since, sorted by
	// version, and the current version. ok is false when the store
	// cannot tell (since is newer than the current version, or older than
	// what it remembers): the client then gets the whole roster.
	RosterChanges(ctx context.Context, local, domain string, since int64) (changes []RosterChange, current int64, ok bool, err error)
}

// PendingSubscription is an inbound subscription request the user has not
// answered, kept to be shown again at each login (RFC 6121 §3.1.3).
type PendingSubscription struct {
	// Contact is the requester's bare JID.
	Contact string
	// Stanza is the request as received (serialised presence), for
	// redelivery with its status text.
	Stanza []byte
}

// Subscriptions stores inbound subscription requests that have no roster
// item yet (a request from a contact in the roster is the item's
// PendingIn flag, and its stanza is kept here too).
type Subscriptions interface {
	// PutPendingSubscription records (or replaces) a request.
	PutPendingSubscription(ctx context.Context, local, domain string, p PendingSubscription) error
	// DeletePendingSubscription forgets a request; no error if absent.
	DeletePendingSubscription(ctx context.Context, local, domain, contact string) error
	// PendingSubscriptions lists the user's requests, oldest first.
	PendingSubscriptions(ctx context.Context, local, domain string) ([]PendingSubscription, error)
}

// OfflineMessage is a message stored for a user who had no available
// resource (RFC 6121 §8.5.2.2.1).
type OfflineMessage struct {
	// ID orders messages; set by the store, increasing.
	ID int64
	// Stanza is the serialised message as the server routed it.
	Stanza []byte
	// Stamp is when the server received it (for the XEP-0203 delay).
	Stamp time.Time
}

// Offline stores messages for offline users. StoreOffline commits before
// it returns: a message it accepted survives a crash of the process.
type Offline interface {
	// StoreOffline appends a message. With quota > 0 and quota messages
	// already stored it returns ErrLimit. The account must exist
	// (ErrNotFound).
	StoreOffline(ctx context.Context, local, domain string, m OfflineMessage, quota int) error
	// OfflineMessages returns the stored messages, oldest first.
	OfflineMessages(ctx context.Context, local, domain string) ([]OfflineMessage, error)
	// TakeOffline deletes the stored messages and returns them, oldest
	// first, in one transaction: of concurrent calls (from any process
	// sharing the store), each message goes to exactly one.
	TakeOffline(ctx context.Context, local, domain string) ([]OfflineMessage, error)
	// DeleteOffline deletes the messages with ID <= upTo (after they were
	// delivered).
	DeleteOffline(ctx context.Context, local, domain string, upTo int64) error
	// CountOffline returns how many messages are stored.
	CountOffline(ctx context.Context, local, domain string) (int, error)
}

// XMLStore keeps per-user XML documents by key: vcard-temp (XEP-0054,
// key "vcard-temp") and private XML storage (XEP-0049, key "private:"
// followed by the child's "namespace name").
type XMLStore interface {
	// GetXML returns the document, or ErrNotFound.
	GetXML(ctx context.Context, local, domain, key string) ([]byte, error)
	// PutXML stores (or replaces) a document; an empty doc deletes it.
	// The account must exist (ErrNotFound).
	PutXML(ctx context.Context, local, domain, key string, doc []byte) error
	// XMLKeys returns the keys of the account's documents that start
	// with prefix ("" for all), sorted by byte order (none for an
	// account that does not exist). Exports list private XML with it.
	XMLKeys(ctx context.Context, local, domain, prefix string) ([]string, error)
}

// Blocklists stores XEP-0191 block lists of JIDs (any form: domain, bare,
// full), in canonical form.
type Blocklists interface {
	// Blocklist returns the blocked JIDs, sorted.
	Blocklist(ctx context.Context, local, domain string) ([]string, error)
	// Block adds JIDs (already present ones are kept); the account must
	// exist (ErrNotFound).
	Block(ctx context.Context, local, domain string, jids []string) error
	// Unblock removes JIDs; with none, it empties the list.
	Unblock(ctx context.Context, local, domain string, jids []string) error
}

// LastActivityRecord is one account's logout time and status.
type LastActivityRecord struct {
	Local, Domain string
	At            time.Time
	Status        string
}

// LastActivity stores when a user's last session ended (XEP-0012) and the
// status of their last unavailable presence.
type LastActivity interface {
	// SetLastActivity records the logout time and status.
	SetLastActivity(ctx context.Context, local, domain string, at time.Time, status string) error
	// SetLastActivities records several in one transaction; accounts
	// that do not exist are skipped.
	SetLastActivities(ctx context.Context, records []LastActivityRecord) error
	// LastActivity returns them, or ErrNotFound if never recorded.
	LastActivity(ctx context.Context, local, domain string) (time.Time, string, error)
}
