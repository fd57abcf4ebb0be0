package muc

import (
	"context"
	"slices"

	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSHats is the namespace of XEP-0317 (hats, 0.2), advertised by rooms
// and carried by the <hats/> of occupants' presence.
const NSHats = "urn:xmpp:hats:0"

// maxHats bounds the hats of one user in one room.
const maxHats = 32

// Hat is a XEP-0317 hat: a role beyond MUC's own ("teacher",
// "presenter"), identified by its URI, with a title to show.
type Hat struct {
	URI   string `json:"uri"`
	Title string `json:"title"`
}

// DonHat gives user (its bare JID) the hat in the room roomJID, on behalf
// of actor, who must be an owner or an admin of the room (XEP-0317 §3.2:
// the urn:xmpp:hats:commands:don command). A hat with the URI of one the
// user wears replaces it. The user's presence in the room, if it is
// there, is sent again with its hats; a persistent room stores them.
// The errors are stanza errors: item-not-found for no such room,
// forbidden, bad-request for a hat without URI or title,
// policy-violation past 32 hats.
//
// The room's ad-hoc commands (NodeDonHat, NodeDoffHat) do the same.
func (m *Module) DonHat(ctx context.Context, roomJID, actor, user jid.JID, hat Hat) error {
	if hat.URI == "" || hat.Title == "" {
		return stanza.NewError(stanza.BadRequest, "a hat has a URI and a title")
	}
	return m.changeHats(ctx, roomJID, actor, user, func(hats []Hat) ([]Hat, error) { return putHat(hats, hat) })
}

// putHat puts hat among hats: in place of the one with its URI, else
// added, up to maxHats.
func putHat(hats []Hat, hat Hat) ([]Hat, error) {
	if i := slices.IndexFunc(hats, func(h Hat) bool { return h.URI == hat.URI }); i >= 0 {
		hats[i] = hat
		return hats, nil
	}
	if len(hats) >= maxHats {
		return nil, stanza.NewError(stanza.PolicyViolation, "too many hats")
	}
	return append(hats, hat), nil
}

// DoffHat takes the hat with the URI from user in the room roomJID, on
// behalf of actor (an owner or admin: XEP-0317 §3.3, the
// urn:xmpp:hats:commands:doff command); item-not-found when the user
// does not wear it. See DonHat.
func (m *Module) DoffHat(ctx context.Context, roomJID, actor, user jid.JID, uri string) error {
	return m.changeHats(ctx, roomJID, actor, user, func(hats []Hat) ([]Hat, error) { return takeHat(hats, uri) })
}

// takeHat removes the hat with the URI from hats; item-not-found when
// none has it.
func takeHat(hats []Hat, uri string) ([]Hat, error) {
	i := slices.IndexFunc(hats, func(h Hat) bool { return h.URI == uri })
	if i < 0 {
		return nil, stanza.NewError(stanza.ItemNotFound, "the user does not wear that hat")
	}
	return slices.Delete(hats, i, i+1), nil
}

// Hats returns the hats user wears in the room roomJID.
func (m *Module) Hats(roomJID, user jid.JID) []Hat {
	rm := m.room(roomJID.Bare())
	if rm == nil {
		return nil
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return slices.Clone(rm.hats[user.Bare().String()])
}

func (m *Module) changeHats(ctx context.Context, roomJID, actor, user jid.JID, change func([]Hat) ([]Hat, error)) error {
	rm := m.room(roomJID.Bare())
	if rm == nil {
		return stanza.NewError(stanza.ItemNotFound, "no such room")
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.gone {
		return stanza.NewError(stanza.ItemNotFound, "the room was destroyed")
	}
	if !rm.givesHats(actor) {
		return errNoHats()
	}
	return rm.changeHatsLocked(ctx, user, change)
}

// givesHats reports whether actor may give and take hats in the room:
// its owners and admins. rm.mu is held.
func (rm *room) givesHats(actor jid.JID) bool {
	a := rm.affiliation(actor.Bare())
	return a == affOwner || a == affAdmin
}

func errNoHats() *stanza.Error {
	return stanza.NewError(stanza.Forbidden, "only owners and admins give and take hats")
}

// changeHatsLocked applies change to the hats of user, stores them and
// sends the user's presence again; rm.mu is held and the actor checked.
func (rm *room) changeHatsLocked(ctx context.Context, user jid.JID, change func([]Hat) ([]Hat, error)) error {
	bare := user.Bare().String()
	hats, err := change(slices.Clone(rm.hats[bare]))
	if err != nil {
		return err
	}
	if len(hats) == 0 {
		delete(rm.hats, bare)
	} else {
		rm.hats[bare] = hats
	}
	rm.persist(ctx)
	for _, o := range rm.occupants {
		if o.bare.String() == bare {
			rm.broadcastPresence(ctx, o, nil)
		}
	}
	return nil
}

// hatsElement is the <hats/> of a user's presence in the room, or nil
// when it wears none; rm.mu is held.
func (rm *room) hatsElement(bare jid.JID) *xmlstream.Element {
	hats := rm.hats[bare.String()]
	if len(hats) == 0 {
		return nil
	}
	e := xmlstream.NewElement(NSHats, "hats")
	for _, h := range hats {
		e.Append(xmlstream.NewElement(NSHats, "hat").SetAttr("uri", h.URI).SetAttr("title", h.Title))
	}
	return e
}
