// Package router delivers stanzas by their 'to' address: RFC 6120 §10
// (server rules for processing XML stanzas) and RFC 6121 §8 (delivery rules
// for instant messaging and presence).
//
// The router keeps the table of bound resources, sharded by bare JID so that
// delivery takes no global lock, and a table of IQ handlers for stanzas the
// server answers itself. It never writes to a socket: a Session's Deliver
// only enqueues.
package router

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Session is a bound client resource as the router sees it.
type Session interface {
	// JID returns the session's full JID.
	JID() jid.JID
	// Presence returns the priority of the session's last broadcast
	// presence and whether the resource is available (RFC 6121 §4.2).
	Presence() (priority int, available bool)
	// Deliver enqueues st for the session's stream without blocking. An
	// error means the stanza was not accepted (the session is closing or
	// its outbound queue overflowed).
	Deliver(st *xmlstream.Element) error
	// Close ends the session's stream with the given stream error.
	Close(err *stream.Error)
	// LastActive returns when the client last sent something.
	LastActive() time.Time
	// Values returns the session's per-module state (typed keys,
	// session.Key), kept across resumptions and gone with the session.
	Values() *session.Values
	// Detached reports whether the session lost its connection and
	// waits for a resumption (XEP-0198), holding what it is given.
	Detached() bool
}

// IQHandler answers an IQ get or set that the server handles itself
// (ev.El is the IQ). It returns the payload of the result (nil for an
// empty result) or an error: a *stanza.Error is sent as it is, any other
// error becomes internal-server-error.
//
// A handler that sent its reply itself (to follow it with more stanzas)
// returns ErrReplied.
type IQHandler func(ctx context.Context, ev *Event) (*xmlstream.Element, error)

// ErrReplied is returned by an IQHandler that already routed its reply.
var ErrReplied = errors.New("router: iq already answered")

type iqKey struct {
	typ   string
	class Class // one bit
	name  xmlstream.Name
}

const shardCount = 64

type shard struct {
	mu sync.RWMutex
	m  map[string][]Session // bare JID → bound resources
}

// Router routes stanzas between local sessions and the server's handlers.
//
// What modules declare (IQ handlers, hooks, services, features) and the
// hosted domains form the router's registry. Routing reads the live
// registry without a lock; a reload builds a new one on a handle from
// Stage and publishes it with Commit (registry.go), while the session
// table stays as it is.
type Router struct {
	*core
	// staged is the registry that registrations on this handle build,
	// until Commit publishes it; nil on the live router and afterwards.
	staged atomic.Pointer[registry]
	// rec collects what Register declares while Record runs.
	rec *recording
}

// core is what every handle of one router shares.
type core struct {
	log    *slog.Logger
	seed   maphash.Seed
	shards [shardCount]shard

	live    atomic.Pointer[registry]
	pending pendingIQs
	remote  Remote
}

// Service handles every stanza addressed to its domain (a sub-domain of a
// hosted domain, such as upload.example.org or conference.example.org):
// ev.Class is ClassService. It answers through the router (Route,
// Bounce); what it does not handle it should bounce (service-unavailable
// for IQ gets and sets).
type Service func(ctx context.Context, ev *Event)

// AddService makes domain one of the server's services, handled by h. It
// is a registration error if domain is already hosted or a service.
// Call it before the listeners start.
func (r *Router) AddService(domain string, h Service) {
	r.declare(func(g *registry) {
		if g.domains[domain] || g.services[domain] != nil {
			g.fail(fmt.Errorf("router: %s is already hosted or a service", domain))
			return
		}
		if g.services == nil {
			g.services = make(map[string]Service)
		}
		g.services[domain] = h
	})
}

