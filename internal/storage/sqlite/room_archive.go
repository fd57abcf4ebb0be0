package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/ode-xmpp/ode/internal/storage"
)

// AppendRoomArchive implements storage.RoomArchive in one write
// transaction; rows of rooms not stored are skipped (the foreign key is
// checked by a join).
func (s *Store) AppendRoomArchive(ctx context.Context, msgs []storage.ArchivedMessage) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO room_archive (room, id, with_jid, with_resource, stamp, stanza)
			SELECT jid, ?, ?, ?, ?, ? FROM rooms WHERE jid = ?`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, m := range msgs {
			res, err := ins.ExecContext(ctx, m.ID, m.With, m.WithResource, toMillis(m.Stamp), m.Stanza, m.Local+"@"+m.Domain)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: append room archive: %w", err)
	}
	return int(n), nil
}

// QueryRoomArchive implements storage.RoomArchive.
func (s *Store) QueryRoomArchive(ctx context.Context, room string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	local, domain, _ := strings.Cut(room, "@")
	var page storage.ArchivePage
	err := s.read(ctx, func(tx *sql.Tx) error {
		page = storage.ArchivePage{}
		want := slices.Compact(slices.Sorted(slices.Values(append(slices.Clip(q.IDs), nonEmpty(q.AfterID, q.BeforeID)...))))
		if len(want) > 0 {
			args := []any{room}
			for _, id := range want {
				args = append(args, id)
			}
			var found int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM room_archive WHERE room = ? AND id IN (`+
				placeholders(len(want))+`)`, args...).Scan(&found); err != nil {
				return err
			}
			if found != len(want) {
				return fmt.Errorf("archive id: %w", storage.ErrNotFound)
			}
		}
		where, args := archiveWhere(0, q)
		where = strings.Replace(where, "account_id = ?", "room = ?", 1)
		args[0] = room
		order := "ASC"
		if q.Last {
			order = "DESC"
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, with_jid, with_resource, stamp, 0, stanza FROM room_archive WHERE `+
			where+` ORDER BY id `+order+` LIMIT ?`, append(args, q.Max+1)...)
		if err != nil {
			return err
		}
		page, err = readPage(rows, local, domain, q)
		return err
	})
	if err != nil {
		return storage.ArchivePage{}, fmt.Errorf("sqlite: query room archive: %w", err)
	}
	return page, nil
}

// ReplaceRoomArchived implements storage.RoomArchive.
func (s *Store) ReplaceRoomArchived(ctx context.Context, room, id string, stanza []byte) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE room_archive SET stanza = ? WHERE room = ? AND id = ?`, stanza, room, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("archive id %s: %w", id, storage.ErrNotFound)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: replace room archived: %w", err)
	}
	return nil
}
