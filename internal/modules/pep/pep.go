// Package pep implements XEP-0163 Personal Eventing Protocol: a
// publish-subscribe service (XEP-0060 semantics) on every account's bare
// JID, where clients keep their avatars, OMEMO device lists and bundles,
// bookmarks and moods.
//
// Nodes are created on first publish (XEP-0163 §4.1, XEP-0060
// auto-create) with the PEP defaults: access model presence, max_items 1,
// items persisted. Publish-options are preconditions (XEP-0060 §7.1.5): a
// new node takes them as its configuration, an existing node whose
// configuration differs fails the publish with conflict and
// precondition-not-met. The owner retracts, purges, deletes and
// configures nodes with the full node_config form (§8.2); others
// retrieve items as the node's access model allows (open, presence,
// roster groups, whitelist; §6.5, §12).
//
// Notifications (XEP-0163 §4.3) go to every available resource of the
// owner and to each resource of a contact with a presence subscription
// whose XEP-0115 entity capabilities list "<node>+notify" (filtered
// notifications, XEP-0060 §9.2). Capabilities are learnt from the
// presence the account receives: a verification string is trusted only
// once the disco#info answered for it hashes to it (XEP-0115 §5.4), and
// is then cached for every entity that announces it, so an unknown hash
// is queried once. When a contact comes online the last item of each node
// it is interested in is sent to it (send_last_published_item
// on_sub_and_presence).
//
// Other modules build on the exported API (Publish, Items, Retract,
// DeleteNode, OnPublished, OnRetracted, OnEmptied): the server publishes on an
// account's behalf, as bookmark and avatar conversion do.
package pep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of XEP-0060, XEP-0004 and XEP-0115.
const (
	NSPubSub         = "http://jabber.org/protocol/pubsub"
	NSOwner          = NSPubSub + "#owner"
	NSEvent          = NSPubSub + "#event"
	NSErrors         = NSPubSub + "#errors"
	NSNodeConfig     = NSPubSub + "#node_config"
	NSPublishOptions = NSPubSub + "#publish-options"
	NSData           = "jabber:x:data"
	NSCaps           = "http://jabber.org/protocol/caps"
)

// Limits of requests, beyond the configured ones.
const (
	maxNodeBytes   = 1024 // a NodeID
	maxItemIDBytes = 1024 // an ItemID
	maxRequestIDs  = 100  // item ids in one items or retract request
	maxMembers     = 1000 // a whitelist
)

// Config is the [modules.pep] table.
type Config struct {
	// MaxItemBytes is the largest item payload, serialised, that may be
	// published (payload-too-big past it).
	MaxItemBytes int `toml:"max_item_bytes"`
	// MaxItems caps a node's max_items: "max" means this many.
	MaxItems int `toml:"max_items"`
	// MaxNodes is how many nodes an account may have.
	MaxNodes int `toml:"max_nodes"`
}

// Validate implements config.Validator.
func (c *Config) Validate() []config.Problem {
	var ps []config.Problem
	for _, f := range []struct {
		key string
		v   int
	}{{"max_item_bytes", c.MaxItemBytes}, {"max_items", c.MaxItems}, {"max_nodes", c.MaxNodes}} {
		if f.v < 1 {
			ps = append(ps, config.Problem{Key: f.key, Msg: fmt.Sprintf("must be at least 1, got %d", f.v)})
		}
	}
	return ps
}

// Info describes the module to the server.
var Info = module.Info{
	Name: "pep",
	XEPs: []string{"XEP-0163", "XEP-0060", "XEP-0115"},
	Config: &Config{
		MaxItemBytes: 192 << 10,
		MaxItems:     256,
		MaxNodes:     256,
	},
	New: module.Configured(New),
}

// Item is a published item.
type Item struct {
	// ID is the ItemID.
	ID string
	// Publisher is who published it: a full JID of the owner, or the
	// owner's bare JID when the server published it.
	Publisher string
	// Published is when it was published.
	Published time.Time
	// Payload is the item's payload, or nil.
	Payload *xmlstream.Element
}

// Published describes a publish, for OnPublished.
type Published struct {
	// Account is the owner of the node.
	Account jid.JID
	// Node is the NodeID.
	Node string
	// Item is what was published.
	Item Item
	// ByServer is set when the server published it (Module.Publish),
	// not a client: a module that mirrors a node skips its own writes.
	ByServer bool
}

