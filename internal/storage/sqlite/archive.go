package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
)

// appendRows is how many rows one INSERT statement of AppendArchive
// carries (7 parameters each); appendSizes are the statement sizes a
// batch is cut into, largest first.
const appendRows = 128

var appendSizes = []int{appendRows, 16, 1}

// appendQueries holds the INSERT of each size in appendSizes.
var appendQueries = func() map[int]string {
	m := make(map[int]string)
	for _, k := range appendSizes {
		m[k] = `INSERT OR IGNORE INTO archive
			(account_id, id, with_jid, with_resource, stamp, outgoing, stanza) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?), ", k), ", ")
	}
	return m
}()

func appendQuery(k int) string { return appendQueries[k] }

// hotQueries are the statements Open prepares on the writer.
func hotQueries() []string {
	qs := []string{setLastActivity, lookupAccountSQL}
	for _, k := range appendSizes {
		qs = append(qs, appendQuery(k))
	}
	return qs
}

// AppendArchive implements storage.Archive: one write transaction for the
// whole batch (the mam module's group commit), the accounts looked up once
// each, the rows sorted by account and id and inserted appendRows at a
// time.
func (s *Store) AppendArchive(ctx context.Context, msgs []storage.ArchivedMessage) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		accounts := make(map[[2]string]int64)
		// Once per account of the batch: prepared at open, not parsed
		// for every account (SQLite's parser was 5% of the server's CPU
		// under ode bench chat with the archive on).
		lookup, err := s.stmt(ctx, tx, lookupAccountSQL)
		if err != nil {
			return err
		}
		args := make([]any, 0, 7*min(len(msgs), appendRows))
		rows := 0
		flush := func() error {
			// Fixed statement sizes, prepared once: 128 rows, then 16, then 1.
			for rows > 0 {
				k := 1
				for _, size := range appendSizes {
					if rows >= size {
						k = size
						break
					}
				}
				st, err := s.stmt(ctx, tx, appendQuery(k))
				if err != nil {
					return err
				}
				res, err := st.ExecContext(ctx, args[:7*k]...)
				if err != nil {
					return err
				}
				affected, err := res.RowsAffected()
				if err != nil {
					return err
				}
				n += affected
				args = append(args[:0], args[7*k:]...)
				rows -= k
			}
			return nil
		}
		type row struct {
			account int64
			m       *storage.ArchivedMessage
		}
		ordered := make([]row, 0, len(msgs))
		for i := range msgs {
			m := &msgs[i]
			key := [2]string{m.Local, m.Domain}
			account, seen := accounts[key]
			if !seen {
				id, ok, err := scanAccount(lookup.QueryRowContext(ctx, m.Domain, m.Local))
				if err != nil {
					return err
				}
				if !ok {
					id = -1 // skipped: no such account
				}
				accounts[key], account = id, id
			}
			if account < 0 {
				continue
			}
			ordered = append(ordered, row{account, m})
		}
		// In index order: the rows of one account, in id order, go
		// into the B-trees one after the other, on pages just visited
		// (docs/performance.md). Stable, so that of two rows with one
		// id the first is kept.
		slices.SortStableFunc(ordered, func(a, b row) int {
			if c := cmp.Compare(a.account, b.account); c != 0 {
				return c
			}
			return strings.Compare(a.m.ID, b.m.ID)
		})
		for _, r := range ordered {
			account, m := r.account, r.m
			args = append(args, account, m.ID, m.With, m.WithResource, toMillis(m.Stamp), m.Outgoing, m.Stanza)
			if rows++; rows == appendRows {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: append archive: %w", err)
	}
	return int(n), nil
}

// QueryArchive implements storage.Archive.
func (s *Store) QueryArchive(ctx context.Context, local, domain string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	var page storage.ArchivePage
	err := s.read(ctx, func(tx *sql.Tx) error {
		account, ok, err := lookupAccount(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		want := slices.Compact(slices.Sorted(slices.Values(append(slices.Clip(q.IDs), nonEmpty(q.AfterID, q.BeforeID)...))))
		if len(want) > 0 {
			if err := archiveHas(ctx, tx, account, want); err != nil {
				return err
			}
		}
		if !ok {
			page.Complete = true
			return nil
		}
		where, args := archiveWhere(account, q)
		order := "ASC"
		if q.Last {
			order = "DESC"
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, with_jid, with_resource, stamp, outgoing, stanza FROM archive WHERE `+
			where+` ORDER BY id `+order+` LIMIT ?`, append(args, q.Max+1)...)
		if err != nil {
			return err
		}
		page, err = readPage(rows, local, domain, q)
		return err
	})
	if err != nil {
		return storage.ArchivePage{}, fmt.Errorf("sqlite: query archive: %w", err)
	}
	return page, nil
}

