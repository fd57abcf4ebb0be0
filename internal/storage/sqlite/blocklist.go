package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ode-xmpp/ode/internal/storage"
)

// Blocklist implements storage.Blocklists, sorted by byte order.
func (s *Store) Blocklist(ctx context.Context, local, domain string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT b.jid
		FROM blocked_jids b JOIN accounts a ON a.id = b.account_id
		WHERE a.domain = ? AND a.local = ? ORDER BY b.jid`, domain, local)
	if err != nil {
		return nil, fmt.Errorf("sqlite: blocklist: %w", err)
	}
	defer rows.Close()
	var jids []string
	for rows.Next() {
		var jid string
		if err := rows.Scan(&jid); err != nil {
			return nil, fmt.Errorf("sqlite: blocklist: %w", err)
		}
		jids = append(jids, jid)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: blocklist: %w", err)
	}
	return jids, nil
}

// Block implements storage.Blocklists, in one transaction. An empty JID is
// invalid (storage.ErrInvalid).
func (s *Store) Block(ctx context.Context, local, domain string, jids []string) error {
	for _, jid := range jids {
		if jid == "" {
			return fmt.Errorf("sqlite: block: %w: empty JID", storage.ErrInvalid)
		}
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO blocked_jids (account_id, jid) VALUES (?, ?)
			ON CONFLICT (account_id, jid) DO NOTHING`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, jid := range jids {
			if _, err := ins.ExecContext(ctx, id, jid); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: block: %w", err)
	}
	return nil
}

// Unblock implements storage.Blocklists, in one transaction.
func (s *Store) Unblock(ctx context.Context, local, domain string, jids []string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, ok, err := lookupAccount(ctx, tx, local, domain)
		if err != nil || !ok {
			return err
		}
		if len(jids) == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM blocked_jids WHERE account_id = ?`, id)
			return err
		}
		del, err := tx.PrepareContext(ctx, `DELETE FROM blocked_jids WHERE account_id = ? AND jid = ?`)
		if err != nil {
			return err
		}
		defer del.Close()
		for _, jid := range jids {
			if _, err := del.ExecContext(ctx, id, jid); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: unblock: %w", err)
	}
	return nil
}
