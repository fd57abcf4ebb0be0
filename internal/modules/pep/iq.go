package pep

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// request is a pubsub IQ's <pubsub/> children by name (XEP-0060 allows
// <publish/> with <publish-options/>, <create/> with <configure/>).
type request map[string]*xmlstream.Element

// parseRequest returns the children of <pubsub/> in space; two of one
// name, or none, are bad-request.
func parseRequest(ps *xmlstream.Element, space string) (request, error) {
	req := request{}
	for _, c := range ps.Children {
		e := c.Elem
		if e == nil {
			continue
		}
		if e.Name.Space != space || req[e.Name.Local] != nil {
			return nil, stanza.NewError(stanza.BadRequest, "unexpected <"+e.Name.Local+"/> in <pubsub/>")
		}
		req[e.Name.Local] = e
	}
	if len(req) == 0 {
		return nil, stanza.NewError(stanza.BadRequest, "empty <pubsub/>")
	}
	return req, nil
}

// nodeOf returns the 'node' attribute of a request element: bad-request
// with nodeid-required when it is missing (XEP-0060 §7.1.3.3 and others).
func nodeOf(e *xmlstream.Element) (string, error) {
	node := e.Attribute("node")
	switch {
	case node == "":
		return "", pubsubError(stanza.BadRequest, "nodeid-required", "")
	case len(node) > maxNodeBytes:
		return "", stanza.NewError(stanza.NotAcceptable, "the NodeID is too long")
	}
	return node, nil
}

// checkAccount answers a request to an account that does not exist as
// RFC 6121 §8.5.1 says: service-unavailable, as for any other IQ there.
func (m *Module) checkAccount(ctx context.Context, owner, from jid.JID) error {
	if from.Bare().Equal(owner) {
		return nil
	}
	ok, err := m.deps.Store.AccountExists(ctx, owner.Local(), owner.DomainString())
	if err != nil {
		return fmt.Errorf("pep: account exists: %w", err)
	}
	if !ok {
		return stanza.NewError(stanza.ServiceUnavailable, "")
	}
	return nil
}

// pubsubSet handles the entity use cases that change state: publish
// (§7.1), retract (§7.2), create (§8.1) and subscriptions (§6.1, not
// offered: presence-based notifications are).
func (m *Module) pubsubSet(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	owner, from := ev.To.Bare(), ev.From
	req, err := parseRequest(ev.El.FirstChild(), NSPubSub)
	if err != nil {
		return nil, err
	}
	if err := m.checkAccount(ctx, owner, from); err != nil {
		return nil, err
	}
	switch {
	case req["publish"] != nil:
		if len(req) > 2 || (len(req) == 2 && req["publish-options"] == nil) {
			return nil, stanza.NewError(stanza.BadRequest, "unexpected elements with <publish/>")
		}
		return m.handlePublish(ctx, owner, from, req["publish"], req["publish-options"])
	case req["retract"] != nil && len(req) == 1:
		return nil, m.handleRetract(ctx, owner, from, req["retract"])
	case req["create"] != nil:
		if len(req) > 2 || (len(req) == 2 && req["configure"] == nil) {
			return nil, stanza.NewError(stanza.BadRequest, "unexpected elements with <create/>")
		}
		return nil, m.handleCreate(ctx, owner, from, req["create"], req["configure"])
	case req["subscribe"] != nil && len(req) == 1:
		return m.subscribe(ctx, owner, from, req["subscribe"])
	case req["subscribe"] != nil && req["options"] != nil && len(req) == 2:
		return nil, unsupported("subscription-options")
	case req["unsubscribe"] != nil && len(req) == 1:
		return nil, m.unsubscribe(ctx, owner, from, req["unsubscribe"])
	case req["options"] != nil:
		return nil, unsupported("subscription-options")
	}
	return nil, stanza.NewError(stanza.BadRequest, "no request in <pubsub/>")
}

// pubsubGet handles retrieving items (§6.5), and affiliations (§5.7);
// subscriptions (§5.6) are not offered.
func (m *Module) pubsubGet(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	owner, from := ev.To.Bare(), ev.From
	req, err := parseRequest(ev.El.FirstChild(), NSPubSub)
	if err != nil {
		return nil, err
	}
	if len(req) != 1 {
		return nil, stanza.NewError(stanza.BadRequest, "more than one request in <pubsub/>")
	}
	if err := m.checkAccount(ctx, owner, from); err != nil {
		return nil, err
	}
	switch {
	case req["items"] != nil:
		return m.handleItems(ctx, owner, from, req["items"])
	case req["affiliations"] != nil:
		return m.handleAffiliations(ctx, owner, from, req["affiliations"])
	case req["subscriptions"] != nil:
		return m.subscriptions(ctx, owner, from, req["subscriptions"])
	case req["options"] != nil, req["default"] != nil:
		return nil, unsupported("subscription-options")
	}
	return nil, stanza.NewError(stanza.BadRequest, "no request in <pubsub/>")
}

