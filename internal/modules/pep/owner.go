package pep

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// ownerRequest parses an owner request (XEP-0060 §8): only the account
// itself may make one (forbidden otherwise, §8.2.3.3 and the like), and
// <pubsub xmlns='…#owner'/> holds exactly one request.
func (m *Module) ownerRequest(ctx context.Context, ev *router.Event) (jid.JID, *xmlstream.Element, error) {
	owner := ev.To.Bare()
	req, err := parseRequest(ev.El.FirstChild(), NSOwner)
	if err != nil {
		return owner, nil, err
	}
	if len(req) != 1 {
		return owner, nil, stanza.NewError(stanza.BadRequest, "more than one request in <pubsub/>")
	}
	if err := m.checkAccount(ctx, owner, ev.From); err != nil {
		return owner, nil, err
	}
	if !ev.From.Bare().Equal(owner) {
		return owner, nil, stanza.NewError(stanza.Forbidden, "only the account manages its nodes")
	}
	for _, e := range req {
		return owner, e, nil
	}
	return owner, nil, nil
}

// requestedNode returns the node e names and its configuration
// (item-not-found when there is no such node).
func (m *Module) requestedNode(ctx context.Context, owner jid.JID, e *xmlstream.Element) (string, NodeConfig, error) {
	node, err := nodeOf(e)
	if err != nil {
		return "", NodeConfig{}, err
	}
	_, c, err := m.loadNode(ctx, owner, node)
	if isNotFound(err) {
		return "", NodeConfig{}, errNoNode
	}
	return node, c, err
}

func (m *Module) ownerGet(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	owner, e, err := m.ownerRequest(ctx, ev)
	if err != nil {
		return nil, err
	}
	switch e.Name.Local {
	case "configure":
		node, c, err := m.requestedNode(ctx, owner, e)
		if err != nil {
			return nil, err
		}
		groups, err := m.rosterGroups(ctx, owner)
		if err != nil {
			return nil, err
		}
		return ownerResult(xmlstream.NewElement(NSOwner, "configure").SetAttr("node", node).Append(configForm(c, groups))), nil
	case "default":
		// §8.3: the default configuration of a new node.
		groups, err := m.rosterGroups(ctx, owner)
		if err != nil {
			return nil, err
		}
		return ownerResult(xmlstream.NewElement(NSOwner, "default").Append(configForm(DefaultConfig(), groups))), nil
	case "affiliations":
		node, c, err := m.requestedNode(ctx, owner, e)
		if err != nil {
			return nil, err
		}
		affs := xmlstream.NewElement(NSOwner, "affiliations").SetAttr("node", node).Append(
			xmlstream.NewElement(NSOwner, "affiliation").SetAttr("jid", owner.String()).SetAttr("affiliation", "owner"))
		for _, j := range c.Members {
			affs.Append(xmlstream.NewElement(NSOwner, "affiliation").SetAttr("jid", j).SetAttr("affiliation", "member"))
		}
		return ownerResult(affs), nil
	case "subscriptions":
		node, c, err := m.requestedNode(ctx, owner, e)
		if err != nil {
			return nil, err
		}
		return ownerSubscriptions(node, c), nil
	}
	return nil, stanza.NewError(stanza.BadRequest, "unknown owner request <"+e.Name.Local+"/>")
}

func ownerResult(e *xmlstream.Element) *xmlstream.Element {
	return xmlstream.NewElement(NSOwner, "pubsub").Append(e)
}

func (m *Module) ownerSet(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	owner, e, err := m.ownerRequest(ctx, ev)
	if err != nil {
		return nil, err
	}
	node, err := nodeOf(e)
	if err != nil {
		return nil, err
	}
	switch e.Name.Local {
	case "configure":
		return nil, m.configure(ctx, owner, node, e.Child(NSData, "x"))
	case "delete":
		return nil, m.deleteNode(ctx, owner, node)
	case "purge":
		return nil, m.purge(ctx, owner, node)
	case "affiliations":
		return nil, m.setAffiliations(ctx, owner, node, e)
	case "subscriptions":
		return nil, m.setSubscriptions(ctx, owner, node, e)
	}
	return nil, stanza.NewError(stanza.BadRequest, "unknown owner request <"+e.Name.Local+"/>")
}

