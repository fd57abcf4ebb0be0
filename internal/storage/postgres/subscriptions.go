package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// PutPendingSubscription implements storage.Subscriptions. A replaced
// request counts as received when it was replaced: it moves to the end of
// PendingSubscriptions. The account must exist (storage.ErrNotFound), and
// Contact and Stanza must not be empty (storage.ErrInvalid).
func (s *Store) PutPendingSubscription(ctx context.Context, local, domain string, p storage.PendingSubscription) error {
	if p.Contact == "" || len(p.Stanza) == 0 {
		return fmt.Errorf("postgres: put pending subscription: %w: empty contact or stanza", storage.ErrInvalid)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, err := accountID(ctx, tx, local, domain, false)
		if err != nil {
			return err
		}
		// An upsert that takes a new id, so that the row sorts last.
		_, err = tx.Exec(ctx, `INSERT INTO pending_subscriptions AS p (account_id, contact, stanza) VALUES ($1, $2, $3)
			ON CONFLICT (account_id, contact) DO UPDATE
			SET stanza = excluded.stanza, id = nextval(pg_get_serial_sequence('pending_subscriptions', 'id'))`,
			id, p.Contact, p.Stanza)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: put pending subscription: %w", err)
	}
	return nil
}

// DeletePendingSubscription implements storage.Subscriptions.
func (s *Store) DeletePendingSubscription(ctx context.Context, local, domain, contact string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM pending_subscriptions
		WHERE account_id = (SELECT id FROM accounts WHERE domain = $1 AND local = $2) AND contact = $3`,
		domain, local, contact)
	if err != nil {
		return fmt.Errorf("postgres: delete pending subscription: %w", doneErr(ctx, err))
	}
	return nil
}

// PendingSubscriptions implements storage.Subscriptions.
func (s *Store) PendingSubscriptions(ctx context.Context, local, domain string) ([]storage.PendingSubscription, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.contact, p.stanza
		FROM pending_subscriptions p JOIN accounts a ON a.id = p.account_id
		WHERE a.domain = $1 AND a.local = $2 ORDER BY p.id`, domain, local)
	var ps []storage.PendingSubscription
	if err == nil {
		ps, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.PendingSubscription, error) {
			var p storage.PendingSubscription
			err := row.Scan(&p.Contact, &p.Stanza)
			return p, err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: pending subscriptions: %w", doneErr(ctx, err))
	}
	return ps, nil
}