// readPage reads the rows of a page query (id, with_jid, with_resource,
// stamp, outgoing, stanza; one more than q.Max, in the paging direction)
// into a page in archive order, and closes them.
func readPage(rows *sql.Rows, local, domain string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	defer rows.Close()
	var page storage.ArchivePage
	for rows.Next() {
		m := storage.ArchivedMessage{Local: local, Domain: domain}
		var stamp int64
		if err := rows.Scan(&m.ID, &m.With, &m.WithResource, &stamp, &m.Outgoing, &m.Stanza); err != nil {
			return storage.ArchivePage{}, err
		}
		m.Stamp = fromMillis(stamp)
		page.Messages = append(page.Messages, m)
	}
	if err := rows.Err(); err != nil {
		return storage.ArchivePage{}, err
	}
	page.Complete = len(page.Messages) <= q.Max
	if !page.Complete {
		page.Messages = page.Messages[:q.Max]
	}
	if q.Last {
		slices.Reverse(page.Messages)
	}
	return page, nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// archiveHas returns an error wrapping storage.ErrNotFound unless every
// id of ids (sorted, without duplicates) is in the account's archive.
func archiveHas(ctx context.Context, tx *sql.Tx, account int64, ids []string) error {
	args := []any{account}
	for _, id := range ids {
		args = append(args, id)
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM archive WHERE account_id = ? AND id IN (`+
		placeholders(len(ids))+`)`, args...).Scan(&n)
	if err != nil {
		return err
	}
	if n != len(ids) {
		return fmt.Errorf("archive id: %w", storage.ErrNotFound)
	}
	return nil
}

// archiveWhere returns the WHERE clause of q and its arguments.
func archiveWhere(account int64, q storage.ArchiveQuery) (string, []any) {
	conds := []string{"account_id = ?"}
	args := []any{account}
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if q.With != "" {
		add("with_jid = ?", q.With)
		if q.WithResource != "" {
			add("with_resource = ?", q.WithResource)
		}
	}
	if !q.Start.IsZero() {
		add("stamp >= ?", toMillis(q.Start))
	}
	if !q.End.IsZero() {
		add("stamp <= ?", toMillis(q.End))
	}
	// The time range as an id range, through archive_by_id (there is no
	// per-account time index).
	if q.StartID != "" {
		add("id >= ?", q.StartID)
	}
	if q.EndID != "" {
		add("id <= ?", q.EndID)
	}
	if q.AfterID != "" {
		add("id > ?", q.AfterID)
	}
	if q.BeforeID != "" {
		add("id < ?", q.BeforeID)
	}
	if len(q.IDs) > 0 {
		conds = append(conds, "id IN ("+placeholders(len(q.IDs))+")")
		for _, id := range q.IDs {
			args = append(args, id)
		}
	}
	return strings.Join(conds, " AND "), args
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// ArchiveBounds implements storage.Archive.
func (s *Store) ArchiveBounds(ctx context.Context, local, domain string) (first, last storage.ArchivedMessage, err error) {
	err = s.read(ctx, func(tx *sql.Tx) error {
		account, ok, err := lookupAccount(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		if !ok {
			return storage.ErrNotFound
		}
		for _, b := range []struct {
			m     *storage.ArchivedMessage
			order string
		}{{&first, "ASC"}, {&last, "DESC"}} {
			m := storage.ArchivedMessage{Local: local, Domain: domain}
			var stamp int64
			err := tx.QueryRowContext(ctx, `SELECT id, with_jid, with_resource, stamp, outgoing FROM archive
				WHERE account_id = ? ORDER BY id `+b.order+` LIMIT 1`, account).
				Scan(&m.ID, &m.With, &m.WithResource, &stamp, &m.Outgoing)
			if errors.Is(err, sql.ErrNoRows) {
				return storage.ErrNotFound
			}
			if err != nil {
				return err
			}
			m.Stamp = fromMillis(stamp)
			*b.m = m
		}
		return nil
	})
	if err != nil {
		return storage.ArchivedMessage{}, storage.ArchivedMessage{}, fmt.Errorf("sqlite: archive bounds: %w", err)
	}
	return first, last, nil
}

// deleteArchivedChunk bounds the rows one transaction of DeleteArchived
// removes, so that the archive's writer does not wait long for the lock.
const deleteArchivedChunk = 5000

// DeleteArchived implements storage.Archive, in transactions of at most
// deleteArchivedChunk rows.
func (s *Store) DeleteArchived(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := s.write(ctx, func(tx *sql.Tx) error {
			// Oldest first, through archive_by_time.
			res, err := tx.ExecContext(ctx, `DELETE FROM archive WHERE rowid IN (
				SELECT rowid FROM archive WHERE stamp < ? LIMIT ?)`,
				toMillis(before), deleteArchivedChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sqlite: delete archived: %w", err)
		}
		total += int(n)
		if n < deleteArchivedChunk {
			return total, nil
		}
	}
}
