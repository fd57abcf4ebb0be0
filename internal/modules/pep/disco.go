package pep

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// AccountItems implements router.AccountDisco: the account's nodes that
// from may retrieve (XEP-0060 §5.2), as disco items of the account.
func (m *Module) AccountItems(ctx context.Context, account, from jid.JID) ([]*xmlstream.Element, error) {
	nodes, err := m.deps.Store.PubSubNodes(ctx, account.Local(), account.DomainString())
	if err != nil {
		return nil, fmt.Errorf("pep: disco items: %w", err)
	}
	roster := m.mapLookup(account)
	var out []*xmlstream.Element
	for _, n := range nodes {
		c, err := decodeConfig(n.Config)
		if err != nil || access(ctx, account, c, from, roster) != nil {
			continue
		}
		it := xmlstream.NewElement(stanza.NSDiscoItems, "item").SetAttr("jid", account.String()).SetAttr("node", n.Node)
		if c.Title != "" {
			it.SetAttr("name", c.Title)
		}
		out = append(out, it)
	}
	return out, nil
}

// visibleNode reads the node when from may see it.
func (m *Module) visibleNode(ctx context.Context, account, from jid.JID, node string) (storage.PubSubNode, NodeConfig, bool, error) {
	n, c, err := m.loadNode(ctx, account, node)
	if isNotFound(err) {
		return n, c, false, nil
	}
	if err != nil {
		return n, c, false, err
	}
	if err := m.mayRetrieve(ctx, account, c, from); err != nil {
		if isStanzaError(err) {
			return n, c, false, nil
		}
		return n, c, false, err
	}
	return n, c, true, nil
}

// NodeInfo implements router.AccountDisco: a leaf node's identity,
// features and meta-data (XEP-0060 §5.3, §5.4).
func (m *Module) NodeInfo(ctx context.Context, account, from jid.JID, node string) ([]*xmlstream.Element, bool, error) {
	_, c, ok, err := m.visibleNode(ctx, account, from, node)
	if !ok || err != nil {
		return nil, false, err
	}
	f := dataform.New(dataform.TypeResult, NSPubSub+"#meta-data")
	f.Add("pubsub#owner", "jid-multi", "", account.String())
	f.Add("pubsub#title", "text-single", "", c.Title)
	f.Add("pubsub#description", "text-single", "", c.Description)
	f.Add("pubsub#type", "text-single", "", c.Type)
	f.Add("pubsub#access_model", "list-single", "", c.AccessModel)
	f.Add("pubsub#publish_model", "list-single", "", c.PublishModel)
	maxItems := "max"
	if c.MaxItems > 0 {
		maxItems = strconv.Itoa(c.MaxItems)
	}
	f.Add("pubsub#max_items", "text-single", "", maxItems)
	return []*xmlstream.Element{
		xmlstream.NewElement(stanza.NSDiscoInfo, "identity").SetAttr("category", "pubsub").SetAttr("type", "leaf"),
		xmlstream.NewElement(stanza.NSDiscoInfo, "feature").SetAttr("var", NSPubSub),
		f.Element(),
	}, true, nil
}

// NodeItems implements router.AccountDisco: the node's items, by id
// (XEP-0060 §5.5).
func (m *Module) NodeItems(ctx context.Context, account, from jid.JID, node string) ([]*xmlstream.Element, bool, error) {
	_, c, ok, err := m.visibleNode(ctx, account, from, node)
	if !ok || err != nil {
		return nil, false, err
	}
	its, err := m.deps.Store.PubSubItems(ctx, account.Local(), account.DomainString(), node, nil, c.itemLimit(m.cfg.MaxItems))
	if err != nil {
		if isNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("pep: disco items: %w", err)
	}
	out := make([]*xmlstream.Element, 0, len(its))
	for _, it := range its {
		out = append(out, xmlstream.NewElement(stanza.NSDiscoItems, "item").SetAttr("jid", account.String()).SetAttr("name", it.ID))
	}
	return out, true, nil
}
