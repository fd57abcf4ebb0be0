package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
)

// SetLastActivity implements storage.LastActivity, keeping the time to the
// millisecond. The account must exist (storage.ErrNotFound).
func (s *Store) SetLastActivity(ctx context.Context, local, domain string, at time.Time, status string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO last_activity (account_id, at, status) VALUES (?, ?, ?)
			ON CONFLICT (account_id) DO UPDATE SET at = excluded.at, status = excluded.status`,
			id, toMillis(at), status)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set last activity: %w", err)
	}
	return nil
}

// LastActivity implements storage.LastActivity. The time is in UTC.
func (s *Store) LastActivity(ctx context.Context, local, domain string) (time.Time, string, error) {
	var (
		at     int64
		status string
	)
	err := s.r.QueryRowContext(ctx, `SELECT l.at, l.status
		FROM last_activity l JOIN accounts a ON a.id = l.account_id
		WHERE a.domain = ? AND a.local = ?`, domain, local).Scan(&at, &status)
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("%s@%s: %w", local, domain, storage.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, "", fmt.Errorf("sqlite: last activity: %w", err)
	}
	return fromMillis(at), status, nil
}

// setLastActivity is SetLastActivities' statement, prepared when the
// store opens (hotQueries): the last module writes a batch of logouts
// after every few logins, and parsing it each time was a tenth of a FAST
// login's server CPU.
const setLastActivity = `INSERT INTO last_activity (account_id, at, status)
	SELECT id, ?, ? FROM accounts WHERE domain = ? AND local = ?
	ON CONFLICT (account_id) DO UPDATE SET at = excluded.at, status = excluded.status`

// SetLastActivities implements storage.LastActivity in one write
// transaction.
func (s *Store) SetLastActivities(ctx context.Context, records []storage.LastActivityRecord) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		ins, err := s.stmt(ctx, tx, setLastActivity)
		if err != nil {
			return err
		}
		for _, r := range records {
			if _, err := ins.ExecContext(ctx, toMillis(r.At), r.Status, r.Domain, r.Local); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set last activities: %w", err)
	}
	return nil
}
