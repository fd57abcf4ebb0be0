package pep

import (
	"context"
	"time"

	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// eventItems is <event><items node>item</items></event>.
func eventItems(node string, item *xmlstream.Element) *xmlstream.Element {
	return xmlstream.NewElement(NSEvent, "event").Append(
		xmlstream.NewElement(NSEvent, "items").SetAttr("node", node).Append(item))
}

// notification wraps the shared event in a message from the account to
// one recipient. The event element is built once per publish and shared
// by every notification: nothing changes it after this.
func notification(owner, to jid.JID, typ, id string, event *xmlstream.Element) *xmlstream.Element {
	e := &xmlstream.Element{
		Name: xmlstream.Name{Space: stanza.NSClient, Local: "message"},
		Attr: []xmlstream.Attr{
			{Name: xmlstream.Name{Local: "from"}, Value: owner.String()},
			{Name: xmlstream.Name{Local: "type"}, Value: typ},
			{Name: xmlstream.Name{Local: "id"}, Value: id},
		},
		Children: []xmlstream.Child{{Elem: event}},
	}
	if !to.IsZero() {
		e.SetAttr("to", to.String())
	}
	return e
}

// notify sends event (XEP-0060 §7.1.2.1, XEP-0163 §4.3) to every
// available resource of the owner, and to the resources of others whose
// capabilities want the node's notifications and whom the access model
// admits, unless the owner blocks them. Remote recipients go over s2s.
func (m *Module) notify(ctx context.Context, owner jid.JID, node string, c NodeConfig, event *xmlstream.Element) {
	typ := c.NotificationType
	if typ != notificationNormal {
		typ = stanza.MessageHeadline
	}
	// One serialisation for every recipient: each gets the bytes with
	// its own 'to' (session.Shared).
	sh := session.NewShared(notification(owner, jid.JID{}, typ, newID(), event))
	for _, s := range m.r.Sessions(owner) {
		if _, ok := s.Presence(); ok {
			m.r.DeliverShared(ctx, sh, s.JID())
		}
	}
	others := m.pres.interested(owner, node)
	if len(others) == 0 && len(c.Subscribers) == 0 {
		return
	}
	roster := m.mapLookup(owner)
	admitted := func(to jid.JID) (bool, bool) {
		if err := access(ctx, owner, c, to, roster); err != nil {
			if !isStanzaError(err) {
				m.deps.Log.Error("notify: access", "jid", owner.String(), "err", err)
				return false, false
			}
			return false, true
		}
		return !m.r.Blocked(ctx, owner, to), true
	}
	var sent map[string]bool // JIDs notified ("bare:" + a bare JID notified as such), with explicit subscriptions
	if len(c.Subscribers) > 0 {
		sent = make(map[string]bool, len(others)*2)
	}
	for _, to := range others {
		ok, more := admitted(to)
		if !more {
			return
		}
		if !ok {
			continue
		}
		m.r.DeliverShared(ctx, sh, to)
		if sent != nil {
			sent[to.String()], sent[to.Bare().String()] = true, true
		}
	}
	// Explicit subscriptions (XEP-0060 §6.1), the access model checked
	// again; a JID already notified through its caps is not notified
	// twice, nor a bare JID one of whose resources was, nor a full JID
	// whose bare JID was (the sorted list puts a bare JID first).
	for _, s := range c.Subscribers {
		to, err := jid.Parse(s)
		if err != nil || sent[s] || to.Bare().Equal(owner) || (!to.IsBare() && sent["bare:"+to.Bare().String()]) {
			continue
		}
		ok, more := admitted(to)
		if !more {
			return
		}
		if !ok {
			continue
		}
		sent[s] = true
		if to.IsBare() {
			sent["bare:"+s] = true // every resource
		}
		m.r.DeliverShared(ctx, sh, to)
	}
}

// sendLast sends to, a resource that just came online with the
// capabilities info, the last item of each of the owner's nodes it
// wants, that the node sends on presence and that its access model
// admits (XEP-0163 §4.3.2, XEP-0060 §12.7), with the item's time as a
// XEP-0203 delay.
func (m *Module) sendLast(ctx context.Context, owner, to jid.JID, info *capsInfo) {
	nodes, err := m.deps.Store.PubSubNodes(ctx, owner.Local(), owner.DomainString())
	if err != nil {
		m.deps.Log.Error("last items: nodes", "jid", owner.String(), "err", err)
		return
	}
	own := to.Bare().Equal(owner)
	if !own && m.r.Blocked(ctx, owner, to) {
		return
	}
	roster := m.mapLookup(owner)
	for _, n := range nodes {
		if !info.wants(n.Node) {
			continue
		}
		c, err := decodeConfig(n.Config)
		if err != nil || !c.DeliverNotifications || c.SendLastPublishedItem != SendOnSubAndPresence {
			continue
		}
		if err := access(ctx, owner, c, to, roster); err != nil {
			continue
		}
		its, err := m.deps.Store.PubSubItems(ctx, owner.Local(), owner.DomainString(), n.Node, nil, 1)
		if err != nil || len(its) == 0 {
			continue
		}
		m.r.Route(ctx, lastItemMessage(owner, to, n.Node, c, its[0]))
	}
}

// lastItemMessage is the notification of the node's item it sent later
// than its publication (on presence, on subscribing), with its time as a
// XEP-0203 delay.
func lastItemMessage(owner, to jid.JID, node string, c NodeConfig, it storage.PubSubItem) *xmlstream.Element {
	item := xmlstream.NewElement(NSEvent, "item").SetAttr("id", it.ID)
	if c.DeliverPayloads {
		item = itemElement(NSEvent, it)
	}
	typ := stanza.MessageHeadline
	if c.NotificationType == notificationNormal {
		typ = notificationNormal
	}
	msg := notification(owner, to, typ, newID(), eventItems(node, item))
	msg.Append(xmlstream.NewElement(stanza.NSDelay, "delay").SetAttr("from", owner.String()).
		SetAttr("stamp", it.Published.UTC().Format(time.RFC3339Nano)))
	return msg
}
