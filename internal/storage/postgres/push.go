package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// PutPushRegistration implements storage.PushRegistrations in one
// transaction that holds the account's row lock: the upsert and the
// removal of the oldest past max.
func (s *Store) PutPushRegistration(ctx context.Context, local, domain string, reg storage.PushRegistration, max int) ([]storage.PushRegistration, error) {
	if reg.Service == "" || reg.Node == "" {
		return nil, fmt.Errorf("postgres: put push registration: %w: service %q, node %q", storage.ErrInvalid, reg.Service, reg.Node)
	}
	var removed []storage.PushRegistration
	err := s.write(ctx, func(tx pgx.Tx) error {
		removed = nil
		id, err := accountID(ctx, tx, local, domain, true)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO push_registrations (account_id, service, node, options, created)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account_id, service, node) DO UPDATE SET options = excluded.options, created = excluded.created`,
			id, reg.Service, reg.Node, reg.Options, millis(reg.Created)); err != nil {
			return err
		}
		if max <= 0 {
			return nil
		}
		all, err := pushRegistrations(ctx, tx, id)
		if err != nil || len(all) <= max {
			return err
		}
		// The oldest others go; the new one never does.
		others := slices.DeleteFunc(all, func(r storage.PushRegistration) bool {
			return r.Service == reg.Service && r.Node == reg.Node
		})
		for _, old := range others[:len(others)+1-max] {
			if _, err := tx.Exec(ctx, `DELETE FROM push_registrations WHERE account_id = $1 AND service = $2 AND node = $3`,
				id, old.Service, old.Node); err != nil {
				return err
			}
			removed = append(removed, old)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: put push registration: %w", err)
	}
	return removed, nil
}

// DeletePushRegistrations implements storage.PushRegistrations.
func (s *Store) DeletePushRegistrations(ctx context.Context, local, domain, service, node string) (int, error) {
	q, args := `DELETE FROM push_registrations
		WHERE account_id = (SELECT id FROM accounts WHERE domain = $1 AND local = $2) AND service = $3`,
		[]any{domain, local, service}
	if node != "" {
		q, args = q+` AND node = $4`, append(args, node)
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete push registrations: %w", doneErr(ctx, err))
	}
	return int(tag.RowsAffected()), nil
}

// PushRegistrations implements storage.PushRegistrations.
func (s *Store) PushRegistrations(ctx context.Context, local, domain string) ([]storage.PushRegistration, error) {
	var out []storage.PushRegistration
	err := s.read(ctx, func(tx pgx.Tx) error {
		id, ok, err := lookupAccount(ctx, tx, local, domain, false)
		if err != nil || !ok {
			return err
		}
		out, err = pushRegistrations(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: push registrations: %w", err)
	}
	return out, nil
}

// pushRegistrations lists an account's registrations, oldest first.
func pushRegistrations(ctx context.Context, tx pgx.Tx, account int64) ([]storage.PushRegistration, error) {
	rows, err := tx.Query(ctx, `SELECT service, node, options, created FROM push_registrations
		WHERE account_id = $1 ORDER BY created, service, node`, account)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.PushRegistration, error) {
		var r storage.PushRegistration
		err := row.Scan(&r.Service, &r.Node, &r.Options, &r.Created)
		r.Created = r.Created.UTC()
		return r, err
	})
}
