package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
)

// PutFASTToken implements storage.FASTTokens in one write transaction.
func (s *Store) PutFASTToken(ctx context.Context, local, domain string, tok storage.FASTToken, keep []byte, max int) error {
	if err := storage.CheckFASTToken(tok); err != nil {
		return fmt.Errorf("sqlite: put FAST token: %w", err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE account_id = ? AND client_id = ? AND token_key <> ?`,
			id, tok.ClientID, nonNil(keep)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE account_id = ? AND expires <= ?`,
			id, toMillis(time.Now())); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO fast_tokens (account_id, client_id, token_key, mechanism, created, expires)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (account_id, client_id, token_key) DO UPDATE SET mechanism = excluded.mechanism,
				created = excluded.created, expires = excluded.expires`,
			id, tok.ClientID, tok.Key, tok.Mechanism, toMillis(tok.Created), toMillis(tok.Expires)); err != nil {
			return err
		}
		if max <= 0 {
			return nil
		}
		// The first created go; the new one never does.
		_, err = tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE account_id = ?1 AND (client_id, token_key) IN (
			SELECT client_id, token_key FROM fast_tokens
			WHERE account_id = ?1 AND NOT (client_id = ?2 AND token_key = ?3)
			ORDER BY created DESC, client_id DESC, token_key DESC LIMIT -1 OFFSET ?4)`,
			id, tok.ClientID, tok.Key, max-1)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put FAST token: %w", err)
	}
	return nil
}

// nonNil makes a nil key compare unequal to every stored one rather than
// NULL, which compares to nothing.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// fastTokensSQL reads a client's tokens by its account's name, in one
// statement (one snapshot without a transaction); no rows when the
// account does not exist.
const fastTokensSQL = `SELECT t.token_key, t.mechanism, t.created, t.expires
	FROM accounts a JOIN fast_tokens t ON t.account_id = a.id
	WHERE a.domain = ? AND a.local = ? AND t.client_id = ?
	ORDER BY t.expires DESC, t.token_key`

// FASTTokens implements storage.FASTTokens with one prepared statement:
// it runs for every FAST login.
func (s *Store) FASTTokens(ctx context.Context, local, domain, clientID string) ([]storage.FASTToken, error) {
	out, err := s.fastTokens(ctx, local, domain, clientID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: FAST tokens: %w", err)
	}
	return out, nil
}

func (s *Store) fastTokens(ctx context.Context, local, domain, clientID string) ([]storage.FASTToken, error) {
	st, err := s.readStmt(fastTokensSQL)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, domain, local, clientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.FASTToken
	for rows.Next() {
		t := storage.FASTToken{ClientID: clientID}
		var created, expires int64
		if err := rows.Scan(&t.Key, &t.Mechanism, &created, &expires); err != nil {
			return nil, err
		}
		t.Created, t.Expires = fromMillis(created), fromMillis(expires)
		out = append(out, t)
	}
	return out, rows.Err()
}

// UseFASTToken implements storage.FASTTokens.
func (s *Store) UseFASTToken(ctx context.Context, local, domain, clientID string, key []byte, invalidate bool) (bool, error) {
	found := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		found = false
		id, ok, err := lookupAccount(ctx, tx, local, domain)
		if err != nil || !ok {
			return err
		}
		var expires int64
		err = tx.QueryRowContext(ctx, `SELECT expires FROM fast_tokens WHERE account_id = ? AND client_id = ? AND token_key = ?`,
			id, clientID, key).Scan(&expires)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		_, err = tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE account_id = ? AND client_id = ? AND expires < ?`, id, clientID, expires)
		if err == nil && invalidate {
			_, err = tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE account_id = ? AND client_id = ? AND token_key = ?`, id, clientID, key)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: use FAST token: %w", err)
	}
	return found, nil
}

// DeleteFASTTokens implements storage.FASTTokens.
func (s *Store) DeleteFASTTokens(ctx context.Context, local, domain string) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM fast_tokens
			WHERE account_id = (SELECT id FROM accounts WHERE domain = ? AND local = ?)`, domain, local)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete FAST tokens: %w", err)
	}
	return int(n), nil
}
