// Package blocking implements XEP-0191 Blocking Command: a user keeps a
// list of blocked JIDs on the server, and the server enforces it.
//
// Commands (§3.2-§3.5), for the user's own account only (no 'to' or the
// user's bare JID): <blocklist/> returns the list and marks the resource as
// interested in pushes; <block/> and <unblock/> change it (an <unblock/>
// without items empties it) and push the change, as an IQ set from the
// user's bare JID, to every interested resource. A <block/> without items,
// or any item without a valid 'jid', is bad-request.
//
// Enforcement (§3.3), with the JID matching of §6 (full JID, bare JID,
// domain/resource, domain):
//   - Inbound: nothing from a blocked JID reaches the user. Presence is
//     dropped silently; messages and IQ gets and sets are answered with
//     service-unavailable, as if the user were offline; other stanzas are
//     dropped.
//   - Outbound: a stanza from one of the user's sessions to a blocked JID is
//     not routed: it is answered with not-acceptable and <blocked
//     xmlns='urn:xmpp:blocking:errors'/>, except presence, which is dropped.
//     Stanzas the server generates on the user's behalf (presence
//     broadcasts, answers for the account) do not pass through the
//     outbound hook, so the inbound hook also drops what comes from a local
//     user to a JID that user blocked (but unavailable presence and errors,
//     which only make the user look offline).
//   - When a JID is blocked, each of the user's available resources sends
//     it unavailable presence, if it may see the user's presence (the
//     user's roster item for it has subscription from or both). A blocked
//     domain gets none: who on it saw the user's presence is not tracked.
//   - On unblock, §3.4 wants the user's current presence sent to the JID:
//     the module runs the router's OnUnblocked hooks, and the presence
//     module sends it to the unblocked contacts subscribed to the user.
//
// The user's own resources and the server itself (a hosted domain) are
// never blocked. Lists are cached in memory while the user has a session,
// so the hooks do not read the database for every stanza. Another process
// sharing the database (a cluster node, a tool) may change a list, so a
// cached list is read again once it is about CacheTTL old (each entry's
// age is jittered, so that lists loaded together are not read again
// together), in the background: stanzas keep using the cached copy until
// the new one is in, and never wait for the database once a list is
// loaded. Invalidate drops one at once, for the cluster to call when
// another node changed it; the next stanza then waits for the read.
package blocking

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

const (
	// NS is the XEP-0191 namespace.
	NS = "urn:xmpp:blocking"
	// NSErrors is the namespace of the <blocked/> error condition.
	NSErrors = "urn:xmpp:blocking:errors"
)

// CacheTTL is about how long a cached block list is used before it is
// read from storage again (between 3/4 and 5/4 of it): the longest a change
// made by another process sharing the database goes unseen when nothing
// calls Invalidate, plus one read. It was 5 s; at 1,000 online users the
// reads cost 6% of the server's CPU and, when they came due together,
// queued behind each other on a busy disk while stanzas waited.
const CacheTTL = 30 * time.Second

// HookPriority is the priority of the module's inbound and outbound hooks:
// high, so that blocked stanzas are stopped before other modules see them.
const HookPriority = 1000

// Module is the blocking module.
type Module struct {
	deps module.Deps
	r    *router.Router

	// mu guards lists; it is never held with an entry's lock or while
	// storage is called.
	mu    sync.Mutex
	lists map[string]*entry // bare JID → cached list, while online
	ttl   time.Duration     // cacheTTL when the module was made

	wg      sync.WaitGroup // background reads
	stopped bool           // guarded by mu
}

// cacheTTL is CacheTTL; tests shorten it.
var cacheTTL = CacheTTL

// interested marks the sessions that asked for the block list: they get
// pushes (XEP-0191 §3.2).
var interested = session.NewKey[bool]()

var (
	_ module.Module  = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)

// Stop implements module.Stopper: it waits for the background reads.
func (m *Module) Stop() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.wg.Wait()
}

// Info describes the module to the server.
var Info = module.Info{
	Name: "blocking",
	XEPs: []string{"XEP-0191"},
	New:  module.Plain(New),
}

