package pep

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	if m.r.Blocked(ctx, owner, from) {
		return nil, stanza.NewError(stanza.NotAllowed, "")
	}
	s := who.String()
	var now NodeConfig
	err = m.editNode(ctx, owner, node, "subscribe", func(c *NodeConfig) error {
		if err := m.mayRetrieve(ctx, owner, *c, from); err != nil {
			return err // §6.1.3.2-§6.1.3.4: the access model's error
		}
		now = *c
		if slices.Contains(c.Subscribers, s) {
			return errSubscribed
		}
		if len(c.Subscribers) >= maxSubscribers || countOf(c.Subscribers, who.Bare()) >= maxSubscriptionsPerEntity {
			return pubsubError(stanza.NotAllowed, "too-many-subscriptions", "")
		}
		c.Subscribers = append(c.Subscribers, s)
		slices.Sort(c.Subscribers)
		return nil
	})
	if err != nil && err != errSubscribed {
		return nil, err
	}
	if now.DeliverNotifications && now.SendLastPublishedItem != SendNever {
		// §6.1.7: the last published item goes to a new subscriber.
		m.sendLastOf(ctx, owner, who, node, now)
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
	s := who.String()
	return m.editNode(ctx, owner, node, "unsubscribe", func(c *NodeConfig) error {
		if !slices.Contains(c.Subscribers, s) {
			return pubsubError(stanza.UnexpectedRequest, "not-subscribed", "") // §6.2.3.2
		}
		c.Subscribers = slices.DeleteFunc(c.Subscribers, func(x string) bool { return x == s })
		return nil
	})
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
	return m.editNode(ctx, owner, node, "subscriptions", func(c *NodeConfig) error {
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
		return nil
	})
}

func subscriptionElement(space, node, j, state string) *xmlstream.Element {
	e := xmlstream.NewElement(space, "subscription")
	if node != "" {
		e.SetAttr("node", node)
	}
	return e.SetAttr("jid", j).SetAttr("subscription", state)
}

// errSubscribed stops editNode when the subscription exists already:
// nothing to store, and the answer is the same.
var errSubscribed = errors.New("pep: already subscribed")

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
	m.r.Route(ctx, lastItemMessage(owner, to, node, c, its[0]))
}
