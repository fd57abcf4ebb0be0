package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// AppendArchive implements storage.Archive: the whole batch (the mam
// module's group commit) in one INSERT … SELECT over arrays, joined to the
// accounts so that those that do not exist are skipped, each account
// locked once (KEY SHARE: a deletion of the account waits, and its
// trigger then removes these rows too; the table has no foreign key,
// which checked and locked the account once per row), the rows in index
// order (account, id: each B-tree insert near the previous one), and ON
// CONFLICT DO NOTHING for the ids already archived (also twice in one
// batch, where the first is kept).
func (s *Store) AppendArchive(ctx context.Context, msgs []storage.ArchivedMessage) (int, error) {
	if len(msgs) == 0 {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("postgres: append archive: %w", err)
		}
		return 0, nil
	}
	var (
		locals, domains, ids, withs, resources = make([]string, len(msgs)), make([]string, len(msgs)), make([]string, len(msgs)), make([]string, len(msgs)), make([]string, len(msgs))
		stamps                                 = make([]time.Time, len(msgs))
		outgoing                               = make([]bool, len(msgs))
		stanzas                                = make([][]byte, len(msgs))
	)
	for i, m := range msgs {
		locals[i], domains[i], ids[i], withs[i], resources[i] = m.Local, m.Domain, m.ID, m.With, m.WithResource
		stamps[i], outgoing[i], stanzas[i] = millis(m.Stamp), m.Outgoing, m.Stanza
	}
	tag, err := s.pool.Exec(ctx, `WITH m AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::boolean[], $8::bytea[])
				WITH ORDINALITY AS m (local, domain, id, with_jid, with_resource, stamp, outgoing, stanza, n)
		), a AS (
			SELECT id, local, domain FROM accounts WHERE (local, domain) IN (SELECT local, domain FROM m)
			FOR KEY SHARE
		)
		INSERT INTO archive (account_id, id, with_jid, with_resource, stamp, outgoing, stanza)
		SELECT a.id, m.id, m.with_jid, m.with_resource, m.stamp, m.outgoing, m.stanza
		FROM m JOIN a ON a.domain = m.domain AND a.local = m.local
		ORDER BY a.id, m.id, m.n
		ON CONFLICT (account_id, id) DO NOTHING`,
		locals, domains, ids, withs, resources, stamps, outgoing, stanzas)
	if err != nil {
		return 0, fmt.Errorf("postgres: append archive: %w", doneErr(ctx, err))
	}
	return int(tag.RowsAffected()), nil
}

// QueryArchive implements storage.Archive in one statement (one snapshot,
// one round trip), the account's id a sub-query: the latest page of an
// archive is a backward scan of its primary key (account_id, id), one with
// a 'with' filter the same scan of archive_by_with. The ids that must be
// in the archive (AfterID, BeforeID, IDs) are counted by the same
// statement, in one more row after the page's.
func (s *Store) QueryArchive(ctx context.Context, local, domain string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	want := slices.Compact(slices.Sorted(slices.Values(append(slices.Clip(q.IDs), nonEmpty(q.AfterID, q.BeforeID)...))))
	page, err := queryArchive(ctx, s.pool, local, domain, q, want)
	if err != nil {
		return storage.ArchivePage{}, fmt.Errorf("postgres: query archive: %w", doneErr(ctx, err))
	}
	return page, nil
}

