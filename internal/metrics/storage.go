package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ode-xmpp/ode/internal/storage"
)

// op is a timed storage operation, an index into the pre-resolved series.
type op uint8

// The timed operations: those on the paths of a login, a message and a
// roster fetch, the archive's, and the ones modules call per stanza.
const (
	opCredential op = iota
	opFASTTokens
	opUseFASTToken
	opPutFASTToken
	opRoster
	opRosterItem
	opPutRosterItem
	opStoreOffline
	opTakeOffline
	opAppendArchive
	opQueryArchive
	opGetXML
	opPutXML
	opBlocklist
	opSetLastActivity
	opPendingSubscriptions
	numOps
)

var opNames = [numOps]string{
	"credential", "fast_tokens", "use_fast_token", "put_fast_token",
	"roster", "roster_item", "put_roster_item",
	"store_offline", "take_offline",
	"append_archive", "query_archive",
	"get_xml", "put_xml", "blocklist", "set_last_activity", "pending_subscriptions",
}

var (
	storageVec = histogramVec("ode_storage_duration_seconds",
		"Time of storage calls (SQLite or PostgreSQL), by operation.", latencyBuckets, "op")
	storageErrVec = counterVec("ode_storage_errors_total",
		"Storage calls that failed (not counting not-found, exists, limit and cancelled ones), by operation.", "op")
	storageTime [numOps]prometheus.Observer
	storageErrs [numOps]prometheus.Counter
)

func init() {
	for o, n := range opNames {
		storageTime[o] = storageVec.WithLabelValues(n)
		storageErrs[o] = storageErrVec.WithLabelValues(n)
	}
}

func observe(o op, start time.Time, err error) {
	storageTime[o].Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrExists) &&
		!errors.Is(err, storage.ErrLimit) && !errors.Is(err, context.Canceled) {
		storageErrs[o].Inc()
	}
}

// Store returns s with its hot operations timed (ode_storage_duration_seconds);
// the others pass through. Give it to the parts that serve clients, and
// keep s for what needs the backend itself.
func Store(s storage.Store) storage.Store { return timedStore{s} }

type timedStore struct{ storage.Store }

func (t timedStore) Credential(ctx context.Context, local, domain, hash string) (storage.Credential, error) {
	start := time.Now()
	c, err := t.Store.Credential(ctx, local, domain, hash)
	observe(opCredential, start, err)
	return c, err
}

func (t timedStore) FASTTokens(ctx context.Context, local, domain, clientID string) ([]storage.FASTToken, error) {
	start := time.Now()
	v, err := t.Store.FASTTokens(ctx, local, domain, clientID)
	observe(opFASTTokens, start, err)
	return v, err
}

func (t timedStore) UseFASTToken(ctx context.Context, local, domain, clientID string, key []byte, invalidate bool) (bool, error) {
	start := time.Now()
	ok, err := t.Store.UseFASTToken(ctx, local, domain, clientID, key, invalidate)
	observe(opUseFASTToken, start, err)
	return ok, err
}

func (t timedStore) PutFASTToken(ctx context.Context, local, domain string, tok storage.FASTToken, keep []byte, max int) error {
	start := time.Now()
	err := t.Store.PutFASTToken(ctx, local, domain, tok, keep, max)
	observe(opPutFASTToken, start, err)
	return err
}

func (t timedStore) Roster(ctx context.Context, local, domain string) ([]storage.RosterItem, int64, error) {
	start := time.Now()
	items, ver, err := t.Store.Roster(ctx, local, domain)
	observe(opRoster, start, err)
	return items, ver, err
}

func (t timedStore) RosterItem(ctx context.Context, local, domain, contact string) (storage.RosterItem, error) {
	start := time.Now()
	it, err := t.Store.RosterItem(ctx, local, domain, contact)
	observe(opRosterItem, start, err)
	return it, err
}

func (t timedStore) PutRosterItem(ctx context.Context, local, domain string, item storage.RosterItem, max int) (int64, error) {
	start := time.Now()
	ver, err := t.Store.PutRosterItem(ctx, local, domain, item, max)
	observe(opPutRosterItem, start, err)
	return ver, err
}

func (t timedStore) StoreOffline(ctx context.Context, local, domain string, m storage.OfflineMessage, quota int) error {
	start := time.Now()
	err := t.Store.StoreOffline(ctx, local, domain, m, quota)
	observe(opStoreOffline, start, err)
	return err
}

func (t timedStore) TakeOffline(ctx context.Context, local, domain string) ([]storage.OfflineMessage, error) {
	start := time.Now()
	ms, err := t.Store.TakeOffline(ctx, local, domain)
	observe(opTakeOffline, start, err)
	return ms, err
}

func (t timedStore) AppendArchive(ctx context.Context, msgs []storage.ArchivedMessage) (int, error) {
	start := time.Now()
	n, err := t.Store.AppendArchive(ctx, msgs)
	observe(opAppendArchive, start, err)
	return n, err
}

func (t timedStore) QueryArchive(ctx context.Context, local, domain string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	start := time.Now()
	p, err := t.Store.QueryArchive(ctx, local, domain, q)
	observe(opQueryArchive, start, err)
	return p, err
}

func (t timedStore) GetXML(ctx context.Context, local, domain, key string) ([]byte, error) {
	start := time.Now()
	doc, err := t.Store.GetXML(ctx, local, domain, key)
	observe(opGetXML, start, err)
	return doc, err
}

func (t timedStore) PutXML(ctx context.Context, local, domain, key string, doc []byte) error {
	start := time.Now()
	err := t.Store.PutXML(ctx, local, domain, key, doc)
	observe(opPutXML, start, err)
	return err
}

func (t timedStore) Blocklist(ctx context.Context, local, domain string) ([]string, error) {
	start := time.Now()
	l, err := t.Store.Blocklist(ctx, local, domain)
	observe(opBlocklist, start, err)
	return l, err
}

func (t timedStore) SetLastActivity(ctx context.Context, local, domain string, at time.Time, status string) error {
	start := time.Now()
	err := t.Store.SetLastActivity(ctx, local, domain, at, status)
	observe(opSetLastActivity, start, err)
	return err
}

func (t timedStore) PendingSubscriptions(ctx context.Context, local, domain string) ([]storage.PendingSubscription, error) {
	start := time.Now()
	p, err := t.Store.PendingSubscriptions(ctx, local, domain)
	observe(opPendingSubscriptions, start, err)
	return p, err
}
