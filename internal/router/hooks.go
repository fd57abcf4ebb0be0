package router

import (
	"context"
	"errors"
	"slices"
	"sort"

	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// SessionHook is told about a session's lifecycle.
type SessionHook func(ctx context.Context, s Session)

type hook[T any] struct {
	prio int
	fn   T
}

// hooks is the registration state of a registry: written while modules
// register, before the registry is published, and only read afterwards.
type hooks struct {
	outbound        []hook[Hook]
	inbound         []hook[Hook]
	delivered       []hook[DeliveredHook]
	undeliverable   []hook[Hook]
	sessionEnd      []SessionHook
	available       []SessionHook
	detached        []SessionHook
	syncs           []func(ctx context.Context) error
	subscription    []func(ctx context.Context, user jid.JID, request *xmlstream.Element)
	subscribed      []func(ctx context.Context, user, contact jid.JID)
	blocked         func(ctx context.Context, owner, other jid.JID) bool
	unblocked       []func(ctx context.Context, owner jid.JID, jids []string)
	features        []string
	accountFeatures []string
	accountIDs      []Identity
	accountDiscos   []AccountDisco
	serverDiscos    []ServerDisco
	identities      []Identity
	streamFeatures  []*xmlstream.Element
}

// Identity is a service discovery identity (XEP-0030 §3.1).
type Identity struct {
	Category, Type, Name string
}

// HookOutbound adds h to the outbound phase: stanzas from local client
// sessions (ev.Origin), after 'from' was stamped and before routing;
// higher prio runs first.
func (r *Router) HookOutbound(prio int, h Hook) {
	r.declare(func(g *registry) { g.hooks.outbound = insertHook(g.hooks.outbound, hook[Hook]{prio, h}) })
}

// HookInbound adds h to the inbound phase: stanzas to a local account's
// bare or full JID (ev.To), before delivery; higher prio runs first.
func (r *Router) HookInbound(prio int, h Hook) {
	r.declare(func(g *registry) { g.hooks.inbound = insertHook(g.hooks.inbound, hook[Hook]{prio, h}) })
}

// HookDelivered adds h to the delivered phase: messages after they were
// queued to local sessions (carbons, archives, push); higher prio runs
// first, and every hook runs.
func (r *Router) HookDelivered(prio int, h DeliveredHook) {
	r.declare(func(g *registry) { g.hooks.delivered = insertHook(g.hooks.delivered, hook[DeliveredHook]{prio, h}) })
}

// HookUndeliverable adds h to the undeliverable phase: messages to a
// local account that no resource took (RFC 6121 §8.5.2.2.1), such as
// offline storage; higher prio runs first. When no hook handles the
// message, the sender gets service-unavailable.
func (r *Router) HookUndeliverable(prio int, h Hook) {
	r.declare(func(g *registry) { g.hooks.undeliverable = insertHook(g.hooks.undeliverable, hook[Hook]{prio, h}) })
}

func insertHook[T any](list []hook[T], h hook[T]) []hook[T] {
	list = append(list, h)
	sort.SliceStable(list, func(i, j int) bool { return list[i].prio > list[j].prio })
	return list
}

// OnSessionEnd adds h to the hooks run when a bound session ends, after it
// was removed from the session table.
func (r *Router) OnSessionEnd(h SessionHook) {
	r.declare(func(g *registry) { g.hooks.sessionEnd = append(g.hooks.sessionEnd, h) })
}

// OnAvailable adds h to the hooks run when a session sends its initial
// presence (RFC 6121 §4.2), after the presence was broadcast: offline
// messages and pending subscription requests are delivered then.
func (r *Router) OnAvailable(h SessionHook) {
	r.declare(func(g *registry) { g.hooks.available = append(g.hooks.available, h) })
}

// Available runs the OnAvailable hooks for s; the presence module calls
// it.
func (r *Router) Available(ctx context.Context, s Session) {
	g := r.enter()
	defer g.exit()
	for _, h := range g.hooks.available {
		h(ctx, s)
	}
}

// OnDetached adds h to the hooks run when a stream-managed session loses
// its connection and starts waiting for a resumption (XEP-0198 §5): it
// keeps receiving, and what it is given waits for the client (push
// notifications, XEP-0357, wake the device).
func (r *Router) OnDetached(h SessionHook) {
	r.declare(func(g *registry) { g.hooks.detached = append(g.hooks.detached, h) })
}

// SessionDetached runs the OnDetached hooks for s; c2s calls it.
func (r *Router) SessionDetached(ctx context.Context, s Session) {
	g := r.enter()
	defer g.exit()
	for _, h := range g.hooks.detached {
		h(ctx, s)
	}
}

// OnSync adds fn to what Sync waits for: a module that writes behind
// (the archive's group commit) registers a function that returns once
// everything it accepted before the call is durable.
func (r *Router) OnSync(fn func(ctx context.Context) error) {
	r.declare(func(g *registry) { g.hooks.syncs = append(g.hooks.syncs, fn) })
}

// Sync waits until every stanza the server handled before the call is
// durable in every module that writes behind; c2s calls it before it
// acknowledges stanzas to a client (XEP-0198 <a/>, <resumed/>), so that
// what a client saw acknowledged survives a crash of the server.
func (r *Router) Sync(ctx context.Context) error {
	g := r.enter()
	defer g.exit()
	var errs []error
	for _, fn := range g.hooks.syncs {
		if err := fn(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// OnSubscriptionRequest adds fn to the hooks run after a presence
// subscription request to the local account user was stored, to be shown
// to the user (RFC 6121 §3.1.3); request is the presence stanza.
func (r *Router) OnSubscriptionRequest(fn func(ctx context.Context, user jid.JID, request *xmlstream.Element)) {
	r.declare(func(g *registry) { g.hooks.subscription = append(g.hooks.subscription, fn) })
}

// SubscriptionRequest runs the OnSubscriptionRequest hooks; the roster
// module calls it.
func (r *Router) SubscriptionRequest(ctx context.Context, user jid.JID, request *xmlstream.Element) {
	g := r.enter()
	defer g.exit()
	for _, fn := range g.hooks.subscription {
		fn(ctx, user, request)
	}
}

// OnSubscribed adds fn to the hooks run after the local account user
// approved contact's subscription to its presence (the subscription
// gained 'from', RFC 6121 §3.1.5, or a pre-approval took effect): the PEP
// module then sends the contact its last items.
func (r *Router) OnSubscribed(fn func(ctx context.Context, user, contact jid.JID)) {
	r.declare(func(g *registry) { g.hooks.subscribed = append(g.hooks.subscribed, fn) })
}

// Subscribed runs the OnSubscribed hooks; the roster module calls it.
func (r *Router) Subscribed(ctx context.Context, user, contact jid.JID) {
	g := r.enter()
	defer g.exit()
	for _, fn := range g.hooks.subscribed {
		fn(ctx, user, contact)
	}
}

// HandleBlocked sets the function that says whether the account owner
// blocks other (XEP-0191); the blocking module sets it.
func (r *Router) HandleBlocked(fn func(ctx context.Context, owner, other jid.JID) bool) {
	r.declare(func(g *registry) { g.hooks.blocked = fn })
}

// Blocked reports whether the local account owner blocks other, so that
// modules sending on the owner's behalf (presence broadcasts) skip it.
func (r *Router) Blocked(ctx context.Context, owner, other jid.JID) bool {
	g := r.enter()
	defer g.exit()
	return g.hooks.blocked != nil && g.hooks.blocked(ctx, owner, other)
}

// OnUnblocked adds fn to the hooks run after the account owner unblocked
// jids (XEP-0191 §3.4: the presence module then sends them the owner's
// current presence).
func (r *Router) OnUnblocked(fn func(ctx context.Context, owner jid.JID, jids []string)) {
	r.declare(func(g *registry) { g.hooks.unblocked = append(g.hooks.unblocked, fn) })
}

// Unblocked runs the OnUnblocked hooks; the blocking module calls it.
func (r *Router) Unblocked(ctx context.Context, owner jid.JID, jids []string) {
	g := r.enter()
	defer g.exit()
	for _, fn := range g.hooks.unblocked {
		fn(ctx, owner, jids)
	}
}

// AddFeature declares a service discovery feature of the server (XEP-0030).
func (r *Router) AddFeature(ns ...string) {
	r.declare(func(g *registry) {
		for _, f := range ns {
			if !slices.Contains(g.hooks.features, f) {
				g.hooks.features = append(g.hooks.features, f)
			}
		}
	})
}

// AddAccountFeature declares a service discovery feature that the server
// supports on behalf of each account (disco#info to a bare JID, XEP-0030
// §3.1), such as the message archive (XEP-0313 §8).
func (r *Router) AddAccountFeature(ns ...string) {
	r.declare(func(g *registry) {
		for _, f := range ns {
			if !slices.Contains(g.hooks.accountFeatures, f) {
				g.hooks.accountFeatures = append(g.hooks.accountFeatures, f)
			}
		}
	})
}

// AccountFeatures returns the declared account features, sorted.
func (r *Router) AccountFeatures() []string {
	out := slices.Clone(r.readBack().hooks.accountFeatures)
	slices.Sort(out)
	return out
}

// AddAccountIdentity declares a service discovery identity that the
// server has on behalf of each account (disco#info to a bare JID), such
// as pubsub/pep (XEP-0163 §3).
func (r *Router) AddAccountIdentity(id Identity) {
	r.declare(func(g *registry) { g.hooks.accountIDs = append(g.hooks.accountIDs, id) })
}

// AccountIdentities returns the declared account identities.
func (r *Router) AccountIdentities() []Identity { return slices.Clone(r.readBack().hooks.accountIDs) }

// AccountDisco is a module that serves entities on accounts' bare JIDs
// (the nodes of XEP-0163 personal eventing): the disco module asks it
// what disco#items to an account lists and what a node is.
type AccountDisco interface {
	// AccountItems returns the <item/> elements (disco#items namespace)
	// that from may see on account, for disco#items without a node.
	AccountItems(ctx context.Context, account, from jid.JID) ([]*xmlstream.Element, error)
	// NodeInfo returns the children of the disco#info result for the
	// account's node (identities, features, forms), with ok false when
	// the node is not the module's or from may not see it.
	NodeInfo(ctx context.Context, account, from jid.JID, node string) (children []*xmlstream.Element, ok bool, err error)
	// NodeItems returns the <item/> elements of disco#items to the
	// account's node, with ok as for NodeInfo.
	NodeItems(ctx context.Context, account, from jid.JID, node string) (items []*xmlstream.Element, ok bool, err error)
}

// AddAccountDisco adds d to the modules asked for service discovery on
// accounts. Call it before the listeners start.
func (r *Router) AddAccountDisco(d AccountDisco) {
	r.declare(func(g *registry) { g.hooks.accountDiscos = append(g.hooks.accountDiscos, d) })
}

// AccountDiscos returns the modules added with AddAccountDisco.
func (r *Router) AccountDiscos() []AccountDisco { return slices.Clone(r.reg().hooks.accountDiscos) }

// ServerDisco is a module that serves nodes on the hosted domains (the
// XEP-0050 command list): the disco module asks it about a node of
// disco#info and disco#items to a domain.
type ServerDisco interface {
	// ServerNodeInfo returns the children of the disco#info result for
	// the domain's node (identities, features), with ok false when the
	// node is not the module's or from may not see it.
	ServerNodeInfo(ctx context.Context, domain, from jid.JID, node string) (children []*xmlstream.Element, ok bool, err error)
	// ServerNodeItems returns the <item/> elements of disco#items to the
	// domain's node, with ok as for ServerNodeInfo.
	ServerNodeItems(ctx context.Context, domain, from jid.JID, node string) (items []*xmlstream.Element, ok bool, err error)
}

// AddServerDisco adds d to the modules asked for service discovery on
// nodes of the hosted domains. Call it before the listeners start.
func (r *Router) AddServerDisco(d ServerDisco) {
	r.declare(func(g *registry) { g.hooks.serverDiscos = append(g.hooks.serverDiscos, d) })
}

// ServerDiscos returns the modules added with AddServerDisco.
func (r *Router) ServerDiscos() []ServerDisco { return slices.Clone(r.reg().hooks.serverDiscos) }

// Features returns the declared disco features, sorted.
func (r *Router) Features() []string {
	out := slices.Clone(r.readBack().hooks.features)
	slices.Sort(out)
	return out
}

// AddIdentity declares a service discovery identity of the server.
func (r *Router) AddIdentity(id Identity) {
	r.declare(func(g *registry) { g.hooks.identities = append(g.hooks.identities, id) })
}

// Identities returns the declared identities.
func (r *Router) Identities() []Identity { return slices.Clone(r.readBack().hooks.identities) }

// AddStreamFeature declares an element that c2s adds to the stream
// features after authentication (such as roster versioning, RFC 6121 §2.6.1).
func (r *Router) AddStreamFeature(e *xmlstream.Element) {
	r.declare(func(g *registry) { g.hooks.streamFeatures = append(g.hooks.streamFeatures, e) })
}

// StreamFeatures returns the declared post-authentication stream features.
func (r *Router) StreamFeatures() []*xmlstream.Element { return r.reg().hooks.streamFeatures }

// RouteFrom runs the outbound hooks for a stanza from a local client
// session, then routes it.
func (r *Router) RouteFrom(ctx context.Context, from Session, st *xmlstream.Element) {
	ev := getEvent()
	defer putEvent(ev)
	ev.g = r.enter()
	defer ev.g.exit()
	ev.Origin, ev.From, ev.El = from, from.JID(), st
	if !r.classify(ctx, ev) {
		return
	}
	if r.run(ctx, ev.g.hooks.outbound, ev) {
		return
	}
	r.route(ctx, ev)
}

// run runs a phase's hooks until one handles ev.
func (r *Router) run(ctx context.Context, hs []hook[Hook], ev *Event) bool {
	for _, h := range hs {
		if h.fn(ctx, ev) {
			return true
		}
	}
	return false
}

// delivered runs the delivered hooks.
func (r *Router) delivered(ctx context.Context, ev *Event, to []Session) {
	for _, h := range ev.g.hooks.delivered {
		h.fn(ctx, ev, to)
	}
}

// SessionEnded removes s from the session table and runs the session-end
// hooks (unavailable presence, last activity, …).
func (r *Router) SessionEnded(ctx context.Context, s Session) {
	r.Unbind(s)
	g := r.enter()
	defer g.exit()
	for _, h := range g.hooks.sessionEnd {
		h(ctx, s)
	}
}

// undeliverable runs the undeliverable hooks for a message no resource
// took; when none handles it, the sender gets service-unavailable.
func (r *Router) undeliverable(ctx context.Context, ev *Event) {
	if r.run(ctx, ev.g.hooks.undeliverable, ev) {
		return
	}
	r.bounce(ctx, ev.El, stanza.NewError(stanza.ServiceUnavailable, ""))
}

// DeliverLocal delivers st to a local account's bare or full JID without
// running the inbound hooks again (for modules that handled a stanza and
// now pass it on).
func (r *Router) DeliverLocal(ctx context.Context, st *xmlstream.Element, to jid.JID) {
	r.deliverLocal(ctx, st, to, false)
}

// Redeliver is DeliverLocal for a message a session ended without
// acknowledging (XEP-0198): it goes to the account's other resources or
// the undeliverable hooks, and the delivered hooks do not run again.
func (r *Router) Redeliver(ctx context.Context, st *xmlstream.Element, to jid.JID) {
	r.deliverLocal(ctx, st, to, true)
}

func (r *Router) deliverLocal(ctx context.Context, st *xmlstream.Element, to jid.JID, again bool) {
	ev := getEvent()
	defer putEvent(ev)
	ev.g = r.enter()
	defer ev.g.exit()
	ev.El, ev.To, ev.Redelivery = st, to, again
	if f := stanza.From(st); f != "" {
		ev.From, _ = jid.Parse(f)
	}
	if to.IsBare() {
		ev.Class = ClassBare
		r.deliverBare(ctx, ev)
	} else {
		ev.Class = ClassFull
		r.deliverFull(ctx, ev)
	}
}