// New returns the blocking module.
func New(deps module.Deps) (*Module, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Module{deps: deps, lists: make(map[string]*entry), ttl: cacheTTL}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "blocking" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	m.r = r
	r.AddFeature(NS)
	r.HandleIQ(stanza.IQGet, router.ClassLocal, NS, "blocklist", m.getList)
	r.HandleIQ(stanza.IQSet, router.ClassLocal, NS, "block", m.block)
	r.HandleIQ(stanza.IQSet, router.ClassLocal, NS, "unblock", m.unblock)
	r.HookInbound(HookPriority, m.inbound)
	r.HookOutbound(HookPriority, m.outbound)
	r.OnSessionEnd(m.sessionEnded)
	// Modules that send in a user's name (presence broadcasts and probe
	// answers, also to remote contacts) ask the router.
	r.HandleBlocked(m.isBlocked)
}

// entry is one user's block list: a set of canonical JIDs.
type entry struct {
	mu        sync.RWMutex
	loaded    bool
	at        time.Time // when it was read from storage
	life      time.Duration
	set       map[string]bool
	reloading bool // a background read is under way
}

// fresh reports whether the list was loaded less than its life ago; the
// caller holds e.mu.
func (e *entry) fresh(now time.Time) bool {
	return e.loaded && now.Sub(e.at) < e.life
}

// jittered returns a life between 3/4 and 5/4 of ttl.
func jittered(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return ttl
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	n := int64(b[0]) | int64(b[1])<<8 | int64(b[2])<<16 | int64(b[3]&0x7f)<<24
	return ttl*3/4 + time.Duration(n%int64(ttl/2+1))
}

// blocks reports whether addr matches an item of the list (§6).
func (e *entry) blocks(addr jid.JID) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if len(e.set) == 0 {
		return false
	}
	if e.set[addr.String()] || e.set[addr.Bare().String()] || e.set[addr.DomainString()] {
		return true
	}
	if addr.Resource() != "" {
		if dr, err := addr.Domain().WithResource(addr.Resource()); err == nil && e.set[dr.String()] {
			return true
		}
	}
	return false
}

