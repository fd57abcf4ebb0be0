package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// AppendRoomArchive implements storage.RoomArchive: the batch in one
// INSERT … SELECT over arrays joined to the stored rooms, ON CONFLICT DO
// NOTHING for the ids already archived.
func (s *Store) AppendRoomArchive(ctx context.Context, msgs []storage.ArchivedMessage) (int, error) {
	if len(msgs) == 0 {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("postgres: append room archive: %w", err)
		}
		return 0, nil
	}
	n := len(msgs)
	rooms, ids, withs, nicks := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	stamps, stanzas := make([]time.Time, n), make([][]byte, n)
	for i, m := range msgs {
		rooms[i], ids[i], withs[i], nicks[i] = m.Local+"@"+m.Domain, m.ID, m.With, m.WithResource
		stamps[i], stanzas[i] = millis(m.Stamp), m.Stanza
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO room_archive (room, id, with_jid, with_resource, stamp, stanza)
		SELECT r.jid, m.id, m.with_jid, m.with_resource, m.stamp, m.stanza
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bytea[])
			AS m (room, id, with_jid, with_resource, stamp, stanza)
		JOIN rooms r ON r.jid = m.room
		ON CONFLICT (room, id) DO NOTHING`, rooms, ids, withs, nicks, stamps, stanzas)
	if err != nil {
		return 0, fmt.Errorf("postgres: append room archive: %w", doneErr(ctx, err))
	}
	return int(tag.RowsAffected()), nil
}

// QueryRoomArchive implements storage.RoomArchive in one read-only
// transaction: the ids that must be there are counted, then the page.
func (s *Store) QueryRoomArchive(ctx context.Context, room string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	local, domain, _ := strings.Cut(room, "@")
	var page storage.ArchivePage
	err := s.read(ctx, func(tx pgx.Tx) error {
		page = storage.ArchivePage{}
		want := slices.Compact(slices.Sorted(slices.Values(append(slices.Clip(q.IDs), nonEmpty(q.AfterID, q.BeforeID)...))))
		if len(want) > 0 {
			var found int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM room_archive WHERE room = $1 AND id = ANY ($2)`, room, want).Scan(&found); err != nil {
				return err
			}
			if found != len(want) {
				return fmt.Errorf("archive id: %w", storage.ErrNotFound)
			}
		}
		where, args := queryWhere("room = $1", []any{room}, q)
		order := "ASC"
		if q.Last {
			order = "DESC"
		}
		args = append(args, q.Max+1)
		rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT id, with_jid, with_resource, stamp, stanza FROM room_archive
			WHERE %s ORDER BY id %s LIMIT $%d`, where, order, len(args)), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m := storage.ArchivedMessage{Local: local, Domain: domain}
			if err := rows.Scan(&m.ID, &m.With, &m.WithResource, &m.Stamp, &m.Stanza); err != nil {
				return err
			}
			m.Stamp = m.Stamp.UTC()
			page.Messages = append(page.Messages, m)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		page.Complete = len(page.Messages) <= q.Max
		if !page.Complete {
			page.Messages = page.Messages[:q.Max]
		}
		if q.Last {
			slices.Reverse(page.Messages)
		}
		return nil
	})
	if err != nil {
		return storage.ArchivePage{}, fmt.Errorf("postgres: query room archive: %w", err)
	}
	return page, nil
}

// ReplaceRoomArchived implements storage.RoomArchive.
func (s *Store) ReplaceRoomArchived(ctx context.Context, room, id string, stanza []byte) error {
	tag, err := s.pool.Exec(ctx, `UPDATE room_archive SET stanza = $1 WHERE room = $2 AND id = $3`, stanza, room, id)
	if err != nil {
		return fmt.Errorf("postgres: replace room archived: %w", doneErr(ctx, err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: replace room archived: archive id %s: %w", id, storage.ErrNotFound)
	}
	return nil
}