// Services returns the domains of the server's services, sorted (for
// service discovery items, XEP-0030).
func (r *Router) Services() []string {
	g := r.reg()
	out := make([]string, 0, len(g.services))
	for d := range g.services {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// Domains returns the hosted domains, the first one first.
func (r *Router) Domains() []string {
	g := r.reg()
	if r.rec != nil {
		r.rec.readDomains = true
	}
	if len(g.domains) == 0 {
		return nil
	}
	out := make([]string, 0, len(g.domains))
	out = append(out, g.first)
	for d := range g.domains {
		if d != g.first {
			out = append(out, d)
		}
	}
	slices.Sort(out[1:])
	return out
}

// Remote carries stanzas to domains the server does not host (federation,
// internal/s2s). Send must not block on the network: it queues, and
// bounces through Bounce what it cannot deliver.
type Remote interface {
	Send(ctx context.Context, st *xmlstream.Element)
}

// SetRemote sets where stanzas for other domains go. Without one they are
// bounced with remote-server-not-found. Call it before the listeners start.
func (r *Router) SetRemote(rm Remote) { r.remote = rm }

// New returns a router for the given hosted domains.
func New(domains []string, log *slog.Logger) *Router {
	r := &Router{core: &core{log: log, seed: maphash.MakeSeed()}}
	r.live.Store(newRegistry(domains))
	for i := range r.shards {
		r.shards[i].m = make(map[string][]Session)
	}
	return r
}

// Hosts reports whether domain is one of the server's domains.
func (r *Router) Hosts(domain string) bool { return r.reg().domains[domain] }

// HandleIQ registers h for IQs of type typ ("get" or "set") whose payload
// is the element {space}local, addressed to any of the classes (usually
// ClassLocal). A second handler for the same type, class and payload is
// a registration error (see Err): two modules claim the same protocol.
func (r *Router) HandleIQ(typ string, classes Class, space, local string, h IQHandler) {
	r.declare(func(g *registry) {
		for c := ClassServer; c <= ClassRemote; c <<= 1 {
			if classes&c == 0 {
				continue
			}
			k := iqKey{typ, c, xmlstream.Name{Space: space, Local: local}}
			if _, dup := g.iqs[k]; dup {
				g.fail(fmt.Errorf("router: two handlers for iq %s {%s}%s to %s", typ, space, local, c))
				continue
			}
			g.iqs[k] = h
		}
	})
}

// Err returns the first registration error (a duplicate IQ handler), for
// the server to refuse to start.
func (r *Router) Err() error { return r.reg().regErr }

func (r *Router) shard(bare string) *shard {
	return &r.shards[maphash.String(r.seed, bare)%shardCount]
}

// Bind adds s to the session table. A session already bound to the same
// full JID is removed and returned, so that the caller can close it with a
// conflict stream error (RFC 6120 §7.7.2.2).
func (r *Router) Bind(s Session) (replaced Session) {
	full := s.JID()
	bare := full.Bare().String()
	sh := r.shard(bare)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	list := sh.m[bare]
	for i, old := range list {
		if old.JID().Equal(full) {
			// Copy on write: Sessions hands out the stored slice.
			next := append([]Session(nil), list...)
			next[i] = s
			sh.m[bare] = next
			return old
		}
	}
	// The full slice expression makes append allocate a new array, so no
	// slice returned by Sessions ever sees an element change.
	sh.m[bare] = append(list[:len(list):len(list)], s)
	return nil
}

// Unbind removes s (and only s) from the session table.
func (r *Router) Unbind(s Session) {
	bare := s.JID().Bare().String()
	sh := r.shard(bare)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	list := sh.m[bare]
	for i, cur := range list {
		if cur == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(sh.m, bare)
	} else {
		sh.m[bare] = list
	}
}

// Sessions returns the sessions bound to the bare JID bare. The slice is
// shared and read-only: the table never changes an element of a slice it
// has handed out (Bind and Unbind copy on write), and its capacity equals
// its length, so a caller's append allocates. It costs no copy per
// message.
func (r *Router) Sessions(bare jid.JID) []Session {
	key := bare.Bare().String()
	sh := r.shard(key)
	sh.mu.RLock()
	list := sh.m[key]
	sh.mu.RUnlock()
	return list[:len(list):len(list)]
}

// SessionCount returns the number of sessions bound to the bare JID
// bare, without copying them (for hooks that have nothing to do for an
// account with one session).
func (r *Router) SessionCount(bare jid.JID) int {
	key := bare.Bare().String()
	sh := r.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return len(sh.m[key])
}

// Session returns the session bound to the full JID full, or nil.
func (r *Router) Session(full jid.JID) Session {
	key := full.Bare().String()
	sh := r.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	for _, s := range sh.m[key] {
		if s.JID().Equal(full) {
			return s
		}
	}
	return nil
}

// Each calls fn for every bound session (for shutdown and statistics).
func (r *Router) Each(fn func(Session)) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		var all []Session
		for _, list := range sh.m {
			all = append(all, list...)
		}
		sh.mu.RUnlock()
		for _, s := range all {
			fn(s)
		}
	}
}

