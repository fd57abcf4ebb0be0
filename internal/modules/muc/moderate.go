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

// Namespaces of XEP-0425 0.2 (2020), which wraps its request and
// announcement in XEP-0422 message fastening and builds on XEP-0424 0.3.
// Converse.js and older Conversations and Gajim still send it; a room
// answers both (as Prosody's mod_muc_moderation does).
const (
	NSModerate0 = "urn:xmpp:message-moderate:0"
	NSRetract0  = "urn:xmpp:message-retract:0"
	NSFasten    = "urn:xmpp:fasten:0"
)

// isModerateRequest reports whether q, the payload of an IQ set to a
// room, asks to moderate a message: <moderate xmlns=':1'/> (XEP-0425 0.3)
// or <apply-to xmlns='urn:xmpp:fasten:0'> holding <moderate xmlns=':0'/>
// (0.2). Other fastenings are not moderation.
func isModerateRequest(q *xmlstream.Element) bool {
	switch {
	case q.Name.Space == NSModerate && q.Name.Local == "moderate":
		return true
	case q.Name.Space == NSFasten && q.Name.Local == "apply-to":
		return q.Child(NSModerate0, "moderate") != nil
	}
	return false
}

// moderateArgs returns the stanza-id, the reason and whether the request
// asks for a retraction (the one moderation XEP-0425 defines), in either
// version.
func moderateArgs(q *xmlstream.Element) (id, reason string, retract bool) {
	if q.Name.Space == NSFasten {
		mod := q.Child(NSModerate0, "moderate")
		return q.Attribute("id"), childText(mod, NSModerate0, "reason"), mod.Child(NSRetract0, "retract") != nil
	}
	return q.Attribute("id"), childText(q, NSModerate, "reason"), q.Child(NSRetract, "retract") != nil
}

// moderate handles a moderator's request to retract a message by its
// stanza-id (XEP-0425 §4, in the 0.3 or the 0.2 form, see
// isModerateRequest): every occupant is told the message is retracted,
// in one announcement that carries both versions' elements, the archive
// keeps a tombstone (again in both forms) in its place, and the history
// forgets it. Messages have ids only in archived rooms. rm.mu is held.
func (rm *room) moderate(ctx context.Context, ev *router.Event, q *xmlstream.Element) (*xmlstream.Element, *stanza.Error) {
	actor := rm.byJID[ev.From.String()]
	if actor == nil || actor.role != roleModerator {
		return nil, stanza.NewError(stanza.Forbidden, "only moderators retract others' messages")
	}
	id, reason, wantRetract := moderateArgs(q)
	if id == "" || !wantRetract {
		return nil, stanza.NewError(stanza.BadRequest, "moderate a message by its stanza-id, with <retract/>")
	}
	if !rm.archiving() {
		return nil, stanza.NewError(stanza.ItemNotFound, "the room keeps no archive: its messages have no ids")
	}
	if err := rm.mod().w.Sync(ctx); err != nil {
		return nil, stanza.NewError(stanza.InternalServerError, "")
	}
	page, err := rm.mod().deps.Store.QueryRoomArchive(ctx, rm.jid.String(), storage.ArchiveQuery{IDs: []string{id}, Max: 1})
	if errors.Is(err, storage.ErrNotFound) || (err == nil && len(page.Messages) == 0) {
		return nil, stanza.NewError(stanza.ItemNotFound, "no message with that id in the room's archive")
	}
	if err != nil {
		rm.mod().deps.Log.Error("muc: moderate: read archive", "room", rm.jid.String(), "err", err)
		return nil, stanza.NewError(stanza.InternalServerError, "")
	}
	orig, err := xmlstream.ParseElement(page.Messages[0].Stanza, stanza.NSClient)
	if err != nil {
		return nil, stanza.NewError(stanza.InternalServerError, "")
	}
	by := rm.nickJID(actor.nick)
	moderated := func() *xmlstream.Element {
		return xmlstream.NewElement(NSModerate, "moderated").SetAttr("by", by).
			Append(rm.occupantIDElement(actor.bare))
	}
	// What XEP-0425 0.2 puts in tombstones and announcements:
	// <moderated xmlns=':0' by><retract(ed) xmlns='retract:0'/><reason/></moderated>.
	moderated0 := func(retract *xmlstream.Element) *xmlstream.Element {
		m := xmlstream.NewElement(NSModerate0, "moderated").SetAttr("by", by).Append(retract)
		if reason != "" {
			m.Append(xmlstream.NewElement(NSModerate0, "reason").AppendText(reason))
		}
		return m
	}
	stamp := rm.mod().now().UTC().Format("2006-01-02T15:04:05Z")
	// The tombstone: the original's envelope and ids, the content gone.
	tomb := xmlstream.NewElement(stanza.NSClient, "message")
	for _, a := range orig.Attr {
		if a.Name.Space == "" && (a.Name.Local == "from" || a.Name.Local == "type" || a.Name.Local == "id") {
			tomb.SetAttr(a.Name.Local, a.Value)
		}
	}
	retracted := xmlstream.NewElement(NSRetract, "retracted").SetAttr("stamp", stamp).Append(moderated())
	if reason != "" {
		retracted.Append(xmlstream.NewElement(NSRetract, "reason").AppendText(reason))
	}
	tomb.Append(retracted)
	tomb.Append(moderated0(xmlstream.NewElement(NSRetract0, "retracted").SetAttr("stamp", stamp)))
	for _, c := range orig.Children {
		if e := c.Elem; e != nil && (e.Name.Space == NSOccupantID || e.Name.Space == NSStanzaID) {
			tomb.Append(e)
		}
	}
	if err := rm.mod().deps.Store.ReplaceRoomArchived(ctx, rm.jid.String(), id, tomb.AppendXML(nil, stanza.NSClient)); err != nil {
		rm.mod().deps.Log.Error("muc: moderate: write archive", "room", rm.jid.String(), "err", err)
		return nil, stanza.NewError(stanza.InternalServerError, "")
	}
	rm.history = deleteFunc(rm.history, func(h histEntry) bool { return stanzaID(h.msg, rm.jid.String()) == id }, &rm.histBytes)

	retract := xmlstream.NewElement(NSRetract, "retract").SetAttr("id", id).Append(moderated())
	if reason != "" {
		retract.Append(xmlstream.NewElement(NSRetract, "reason").AppendText(reason))
	}
	apply := xmlstream.NewElement(NSFasten, "apply-to").SetAttr("id", id).
		Append(moderated0(xmlstream.NewElement(NSRetract0, "retract")).Append(rm.occupantIDElement(actor.bare)))
	out := xmlstream.NewElement(stanza.NSClient, "message").SetAttr("from", rm.jid.String()).
		SetAttr("type", stanza.MessageGroupchat).SetAttr("id", "retract-"+newToken()).Append(retract).Append(apply)
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