func (m *Module) handlePublish(ctx context.Context, owner, from jid.JID, pub, po *xmlstream.Element) (*xmlstream.Element, error) {
	node, err := nodeOf(pub)
	if err != nil {
		return nil, err
	}
	var items []*xmlstream.Element
	for _, c := range pub.Children {
		if c.Elem != nil {
			if c.Elem.Name.Space != NSPubSub || c.Elem.Name.Local != "item" {
				return nil, pubsubError(stanza.BadRequest, "invalid-payload", "<publish/> holds only <item/>")
			}
			items = append(items, c.Elem)
		}
	}
	switch {
	case len(items) == 0:
		// §7.1.3.6: a persistent node needs an item.
		return nil, pubsubError(stanza.BadRequest, "item-required", "")
	case len(items) > 1:
		return nil, pubsubError(stanza.BadRequest, "invalid-payload", "one <item/> per publish")
	}
	id := items[0].Attribute("id")
	if len(id) > maxItemIDBytes {
		return nil, stanza.NewError(stanza.NotAcceptable, "the ItemID is too long")
	}
	var payload *xmlstream.Element
	for _, c := range items[0].Children {
		switch {
		case c.Elem != nil && payload != nil:
			// §7.1.3.6: exactly one payload element.
			return nil, pubsubError(stanza.BadRequest, "invalid-payload", "more than one payload element")
		case c.Elem != nil:
			payload = c.Elem
		case strings.TrimSpace(c.Text) != "":
			return nil, pubsubError(stanza.BadRequest, "invalid-payload", "text in <item/>")
		}
	}
	if payload == nil {
		return nil, pubsubError(stanza.BadRequest, "payload-required", "")
	}
	pre, err := parsePublishOptions(po, m.cfg.MaxItems)
	if err != nil {
		return nil, err
	}
	id, err = m.publish(ctx, owner, from, node, id, payload, pre, false)
	if err != nil {
		return nil, err
	}
	return xmlstream.NewElement(NSPubSub, "pubsub").Append(
		xmlstream.NewElement(NSPubSub, "publish").SetAttr("node", node).Append(
			xmlstream.NewElement(NSPubSub, "item").SetAttr("id", id))), nil
}

// publish stores payload as item id on the owner's node, creating the
// node (auto-create) with pre as its configuration, or checking pre
// against it, and notifies.
func (m *Module) publish(ctx context.Context, owner, publisher jid.JID, node, id string, payload *xmlstream.Element, pre preconditions, byServer bool) (string, error) {
	if payload == nil {
		return "", pubsubError(stanza.BadRequest, "payload-required", "")
	}
	if node == "" || len(node) > maxNodeBytes {
		return "", pubsubError(stanza.BadRequest, "nodeid-required", "")
	}
	data := payload.AppendXML(nil, "")
	if len(data) > m.cfg.MaxItemBytes {
		// §7.1.3.4.
		return "", pubsubError(stanza.NotAcceptable, "payload-too-big",
			fmt.Sprintf("the payload has %d bytes, the most allowed is %d", len(data), m.cfg.MaxItemBytes))
	}
	isOwner := publisher.Bare().Equal(owner)
	_, c, err := m.loadNode(ctx, owner, node)
	switch {
	case isNotFound(err) && isOwner:
		c, err = m.autoCreate(ctx, owner, node, pre)
		if err != nil {
			return "", err
		}
	case isNotFound(err):
		return "", errNoNode
	case err != nil:
		return "", err
	default:
		if err := pre.check(c, m.cfg.MaxItems); err != nil {
			return "", err
		}
	}
	if !isOwner {
		if err := m.mayPublish(ctx, owner, c, publisher); err != nil {
			return "", err
		}
	}
	if id == "" {
		id = newID()
	}
	it := storage.PubSubItem{ID: id, Publisher: publisher.String(), Published: m.deps.Now(), Payload: data}
	if _, err := m.deps.Store.PublishPubSubItem(ctx, owner.Local(), owner.DomainString(), node, it, c.itemLimit(m.cfg.MaxItems)); err != nil {
		if isNotFound(err) { // deleted meanwhile
			return "", errNoNode
		}
		return "", fmt.Errorf("pep: publish: %w", err)
	}
	if c.DeliverNotifications {
		item := xmlstream.NewElement(NSEvent, "item").SetAttr("id", id)
		if c.DeliverPayloads {
			item.Append(payload)
		}
		m.notify(ctx, owner, node, c, eventItems(node, item))
	}
	for fn := range m.published.All() {
		fn(ctx, Published{Account: owner, Node: node, Item: Item{ID: id, Publisher: it.Publisher, Published: it.Published, Payload: payload}, ByServer: byServer})
	}
	return id, nil
}

