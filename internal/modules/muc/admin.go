package muc

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/xmlstream"
)

// RoomInfo is what the server's administrators see of a room.
type RoomInfo struct {
	JID        string `json:"jid"`
	Name       string `json:"name,omitempty"`
	Occupants  int    `json:"occupants"`
	Persistent bool   `json:"persistent"`
	Public     bool   `json:"public"`
}

// ErrNoRoom is returned by DestroyRoom for a room the service does not
// have.
var ErrNoRoom = errors.New("muc: no such room")

// Rooms returns every room of the service, sorted by JID (for `ode room
// list` and the admin API).
func (m *Module) Rooms() []RoomInfo {
	m.mu.Lock()
	rooms := make([]*room, 0, len(m.rooms))
	for _, rm := range m.rooms {
		rooms = append(rooms, rm)
	}
	m.mu.Unlock()
	out := make([]RoomInfo, 0, len(rooms))
	for _, rm := range rooms {
		rm.mu.Lock()
		if !rm.gone {
			out = append(out, RoomInfo{JID: rm.jid.String(), Name: rm.cfg.name, Occupants: len(rm.occupants),
				Persistent: rm.cfg.persistent, Public: rm.cfg.public})
		}
		rm.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b RoomInfo) int { return strings.Compare(a.JID, b.JID) })
	return out
}

// DestroyRoom destroys the room as its owner would (XEP-0045 §10.9):
// every occupant leaves with the reason, and a stored room is deleted.
func (m *Module) DestroyRoom(ctx context.Context, room jid.JID, reason string) error {
	rm := m.room(room.Bare())
	if rm == nil {
		return ErrNoRoom
	}
	d := xmlstream.NewElement(NSOwner, "destroy")
	if reason != "" {
		d.Append(xmlstream.NewElement(NSOwner, "reason").AppendText(reason))
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.gone {
		return ErrNoRoom
	}
	rm.destroy(ctx, d)
	return nil
}
