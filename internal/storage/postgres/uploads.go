package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// totalUploadsLock is the key of the transaction-scoped advisory lock that
// serialises the reservations checked against the total quota.
const totalUploadsLock int64 = 0x6f64652d75706c64 // "ode-upld"

// ReserveUpload implements storage.Uploads: the owner's row is locked while
// the account quota is summed and the slot inserted, and the total quota
// is checked under an advisory lock, so that the check and the insert are
// atomic across processes.
func (s *Store) ReserveUpload(ctx context.Context, u storage.Upload, q storage.UploadQuota) error {
	if u.ID == "" || u.Size < 0 {
		return fmt.Errorf("postgres: reserve upload: %w: id %q, size %d", storage.ErrInvalid, u.ID, u.Size)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		account, err := accountID(ctx, tx, u.Local, u.Domain, true)
		if err != nil {
			return err
		}
		if q.Total > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, totalUploadsLock); err != nil {
				return err
			}
		}
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM uploads WHERE id = $1)`, u.ID).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("upload %s: %w", u.ID, storage.ErrExists)
		}
		if q.Account > 0 {
			frees, ok, err := room(ctx, tx, q.Account, u.Size,
				`FROM uploads WHERE account_id = $1 AND created >= $2`, account, millis(q.Since))
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
		_, err = tx.Exec(ctx, `INSERT INTO uploads (id, account_id, filename, content_type, size, created, stored)
			VALUES ($1, $2, $3, $4, $5, $6, false)`, u.ID, account, u.Filename, u.ContentType, u.Size, millis(u.Created))
		if isUnique(err) { // taken by a concurrent reservation
			err = fmt.Errorf("upload %s: %w", u.ID, storage.ErrExists)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: reserve upload: %w", err)
	}
	return nil
}

// room reports whether size more bytes fit under quota beside the rows
// that from (a FROM … WHERE clause over uploads) selects; when they do
// not, frees is the creation time of the row whose removal, oldest first,
// makes room (zero if none would).
func room(ctx context.Context, tx pgx.Tx, quota, size int64, from string, args ...any) (frees time.Time, ok bool, err error) {
	var used int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(size), 0)::bigint `+from, args...).Scan(&used); err != nil {
		return time.Time{}, false, err
	}
	if used+size <= quota {
		return time.Time{}, true, nil
	}
	if size > quota {
		return time.Time{}, false, nil
	}
	// The oldest row after which the rest, with the new one, fit.
	n := len(args)
	err = tx.QueryRow(ctx, fmt.Sprintf(`SELECT created FROM (
			SELECT created, SUM(size) OVER (ORDER BY created, id ROWS UNBOUNDED PRECEDING) AS freed %s
		) r WHERE $%d - freed + $%d <= $%d ORDER BY created LIMIT 1`, from, n+1, n+2, n+3),
		append(args, used, size, quota)...).Scan(&frees)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return frees.UTC(), false, nil
}

// Upload implements storage.Uploads. Created is in UTC.
func (s *Store) Upload(ctx context.Context, id string) (storage.Upload, error) {
	u := storage.Upload{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT a.local, a.domain, u.filename, u.content_type, u.size, u.created, u.stored
		FROM uploads u JOIN accounts a ON a.id = u.account_id WHERE u.id = $1`, id).
		Scan(&u.Local, &u.Domain, &u.Filename, &u.ContentType, &u.Size, &u.Created, &u.Stored)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("upload %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Upload{}, fmt.Errorf("postgres: upload: %w", doneErr(ctx, err))
	}
	u.Created = u.Created.UTC()
	return u, nil
}

// MarkUploadStored implements storage.Uploads with one conditional
// update: of two concurrent calls, one succeeds.
func (s *Store) MarkUploadStored(ctx context.Context, id string) error {
	var updated, exists bool
	err := s.pool.QueryRow(ctx, `WITH u AS (UPDATE uploads SET stored = true WHERE id = $1 AND NOT stored RETURNING id)
		SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM uploads WHERE id = $1)`, id).Scan(&updated, &exists)
	switch {
	case err != nil || updated:
	case exists:
		err = fmt.Errorf("upload %s already stored: %w", id, storage.ErrExists)
	default:
		err = fmt.Errorf("upload %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: mark upload stored: %w", doneErr(ctx, err))
	}
	return nil
}

// DeleteUploads implements storage.Uploads.
func (s *Store) DeleteUploads(ctx context.Context, before, unstoredBefore time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM uploads WHERE created < $1 OR (NOT stored AND created < $2)`,
		millis(before), millis(unstoredBefore))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete uploads: %w", doneErr(ctx, err))
	}
	return int(tag.RowsAffected()), nil
}