// queryArchive runs the query of q, checking that the ids of want are in
// the archive; an account that does not exist has no rows.
func queryArchive(ctx context.Context, db querier, local, domain string, q storage.ArchiveQuery, want []string) (storage.ArchivePage, error) {
	where, args := archiveWhere(local, domain, q)
	order := "ASC"
	if q.Last {
		order = "DESC"
	}
	pageSQL := fmt.Sprintf(`SELECT id, with_jid, with_resource, stamp, outgoing, stanza FROM archive
		WHERE %s ORDER BY id %s LIMIT $%d`, where, order, len(args)+1)
	args = append(args, q.Max+1)
	sql := pageSQL
	if len(want) > 0 {
		// The page's rows, then one row whose first column counts the ids
		// found: no column is ever NULL, and the rows scan as they are.
		args = append(args, want)
		sql = fmt.Sprintf(`SELECT * FROM (
				SELECT 0::bigint AS n, p.* FROM (%s) p
				UNION ALL
				SELECT 1 + COUNT(*), '', '', '', 'epoch', false, ''::bytea FROM archive
				WHERE account_id = (SELECT id FROM accounts WHERE domain = $1 AND local = $2) AND id = ANY ($%d)
			) r ORDER BY n, id %s`, pageSQL, len(args), order)
	}
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return storage.ArchivePage{}, err
	}
	defer rows.Close()
	var (
		page storage.ArchivePage
		has  int64 // 1 + the ids of want found
	)
	var (
		m    storage.ArchivedMessage
		n    int64
		dest = []any{&m.ID, &m.With, &m.WithResource, &m.Stamp, &m.Outgoing, &m.Stanza}
	)
	if len(want) > 0 {
		dest = append([]any{&n}, dest...)
	}
	for rows.Next() {
		m = storage.ArchivedMessage{Local: local, Domain: domain}
		if err := rows.Scan(dest...); err != nil {
			return storage.ArchivePage{}, err
		}
		if n > 0 {
			has = n
			continue
		}
		m.Stamp = m.Stamp.UTC()
		page.Messages = append(page.Messages, m)
	}
	if err := rows.Err(); err != nil {
		return storage.ArchivePage{}, err
	}
	if len(want) > 0 {
		if has-1 != int64(len(want)) {
			return storage.ArchivePage{}, fmt.Errorf("archive id: %w", storage.ErrNotFound)
		}
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

// archiveWhere returns the WHERE clause of q and its arguments.
func archiveWhere(local, domain string, q storage.ArchiveQuery) (string, []any) {
	return queryWhere("account_id = (SELECT id FROM accounts WHERE domain = $1 AND local = $2)", []any{domain, local}, q)
}

// queryWhere returns the WHERE clause of q's filters after owner (a
// condition on the archive's owner, with its arguments args), for the
// user and the room archives alike.
func queryWhere(owner string, args []any, q storage.ArchiveQuery) (string, []any) {
	conds := []string{owner}
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if q.With != "" {
		add("with_jid = $%d", q.With)
		if q.WithResource != "" {
			add("with_resource = $%d", q.WithResource)
		}
	}
	if !q.Start.IsZero() {
		add("stamp >= $%d", millis(q.Start))
	}
	if !q.End.IsZero() {
		add("stamp <= $%d", millis(q.End))
	}
	if q.StartID != "" {
		add("id >= $%d", q.StartID)
	}
	if q.EndID != "" {
		add("id <= $%d", q.EndID)
	}
	if q.AfterID != "" {
		add("id > $%d", q.AfterID)
	}
	if q.BeforeID != "" {
		add("id < $%d", q.BeforeID)
	}
	if len(q.IDs) > 0 {
		add("id = ANY ($%d)", q.IDs)
	}
	return strings.Join(conds, " AND "), args
}

// ArchiveBounds implements storage.Archive.
func (s *Store) ArchiveBounds(ctx context.Context, local, domain string) (first, last storage.ArchivedMessage, err error) {
	err = s.read(ctx, func(tx pgx.Tx) error {
		account, ok, err := lookupAccount(ctx, tx, local, domain, false)
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
			err := tx.QueryRow(ctx, `SELECT id, with_jid, with_resource, stamp, outgoing FROM archive
				WHERE account_id = $1 ORDER BY id `+b.order+` LIMIT 1`, account).
				Scan(&m.ID, &m.With, &m.WithResource, &m.Stamp, &m.Outgoing)
			if errors.Is(err, pgx.ErrNoRows) {
				return storage.ErrNotFound
			}
			if err != nil {
				return err
			}
			m.Stamp = m.Stamp.UTC()
			*b.m = m
		}
		return nil
	})
	if err != nil {
		return storage.ArchivedMessage{}, storage.ArchivedMessage{}, fmt.Errorf("postgres: archive bounds: %w", err)
	}
	return first, last, nil
}

// deleteArchivedChunk bounds the rows one statement of DeleteArchived
// removes, so that no transaction holds many locks for long.
const deleteArchivedChunk = 5000

// DeleteArchived implements storage.Archive, in statements of at most
// deleteArchivedChunk rows, the oldest first through archive_by_time.
func (s *Store) DeleteArchived(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM archive WHERE (account_id, id) IN (
			SELECT account_id, id FROM archive WHERE stamp < $1 ORDER BY stamp LIMIT $2)`,
			millis(before), deleteArchivedChunk)
		if err != nil {
			return total, fmt.Errorf("postgres: delete archived: %w", doneErr(ctx, err))
		}
		n := int(tag.RowsAffected())
		total += n
		if n < deleteArchivedChunk {
			return total, nil
		}
	}
}
