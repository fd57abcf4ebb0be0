package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// PutFASTToken implements storage.FASTTokens in one transaction that
// holds the account's row lock.
func (s *Store) PutFASTToken(ctx context.Context, local, domain string, tok storage.FASTToken, keep []byte, max int) error {
	if err := storage.CheckFASTToken(tok); err != nil {
		return fmt.Errorf("postgres: put FAST token: %w", err)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, err := accountID(ctx, tx, local, domain, true)
		if err != nil {
			return err
		}
		if keep == nil {
			keep = []byte{} // NULL would compare to nothing
		}
		if _, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE account_id = $1 AND client_id = $2 AND token_key <> $3`,
			id, tok.ClientID, keep); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE account_id = $1 AND expires <= $2`, id, time.Now()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fast_tokens (account_id, client_id, token_key, mechanism, created, expires)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (account_id, client_id, token_key) DO UPDATE SET mechanism = excluded.mechanism,
				created = excluded.created, expires = excluded.expires`,
			id, tok.ClientID, tok.Key, tok.Mechanism, millis(tok.Created), millis(tok.Expires)); err != nil {
			return err
		}
		if max <= 0 {
			return nil
		}
		// The first created go; the new one never does.
		_, err = tx.Exec(ctx, `DELETE FROM fast_tokens WHERE account_id = $1 AND (client_id, token_key) IN (
			SELECT client_id, token_key FROM fast_tokens
			WHERE account_id = $1 AND NOT (client_id = $2 AND token_key = $3)
			ORDER BY created DESC, client_id DESC, token_key DESC OFFSET $4)`,
			id, tok.ClientID, tok.Key, max-1)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: put FAST token: %w", err)
	}
	return nil
}

// FASTTokens implements storage.FASTTokens.
func (s *Store) FASTTokens(ctx context.Context, local, domain, clientID string) ([]storage.FASTToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT token_key, mechanism, created, expires FROM fast_tokens
		WHERE account_id = (SELECT id FROM accounts WHERE domain = $1 AND local = $2) AND client_id = $3
		ORDER BY expires DESC, token_key`, domain, local, clientID)
	if err != nil {
		return nil, fmt.Errorf("postgres: FAST tokens: %w", doneErr(ctx, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.FASTToken, error) {
		t := storage.FASTToken{ClientID: clientID}
		err := row.Scan(&t.Key, &t.Mechanism, &t.Created, &t.Expires)
		t.Created, t.Expires = t.Created.UTC(), t.Expires.UTC()
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: FAST tokens: %w", doneErr(ctx, err))
	}
	return out, nil
}

// UseFASTToken implements storage.FASTTokens.
func (s *Store) UseFASTToken(ctx context.Context, local, domain, clientID string, key []byte, invalidate bool) (bool, error) {
	found := false
	err := s.write(ctx, func(tx pgx.Tx) error {
		found = false
		id, ok, err := lookupAccount(ctx, tx, local, domain, true)
		if err != nil || !ok {
			return err
		}
		var expires time.Time
		err = tx.QueryRow(ctx, `SELECT expires FROM fast_tokens WHERE account_id = $1 AND client_id = $2 AND token_key = $3`,
			id, clientID, key).Scan(&expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		if _, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE account_id = $1 AND client_id = $2 AND expires < $3`,
			id, clientID, expires); err != nil {
			return err
		}
		if invalidate {
			_, err = tx.Exec(ctx, `DELETE FROM fast_tokens WHERE account_id = $1 AND client_id = $2 AND token_key = $3`, id, clientID, key)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: use FAST token: %w", err)
	}
	return found, nil
}

// DeleteFASTTokens implements storage.FASTTokens.
func (s *Store) DeleteFASTTokens(ctx context.Context, local, domain string) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM fast_tokens
		WHERE account_id = (SELECT id FROM accounts WHERE domain = $1 AND local = $2)`, domain, local)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete FAST tokens: %w", doneErr(ctx, err))
	}
	return int(tag.RowsAffected()), nil
}
