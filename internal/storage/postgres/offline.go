package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// StoreOffline implements storage.Offline. The account's row is locked
// while the quota is counted and the message inserted, so that stores for
// one account are serialised (also across processes): the quota holds, and
// IDs are committed in the order they were given out, so a reader never
// sees an ID above one not yet committed. IDs are never reused. Stamp is
// kept to the millisecond. Stanza must not be empty (storage.ErrInvalid).
func (s *Store) StoreOffline(ctx context.Context, local, domain string, m storage.OfflineMessage, quota int) error {
	if len(m.Stanza) == 0 {
		return fmt.Errorf("postgres: store offline: %w: empty stanza", storage.ErrInvalid)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, err := accountID(ctx, tx, local, domain, true)
		if err != nil {
			return err
		}
		if quota > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM offline_messages WHERE account_id = $1`,
				id).Scan(&n); err != nil {
				return err
			}
			if n >= quota {
				return fmt.Errorf("%w: %d offline messages stored, the most allowed is %d", storage.ErrLimit, n, quota)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO offline_messages (account_id, stanza, stamp) VALUES ($1, $2, $3)`,
			id, m.Stanza, millis(m.Stamp))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: store offline: %w", err)
	}
	return nil
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