// Module is the PEP module.
type Module struct {
	deps module.Deps
	r    *router.Router
	cfg  Config

	caps *capsCache
	pres *presenceTable

	published module.Hooks[func(ctx context.Context, p Published)]
	retracted module.Hooks[func(ctx context.Context, account jid.JID, node, id string)]
	emptied   module.Hooks[func(ctx context.Context, account jid.JID, node string)]

	// Background work (capability queries) stops with the module.
	bg      context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex // guards stopped and wg.Add
	stopped bool
	// subMu serialises the read-modify-write of a node's stored
	// configuration by subscriptions, affiliations and configure.
	subMu   sync.Mutex
	queries chan struct{} // a token per capability query in flight
}

var (
	_ module.Module       = (*Module)(nil)
	_ module.Stopper      = (*Module)(nil)
	_ router.AccountDisco = (*Module)(nil)
)

// New returns the PEP module.
func New(deps module.Deps, cfg Config) (*Module, error) {
	bg, stop := context.WithCancel(context.Background())
	return &Module{
		deps:    deps,
		cfg:     cfg,
		caps:    newCapsCache(),
		pres:    newPresenceTable(),
		bg:      bg,
		stop:    stop,
		queries: make(chan struct{}, maxCapsQueries),
	}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "pep" }

// Stop implements module.Stopper: it ends the capability queries.
func (m *Module) Stop() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.stop()
	m.wg.Wait()
}

// Features are the XEP-0060 features the service offers (§10), on the
// server and on each account.
var Features = []string{
	NSPubSub,
	NSPubSub + "#access-open",
	NSPubSub + "#access-presence",
	NSPubSub + "#access-roster",
	NSPubSub + "#access-whitelist",
	NSPubSub + "#auto-create",
	NSPubSub + "#auto-subscribe",
	NSPubSub + "#config-node",
	NSPubSub + "#config-node-max",
	NSPubSub + "#create-and-configure",
	NSPubSub + "#create-nodes",
	NSPubSub + "#delete-nodes",
	NSPubSub + "#filtered-notifications",
	NSPubSub + "#item-ids",
	NSPubSub + "#last-published",
	NSPubSub + "#modify-affiliations",
	NSPubSub + "#multi-items",
	NSPubSub + "#persistent-items",
	NSPubSub + "#presence-notifications",
	NSPubSub + "#publish",
	NSPubSub + "#publish-options",
	NSPubSub + "#purge-nodes",
	NSPubSub + "#retract-items",
	NSPubSub + "#retrieve-affiliations",
	NSPubSub + "#retrieve-default",
	NSPubSub + "#retrieve-items",
	NSPubSub + "#retrieve-subscriptions",
	NSPubSub + "#subscribe",
	NSPubSub + "#manage-subscriptions",
}

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	m.r = r
	r.AddFeature(Features...)
	r.AddAccountFeature(Features...)
	r.AddAccountIdentity(router.Identity{Category: "pubsub", Type: "pep"})
	r.AddAccountDisco(m)
	local := router.ClassSelf | router.ClassBare
	r.HandleIQ(stanza.IQSet, local, NSPubSub, "pubsub", m.pubsubSet)
	r.HandleIQ(stanza.IQGet, local, NSPubSub, "pubsub", m.pubsubGet)
	r.HandleIQ(stanza.IQSet, local, NSOwner, "pubsub", m.ownerSet)
	r.HandleIQ(stanza.IQGet, local, NSOwner, "pubsub", m.ownerGet)
	r.HookInbound(100, m.inboundPresence)
	r.HookOutbound(100, m.outboundPresence)
	r.OnSessionEnd(m.sessionEnded)
	r.OnSubscribed(m.subscribed)
}

// OnPublished adds fn to what runs after an item was published to any
// account's node, by a client or by the server, and returns what removes
// it: a module that adds one removes it when it stops (a reload may
// replace it while pep runs on).
func (m *Module) OnPublished(fn func(ctx context.Context, p Published)) (remove func()) {
	return m.published.Add(fn)
}

// OnRetracted adds fn to what runs after an item was retracted (by the
// owner or the server; not items removed past max_items), as
// OnPublished.
func (m *Module) OnRetracted(fn func(ctx context.Context, account jid.JID, node, id string)) (remove func()) {
	return m.retracted.Add(fn)
}

// OnEmptied adds fn to what runs after all the items of a node went at
// once: the owner deleted (or the server, DeleteNode) or purged it; as
// OnPublished.
func (m *Module) OnEmptied(fn func(ctx context.Context, account jid.JID, node string)) (remove func()) {
	return m.emptied.Add(fn)
}

