package storage

import (
	"context"
	"strings"
	"time"
)

// RoomService returns the service (domain) of a room's bare JID, and
// whether room is one (local@domain, both parts non-empty, no resource).
func RoomService(room string) (string, bool) {
	local, service, ok := strings.Cut(room, "@")
	return service, ok && local != "" && service != "" && !strings.Contains(service, "/")
}

// Room is a stored multi-user chat room (XEP-0045): a persistent room
// survives restarts with its configuration, subject and affiliations.
type Room struct {
	// JID is the room's bare JID (room@service).
	JID string
	// Config is the MUC service's settings of the room, opaque to the
	// store.
	Config []byte
	// Subject is the room's last subject message as XML, nil for none.
	Subject []byte
	// Created is when the room was first stored; kept to the
	// millisecond.
	Created time.Time
	// Affiliations maps bare JIDs to their affiliation (owner, admin,
	// member, outcast), as Rooms returns them; PutRoom ignores it.
	Affiliations map[string]string
}

// Rooms stores MUC rooms, per service.
type Rooms interface {
	// PutRoom stores r, or updates its Config and Subject (Created and
	// the affiliations stay as they are). An empty JID is ErrInvalid.
	PutRoom(ctx context.Context, r Room) error
	// SetRoomAffiliation sets the affiliation of the bare JID jid in
	// room; "" removes it. The room must be stored (ErrNotFound).
	SetRoomAffiliation(ctx context.Context, room, jid, affiliation string) error
	// DeleteRoom removes the room and its affiliations; a room not
	// stored is not an error.
	DeleteRoom(ctx context.Context, room string) error
	// Rooms returns the rooms of the service (the domain of their JIDs)
	// with their affiliations, in JID order.
	Rooms(ctx context.Context, service string) ([]Room, error)
}

// RoomArchive stores the message archives of stored rooms (XEP-0313 on
// a room's JID). ArchivedMessage.Local and Domain name the room; With is
// the room's bare JID and WithResource the sender's nick. A room's
// archive goes with the room (DeleteRoom).
type RoomArchive interface {
	// AppendRoomArchive stores msgs in one transaction and returns how
	// many it stored: messages of rooms that are not stored, and those
	// whose ID is already in the room's archive, are skipped.
	AppendRoomArchive(ctx context.Context, msgs []ArchivedMessage) (int, error)
	// QueryRoomArchive returns a page of the room's archive, as
	// QueryArchive does for an account's.
	QueryRoomArchive(ctx context.Context, room string, q ArchiveQuery) (ArchivePage, error)
	// ReplaceRoomArchived replaces the stanza of the message id in the
	// room's archive (a moderator retracted it: XEP-0425's tombstone);
	// ErrNotFound if there is none.
	ReplaceRoomArchived(ctx context.Context, room, id string, stanza []byte) error
}
