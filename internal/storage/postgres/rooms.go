package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// PutRoom implements storage.Rooms in one statement.
func (s *Store) PutRoom(ctx context.Context, r storage.Room) error {
	service, ok := storage.RoomService(r.JID)
	if !ok {
		return fmt.Errorf("postgres: put room: %w: room JID %q", storage.ErrInvalid, r.JID)
	}
	config := r.Config
	if config == nil {
		config = []byte{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO rooms (jid, service, config, subject, created) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (jid) DO UPDATE SET config = excluded.config, subject = excluded.subject`,
		r.JID, service, config, r.Subject, millis(r.Created))
	if err != nil {
		return fmt.Errorf("postgres: put room: %w", doneErr(ctx, err))
	}
	return nil
}

// SetRoomAffiliation implements storage.Rooms; the room's row is locked
// so that a concurrent DeleteRoom cannot leave an affiliation behind.
func (s *Store) SetRoomAffiliation(ctx context.Context, room, jid, affiliation string) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		var found string
		if err := tx.QueryRow(ctx, `SELECT jid FROM rooms WHERE jid = $1 FOR KEY SHARE`, room).Scan(&found); err != nil {
			if err == pgx.ErrNoRows {
				return fmt.Errorf("room %s: %w", room, storage.ErrNotFound)
			}
			return err
		}
		if affiliation == "" {
			_, err := tx.Exec(ctx, `DELETE FROM room_affiliations WHERE room = $1 AND jid = $2`, room, jid)
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO room_affiliations (room, jid, affiliation) VALUES ($1, $2, $3)
			ON CONFLICT (room, jid) DO UPDATE SET affiliation = excluded.affiliation`, room, jid, affiliation)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: set room affiliation: %w", err)
	}
	return nil
}

// DeleteRoom implements storage.Rooms; the affiliations go by ON DELETE
// CASCADE.
func (s *Store) DeleteRoom(ctx context.Context, room string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM rooms WHERE jid = $1`, room); err != nil {
		return fmt.Errorf("postgres: delete room: %w", doneErr(ctx, err))
	}
	return nil
}

// Rooms implements storage.Rooms, with one snapshot for both queries.
func (s *Store) Rooms(ctx context.Context, service string) ([]storage.Room, error) {
	var out []storage.Room
	err := s.read(ctx, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `SELECT jid, config, subject, created FROM rooms WHERE service = $1 ORDER BY jid`, service)
		if err != nil {
			return err
		}
		index := map[string]int{}
		for rows.Next() {
			var r storage.Room
			var created time.Time
			if err := rows.Scan(&r.JID, &r.Config, &r.Subject, &created); err != nil {
				rows.Close()
				return err
			}
			r.Created = created.UTC()
			r.Affiliations = map[string]string{}
			index[r.JID] = len(out)
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		affs, err := tx.Query(ctx, `SELECT a.room, a.jid, a.affiliation FROM room_affiliations a
			JOIN rooms r ON r.jid = a.room WHERE r.service = $1`, service)
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
		return nil, fmt.Errorf("postgres: rooms: %w", err)
	}
	return out, nil
}
