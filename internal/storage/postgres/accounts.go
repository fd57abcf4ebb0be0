package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// CreateAccount implements storage.Accounts.
func (s *Store) CreateAccount(ctx context.Context, local, domain string, creds []storage.Credential) error {
	if err := storage.CheckAccount(local, domain, creds); err != nil {
		return fmt.Errorf("postgres: create account: %w", err)
	}
	existed, err := s.createAccounts(ctx, []storage.NewAccount{{Local: local, Domain: domain, Creds: creds}})
	if err == nil && len(existed) > 0 {
		err = storage.ErrExists
	}
	if err != nil {
		return fmt.Errorf("postgres: create account: %w", err)
	}
	return nil
}

// CreateAccounts implements storage.Accounts, in one transaction of two
// statements, whatever the number of accounts.
func (s *Store) CreateAccounts(ctx context.Context, accounts []storage.NewAccount) (existed []int, err error) {
	existed, err = s.createAccounts(ctx, accounts)
	if err != nil {
		return nil, fmt.Errorf("postgres: create accounts: %w", err)
	}
	return existed, nil
}

func (s *Store) createAccounts(ctx context.Context, accounts []storage.NewAccount) ([]int, error) {
	for i, a := range accounts {
		if err := storage.CheckAccount(a.Local, a.Domain, a.Creds); err != nil {
			return nil, fmt.Errorf("account %d (%s@%s): %w", i, a.Local, a.Domain, err)
		}
	}
	// Repeats within the batch are found here; the database tells which
	// of the rest exist already.
	first := make(map[[2]string]int, len(accounts))
	var locals, domains []string
	for i, a := range accounts {
		key := [2]string{a.Domain, a.Local}
		if _, ok := first[key]; ok {
			continue
		}
		first[key] = i
		locals, domains = append(locals, a.Local), append(domains, a.Domain)
	}
	created := make([]bool, len(accounts))
	err := s.write(ctx, func(tx pgx.Tx) error {
		clear(created)
		rows, err := tx.Query(ctx, `INSERT INTO accounts (domain, local)
			SELECT d, l FROM unnest($1::text[], $2::text[]) AS n (d, l)
			ON CONFLICT (domain, local) DO NOTHING
			RETURNING id, domain, local`, domains, locals)
		if err != nil {
			return err
		}
		var (
			ids                  []int64
			hash                 []string
			salt, stored, server [][]byte
			iterations           []int32
			id                   int64
			domain, local        string
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &domain, &local}, func() error {
			i := first[[2]string{domain, local}]
			created[i] = true
			for _, c := range accounts[i].Creds {
				ids, hash, iterations = append(ids, id), append(hash, c.Hash), append(iterations, int32(c.Iterations))
				salt, stored, server = append(salt, c.Salt), append(stored, c.StoredKey), append(server, c.ServerKey)
			}
			return nil
		})
		if err != nil || len(ids) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, insertCredentialsSQL, ids, hash, salt, iterations, stored, server)
		return err
	})
	if err != nil {
		return nil, err
	}
	var existed []int
	for i := range accounts {
		if !created[i] {
			existed = append(existed, i)
		}
	}
	return existed, nil
}

const insertCredentialsSQL = `INSERT INTO credentials (account_id, hash, salt, iterations, stored_key, server_key)
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::integer[], $5::bytea[], $6::bytea[])`

// SetCredentials implements storage.Accounts.
func (s *Store) SetCredentials(ctx context.Context, local, domain string, creds []storage.Credential) error {
	if err := storage.CheckCredentials(creds); err != nil {
		return fmt.Errorf("postgres: set credentials: %w", err)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, ok, err := lookupAccount(ctx, tx, local, domain, true)
		if err != nil {
			return err
		}
		if !ok {
			return storage.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM credentials WHERE account_id = $1`, id); err != nil {
			return err
		}
		// A new password logs every client out (XEP-0484).
		if _, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE account_id = $1`, id); err != nil {
			return err
		}
		if len(creds) == 0 {
			return nil
		}
		ids := make([]int64, len(creds))
		hash := make([]string, len(creds))
		iterations := make([]int32, len(creds))
		salt, stored, server := make([][]byte, len(creds)), make([][]byte, len(creds)), make([][]byte, len(creds))
		for i, c := range creds {
			ids[i], hash[i], iterations[i] = id, c.Hash, int32(c.Iterations)
			salt[i], stored[i], server[i] = c.Salt, c.StoredKey, c.ServerKey
		}
		_, err = tx.Exec(ctx, insertCredentialsSQL, ids, hash, salt, iterations, stored, server)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: set credentials: %w", err)
	}
	return nil
}

// DeleteAccount implements storage.Accounts. Rows of other tables that
// belong to the account go with it (ON DELETE CASCADE).
func (s *Store) DeleteAccount(ctx context.Context, local, domain string) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM accounts WHERE domain = $1 AND local = $2`, domain, local)
		if err == nil && tag.RowsAffected() == 0 {
			err = storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: delete account: %w", err)
	}
	return nil
}

// Credential implements storage.Accounts.
func (s *Store) Credential(ctx context.Context, local, domain, hash string) (storage.Credential, error) {
	c := storage.Credential{Hash: hash}
	err := s.pool.QueryRow(ctx, `SELECT c.salt, c.iterations, c.stored_key, c.server_key
		FROM credentials c JOIN accounts a ON a.id = c.account_id
		WHERE a.domain = $1 AND a.local = $2 AND c.hash = $3`, domain, local, hash).
		Scan(&c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
	if errors.Is(err, pgx.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.Credential{}, fmt.Errorf("postgres: credential: %w", doneErr(ctx, err))
	}
	return c, nil
}

// AccountExists implements storage.Accounts.
func (s *Store) AccountExists(ctx context.Context, local, domain string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE domain = $1 AND local = $2)`,
		domain, local).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("postgres: account exists: %w", doneErr(ctx, err))
	}
	return ok, nil
}

// ListAccounts implements storage.Accounts.
func (s *Store) ListAccounts(ctx context.Context, domain string) ([]string, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if domain == "" {
		rows, err = s.pool.Query(ctx, `SELECT local || '@' || domain FROM accounts ORDER BY domain, local`)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT local FROM accounts WHERE domain = $1 ORDER BY local`, domain)
	}
	var names []string
	if err == nil {
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: list accounts: %w", doneErr(ctx, err))
	}
	return names, nil
}
