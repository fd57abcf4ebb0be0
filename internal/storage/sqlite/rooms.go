package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ode-xmpp/ode/internal/storage"
)

// PutRoom implements storage.Rooms.
func (s *Store) PutRoom(ctx context.Context, r storage.Room) error {
	service, ok := storage.RoomService(r.JID)
	if !ok {
		return fmt.Errorf("sqlite: put room: %w: room JID %q", storage.ErrInvalid, r.JID)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rooms (jid, service, config, subject, created) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (jid) DO UPDATE SET config = excluded.config, subject = excluded.subject`,
			r.JID, service, nonNil(r.Config), r.Subject, toMillis(r.Created))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put room: %w", err)
	}
	return nil
}

// SetRoomAffiliation implements storage.Rooms.
func (s *Store) SetRoomAffiliation(ctx context.Context, room, jid, affiliation string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM rooms WHERE jid = ?)`, room).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("room %s: %w", room, storage.ErrNotFound)
		}
		if affiliation == "" {
			_, err := tx.ExecContext(ctx, `DELETE FROM room_affiliations WHERE room = ? AND jid = ?`, room, jid)
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO room_affiliations (room, jid, affiliation) VALUES (?, ?, ?)
			ON CONFLICT (room, jid) DO UPDATE SET affiliation = excluded.affiliation`, room, jid, affiliation)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set room affiliation: %w", err)
	}
	return nil
}

// DeleteRoom implements storage.Rooms; the affiliations go by ON DELETE
// CASCADE.
func (s *Store) DeleteRoom(ctx context.Context, room string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM rooms WHERE jid = ?`, room)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete room: %w", err)
	}
	return nil
}

// Rooms implements storage.Rooms, in one read transaction.
func (s *Store) Rooms(ctx context.Context, service string) ([]storage.Room, error) {
	var out []storage.Room
	err := s.read(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT jid, config, subject, created FROM rooms WHERE service = ? ORDER BY jid`, service)
		if err != nil {
			return err
		}
		defer rows.Close()
		index := map[string]int{}
		for rows.Next() {
			var r storage.Room
			var created int64
			if err := rows.Scan(&r.JID, &r.Config, &r.Subject, &created); err != nil {
				return err
			}
			r.Created = fromMillis(created)
			r.Affiliations = map[string]string{}
			index[r.JID] = len(out)
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		affs, err := tx.QueryContext(ctx, `SELECT a.room, a.jid, a.affiliation FROM room_affiliations a
			JOIN rooms r ON r.jid = a.room WHERE r.service = ?`, service)
		if err != nil {
			return err
		}
		defer affs.Close()
		for affs.Next() {
			var room, jid, aff string
			if err := affs.Scan(&room, &jid, &aff); err != nil {
				return err
			}
			if i, ok := index[room]; ok {
				out[i].Affiliations[jid] = aff
			}
		}
		return affs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: rooms: %w", err)
	}
	return out, nil
}