// Count returns the number of bound sessions.
func (r *Router) Count() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, list := range sh.m {
			n += len(list)
		}
		sh.mu.RUnlock()
	}
	return n
}

// Route delivers a stanza whose 'from' the caller has already stamped and
// checked. Stanzas that cannot be delivered are answered with the stanza
// error RFC 6120 §10 and RFC 6121 §8 name, except that an error is never
// answered with an error.
func (r *Router) Route(ctx context.Context, st *xmlstream.Element) {
	ev := getEvent()
	defer putEvent(ev)
	ev.g = r.enter()
	defer ev.g.exit()
	ev.El = st
	if f := stanza.From(st); f != "" {
		ev.From, _ = jid.Parse(f)
	}
	if !r.classify(ctx, ev) {
		return
	}
	r.route(ctx, ev)
}

// classify parses ev's 'to' and sets its class; it bounces a malformed
// address and reports false.
func (r *Router) classify(ctx context.Context, ev *Event) bool {
	to := stanza.To(ev.El)
	if to == "" {
		ev.Class = ClassSelf
		ev.To = ev.From.Bare()
		return true
	}
	dst, err := jid.Parse(to)
	if err != nil {
		r.bounce(ctx, ev.El, stanza.NewError(stanza.JIDMalformed, ""))
		return false
	}
	ev.To = dst
	switch {
	case ev.g.services[dst.DomainString()] != nil:
		ev.Class = ClassService
	case !ev.g.domains[dst.DomainString()]:
		ev.Class = ClassRemote
	case dst.IsDomain():
		ev.Class = ClassServer
	case dst.IsBare() && dst.Equal(ev.From.Bare()):
		ev.Class = ClassSelf
	case dst.IsBare():
		ev.Class = ClassBare
	default:
		ev.Class = ClassFull
	}
	return true
}

// route delivers a classified stanza.
func (r *Router) route(ctx context.Context, ev *Event) {
	switch ev.Class {
	case ClassRemote:
		// RFC 6120 §10.4: another domain, through server-to-server
		// streams.
		if r.remote == nil {
			r.bounce(ctx, ev.El, stanza.NewError(stanza.RemoteServerNotFound, ""))
			return
		}
		r.remote.Send(ctx, ev.El)
	case ClassService:
		ev.g.services[ev.To.DomainString()](ctx, ev)
	case ClassServer:
		r.routeToServer(ctx, ev)
	case ClassSelf:
		if stanza.To(ev.El) == "" && ev.El.Name.Local != "message" {
			// RFC 6120 §10.3: no 'to' is the server on behalf of the
			// account; a message without 'to' is as if to the bare JID.
			r.routeToServer(ctx, ev)
			return
		}
		r.routeToBare(ctx, ev)
	case ClassBare:
		r.routeToBare(ctx, ev)
	default:
		r.routeToFull(ctx, ev)
	}
}

// routeToServer handles stanzas with no 'to' (on behalf of the sender's
// account) or addressed to a hosted domain (RFC 6120 §10.3, §10.4.1).
func (r *Router) routeToServer(ctx context.Context, ev *Event) {
	switch ev.El.Name.Local {
	case "iq":
		r.handleIQ(ctx, ev)
	case "message":
		// A message to the server itself has no handler yet: dropped.
	case "presence":
		// Presence broadcast and directed presence to the server are the
		// IM layer's (RFC 6121 §4); the c2s session records availability.
	}
}

