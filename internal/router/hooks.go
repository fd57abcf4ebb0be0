package router

import (
	"context"
	"slices"
	"sort"

	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// OutboundHook sees a stanza that a local client session sent, after its
// 'from' was stamped and before it is routed. It returns true when it
// handled the stanza, which then goes no further.
type OutboundHook func(ctx context.Context, from Session, st *xmlstream.Element) (handled bool)

// InboundHook sees a stanza addressed to a local account (its bare JID or
// one of its full JIDs; to is that address) before the router delivers it.
// It returns true when it handled the stanza.
type InboundHook func(ctx context.Context, st *xmlstream.Element, to jid.JID) (handled bool)

// OfflineHandler takes a message to a local account that has no available
// resource to receive it (RFC 6121 §8.5.2.2.1). A nil error means the
// message was stored; a *stanza.Error is returned to the sender.
type OfflineHandler func(ctx context.Context, st *xmlstream.Element, to jid.JID) error

// SessionHook is told about a session's lifecycle.
type SessionHook func(ctx context.Context, s Session)

type hook[T any] struct {
	prio int
	fn   T
}

// hooks is the registration state; it is written while modules register,
// before the listeners start, and only read afterwards.
type hooks struct {
	outbound       []hook[OutboundHook]
	inbound        []hook[InboundHook]
	offline        OfflineHandler
	sessionEnd     []SessionHook
	available      []SessionHook
	blocked        func(ctx context.Context, owner, other jid.JID) bool
	unblocked      []func(ctx context.Context, owner jid.JID, jids []string)
	features       []string
	identities     []Identity
	streamFeatures []*xmlstream.Element
}

// Identity is a service discovery identity (XEP-0030 §3.1).
type Identity struct {
	Category, Type, Name string
}

// HookOutbound adds h to the hooks for stanzas from local clients; higher
// prio runs first.
func (r *Router) HookOutbound(prio int, h OutboundHook) {
	r.hooks.outbound = insertHook(r.hooks.outbound, hook[OutboundHook]{prio, h})
}

// HookInbound adds h to the hooks for stanzas to local accounts; higher
// prio runs first.
func (r *Router) HookInbound(prio int, h InboundHook) {
	r.hooks.inbound = insertHook(r.hooks.inbound, hook[InboundHook]{prio, h})
}

func insertHook[T any](list []hook[T], h hook[T]) []hook[T] {
	list = append(list, h)
	sort.SliceStable(list, func(i, j int) bool { return list[i].prio > list[j].prio })
	return list
}

// HandleOffline sets the handler for messages that cannot be delivered to
// an available resource. Without one they get service-unavailable.
func (r *Router) HandleOffline(h OfflineHandler) { r.hooks.offline = h }

// OnSessionEnd adds h to the hooks run when a bound session ends, after it
// was removed from the session table.
func (r *Router) OnSessionEnd(h SessionHook) { r.hooks.sessionEnd = append(r.hooks.sessionEnd, h) }

// OnAvailable adds h to the hooks run when a session sends its initial
// presence (RFC 6121 §4.2), after the presence was broadcast: offline
// messages and pending subscription requests are delivered then.
func (r *Router) OnAvailable(h SessionHook) { r.hooks.available = append(r.hooks.available, h) }

// Available runs the OnAvailable hooks for s; the presence module calls
// it.
func (r *Router) Available(ctx context.Context, s Session) {
	for _, h := range r.hooks.available {
		h(ctx, s)
	}
}

// HandleBlocked sets the function that says whether the account owner
// blocks other (XEP-0191); the blocking module sets it.
func (r *Router) HandleBlocked(fn func(ctx context.Context, owner, other jid.JID) bool) {
	r.hooks.blocked = fn
}

// Blocked reports whether the local account owner blocks other, so that
// modules sending on the owner's behalf (presence broadcasts) skip it.
func (r *Router) Blocked(ctx context.Context, owner, other jid.JID) bool {
	return r.hooks.blocked != nil && r.hooks.blocked(ctx, owner, other)
}

// OnUnblocked adds fn to the hooks run after the account owner unblocked
// jids (XEP-0191 §3.4: the presence module then sends them the owner's
// current presence).
func (r *Router) OnUnblocked(fn func(ctx context.Context, owner jid.JID, jids []string)) {
	r.hooks.unblocked = append(r.hooks.unblocked, fn)
}

// Unblocked runs the OnUnblocked hooks; the blocking module calls it.
func (r *Router) Unblocked(ctx context.Context, owner jid.JID, jids []string) {
	for _, fn := range r.hooks.unblocked {
		fn(ctx, owner, jids)
	}
}

// AddFeature declares a service discovery feature of the server (XEP-0030).
func (r *Router) AddFeature(ns ...string) {
	for _, f := range ns {
		if !slices.Contains(r.hooks.features, f) {
			r.hooks.features = append(r.hooks.features, f)
		}
	}
}

// Features returns the declared disco features, sorted.
func (r *Router) Features() []string {
	out := slices.Clone(r.hooks.features)
	slices.Sort(out)
	return out
}

// AddIdentity declares a service discovery identity of the server.
func (r *Router) AddIdentity(id Identity) { r.hooks.identities = append(r.hooks.identities, id) }

// Identities returns the declared identities.
func (r *Router) Identities() []Identity { return slices.Clone(r.hooks.identities) }

// AddStreamFeature declares an element that c2s adds to the stream
// features after authentication (such as roster versioning, RFC 6121 §2.6.1).
func (r *Router) AddStreamFeature(e *xmlstream.Element) {
	r.hooks.streamFeatures = append(r.hooks.streamFeatures, e)
}

// StreamFeatures returns the declared post-authentication stream features.
func (r *Router) StreamFeatures() []*xmlstream.Element { return r.hooks.streamFeatures }

// RouteFrom runs the outbound hooks for a stanza from a local client
// session, then routes it.
func (r *Router) RouteFrom(ctx context.Context, from Session, st *xmlstream.Element) {
	for _, h := range r.hooks.outbound {
		if h.fn(ctx, from, st) {
			return
		}
	}
	r.Route(ctx, st)
}

// SessionEnded removes s from the session table and runs the session-end
// hooks (unavailable presence, last activity, …).
func (r *Router) SessionEnded(ctx context.Context, s Session) {
	r.Unbind(s)
	for _, h := range r.hooks.sessionEnd {
		h(ctx, s)
	}
}

// inboundHandled runs the inbound hooks.
func (r *Router) inboundHandled(ctx context.Context, st *xmlstream.Element, to jid.JID) bool {
	for _, h := range r.hooks.inbound {
		if h.fn(ctx, st, to) {
			return true
		}
	}
	return false
}

// undeliverable handles a message for which no resource took it: offline
// storage if a handler is set, else service-unavailable.
func (r *Router) undeliverable(ctx context.Context, st *xmlstream.Element, to jid.JID) {
	if r.hooks.offline != nil {
		err := r.hooks.offline(ctx, st, to)
		if err == nil {
			return
		}
		se, ok := err.(*stanza.Error)
		if !ok {
			r.log.Error("offline storage failed", "to", to.String(), "err", err)
			se = stanza.NewError(stanza.InternalServerError, "")
		}
		r.bounce(ctx, st, se)
		return
	}
	r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
}

// DeliverLocal delivers st to a local account's bare or full JID without
// running the inbound hooks again (for modules that handled a stanza and
// now pass it on).
func (r *Router) DeliverLocal(ctx context.Context, st *xmlstream.Element, to jid.JID) {
	if to.IsBare() {
		r.deliverBare(ctx, st, to)
	} else {
		r.deliverFull(ctx, st, to)
	}
}