// configure applies a submitted node_config form (§8.2.4); a cancelled
// one changes nothing (§8.2.4: type cancel). Lowering max_items removes
// the oldest items at once.
func (m *Module) configure(ctx context.Context, owner jid.JID, node string, x *xmlstream.Element) error {
	if x == nil {
		return stanza.NewError(stanza.BadRequest, "<configure/> without a form")
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
	switch x.Attribute("type") {
	case "cancel":
		return nil
	case "submit":
	default:
		return stanza.NewError(stanza.BadRequest, "the form's type is not submit")
	}
	nc, err := parseConfigForm(x, c, m.cfg.MaxItems)
	if err != nil {
		return err
	}
	if _, err := m.deps.Store.ConfigurePubSubNode(ctx, owner.Local(), owner.DomainString(), node, nc.encode(), nc.itemLimit(m.cfg.MaxItems)); err != nil {
		if isNotFound(err) {
			return errNoNode
		}
		return fmt.Errorf("pep: configure: %w", err)
	}
	if nc.NotifyConfig && nc.DeliverNotifications {
		m.notify(ctx, owner, node, nc, xmlstream.NewElement(NSEvent, "event").Append(
			xmlstream.NewElement(NSEvent, "configuration").SetAttr("node", node)))
	}
	return nil
}

// deleteNode removes the node; those the old configuration admits are
// told (§8.4.2), as they were the node's subscribers.
func (m *Module) deleteNode(ctx context.Context, owner jid.JID, node string) error {
	return m.emptyNode(ctx, owner, node, "delete", m.deps.Store.DeletePubSubNode,
		func(c NodeConfig) bool { return c.NotifyDelete })
}

// purge removes every item of the node (§8.5), telling subscribers when
// the node notifies retractions.
func (m *Module) purge(ctx context.Context, owner jid.JID, node string) error {
	return m.emptyNode(ctx, owner, node, "purge", m.deps.Store.PurgePubSubNode,
		func(c NodeConfig) bool { return c.NotifyRetract })
}

// emptyNode runs remove (a delete or a purge) on an existing node, then
// sends the <event/> child named event to those c admits if notifies(c)
// and c delivers notifications, and tells the emptied hooks.
func (m *Module) emptyNode(ctx context.Context, owner jid.JID, node, event string,
	remove func(ctx context.Context, local, domain, node string) error, notifies func(NodeConfig) bool) error {
	_, c, err := m.loadNode(ctx, owner, node)
	if isNotFound(err) {
		return errNoNode
	}
	if err != nil {
		return err
	}
	if err := remove(ctx, owner.Local(), owner.DomainString(), node); err != nil {
		if isNotFound(err) {
			return errNoNode
		}
		return fmt.Errorf("pep: %s node: %w", event, err)
	}
	if notifies(c) && c.DeliverNotifications {
		m.notify(ctx, owner, node, c, xmlstream.NewElement(NSEvent, "event").Append(
			xmlstream.NewElement(NSEvent, event).SetAttr("node", node)))
	}
	for fn := range m.emptied.All() {
		fn(ctx, owner, node)
	}
	return nil
}

// setAffiliations changes the whitelist (§8.9.2): member and publisher
// put a bare JID on it, none takes it off. Other affiliations are not
// offered on PEP (not-acceptable), nor is a change of the owner's.
func (m *Module) setAffiliations(ctx context.Context, owner jid.JID, node string, e *xmlstream.Element) error {
	return m.editNode(ctx, owner, node, "affiliations", func(c *NodeConfig) error {
		members := slices.Clone(c.Members)
		for _, a := range e.ChildrenNS(NSOwner) {
			if a.Name.Local != "affiliation" {
				continue
			}
			j, err := jid.Parse(a.Attribute("jid"))
			if err != nil {
				return pubsubError(stanza.BadRequest, "invalid-jid", "")
			}
			bare := j.Bare()
			if bare.Equal(owner) {
				return stanza.NewError(stanza.NotAcceptable, "the owner's affiliation cannot change")
			}
			members = slices.DeleteFunc(members, func(s string) bool { return s == bare.String() })
			switch strings.TrimSpace(a.Attribute("affiliation")) {
			case "member", "publisher":
				members = append(members, bare.String())
			case "none":
			default:
				return stanza.NewError(stanza.NotAcceptable, "affiliation "+a.Attribute("affiliation")+" is not offered")
			}
		}
		if len(members) > maxMembers {
			return stanza.NewError(stanza.NotAcceptable, fmt.Sprintf("a node has at most %d members", maxMembers))
		}
		slices.Sort(members)
		c.Members = members
		return nil
	})
}

// editNode changes the node's stored configuration with edit (which
// returns an error to change nothing), the read and the write serialised
// with the module's other changes of node configurations; what names the
// change in errors.
func (m *Module) editNode(ctx context.Context, owner jid.JID, node, what string, edit func(*NodeConfig) error) error {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	_, c, err := m.loadNode(ctx, owner, node)
	if isNotFound(err) {
		return errNoNode
	}
	if err != nil {
		return err
	}
	if err := edit(&c); err != nil {
		return err
	}
	if _, err := m.deps.Store.ConfigurePubSubNode(ctx, owner.Local(), owner.DomainString(), node, c.encode(), 0); err != nil {
		if isNotFound(err) {
			return errNoNode
		}
		return fmt.Errorf("pep: %s: %w", what, err)
	}
	return nil
}

// rosterGroups returns the owner's roster groups, sorted.
func (m *Module) rosterGroups(ctx context.Context, owner jid.JID) ([]string, error) {
	items, _, err := m.deps.Store.Roster(ctx, owner.Local(), owner.DomainString())
	if err != nil {
		return nil, fmt.Errorf("pep: roster: %w", err)
	}
	var groups []string
	for _, it := range items {
		for _, g := range it.Groups {
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
	}
	slices.Sort(groups)
	return groups, nil
}