// handleIQ answers an IQ addressed to the server or to an account's bare
// JID, with a registered handler or service-unavailable.
func (r *Router) handleIQ(ctx context.Context, ev *Event) {
	iq := ev.El
	typ := stanza.Type(iq)
	if typ != stanza.IQGet && typ != stanza.IQSet {
		r.iqResponse(iq) // answers to the server's own requests
		return
	}
	if err := stanza.ValidateIQ(iq); err != nil {
		var se *stanza.Error
		if !errors.As(err, &se) {
			se = stanza.NewError(stanza.BadRequest, "")
		}
		r.bounce(ctx, iq, se)
		return
	}
	payload := iq.FirstChild()
	h := ev.g.iqs[iqKey{typ, ev.Class, payload.Name}]
	if h == nil {
		r.bounce(ctx, iq, stanza.NewError(stanza.ServiceUnavailable, ""))
		return
	}
	res, err := h(ctx, ev)
	if errors.Is(err, ErrReplied) {
		return
	}
	if err != nil {
		var se *stanza.Error
		if !errors.As(err, &se) {
			r.log.Error("iq handler failed", "payload", payload.Name.Space+" "+payload.Name.Local, "err", err)
			se = stanza.NewError(stanza.InternalServerError, "")
		}
		r.bounce(ctx, iq, se)
		return
	}
	reply := stanza.IQResultFor(iq)
	if reply.Attribute("from") == "" {
		// A reply to an IQ with no 'to' comes from the account itself.
		reply.SetAttr("from", ev.From.Bare().String())
	}
	if res != nil {
		reply.Append(res)
	}
	r.Route(ctx, reply)
}

// routeToBare applies RFC 6121 §8.5.2 (the account exists) and §8.5.1,
// after the inbound hooks.
func (r *Router) routeToBare(ctx context.Context, ev *Event) {
	if r.run(ctx, ev.g.hooks.inbound, ev) {
		return
	}
	r.deliverBare(ctx, ev)
}

func (r *Router) deliverBare(ctx context.Context, ev *Event) {
	st, dst := ev.El, ev.To.Bare()
	switch st.Name.Local {
	case "iq":
		// RFC 6121 §8.5.1: the server answers on behalf of the account.
		r.handleIQ(ctx, ev)
	case "message":
		typ := stanza.Type(st)
		if typ == stanza.MessageError {
			return
		}
		if typ == stanza.MessageGroupchat {
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
			return
		}
		targets := r.messageTargets(dst, typ == stanza.MessageHeadline)
		n := 0
		for _, s := range targets {
			if s.Deliver(st) == nil {
				targets[n] = s
				n++
			}
		}
		if n > 0 {
			if !ev.Redelivery {
				r.delivered(ctx, ev, targets[:n])
			}
		} else if typ != stanza.MessageHeadline {
			// RFC 6121 §8.5.2.2.1 (headlines are silently dropped).
			r.undeliverable(ctx, ev)
		}
	case "presence":
		// Directed presence to a bare JID goes to every available resource
		// (RFC 6121 §8.5.2.1.2); subscriptions are the roster module's.
		for _, s := range r.Sessions(dst) {
			if _, ok := s.Presence(); ok {
				_ = s.Deliver(st)
			}
		}
	}
}

// messageTargets returns the available resources of non-negative priority
// that a message to the bare JID goes to: those of the highest priority, or
// all of them for headlines (RFC 6121 §8.5.2.1.1).
func (r *Router) messageTargets(bare jid.JID, all bool) []Session {
	var out []Session
	best := -1
	for _, s := range r.Sessions(bare) {
		prio, ok := s.Presence()
		if !ok || prio < 0 {
			continue
		}
		switch {
		case all:
			out = append(out, s)
		case prio > best:
			best = prio
			out = append(out[:0], s)
		case prio == best:
			out = append(out, s)
		}
	}
	return out
}

// routeToFull applies RFC 6121 §8.5.3, after the inbound hooks.
func (r *Router) routeToFull(ctx context.Context, ev *Event) {
	if r.run(ctx, ev.g.hooks.inbound, ev) {
		return
	}
	r.deliverFull(ctx, ev)
}

