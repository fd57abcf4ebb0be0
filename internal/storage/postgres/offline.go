package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// StoreOffline implements storage.Offline in two round trips: BEGIN and
// two statements sent together, then COMMIT once their results are in (a
// call whose context ends before that commits nothing). The first
// statement locks the account's row, so that stores for one account are serialised (also
// across processes); the second, whose snapshot is taken once it holds
// the lock, counts the quota and inserts. So the quota holds, and IDs are
// committed in the order they were given out: a reader never sees an ID
// above one not yet committed. IDs are never reused. Stamp is kept to the
// millisecond. Stanza must not be empty (storage.ErrInvalid).
func (s *Store) StoreOffline(ctx context.Context, local, domain string, m storage.OfflineMessage, quota int) error {
	if len(m.Stanza) == 0 {
		return fmt.Errorf("postgres: store offline: %w: empty stanza", storage.ErrInvalid)
	}
	var err error
	for range retries {
		var committing bool
		if committing, err = s.storeOffline(ctx, local, domain, m, quota); committing || !retryable(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("postgres: store offline: %w", doneErr(ctx, err))
	}
	return nil
}

// storeOffline is one try of StoreOffline; committing tells that the
// error, if any, is COMMIT's, whose outcome is then unknown.
func (s *Store) storeOffline(ctx context.Context, local, domain string, m storage.OfflineMessage, quota int) (committing bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release() // one left inside a transaction is closed, not reused
	var b pgx.Batch
	b.Queue(`BEGIN`)
	var account, id int64
	found, stored := false, false
	b.Queue(`SELECT id FROM accounts WHERE domain = $1 AND local = $2 FOR NO KEY UPDATE`, domain, local).
		QueryRow(func(row pgx.Row) error {
			err := row.Scan(&account)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			found = err == nil
			return err
		})
	b.Queue(`INSERT INTO offline_messages (account_id, stanza, stamp)
		SELECT a.id, $3, $4 FROM accounts a
		WHERE a.domain = $1 AND a.local = $2
			AND ($5 <= 0 OR (SELECT COUNT(*) FROM offline_messages WHERE account_id = a.id) < $5)
		RETURNING id`, domain, local, m.Stanza, millis(m.Stamp), quota).
		QueryRow(func(row pgx.Row) error {
			err := row.Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			stored = err == nil
			return err
		})
	if err := conn.SendBatch(ctx, &b).Close(); err != nil {
		return false, err
	}
	end := `COMMIT`
	switch {
	case !found:
		err = fmt.Errorf("account %s@%s: %w", local, domain, storage.ErrNotFound)
		end = `ROLLBACK`
	case !stored:
		err = fmt.Errorf("%w: %d offline messages stored, the most allowed", storage.ErrLimit, quota)
		end = `ROLLBACK`
	}
	if _, cerr := conn.Exec(ctx, end); cerr != nil {
		return end == `COMMIT`, errors.Join(err, cerr)
	}
	return false, err
}

// OfflineMessages implements storage.Offline. Stamps are in UTC.
func (s *Store) OfflineMessages(ctx context.Context, local, domain string) ([]storage.OfflineMessage, error) {
	rows, err := s.pool.Query(ctx, `SELECT m.id, m.stanza, m.stamp
		FROM offline_messages m JOIN accounts a ON a.id = m.account_id
		WHERE a.domain = $1 AND a.local = $2 ORDER BY m.id`, domain, local)
	var ms []storage.OfflineMessage
	if err == nil {
		ms, err = pgx.CollectRows(rows, scanOffline)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: offline messages: %w", doneErr(ctx, err))
	}
	return ms, nil
}

func scanOffline(row pgx.CollectableRow) (storage.OfflineMessage, error) {
	var m storage.OfflineMessage
	err := row.Scan(&m.ID, &m.Stanza, &m.Stamp)
	m.Stamp = m.Stamp.UTC()
	return m, err
}

// TakeOffline implements storage.Offline with one DELETE … RETURNING: of
// two concurrent calls, each message goes to one.
func (s *Store) TakeOffline(ctx context.Context, local, domain string) ([]storage.OfflineMessage, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM offline_messages
		WHERE account_id = (SELECT id FROM accounts WHERE domain = $1 AND local = $2)
		RETURNING id, stanza, stamp`, domain, local)
	var ms []storage.OfflineMessage
	if err == nil {
		ms, err = pgx.CollectRows(rows, scanOffline)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: take offline: %w", doneErr(ctx, err))
	}
	slices.SortFunc(ms, func(a, b storage.OfflineMessage) int { return cmp.Compare(a.ID, b.ID) })
	return ms, nil
}

// DeleteOffline implements storage.Offline.
func (s *Store) DeleteOffline(ctx context.Context, local, domain string, upTo int64) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM offline_messages
		WHERE account_id = (SELECT id FROM accounts WHERE domain = $1 AND local = $2) AND id <= $3`,
		domain, local, upTo)
	if err != nil {
		return fmt.Errorf("postgres: delete offline: %w", doneErr(ctx, err))
	}
	return nil
}

// CountOffline implements storage.Offline.
func (s *Store) CountOffline(ctx context.Context, local, domain string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT COUNT(*)
		FROM offline_messages m JOIN accounts a ON a.id = m.account_id
		WHERE a.domain = $1 AND a.local = $2`, domain, local).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: count offline: %w", doneErr(ctx, err))
	}
	return n, nil
}
