package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/ode-xmpp/ode/internal/storage"
)

// GetXML implements storage.XMLStore.
func (s *Store) GetXML(ctx context.Context, local, domain, key string) ([]byte, error) {
	var doc []byte
	err := s.r.QueryRowContext(ctx, `SELECT x.doc
		FROM xml_documents x JOIN accounts a ON a.id = x.account_id
		WHERE a.domain = ? AND a.local = ? AND x.doc_key = ?`, domain, local, key).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("document %q: %w", key, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get xml: %w", err)
	}
	return doc, nil
}

// PutXML implements storage.XMLStore. The key must not be empty
// (storage.ErrInvalid).
func (s *Store) PutXML(ctx context.Context, local, domain, key string, doc []byte) error {
	if key == "" {
		return fmt.Errorf("sqlite: put xml: %w: empty key", storage.ErrInvalid)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		if len(doc) == 0 {
			_, err = tx.ExecContext(ctx, `DELETE FROM xml_documents WHERE account_id = ? AND doc_key = ?`, id, key)
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO xml_documents (account_id, doc_key, doc) VALUES (?, ?, ?)
			ON CONFLICT (account_id, doc_key) DO UPDATE SET doc = excluded.doc`, id, key, doc)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put xml: %w", err)
	}
	return nil
}

// XMLKeys implements storage.XMLStore.
func (s *Store) XMLKeys(ctx context.Context, local, domain, prefix string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT x.doc_key
		FROM xml_documents x JOIN accounts a ON a.id = x.account_id
		WHERE a.domain = ? AND a.local = ? AND substr(x.doc_key, 1, ?) = ?
		ORDER BY CAST(x.doc_key AS BLOB)`, domain, local, utf8.RuneCountInString(prefix), prefix)
	if err != nil {
		return nil, fmt.Errorf("sqlite: xml keys: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("sqlite: xml keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: xml keys: %w", err)
	}
	return keys, nil
}