// Publish publishes payload as the item id ("" for a new id) on the
// account's node, on behalf of the server: the publisher is the
// account's bare JID. options are publish-options (node_config field
// names such as "pubsub#access_model" with their values): a missing node
// is created with them, an existing one must have them (a *stanza.Error
// with precondition-not-met otherwise). Notifications go out as for a
// client's publish. It returns the item's id.
func (m *Module) Publish(ctx context.Context, account jid.JID, node, id string, payload *xmlstream.Element, options map[string]string) (string, error) {
	var pre preconditions
	for k, v := range options {
		pre = append(pre, dataform.Field{Var: k, Values: []string{v}})
	}
	probe := DefaultConfig()
	for _, f := range pre {
		if se := probe.apply(f, m.cfg.MaxItems); se != nil {
			return "", fmt.Errorf("pep: publish option %s: %w", f.Var, se)
		}
	}
	return m.publish(ctx, account.Bare(), account.Bare(), node, id, payload, pre, true)
}

// Items returns the account's items of node, newest first: those of ids
// when not empty, else the newest max (all when max <= 0). It is an
// error wrapping storage.ErrNotFound when there is no such node.
func (m *Module) Items(ctx context.Context, account jid.JID, node string, ids []string, max int) ([]Item, error) {
	its, err := m.deps.Store.PubSubItems(ctx, account.Local(), account.DomainString(), node, ids, max)
	if err != nil {
		return nil, fmt.Errorf("pep: items: %w", err)
	}
	out := make([]Item, 0, len(its))
	for _, it := range its {
		out = append(out, decodeItem(it))
	}
	return out, nil
}

// Retract removes the item id from the account's node, notifying as the
// node's notify_retract says. It is an error wrapping storage.ErrNotFound
// when there is no such node or item.
func (m *Module) Retract(ctx context.Context, account jid.JID, node, id string) error {
	return m.retract(ctx, account.Bare(), node, []string{id}, false)
}

// DeleteNode removes the account's node and its items, notifying as
// the node's notify_delete says; an error wrapping storage.ErrNotFound
// when there is no such node.
func (m *Module) DeleteNode(ctx context.Context, account jid.JID, node string) error {
	return m.deleteNode(ctx, account.Bare(), node)
}

// NodeConfiguration returns the configuration of the account's node (an
// error wrapping storage.ErrNotFound when there is none).
func (m *Module) NodeConfiguration(ctx context.Context, account jid.JID, node string) (NodeConfig, error) {
	_, c, err := m.loadNode(ctx, account, node)
	return c, err
}

// Limits returns the module's settings: the item size and max_items cap
// that publishes through Publish meet.
func (m *Module) Limits() Config { return m.cfg }

func decodeItem(it storage.PubSubItem) Item {
	out := Item{ID: it.ID, Publisher: it.Publisher, Published: it.Published}
	if len(it.Payload) > 0 {
		out.Payload, _ = xmlstream.ParseElement(it.Payload, "")
	}
	return out
}

// newID returns a random ItemID (XEP-0060 §7.1.1: the service generates
// one when the publisher gave none).
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// pubsubError returns a stanza error with a pubsub#errors condition.
func pubsubError(cond stanza.Condition, app, text string) *stanza.Error {
	e := stanza.NewError(cond, text)
	e.App = xmlstream.NewElement(NSErrors, app)
	return e
}

// unsupported is feature-not-implemented with <unsupported feature/>
// (XEP-0060 §7.1.3.x and elsewhere).
func unsupported(feature string) *stanza.Error {
	e := stanza.NewError(stanza.FeatureNotImplemented, "")
	e.App = xmlstream.NewElement(NSErrors, "unsupported").SetAttr("feature", feature)
	return e
}

var errNoNode = stanza.NewError(stanza.ItemNotFound, "")

// loadNode reads the account's node and its configuration.
func (m *Module) loadNode(ctx context.Context, owner jid.JID, node string) (storage.PubSubNode, NodeConfig, error) {
	n, err := m.deps.Store.PubSubNode(ctx, owner.Local(), owner.DomainString(), node)
	if err != nil {
		return n, NodeConfig{}, fmt.Errorf("pep: node %s: %w", node, err)
	}
	c, err := decodeConfig(n.Config)
	return n, c, err
}

// isNotFound reports whether err is storage's not-found.
func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
