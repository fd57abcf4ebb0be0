package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/ode-xmpp/ode/internal/storage"
)

// StoreOffline implements storage.Offline. The message is fsynced to the
// write-ahead log before StoreOffline returns. IDs are never reused, even
// after every message was deleted. Stamp is kept to the millisecond. Stanza
// must not be empty (storage.ErrInvalid).
func (s *Store) StoreOffline(ctx context.Context, local, domain string, m storage.OfflineMessage, quota int) error {
	if len(m.Stanza) == 0 {
		return fmt.Errorf("sqlite: store offline: %w: empty stanza", storage.ErrInvalid)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		if quota > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM offline_messages WHERE account_id = ?`,
				id).Scan(&n); err != nil {
				return err
			}
			if n >= quota {
				return fmt.Errorf("%w: %d offline messages stored, the most allowed is %d", storage.ErrLimit, n, quota)
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO offline_messages (account_id, stanza, stamp) VALUES (?, ?, ?)`,
			id, m.Stanza, toMillis(m.Stamp))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: store offline: %w", err)
	}
	return nil
}

// OfflineMessages implements storage.Offline. Stamps are in UTC.
func (s *Store) OfflineMessages(ctx context.Context, local, domain string) ([]storage.OfflineMessage, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT m.id, m.stanza, m.stamp
		FROM offline_messages m JOIN accounts a ON a.id = m.account_id
		WHERE a.domain = ? AND a.local = ? ORDER BY m.id`, domain, local)
	if err != nil {
		return nil, fmt.Errorf("sqlite: offline messages: %w", err)
	}
	defer rows.Close()
	var ms []storage.OfflineMessage
	for rows.Next() {
		var (
			m     storage.OfflineMessage
			stamp int64
		)
		if err := rows.Scan(&m.ID, &m.Stanza, &stamp); err != nil {
			return nil, fmt.Errorf("sqlite: offline messages: %w", err)
		}
		m.Stamp = fromMillis(stamp)
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: offline messages: %w", err)
	}
	return ms, nil
}

// TakeOffline implements storage.Offline with one DELETE … RETURNING in a
// write transaction.
func (s *Store) TakeOffline(ctx context.Context, local, domain string) ([]storage.OfflineMessage, error) {
	var ms []storage.OfflineMessage
	err := s.write(ctx, func(tx *sql.Tx) error {
		ms = nil
		rows, err := tx.QueryContext(ctx, `DELETE FROM offline_messages
			WHERE account_id = (SELECT id FROM accounts WHERE domain = ? AND local = ?)
			RETURNING id, stanza, stamp`, domain, local)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				m     storage.OfflineMessage
				stamp int64
			)
			if err := rows.Scan(&m.ID, &m.Stanza, &stamp); err != nil {
				return err
			}
			m.Stamp = fromMillis(stamp)
			ms = append(ms, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: take offline: %w", err)
	}
	slices.SortFunc(ms, func(a, b storage.OfflineMessage) int { return cmp.Compare(a.ID, b.ID) })
	return ms, nil
}

// DeleteOffline implements storage.Offline.
func (s *Store) DeleteOffline(ctx context.Context, local, domain string, upTo int64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM offline_messages
			WHERE account_id = (SELECT id FROM accounts WHERE domain = ? AND local = ?) AND id <= ?`,
			domain, local, upTo)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete offline: %w", err)
	}
	return nil
}

// CountOffline implements storage.Offline.
func (s *Store) CountOffline(ctx context.Context, local, domain string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*)
		FROM offline_messages m JOIN accounts a ON a.id = m.account_id
		WHERE a.domain = ? AND a.local = ?`, domain, local).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count offline: %w", err)
	}
	return n, nil
}