// autoCreate creates the owner's node for a publish (XEP-0060 §7.1.4)
// with the preconditions as its configuration. A node created meanwhile
// by another publish must meet them.
func (m *Module) autoCreate(ctx context.Context, owner jid.JID, node string, pre preconditions) (NodeConfig, error) {
	c := pre.newNodeConfig(m.cfg.MaxItems)
	err := m.createNode(ctx, owner, node, c)
	if errors.Is(err, storage.ErrExists) {
		_, c, err = m.loadNode(ctx, owner, node)
		if err != nil {
			return c, err
		}
		return c, pre.check(c, m.cfg.MaxItems)
	}
	return c, err
}

// createNode stores a new node with configuration c, turning the
// storage's limit into the pubsub error.
func (m *Module) createNode(ctx context.Context, owner jid.JID, node string, c NodeConfig) error {
	err := m.deps.Store.CreatePubSubNode(ctx, owner.Local(), owner.DomainString(),
		storage.PubSubNode{Node: node, Config: c.encode(), Created: m.deps.Now()}, m.cfg.MaxNodes)
	switch {
	case errors.Is(err, storage.ErrLimit):
		return pubsubError(stanza.NotAllowed, "max-nodes-exceeded", fmt.Sprintf("an account may have %d nodes", m.cfg.MaxNodes))
	case errors.Is(err, storage.ErrExists):
		return err
	case err != nil:
		return fmt.Errorf("pep: create node: %w", err)
	}
	return nil
}

func (m *Module) handleCreate(ctx context.Context, owner, from jid.JID, create, configure *xmlstream.Element) error {
	if !from.Bare().Equal(owner) {
		return stanza.NewError(stanza.Forbidden, "only the account creates its nodes")
	}
	node := create.Attribute("node")
	if node == "" {
		// §8.1.3: instant nodes are not offered.
		return pubsubError(stanza.NotAcceptable, "nodeid-required", "")
	}
	if len(node) > maxNodeBytes {
		return stanza.NewError(stanza.NotAcceptable, "the NodeID is too long")
	}
	c := DefaultConfig()
	if configure != nil {
		if x := configure.Child(NSData, "x"); x != nil && x.Attribute("type") == "submit" {
			var err error
			if c, err = parseConfigForm(x, c, m.cfg.MaxItems); err != nil {
				return err
			}
		}
	}
	err := m.createNode(ctx, owner, node, c)
	if errors.Is(err, storage.ErrExists) {
		return stanza.NewError(stanza.Conflict, "the node exists")
	}
	return err
}

func (m *Module) handleRetract(ctx context.Context, owner, from jid.JID, rt *xmlstream.Element) error {
	node, err := nodeOf(rt)
	if err != nil {
		return err
	}
	var ids []string
	for _, it := range rt.ChildrenNS(NSPubSub) {
		if it.Name.Local != "item" {
			continue
		}
		id := it.Attribute("id")
		if id == "" {
			return pubsubError(stanza.BadRequest, "item-required", "an <item/> without an id")
		}
		ids = append(ids, id)
	}
	switch {
	case len(ids) == 0:
		return pubsubError(stanza.BadRequest, "item-required", "")
	case len(ids) > maxRequestIDs:
		return stanza.NewError(stanza.NotAcceptable, "too many items")
	}
	if !from.Bare().Equal(owner) {
		// §7.2.3.1: only the owner (publisher) retracts on PEP.
		if _, _, err := m.loadNode(ctx, owner, node); isNotFound(err) {
			return errNoNode
		}
		return stanza.NewError(stanza.Forbidden, "")
	}
	notify := 0 // per the node's notify_retract
	switch rt.Attribute("notify") {
	case "true", "1":
		notify = 1
	case "false", "0":
		notify = -1
	}
	return m.retractNotify(ctx, owner, node, ids, notify)
}

// retract removes items; force sends the notification whatever the
// node's configuration says.
func (m *Module) retract(ctx context.Context, owner jid.JID, node string, ids []string, force bool) error {
	notify := 0
	if force {
		notify = 1
	}
	return m.retractNotify(ctx, owner, node, ids, notify)
}

