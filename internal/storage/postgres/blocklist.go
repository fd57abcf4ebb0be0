package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// Blocklist implements storage.Blocklists, sorted by byte order.
func (s *Store) Blocklist(ctx context.Context, local, domain string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT b.jid
		FROM blocked_jids b JOIN accounts a ON a.id = b.account_id
		WHERE a.domain = $1 AND a.local = $2 ORDER BY b.jid`, domain, local)
	var jids []string
	if err == nil {
		jids, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: blocklist: %w", doneErr(ctx, err))
	}
	return jids, nil
}

// Block implements storage.Blocklists, in one statement. An empty JID is
// invalid (storage.ErrInvalid).
func (s *Store) Block(ctx context.Context, local, domain string, jids []string) error {
	for _, jid := range jids {
		if jid == "" {
			return fmt.Errorf("postgres: block: %w: empty JID", storage.ErrInvalid)
		}
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, err := accountID(ctx, tx, local, domain, false)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO blocked_jids (account_id, jid)
			SELECT $1, j FROM unnest($2::text[]) AS j
			ON CONFLICT (account_id, jid) DO NOTHING`, id, jids)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: block: %w", err)
	}
	return nil
}

// Unblock implements storage.Blocklists, in one statement.
func (s *Store) Unblock(ctx context.Context, local, domain string, jids []string) error {
	const account = `account_id = (SELECT id FROM accounts WHERE domain = $1 AND local = $2)`
	var err error
	if len(jids) == 0 {
		_, err = s.pool.Exec(ctx, `DELETE FROM blocked_jids WHERE `+account, domain, local)
	} else {
		_, err = s.pool.Exec(ctx, `DELETE FROM blocked_jids WHERE `+account+` AND jid = ANY ($3)`, domain, local, jids)
	}
	if err != nil {
		return fmt.Errorf("postgres: unblock: %w", doneErr(ctx, err))
	}
	return nil
}
