package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/ode-xmpp/ode/internal/storage"
)

// PutPushRegistration implements storage.PushRegistrations in one write
// transaction: the upsert and the removal of the oldest past max.
func (s *Store) PutPushRegistration(ctx context.Context, local, domain string, reg storage.PushRegistration, max int) ([]storage.PushRegistration, error) {
	if reg.Service == "" || reg.Node == "" {
		return nil, fmt.Errorf("sqlite: put push registration: %w: service %q, node %q", storage.ErrInvalid, reg.Service, reg.Node)
	}
	var removed []storage.PushRegistration
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO push_registrations (account_id, service, node, options, created)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (account_id, service, node) DO UPDATE SET options = excluded.options, created = excluded.created`,
			id, reg.Service, reg.Node, reg.Options, toMillis(reg.Created)); err != nil {
			return err
		}
		if max <= 0 {
			return nil
		}
		all, err := pushRegistrations(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(all) <= max {
			return nil
		}
		// The oldest others go; the new one never does.
		others := slices.DeleteFunc(all, func(r storage.PushRegistration) bool {
			return r.Service == reg.Service && r.Node == reg.Node
		})
		for _, old := range others[:len(others)+1-max] {
			if _, err := tx.ExecContext(ctx, `DELETE FROM push_registrations WHERE account_id = ? AND service = ? AND node = ?`,
				id, old.Service, old.Node); err != nil {
				return err
			}
			removed = append(removed, old)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: put push registration: %w", err)
	}
	return removed, nil
}

// DeletePushRegistrations implements storage.PushRegistrations.
func (s *Store) DeletePushRegistrations(ctx context.Context, local, domain, service, node string) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, ok, err := lookupAccount(ctx, tx, local, domain)
		if err != nil || !ok {
			return err
		}
		q, args := `DELETE FROM push_registrations WHERE account_id = ? AND service = ?`, []any{id, service}
		if node != "" {
			q, args = q+` AND node = ?`, append(args, node)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete push registrations: %w", err)
	}
	return int(n), nil
}

// PushRegistrations implements storage.PushRegistrations.
func (s *Store) PushRegistrations(ctx context.Context, local, domain string) ([]storage.PushRegistration, error) {
	var out []storage.PushRegistration
	err := s.read(ctx, func(tx *sql.Tx) error {
		id, ok, err := lookupAccount(ctx, tx, local, domain)
		if err != nil || !ok {
			return err
		}
		out, err = pushRegistrations(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: push registrations: %w", err)
	}
	return out, nil
}

// pushRegistrations lists an account's registrations, oldest first.
func pushRegistrations(ctx context.Context, tx *sql.Tx, account int64) ([]storage.PushRegistration, error) {
	rows, err := tx.QueryContext(ctx, `SELECT service, node, options, created FROM push_registrations
		WHERE account_id = ? ORDER BY created, service, node`, account)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.PushRegistration
	for rows.Next() {
		var r storage.PushRegistration
		var created int64
		if err := rows.Scan(&r.Service, &r.Node, &r.Options, &created); err != nil {
			return nil, err
		}
		r.Created = fromMillis(created)
		out = append(out, r)
	}
	return out, rows.Err()
}
