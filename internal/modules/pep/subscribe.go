package pep

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Explicit subscriptions (XEP-0060 §6.1-§6.2, §5.6, §8.8) on PEP nodes,
// beside the implicit ones of XEP-0163 (presence and caps +notify). A
// subscription is a JID (bare or full) kept in the node's stored
// configuration, so it lasts as long as the node; the access model is
// checked when subscribing and again at every notification.

// maxSubscribers bounds a node's explicit subscriptions, and
// maxSubscriptionsPerEntity those of one bare JID on one node (its
// resources), so that a remote party cannot make a node grow.
const (
	maxSubscribers            = 1000
	maxSubscriptionsPerEntity = 10
)

// subscribe handles <subscribe node jid/> (§6.1) from from.
func (m *Module) subscribe(ctx context.Context, owner, from jid.JID, e *xmlstream.Element) (*xmlstream.Element, error) {
	node, err := nodeOf(e)
	if err != nil {
		return nil, err
	}
	who, err := jid.Parse(e.Attribute("jid"))
	if err != nil || !who.Bare().Equal(from.Bare()) {
		// §6.1.3.1: the JID must be the requester's (bare or full).
		return nil, pubsubError(stanza.BadRequest, "invalid-jid", "")
	}
	m.subMu.Lock()
	defer m.subMu.Unlock()
	_, c, err := m.loadNode(ctx, owner, node)
	if isNotFound(err) {
		return nil, errNoNode
	}
	if err != nil {
		return nil, err
	}
	if m.r.Blocked(ctx, owner, from) {
		return nil, stanza.NewError(stanza.NotAllowed, "")
	}
	if err := m.mayRetrieve(ctx, owner, c, from); err != nil {
		return nil, err // §6.1.3.2-§6.1.3.4: the access model's error
	}
	s := who.String()
	if !slices.Contains(c.Subscribers, s) {
		if len(c.Subscribers) >= maxSubscribers || countOf(c.Subscribers, who.Bare()) >= maxSubscriptionsPerEntity {
			return nil, pubsubError(stanza.NotAllowed, "too-many-subscriptions", "")
		}
		c.Subscribers = append(c.Subscribers, s)
		slices.Sort(c.Subscribers)
		if _, err := m.deps.Store.ConfigurePubSubNode(ctx, owner.Local(), owner.DomainString(), node, c.encode(), 0); err != nil {
			if isNotFound(err) {
				return nil, errNoNode
			}
			return nil, fmt.Errorf("pep: subscribe: %w", err)
		}
	}
	if c.DeliverNotifications && c.SendLastPublishedItem != SendNever {
		// §6.1.7: the last published item goes to a new subscriber.
		m.sendLastOf(ctx, owner, who, node, c)
	}
	res := xmlstream.NewElement(NSPubSub, "pubsub").Append(subscriptionElement(NSPubSub, node, s, "subscribed"))
	return res, nil
}

// unsubscribe handles <unsubscribe node jid/> (§6.2) from from.
func (m *Module) unsubscribe(ctx context.Context, owner, from jid.JID, e *xmlstream.Element) error {
	node, err := nodeOf(e)
	if err != nil {
		return err
	}
	who, err := jid.Parse(e.Attribute("jid"))
	if err != nil {
		return pubsubError(stanza.BadRequest, "invalid-jid", "")
	}
	if !who.Bare().Equal(from.Bare()) {
		return stanza.NewError(stanza.Forbidden, "") // §6.2.3.3
	}
	m.subMu.Lock()
	defer m.subMu.Unlock()
	_, c, err := m.loadNode(ctx, owner, node)
	if isNotFound(err) {
		return errNoNode
	}
	if err != nil {
		return err
	}
	s := who.String()
	if !slices.Contains(c.Subscribers, s) {
		return pubsubError(stanza.UnexpectedRequest, "not-subscribed", "") // §6.2.3.2
	}
	c.Subscribers = slices.DeleteFunc(c.Subscribers, func(x string) bool { return x == s })
	if _, err := m.deps.Store.ConfigurePubSubNode(ctx, owner.Local(), owner.DomainString(), node, c.encode(), 0); err != nil {
		if isNotFound(err) {
			return errNoNode
		}
		return fmt.Errorf("pep: unsubscribe: %w", err)
	}
	return nil
}

