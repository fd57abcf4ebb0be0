package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ode-xmpp/ode/internal/storage"
)

const (
	insertAccountSQL = `INSERT INTO accounts (domain, local) VALUES (?, ?)
		ON CONFLICT (domain, local) DO NOTHING RETURNING id`
	insertCredentialSQL = `INSERT INTO credentials
		(account_id, hash, salt, iterations, stored_key, server_key) VALUES (?, ?, ?, ?, ?, ?)`
)

// CreateAccount implements storage.Accounts.
func (s *Store) CreateAccount(ctx context.Context, local, domain string, creds []storage.Credential) error {
	if err := storage.CheckAccount(local, domain, creds); err != nil {
		return fmt.Errorf("sqlite: create account: %w", err)
	}
	existed, err := s.createAccounts(ctx, []storage.NewAccount{{Local: local, Domain: domain, Creds: creds}})
	if err == nil && len(existed) > 0 {
		err = storage.ErrExists
	}
	if err != nil {
		return fmt.Errorf("sqlite: create account: %w", err)
	}
	return nil
}

// CreateAccounts implements storage.Accounts, in one transaction.
func (s *Store) CreateAccounts(ctx context.Context, accounts []storage.NewAccount) (existed []int, err error) {
	existed, err = s.createAccounts(ctx, accounts)
	if err != nil {
		return nil, fmt.Errorf("sqlite: create accounts: %w", err)
	}
	return existed, nil
}

func (s *Store) createAccounts(ctx context.Context, accounts []storage.NewAccount) (existed []int, err error) {
	for i, a := range accounts {
		if err := storage.CheckAccount(a.Local, a.Domain, a.Creds); err != nil {
			return nil, fmt.Errorf("account %d (%s@%s): %w", i, a.Local, a.Domain, err)
		}
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		insAccount, err := tx.PrepareContext(ctx, insertAccountSQL)
		if err != nil {
			return err
		}
		defer insAccount.Close()
		insCred, err := tx.PrepareContext(ctx, insertCredentialSQL)
		if err != nil {
			return err
		}
		defer insCred.Close()
		for i, a := range accounts {
			var id int64
			err := insAccount.QueryRowContext(ctx, a.Domain, a.Local).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				existed = append(existed, i)
				continue
			}
			if err != nil {
				return err
			}
			if err := insertCredentials(ctx, insCred, id, a.Creds); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return existed, nil
}

func insertCredentials(ctx context.Context, ins *sql.Stmt, accountID int64, creds []storage.Credential) error {
	for _, c := range creds {
		if _, err := ins.ExecContext(ctx, accountID, c.Hash, c.Salt, c.Iterations, c.StoredKey, c.ServerKey); err != nil {
			return err
		}
	}
	return nil
}

// SetCredentials implements storage.Accounts.
func (s *Store) SetCredentials(ctx context.Context, local, domain string, creds []storage.Credential) error {
	if err := storage.CheckCredentials(creds); err != nil {
		return fmt.Errorf("sqlite: set credentials: %w", err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM accounts WHERE domain = ? AND local = ?`,
			domain, local).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE account_id = ?`, id); err != nil {
			return err
		}
		// A new password logs every client out (XEP-0484).
		if _, err := tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE account_id = ?`, id); err != nil {
			return err
		}
		ins, err := tx.PrepareContext(ctx, insertCredentialSQL)
		if err != nil {
			return err
		}
		defer ins.Close()
		return insertCredentials(ctx, ins, id, creds)
	})
	if err != nil {
		return fmt.Errorf("sqlite: set credentials: %w", err)
	}
	return nil
}

// DeleteAccount implements storage.Accounts. Rows of other tables that
// belong to the account go with it (ON DELETE CASCADE).
func (s *Store) DeleteAccount(ctx context.Context, local, domain string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE domain = ? AND local = ?`, domain, local)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete account: %w", err)
	}
	return nil
}

// Credential implements storage.Accounts.
func (s *Store) Credential(ctx context.Context, local, domain, hash string) (storage.Credential, error) {
	c := storage.Credential{Hash: hash}
	err := s.r.QueryRowContext(ctx, `SELECT c.salt, c.iterations, c.stored_key, c.server_key
		FROM credentials c JOIN accounts a ON a.id = c.account_id
		WHERE a.domain = ? AND a.local = ? AND c.hash = ?`, domain, local, hash).
		Scan(&c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
	if errors.Is(err, sql.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.Credential{}, fmt.Errorf("sqlite: credential: %w", err)
	}
	return c, nil
}

// AccountExists implements storage.Accounts.
func (s *Store) AccountExists(ctx context.Context, local, domain string) (bool, error) {
	var ok bool
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE domain = ? AND local = ?)`,
		domain, local).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("sqlite: account exists: %w", err)
	}
	return ok, nil
}

// ListAccounts implements storage.Accounts.
func (s *Store) ListAccounts(ctx context.Context, domain string) ([]string, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if domain == "" {
		rows, err = s.r.QueryContext(ctx, `SELECT local || '@' || domain FROM accounts ORDER BY domain, local`)
	} else {
		rows, err = s.r.QueryContext(ctx, `SELECT local FROM accounts WHERE domain = ? ORDER BY local`, domain)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list accounts: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("sqlite: list accounts: %w", err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list accounts: %w", err)
	}
	return names, nil
}
