package postgres

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// GetXML implements storage.XMLStore.
func (s *Store) GetXML(ctx context.Context, local, domain, key string) ([]byte, error) {
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT x.doc
		FROM xml_documents x JOIN accounts a ON a.id = x.account_id
		WHERE a.domain = $1 AND a.local = $2 AND x.doc_key = $3`, domain, local, key).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("document %q: %w", key, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get xml: %w", doneErr(ctx, err))
	}
	return doc, nil
}

// PutXML implements storage.XMLStore. The key must not be empty
// (storage.ErrInvalid).
func (s *Store) PutXML(ctx context.Context, local, domain, key string, doc []byte) error {
	if key == "" {
		return fmt.Errorf("postgres: put xml: %w: empty key", storage.ErrInvalid)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, err := accountID(ctx, tx, local, domain, false)
		if err != nil {
			return err
		}
		if len(doc) == 0 {
			_, err = tx.Exec(ctx, `DELETE FROM xml_documents WHERE account_id = $1 AND doc_key = $2`, id, key)
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO xml_documents (account_id, doc_key, doc) VALUES ($1, $2, $3)
			ON CONFLICT (account_id, doc_key) DO UPDATE SET doc = excluded.doc`, id, key, doc)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: put xml: %w", err)
	}
	return nil
}

// XMLKeys implements storage.XMLStore.
func (s *Store) XMLKeys(ctx context.Context, local, domain, prefix string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT x.doc_key
		FROM xml_documents x JOIN accounts a ON a.id = x.account_id
		WHERE a.domain = $1 AND a.local = $2 AND left(x.doc_key, $3::int) = $4
		ORDER BY x.doc_key COLLATE "C"`, domain, local, utf8.RuneCountInString(prefix), prefix)
	if err != nil {
		return nil, fmt.Errorf("postgres: xml keys: %w", doneErr(ctx, err))
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: xml keys: %w", doneErr(ctx, err))
	}
	return keys, nil
}