// subscriptions answers <subscriptions [node]/> (§5.6): from's own
// subscriptions to the owner's nodes.
func (m *Module) subscriptions(ctx context.Context, owner, from jid.JID, e *xmlstream.Element) (*xmlstream.Element, error) {
	only := e.Attribute("node")
	nodes, err := m.deps.Store.PubSubNodes(ctx, owner.Local(), owner.DomainString())
	if err != nil {
		return nil, fmt.Errorf("pep: subscriptions: %w", err)
	}
	list := xmlstream.NewElement(NSPubSub, "subscriptions")
	if only != "" {
		list.SetAttr("node", only)
	}
	found := only == ""
	bare := from.Bare()
	for _, n := range nodes {
		if only != "" && n.Node != only {
			continue
		}
		found = true
		c, err := decodeConfig(n.Config)
		if err != nil {
			continue
		}
		for _, s := range c.Subscribers {
			if j, err := jid.Parse(s); err == nil && j.Bare().Equal(bare) {
				list.Append(subscriptionElement(NSPubSub, n.Node, s, "subscribed"))
			}
		}
	}
	if !found {
		return nil, errNoNode
	}
	return xmlstream.NewElement(NSPubSub, "pubsub").Append(list), nil
}

// ownerSubscriptions answers the owner's <subscriptions node/> (§8.8.1).
func ownerSubscriptions(node string, c NodeConfig) *xmlstream.Element {
	list := xmlstream.NewElement(NSOwner, "subscriptions").SetAttr("node", node)
	for _, s := range c.Subscribers {
		list.Append(subscriptionElement(NSOwner, "", s, "subscribed"))
	}
	return ownerResult(list)
}

// setSubscriptions applies the owner's changes (§8.8.2): subscription
// "subscribed" adds a JID, "none" removes it; other states are not
// offered.
func (m *Module) setSubscriptions(ctx context.Context, owner jid.JID, node string, e *xmlstream.Element) error {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	_, c, err := m.loadNode(ctx, owner, node)
	if isNotFound(err) {
		return errNoNode
	}
	if err != nil {
		return err
	}
	subs := slices.Clone(c.Subscribers)
	for _, s := range e.ChildrenNS(NSOwner) {
		if s.Name.Local != "subscription" {
			continue
		}
		j, err := jid.Parse(s.Attribute("jid"))
		if err != nil {
			return pubsubError(stanza.BadRequest, "invalid-jid", "")
		}
		js := j.String()
		subs = slices.DeleteFunc(subs, func(x string) bool { return x == js })
		switch strings.TrimSpace(s.Attribute("subscription")) {
		case "subscribed":
			subs = append(subs, js)
		case "none":
		default:
			return stanza.NewError(stanza.NotAcceptable, "subscription "+s.Attribute("subscription")+" is not offered")
		}
	}
	if len(subs) > maxSubscribers {
		return stanza.NewError(stanza.NotAcceptable, fmt.Sprintf("a node has at most %d subscriptions", maxSubscribers))
	}
	slices.Sort(subs)
	c.Subscribers = subs
	if _, err := m.deps.Store.ConfigurePubSubNode(ctx, owner.Local(), owner.DomainString(), node, c.encode(), 0); err != nil {
		if isNotFound(err) {
			return errNoNode
		}
		return fmt.Errorf("pep: subscriptions: %w", err)
	}
	return nil
}

func subscriptionElement(space, node, j, state string) *xmlstream.Element {
	e := xmlstream.NewElement(space, "subscription")
	if node != "" {
		e.SetAttr("node", node)
	}
	return e.SetAttr("jid", j).SetAttr("subscription", state)
}

// countOf counts the subscriptions of bare (and its resources).
func countOf(subs []string, bare jid.JID) int {
	n := 0
	for _, s := range subs {
		if j, err := jid.Parse(s); err == nil && j.Bare().Equal(bare) {
			n++
		}
	}
	return n
}

// sendLastOf sends the node's last item to a new subscriber.
func (m *Module) sendLastOf(ctx context.Context, owner, to jid.JID, node string, c NodeConfig) {
	its, err := m.deps.Store.PubSubItems(ctx, owner.Local(), owner.DomainString(), node, nil, 1)
	if err != nil || len(its) == 0 {
		return
	}
	item := xmlstream.NewElement(NSEvent, "item").SetAttr("id", its[0].ID)
	if c.DeliverPayloads {
		item = itemElement(NSEvent, its[0])
	}
	typ := stanza.MessageHeadline
	if c.NotificationType == notificationNormal {
		typ = notificationNormal
	}
	msg := notification(owner, to, typ, newID(), eventItems(node, item))
	msg.Append(xmlstream.NewElement(stanza.NSDelay, "delay").SetAttr("from", owner.String()).
		SetAttr("stamp", its[0].Published.UTC().Format(time.RFC3339Nano)))
	m.r.Route(ctx, msg)
}
