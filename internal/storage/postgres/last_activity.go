package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// SetLastActivity implements storage.LastActivity, keeping the time to the
// millisecond. The account must exist (storage.ErrNotFound).
func (s *Store) SetLastActivity(ctx context.Context, local, domain string, at time.Time, status string) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, err := accountID(ctx, tx, local, domain, false)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO last_activity (account_id, at, status) VALUES ($1, $2, $3)
			ON CONFLICT (account_id) DO UPDATE SET at = excluded.at, status = excluded.status`,
			id, millis(at), status)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: set last activity: %w", err)
	}
	return nil
}

// LastActivity implements storage.LastActivity. The time is in UTC.
func (s *Store) LastActivity(ctx context.Context, local, domain string) (time.Time, string, error) {
	var (
		at     time.Time
		status string
	)
	err := s.pool.QueryRow(ctx, `SELECT l.at, l.status
		FROM last_activity l JOIN accounts a ON a.id = l.account_id
		WHERE a.domain = $1 AND a.local = $2`, domain, local).Scan(&at, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("%s@%s: %w", local, domain, storage.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, "", fmt.Errorf("postgres: last activity: %w", doneErr(ctx, err))
	}
	return at.UTC(), status, nil
}

// SetLastActivities implements storage.LastActivity in one statement over
// arrays.
func (s *Store) SetLastActivities(ctx context.Context, records []storage.LastActivityRecord) error {
	n := len(records)
	locals, domains, statuses, ats := make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
	for i, r := range records {
		locals[i], domains[i], statuses[i], ats[i] = r.Local, r.Domain, r.Status, millis(r.At)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO last_activity (account_id, at, status)
		SELECT a.id, r.at, r.status
		FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) AS r (local, domain, at, status)
		JOIN accounts a ON a.domain = r.domain AND a.local = r.local
		ON CONFLICT (account_id) DO UPDATE SET at = excluded.at, status = excluded.status`,
		locals, domains, ats, statuses)
	if err != nil {
		return fmt.Errorf("postgres: set last activities: %w", doneErr(ctx, err))
	}
	return nil
}
