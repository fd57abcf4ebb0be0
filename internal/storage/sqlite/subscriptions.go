package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ode-xmpp/ode/internal/storage"
)

// PutPendingSubscription implements storage.Subscriptions. A replaced
// request counts as received when it was replaced: it moves to the end of
// PendingSubscriptions. The account must exist (storage.ErrNotFound), and
// Contact and Stanza must not be empty (storage.ErrInvalid).
func (s *Store) PutPendingSubscription(ctx context.Context, local, domain string, p storage.PendingSubscription) error {
	if p.Contact == "" || len(p.Stanza) == 0 {
		return fmt.Errorf("sqlite: put pending subscription: %w: empty contact or stanza", storage.ErrInvalid)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		// Delete and insert rather than upsert, so that the row gets a new,
		// highest id.
		if _, err := tx.ExecContext(ctx, `DELETE FROM pending_subscriptions WHERE account_id = ? AND contact = ?`,
			id, p.Contact); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO pending_subscriptions (account_id, contact, stanza) VALUES (?, ?, ?)`,
			id, p.Contact, p.Stanza)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put pending subscription: %w", err)
	}
	return nil
}

// DeletePendingSubscription implements storage.Subscriptions.
func (s *Store) DeletePendingSubscription(ctx context.Context, local, domain, contact string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM pending_subscriptions
			WHERE account_id = (SELECT id FROM accounts WHERE domain = ? AND local = ?) AND contact = ?`,
			domain, local, contact)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete pending subscription: %w", err)
	}
	return nil
}

// PendingSubscriptions implements storage.Subscriptions.
func (s *Store) PendingSubscriptions(ctx context.Context, local, domain string) ([]storage.PendingSubscription, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT p.contact, p.stanza
		FROM pending_subscriptions p JOIN accounts a ON a.id = p.account_id
		WHERE a.domain = ? AND a.local = ? ORDER BY p.id`, domain, local)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending subscriptions: %w", err)
	}
	defer rows.Close()
	var ps []storage.PendingSubscription
	for rows.Next() {
		var p storage.PendingSubscription
		if err := rows.Scan(&p.Contact, &p.Stanza); err != nil {
			return nil, fmt.Errorf("sqlite: pending subscriptions: %w", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: pending subscriptions: %w", err)
	}
	return ps, nil
}