func (r *Router) deliverFull(ctx context.Context, ev *Event) {
	st := ev.El
	if s := r.Session(ev.To); s != nil {
		if err := s.Deliver(st); err == nil {
			if st.Name.Local == "message" && len(ev.g.hooks.delivered) > 0 && !ev.Redelivery {
				ev.one[0] = s
				r.delivered(ctx, ev, ev.one[:])
			}
			return
		}
	}
	r.notDelivered(ctx, ev)
}

// notDelivered applies RFC 6121 §8.5.3.2 to a stanza for a full JID that
// no session took.
func (r *Router) notDelivered(ctx context.Context, ev *Event) {
	st := ev.El
	switch st.Name.Local {
	case "message":
		switch stanza.Type(st) {
		case stanza.MessageError, stanza.MessageHeadline:
			return
		case stanza.MessageGroupchat:
			r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
		default:
			r.deliverBare(ctx, ev)
		}
	case "iq":
		r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
	case "presence":
		// Dropped (RFC 6121 §8.5.3.2.3).
	}
}

// Bounce routes the error reply for st back to its sender, unless st is
// itself an error or an IQ result (RFC 6120 §8.3.1).
func (r *Router) Bounce(ctx context.Context, st *xmlstream.Element, err *stanza.Error) {
	r.bounce(ctx, st, err)
}

func (r *Router) bounce(ctx context.Context, st *xmlstream.Element, err *stanza.Error) {
	reply := stanza.ErrorReply(st, err)
	if reply == nil {
		return
	}
	if reply.Attribute("to") == "" {
		return
	}
	if reply.Attribute("from") == "" {
		// The error comes from the server when the stanza had no 'to'.
		if from, perr := jid.Parse(stanza.From(st)); perr == nil {
			reply.SetAttr("from", from.DomainString())
		}
	}
	r.Route(ctx, reply)
}

// DefaultDomain returns the first hosted domain, for replies that must name
// the server before a client said which domain it wants.
func (r *Router) DefaultDomain() string { return r.reg().first }

// sharedDeliverer is a Session that takes stanzas serialised once for
// many recipients (session.Session does).
type sharedDeliverer interface {
	DeliverShared(b *session.Batch, sh *session.Shared, to string) error
}

// DeliverShared routes the stanza sh, from a local service, to to: for a
// local full JID it runs the inbound hooks and queues the shared bytes
// with to spliced in (a room's message or presence to each occupant,
// serialised once); any other address gets an addressed copy through
// Route. The inbound and delivered hooks see sh.El without a 'to' and
// must not change it; ev.To is the recipient.
func (r *Router) DeliverShared(ctx context.Context, sh *session.Shared, to jid.JID) {
	if to.IsBare() || !r.Hosts(to.DomainString()) {
		r.Route(ctx, sh.Addressed(to.String()))
		return
	}
	ev := getEvent()
	defer putEvent(ev)
	ev.g = r.enter()
	defer ev.g.exit()
	ev.El, ev.To, ev.Class = sh.El, to, ClassFull
	if f := stanza.From(sh.El); f != "" {
		ev.From, _ = jid.Parse(f)
	}
	if len(ev.g.hooks.inbound) > 0 && r.run(ctx, ev.g.hooks.inbound, ev) {
		return
	}
	if s := r.Session(to); s != nil {
		var err error
		if sd, ok := s.(sharedDeliverer); ok {
			err = sd.DeliverShared(session.BatchFrom(ctx), sh, to.String())
		} else {
			err = s.Deliver(sh.Addressed(to.String()))
		}
		if err == nil {
			if sh.El.Name.Local == "message" && len(ev.g.hooks.delivered) > 0 {
				ev.one[0] = s
				r.delivered(ctx, ev, ev.one[:])
			}
			return
		}
	}
	// Not delivered: the usual rules, on an addressed copy (an error
	// reply needs the recipient as its 'from').
	ev.El = sh.Addressed(to.String())
	r.notDelivered(ctx, ev)
}
