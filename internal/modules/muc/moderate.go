package muc

import (
	"context"
	"errors"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of XEP-0425 (message moderation, 0.3) and XEP-0424 (message
// retraction, 0.4).
const (
	NSModerate = "urn:xmpp:message-moderate:1"
	NSRetract  = "urn:xmpp:message-retract:1"
)

// moderate handles <moderate id='stanza-id'><retract/></moderate> from a
// moderator (XEP-0425 §4): every occupant is told the message is
// retracted, the archive keeps a tombstone in its place, and the history
// forgets it. Messages have ids only in archived rooms. rm.mu is held.
func (rm *room) moderate(ctx context.Context, ev *router.Event, q *xmlstream.Element) (*xmlstream.Element, *stanza.Error) {
	actor := rm.byJID[ev.From.String()]
	if actor == nil || actor.role != roleModerator {
		return nil, stanza.NewError(stanza.Forbidden, "only moderators retract others' messages")
	}
	id := q.Attribute("id")
	if id == "" || q.Child(NSRetract, "retract") == nil {
		return nil, stanza.NewError(stanza.BadRequest, "moderate a message by its stanza-id, with <retract/>")
	}
	if !rm.archiving() {
		return nil, stanza.NewError(stanza.ItemNotFound, "the room keeps no archive: its messages have no ids")
	}
	reason := childText(q, NSModerate, "reason")
	if err := rm.m.w.Sync(ctx); err != nil {
		return nil, stanza.NewError(stanza.InternalServerError, "")
	}
	page, err := rm.m.deps.Store.QueryRoomArchive(ctx, rm.jid.String(), storage.ArchiveQuery{IDs: []string{id}, Max: 1})
	if errors.Is(err, storage.ErrNotFound) || (err == nil && len(page.Messages) == 0) {
		return nil, stanza.NewError(stanza.ItemNotFound, "no message with that id in the room's archive")
	}
	if err != nil {
		rm.m.deps.Log.Error("muc: moderate: read archive", "room", rm.jid.String(), "err", err)
		return nil, stanza.NewError(stanza.InternalServerError, "")
	}
	orig, err := xmlstream.ParseElement(page.Messages[0].Stanza, stanza.NSClient)
	if err != nil {
		return nil, stanza.NewError(stanza.InternalServerError, "")
	}
	moderated := func() *xmlstream.Element {
		return xmlstream.NewElement(NSModerate, "moderated").SetAttr("by", rm.nickJID(actor.nick)).
			Append(rm.occupantIDElement(actor.bare))
	}
	// The tombstone: the original's envelope and ids, the content gone.
	tomb := xmlstream.NewElement(stanza.NSClient, "message")
	for _, a := range orig.Attr {
		if a.Name.Space == "" && (a.Name.Local == "from" || a.Name.Local == "type" || a.Name.Local == "id") {
			tomb.SetAttr(a.Name.Local, a.Value)
		}
	}
	retracted := xmlstream.NewElement(NSRetract, "retracted").SetAttr("stamp", rm.m.now().UTC().Format("2006-01-02T15:04:05Z")).Append(moderated())
	if reason != "" {
		retracted.Append(xmlstream.NewElement(NSModerate, "reason").AppendText(reason))
	}
	tomb.Append(retracted)
	for _, c := range orig.Children {
		if e := c.Elem; e != nil && (e.Name.Space == NSOccupantID || e.Name.Space == NSStanzaID) {
			tomb.Append(e)
		}
	}
	if err := rm.m.deps.Store.ReplaceRoomArchived(ctx, rm.jid.String(), id, tomb.AppendXML(nil, stanza.NSClient)); err != nil {
		rm.m.deps.Log.Error("muc: moderate: write archive", "room", rm.jid.String(), "err", err)
		return nil, stanza.NewError(stanza.InternalServerError, "")
	}
	rm.history = deleteFunc(rm.history, func(h histEntry) bool { return stanzaID(h.msg, rm.jid.String()) == id }, &rm.histBytes)

	retract := xmlstream.NewElement(NSRetract, "retract").SetAttr("id", id).Append(moderated())
	if reason != "" {
		retract.Append(xmlstream.NewElement(NSModerate, "reason").AppendText(reason))
	}
	out := xmlstream.NewElement(stanza.NSClient, "message").SetAttr("from", rm.jid.String()).
		SetAttr("type", stanza.MessageGroupchat).SetAttr("id", "retract-"+newToken()).Append(retract)
	rm.archive(ctx, out, "")
	rm.broadcast(ctx, out)
	return nil, nil
}

// stanzaID returns the id of msg's stanza-id by, or "".
func stanzaID(msg *xmlstream.Element, by string) string {
	for _, c := range msg.Children {
		if e := c.Elem; e != nil && e.Name.Space == NSStanzaID && e.Name.Local == "stanza-id" && e.Attribute("by") == by {
			return e.Attribute("id")
		}
	}
	return ""
}

// deleteFunc removes the history entries del matches, keeping the byte
// count.
func deleteFunc(h []histEntry, del func(histEntry) bool, bytes *int) []histEntry {
	out := h[:0]
	for _, e := range h {
		if del(e) {
			*bytes -= e.bytes
			continue
		}
		out = append(out, e)
	}
	clear(h[len(out):])
	return out
}