// retractNotify removes the items ids (all must exist: item-not-found,
// §7.2.3.5) and notifies them when notify > 0, or when notify == 0 and
// the node's notify_retract is set (§7.2.2.1).
func (m *Module) retractNotify(ctx context.Context, owner jid.JID, node string, ids []string, notify int) error {
	_, c, err := m.loadNode(ctx, owner, node)
	if isNotFound(err) {
		return errNoNode
	}
	if err != nil {
		return err
	}
	have, err := m.deps.Store.PubSubItems(ctx, owner.Local(), owner.DomainString(), node, ids, 0)
	if isNotFound(err) {
		return errNoNode
	}
	if err != nil {
		return fmt.Errorf("pep: retract: %w", err)
	}
	if len(have) < len(dedupe(ids)) {
		return stanza.NewError(stanza.ItemNotFound, "no such item")
	}
	events := xmlstream.NewElement(NSEvent, "items").SetAttr("node", node)
	for _, it := range have {
		if err := m.deps.Store.DeletePubSubItem(ctx, owner.Local(), owner.DomainString(), node, it.ID); err != nil && !isNotFound(err) {
			return fmt.Errorf("pep: retract: %w", err)
		}
		events.Append(xmlstream.NewElement(NSEvent, "retract").SetAttr("id", it.ID))
	}
	if notify > 0 || (notify == 0 && c.NotifyRetract && c.DeliverNotifications) {
		m.notify(ctx, owner, node, c, xmlstream.NewElement(NSEvent, "event").Append(events))
	}
	for _, it := range have {
		for fn := range m.retracted.All() {
			fn(ctx, owner, node, it.ID)
		}
	}
	return nil
}

func dedupe(ids []string) map[string]bool {
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

func (m *Module) handleItems(ctx context.Context, owner, from jid.JID, req *xmlstream.Element) (*xmlstream.Element, error) {
	node, err := nodeOf(req)
	if err != nil {
		return nil, err
	}
	max := 0
	if s := req.Attribute("max_items"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, stanza.NewError(stanza.BadRequest, "max_items must be a positive number")
		}
		max = n
	}
	var ids []string
	for _, it := range req.ChildrenNS(NSPubSub) {
		if it.Name.Local != "item" {
			continue
		}
		id := it.Attribute("id")
		if id == "" {
			return nil, stanza.NewError(stanza.BadRequest, "an <item/> without an id")
		}
		ids = append(ids, id)
	}
	if len(ids) > maxRequestIDs {
		return nil, stanza.NewError(stanza.NotAcceptable, "too many items")
	}
	_, c, err := m.loadNode(ctx, owner, node)
	if isNotFound(err) {
		return nil, errNoNode
	}
	if err != nil {
		return nil, err
	}
	if err := m.mayRetrieve(ctx, owner, c, from); err != nil {
		return nil, err
	}
	its, err := m.deps.Store.PubSubItems(ctx, owner.Local(), owner.DomainString(), node, ids, max)
	if err != nil {
		if isNotFound(err) {
			return nil, errNoNode
		}
		return nil, fmt.Errorf("pep: items: %w", err)
	}
	items := xmlstream.NewElement(NSPubSub, "items").SetAttr("node", node)
	for _, it := range its {
		items.Append(itemElement(NSPubSub, it))
	}
	return xmlstream.NewElement(NSPubSub, "pubsub").Append(items), nil
}

// itemElement is a stored item as <item id/> in space with its payload.
func itemElement(space string, it storage.PubSubItem) *xmlstream.Element {
	e := xmlstream.NewElement(space, "item").SetAttr("id", it.ID)
	if len(it.Payload) > 0 {
		if p, err := xmlstream.ParseElement(it.Payload, ""); err == nil {
			e.Append(p)
		}
	}
	return e
}

// handleAffiliations lists the requester's affiliations with the
// account's nodes (§5.7): owner for the account itself, member where the
// owner put it on the whitelist.
func (m *Module) handleAffiliations(ctx context.Context, owner, from jid.JID, req *xmlstream.Element) (*xmlstream.Element, error) {
	nodes, err := m.deps.Store.PubSubNodes(ctx, owner.Local(), owner.DomainString())
	if err != nil {
		return nil, fmt.Errorf("pep: affiliations: %w", err)
	}
	only := req.Attribute("node")
	affs := xmlstream.NewElement(NSPubSub, "affiliations")
	if only != "" {
		affs.SetAttr("node", only)
	}
	isOwner := from.Bare().Equal(owner)
	for _, n := range nodes {
		if only != "" && n.Node != only {
			continue
		}
		aff := "owner"
		if !isOwner {
			c, err := decodeConfig(n.Config)
			if err != nil || !isMember(c, from.Bare()) {
				continue
			}
			aff = "member"
		}
		affs.Append(xmlstream.NewElement(NSPubSub, "affiliation").SetAttr("node", n.Node).SetAttr("affiliation", aff))
	}
	return xmlstream.NewElement(NSPubSub, "pubsub").Append(affs), nil
}
