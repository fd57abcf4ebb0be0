package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
)

// ReserveUpload implements storage.Uploads: the quotas are checked and the
// slot inserted in one write transaction.
func (s *Store) ReserveUpload(ctx context.Context, u storage.Upload, q storage.UploadQuota) error {
	if u.ID == "" || u.Size < 0 {
		return fmt.Errorf("sqlite: reserve upload: %w: id %q, size %d", storage.ErrInvalid, u.ID, u.Size)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		account, err := accountID(ctx, tx, u.Local, u.Domain)
		if err != nil {
			return err
		}
		var taken bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM uploads WHERE id = ?)`, u.ID).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("upload %s: %w", u.ID, storage.ErrExists)
		}
		if q.Account > 0 {
			frees, ok, err := room(ctx, tx, q.Account, u.Size,
				`FROM uploads WHERE account_id = ? AND created >= ?`, account, toMillis(q.Since))
			if err != nil {
				return err
			}
			if !ok {
				return &storage.QuotaError{Frees: frees}
			}
		}
		if q.Total > 0 {
			frees, ok, err := room(ctx, tx, q.Total, u.Size, `FROM uploads`)
			if err != nil {
				return err
			}
			if !ok {
				return &storage.QuotaError{Total: true, Frees: frees}
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO uploads (id, account_id, filename, content_type, size, created, stored)
			VALUES (?, ?, ?, ?, ?, ?, 0)`, u.ID, account, u.Filename, u.ContentType, u.Size, toMillis(u.Created))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: reserve upload: %w", err)
	}
	return nil
}

// room reports whether size more bytes fit under quota beside the rows
// that from (a FROM … WHERE clause over uploads) selects; when they do
// not, frees is the creation time of the row whose removal, oldest first,
// makes room (zero if none would).
func room(ctx context.Context, tx *sql.Tx, quota, size int64, from string, args ...any) (frees time.Time, ok bool, err error) {
	var used int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) `+from, args...).Scan(&used); err != nil {
		return time.Time{}, false, err
	}
	if used+size <= quota {
		return time.Time{}, true, nil
	}
	if size > quota {
		return time.Time{}, false, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT created, size `+from+` ORDER BY created`, args...)
	if err != nil {
		return time.Time{}, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var created, n int64
		if err := rows.Scan(&created, &n); err != nil {
			return time.Time{}, false, err
		}
		used -= n
		if used+size <= quota {
			return fromMillis(created), false, nil
		}
	}
	return time.Time{}, false, rows.Err()
}

// Upload implements storage.Uploads. Created is in UTC.
func (s *Store) Upload(ctx context.Context, id string) (storage.Upload, error) {
	var (
		u       = storage.Upload{ID: id}
		created int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT a.local, a.domain, u.filename, u.content_type, u.size, u.created, u.stored
		FROM uploads u JOIN accounts a ON a.id = u.account_id WHERE u.id = ?`, id).
		Scan(&u.Local, &u.Domain, &u.Filename, &u.ContentType, &u.Size, &created, &u.Stored)
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("upload %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Upload{}, fmt.Errorf("sqlite: upload: %w", err)
	}
	u.Created = fromMillis(created)
	return u, nil
}

// MarkUploadStored implements storage.Uploads.
func (s *Store) MarkUploadStored(ctx context.Context, id string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var stored bool
		err := tx.QueryRowContext(ctx, `SELECT stored FROM uploads WHERE id = ?`, id).Scan(&stored)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("upload %s: %w", id, storage.ErrNotFound)
		case err != nil:
			return err
		case stored:
			return fmt.Errorf("upload %s already stored: %w", id, storage.ErrExists)
		}
		_, err = tx.ExecContext(ctx, `UPDATE uploads SET stored = 1 WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: mark upload stored: %w", err)
	}
	return nil
}

// DeleteUploads implements storage.Uploads.
func (s *Store) DeleteUploads(ctx context.Context, before, unstoredBefore time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE created < ? OR (stored = 0 AND created < ?)`,
			toMillis(before), toMillis(unstoredBefore))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete uploads: %w", err)
	}
	return int(n), nil
}