// list returns user's block list, loaded from storage on first use and
// again once it is older than the TTL or invalidated. It is cached only
// while the user has a session; for others it is read each time, which
// keeps the cache as small as the set of online users.
func (m *Module) list(ctx context.Context, user jid.JID) (*entry, error) {
	key := user.Bare().String()
	m.mu.Lock()
	e := m.lists[key]
	if e == nil {
		e = &entry{}
		if len(m.r.Sessions(user)) > 0 {
			m.lists[key] = e
		}
	}
	m.mu.Unlock()
	now := m.deps.Now()
	e.mu.RLock()
	fresh, loaded := e.fresh(now), e.loaded
	e.mu.RUnlock()
	if fresh {
		return e, nil
	}
	if loaded {
		// Stale: read again in the background, use the copy meanwhile.
		m.reload(user, e)
		return e, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.loaded {
		if err := m.load(ctx, user, e, now); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// load reads user's list into e; e.mu is held.
func (m *Module) load(ctx context.Context, user jid.JID, e *entry, now time.Time) error {
	jids, err := m.deps.Store.Blocklist(ctx, user.Local(), user.DomainString())
	if err != nil {
		return err
	}
	set := make(map[string]bool, len(jids))
	for _, j := range jids {
		set[j] = true
	}
	e.set, e.loaded, e.at, e.life = set, true, now, jittered(m.ttl)
	return nil
}

// reload reads a stale list again off the caller's goroutine, once at a
// time per list.
func (m *Module) reload(user jid.JID, e *entry) {
	e.mu.Lock()
	if e.reloading {
		e.mu.Unlock()
		return
	}
	e.reloading = true
	e.mu.Unlock()
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		e.mu.Lock()
		e.reloading = false
		e.mu.Unlock()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		jids, err := m.deps.Store.Blocklist(ctx, user.Local(), user.DomainString())
		e.mu.Lock()
		defer e.mu.Unlock()
		e.reloading = false
		if err != nil {
			m.deps.Log.Warn("blocking: read the block list again", "jid", user.String(), "err", err)
			return // the cached copy stays; the next stanza tries again
		}
		if !e.loaded {
			return // invalidated meanwhile: the next stanza reads it
		}
		set := make(map[string]bool, len(jids))
		for _, j := range jids {
			set[j] = true
		}
		e.set, e.at, e.life = set, m.deps.Now(), jittered(m.ttl)
	}()
}

// Invalidate makes the next stanza to or from user read user's block list
// from storage again, for a cluster node to call when another node changed
// the list.
func (m *Module) Invalidate(user jid.JID) {
	m.mu.Lock()
	e := m.lists[user.Bare().String()]
	m.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		e.loaded = false
		e.mu.Unlock()
	}
}

// isBlocked reports whether user's list matches addr. On a storage error
// it logs and lets the stanza through.
func (m *Module) isBlocked(ctx context.Context, user, addr jid.JID) bool {
	e, err := m.list(ctx, user)
	if err != nil {
		m.deps.Log.Error("load block list", "jid", user.Bare().String(), "err", err)
		return false
	}
	return e.blocks(addr)
}

// exempt reports whether a stanza between a and b is never blocked: they
// are the same account, or one of them is the server itself.
func (m *Module) exempt(a, b jid.JID) bool {
	return a.Bare().Equal(b.Bare()) ||
		(a.IsDomain() && m.r.Hosts(a.DomainString())) ||
		(b.IsDomain() && m.r.Hosts(b.DomainString()))
}

// inbound stops stanzas to a local account from a JID it blocked. It also
// stops stanzas from a local account to a JID that account blocked: those
// were generated by the server in the account's name (the account's own
// were stopped by the outbound hook), except unavailable presence and
// errors, which only make the account look offline.
func (m *Module) inbound(ctx context.Context, ev *router.Event) bool {
	st, from, to := ev.El, ev.From, ev.To
	if from.IsZero() || m.exempt(from, to) {
		return false
	}
	if m.isBlocked(ctx, to, from) {
		m.refuse(ctx, st)
		return true
	}
	if !m.r.Hosts(from.DomainString()) || from.Local() == "" {
		return false
	}
	typ := stanza.Type(st)
	if typ == "error" || (st.Name.Local == "presence" && typ == stanza.PresenceUnavailable) {
		return false
	}
	return m.isBlocked(ctx, from, to)
}

// refuse answers a stanza from a blocked sender as §3.3 says: presence and
// IQ results and errors are dropped silently, messages and IQ gets and
// sets answered with service-unavailable.
func (m *Module) refuse(ctx context.Context, st *xmlstream.Element) {
	if st.Name.Local == "presence" {
		return
	}
	if reply := stanza.ErrorReply(st, stanza.NewError(stanza.ServiceUnavailable, "")); reply != nil {
		m.r.Route(ctx, reply)
	}
}

// outbound stops stanzas from the user's sessions to a blocked JID.
func (m *Module) outbound(ctx context.Context, ev *router.Event) bool {
	s, st, to := ev.Origin, ev.El, ev.To
	if stanza.To(st) == "" || m.exempt(s.JID(), to) || !m.isBlocked(ctx, s.JID(), to) {
		return false
	}
	if st.Name.Local == "presence" {
		return true
	}
	se := stanza.NewError(stanza.NotAcceptable, "")
	se.App = xmlstream.NewElement(NSErrors, "blocked")
	if reply := stanza.ErrorReply(st, se); reply != nil {
		_ = s.Deliver(reply)
	}
	return true
}

// account returns the sender of a command, which must address its own
// account.
func account(ev *router.Event) (jid.JID, error) {
	if ev.Class != router.ClassSelf || ev.From.Local() == "" {
		return jid.JID{}, stanza.NewError(stanza.Forbidden, "")
	}
	return ev.From, nil
}

// items returns the canonical JIDs of a command's <item/> children.
func items(cmd *xmlstream.Element) ([]string, error) {
	var out []string
	for _, it := range cmd.ChildrenNS(NS) {
		if it.Name.Local != "item" {
			continue
		}
		j, err := jid.Parse(it.Attribute("jid"))
		if err != nil {
			return nil, stanza.NewError(stanza.BadRequest, "invalid JID in an item")
		}
		if !slices.Contains(out, j.String()) {
			out = append(out, j.String())
		}
	}
	return out, nil
}

func itemsElement(name string, jids []string) *xmlstream.Element {
	e := xmlstream.NewElement(NS, name)
	for _, j := range jids {
		e.Append(xmlstream.NewElement(NS, "item").SetAttr("jid", j))
	}
	return e
}

func (m *Module) getList(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	from, err := account(ev)
	if err != nil {
		return nil, err
	}
	e, err := m.list(ctx, from)
	if err != nil {
		return nil, err
	}
	e.mu.RLock()
	jids := slices.Sorted(maps.Keys(e.set))
	e.mu.RUnlock()
	if s := ev.Origin; s != nil {
		interested.Set(s.Values(), true)
	}
	return itemsElement("blocklist", jids), nil
}

func (m *Module) block(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	iq := ev.El
	from, err := account(ev)
	if err != nil {
		return nil, err
	}
	jids, err := items(iq.FirstChild())
	if err != nil {
		return nil, err
	}
	if len(jids) == 0 {
		return nil, stanza.NewError(stanza.BadRequest, "no item to block")
	}
	var added []string
	err = m.change(ctx, from, func(set map[string]bool) error {
		for _, j := range jids {
			if !set[j] {
				added = append(added, j)
			}
		}
		if err := m.deps.Store.Block(ctx, from.Local(), from.DomainString(), jids); err != nil {
			return err
		}
		for _, j := range jids {
			set[j] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.goOffline(ctx, from.Bare(), added)
	m.push(ctx, from.Bare(), itemsElement("block", jids))
	return nil, nil
}

func (m *Module) unblock(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	iq := ev.El
	from, err := account(ev)
	if err != nil {
		return nil, err
	}
	jids, err := items(iq.FirstChild())
	if err != nil {
		return nil, err
	}
	var gone []string
	err = m.change(ctx, from, func(set map[string]bool) error {
		if err := m.deps.Store.Unblock(ctx, from.Local(), from.DomainString(), jids); err != nil {
			return err
		}
		if len(jids) == 0 {
			for j := range set {
				gone = append(gone, j)
			}
			clear(set)
		}
		for _, j := range jids {
			delete(set, j)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.push(ctx, from.Bare(), itemsElement("unblock", jids))
	if len(jids) > 0 {
		gone = jids
	}
	m.r.Unblocked(ctx, from.Bare(), gone)
	return nil, nil
}

// change applies fn, which writes storage, to user's list under the
// list's lock, so that a concurrent load cannot cache an older list.
func (m *Module) change(ctx context.Context, user jid.JID, fn func(set map[string]bool) error) error {
	e, err := m.list(ctx, user)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return fn(e.set)
}

// goOffline sends unavailable presence from each of user's available
// resources to the newly blocked JIDs that may see the user's presence.
func (m *Module) goOffline(ctx context.Context, user jid.JID, blocked []string) {
	var avail []jid.JID
	for _, s := range m.r.Sessions(user) {
		if _, ok := s.Presence(); ok {
			avail = append(avail, s.JID())
		}
	}
	if len(avail) == 0 {
		return
	}
	for _, b := range blocked {
		to, err := jid.Parse(b)
		if err != nil || to.Local() == "" {
			continue
		}
		item, err := m.deps.Store.RosterItem(ctx, user.Local(), user.DomainString(), to.Bare().String())
		if err != nil {
			if !errors.Is(err, storage.ErrNotFound) {
				m.deps.Log.Error("read roster item", "jid", user.String(), "contact", to.Bare().String(), "err", err)
			}
			continue
		}
		if item.Subscription != storage.SubFrom && item.Subscription != storage.SubBoth {
			continue
		}
		for _, full := range avail {
			m.r.Route(ctx, stanza.NewPresence(stanza.NSClient, stanza.PresenceUnavailable, to.String(), full.String(), ""))
		}
	}
}

// push sends a block or unblock push to the user's interested resources.
func (m *Module) push(ctx context.Context, user jid.JID, payload *xmlstream.Element) {
	for _, s := range m.r.Sessions(user) {
		if ok, _ := interested.Get(s.Values()); !ok {
			continue
		}
		iq := stanza.NewIQ(stanza.NSClient, stanza.IQSet, s.JID().String(), user.String(), pushID()).Append(payload.Copy())
		m.r.Route(ctx, iq)
	}
}

func pushID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "push-" + hex.EncodeToString(b[:])
}

// sessionEnded forgets the cached list with the user's last session.
func (m *Module) sessionEnded(_ context.Context, s router.Session) {
	bare := s.JID().Bare()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.r.Sessions(bare)) == 0 {
		delete(m.lists, bare.String())
	}
}
