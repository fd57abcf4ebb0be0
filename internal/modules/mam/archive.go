package mam

import (
	"context"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// outbound archives a message from a local session in its sender's
// archive. A message to the sender's own bare JID is archived once, by
// inbound.
func (m *Module) outbound(ctx context.Context, ev *router.Event) bool {
	if ev.El.Name.Local != "message" || ev.Origin == nil || !archivable(ev.El) {
		return false
	}
	owner := ev.From.Bare()
	if ev.To.Bare().Equal(owner) || ev.To.IsZero() {
		return false
	}
	if !m.wants(ctx, owner, ev.To.Bare()) {
		return false
	}
	st := ev.El
	if hasStanzaID(st, owner) {
		// Not the archive's: the sender's own client put it there.
		st = st.Copy()
		stripStanzaID(st, owner)
	}
	id, stamp := m.ids.next(m.deps.Now())
	m.archive(ctx, storage.ArchivedMessage{
		Local: owner.Local(), Domain: owner.DomainString(), ID: id,
		With: ev.To.Bare().String(), WithResource: ev.To.Resource(),
		Stamp: stamp, Outgoing: true, Stanza: serialise(st),
	})
	ev.SenderArchiveID = id // for the sent carbons (XEP-0313 §3.5)
	return false
}

// inbound removes from a message to a local account any stanza-id in the
// account's name (XEP-0359 §4: only its server may set one) and, if the
// message is to be archived, archives it with a new stanza-id, which the
// delivered copy carries too.
func (m *Module) inbound(ctx context.Context, ev *router.Event) bool {
	if ev.El.Name.Local != "message" {
		return false
	}
	owner := ev.To.Bare()
	stripStanzaID(ev.El, owner)
	if !archivable(ev.El) || ev.From.IsZero() || !m.wants(ctx, owner, ev.From.Bare()) {
		return false
	}
	id, stamp := m.ids.next(m.deps.Now())
	ev.El.Append(&xmlstream.Element{
		Name: xmlstream.Name{Space: NSSID, Local: "stanza-id"},
		Attr: []xmlstream.Attr{{Name: xmlstream.Name{Local: "by"}, Value: owner.String()}, {Name: xmlstream.Name{Local: "id"}, Value: id}},
	})
	m.archive(ctx, storage.ArchivedMessage{
		Local: owner.Local(), Domain: owner.DomainString(), ID: id,
		With: ev.From.Bare().String(), WithResource: ev.From.Resource(),
		Stamp: stamp, Stanza: serialise(ev.El),
	})
	return false
}

// serialise returns st as the archive keeps it, in one allocation for a
// typical chat message.
func serialise(st *xmlstream.Element) []byte {
	return st.AppendXML(make([]byte, 0, 512), stanza.NSClient)
}

func (m *Module) archive(ctx context.Context, row storage.ArchivedMessage) {
	if err := m.w.enqueue(ctx, row); err != nil {
		m.deps.Log.Warn("archive: message not archived", "jid", row.Local+"@"+row.Domain, "err", err)
	}
}

// archivable reports whether a message belongs in a user's archive
// (XEP-0313 §5.1.1, XEP-0334 §4): type chat or normal, with a body or a
// <store/> hint, without a no-store or no-permanent-store hint.
func archivable(st *xmlstream.Element) bool {
	switch stanza.Type(st) {
	case "", stanza.MessageNormal, stanza.MessageChat:
	default:
		return false
	}
	keep := false
	for _, c := range st.Children {
		e := c.Elem
		switch {
		case e == nil:
		case e.Name.Local == "body" && e.Name.Space == stanza.NSClient:
			keep = true
		case e.Name.Space != NSHints:
		case e.Name.Local == "no-store", e.Name.Local == "no-permanent-store":
			return false
		case e.Name.Local == "store":
			keep = true
		}
	}
	return keep
}

// hasStanzaID reports whether st has a stanza-id by archive.
func hasStanzaID(st *xmlstream.Element, archive jid.JID) bool {
	for _, c := range st.Children {
		if isStanzaID(c.Elem, archive) {
			return true
		}
	}
	return false
}

// stripStanzaID removes the stanza-ids by archive from st.
func stripStanzaID(st *xmlstream.Element, archive jid.JID) {
	if !hasStanzaID(st, archive) {
		return
	}
	kept := st.Children[:0]
	for _, c := range st.Children {
		if !isStanzaID(c.Elem, archive) {
			kept = append(kept, c)
		}
	}
	clear(st.Children[len(kept):])
	st.Children = kept
}

func isStanzaID(e *xmlstream.Element, archive jid.JID) bool {
	if e == nil || e.Name.Local != "stanza-id" || e.Name.Space != NSSID {
		return false
	}
	by := e.Attribute("by")
	if by == archive.String() {
		return true
	}
	j, err := jid.Parse(by)
	return err == nil && j.Equal(archive)
}
