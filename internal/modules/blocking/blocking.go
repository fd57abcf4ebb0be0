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
// so the hooks do not read the database for every stanza. The cache is
// exact, not timed: the server is the only writer of block lists while it
// runs (the commands here; `ode import` refuses to run beside a live
// server; a deleted account's sessions end with it, which drops its
// list), and each command replaces the cached set after its storage write
// commits, under the account's lock, so a concurrent first read cannot
// cache an older list. A cached set is immutable and reached through an
// atomic pointer: the check on each stanza takes no lock. Invalidate
// drops one at once, for a cluster to call when another node changed it;
// the next stanza then reads it again.
package blocking

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
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

// HookPriority is the priority of the module's inbound and outbound hooks:
// high, so that blocked stanzas are stopped before other modules see them.
const HookPriority = 1000

// Module is the blocking module.
type Module struct {
	deps module.Deps
	r    *router.Router

	// mu serialises adding and removing cached entries; readers find them
	// in lists without it. It is never held while storage is called.
	mu    sync.Mutex
	lists sync.Map // bare JID string → *entry, while the user is online

	// locks serialise, per account (striped), the storage reads that fill
	// an entry and the commands that write the list, so that a read never
	// caches a list older than a committed change. Held while storage is
	// called; mu may be taken while one is held, never the other way.
	locks [64]sync.Mutex
	seed  maphash.Seed
}

// interested marks the sessions that asked for the block list: they get
// pushes (XEP-0191 §3.2).
var interested = session.NewKey[bool]()

var _ module.Module = (*Module)(nil)

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
	return &Module{deps: deps, seed: maphash.MakeSeed()}, nil
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

// blockSet is one user's block list: a set of canonical JIDs. It is never
// changed once published; a change publishes a new one.
type blockSet map[string]struct{}

// entry is an online user's cached list; set is nil until it is read
// (and again after Invalidate).
type entry struct {
	set atomic.Pointer[blockSet]
}

// blocks reports whether addr matches an item of the list (§6).
func (s blockSet) blocks(addr jid.JID) bool {
	if len(s) == 0 {
		return false
	}
	has := func(j string) bool { _, ok := s[j]; return ok }
	if has(addr.String()) || has(addr.Bare().String()) || has(addr.DomainString()) {
		return true
	}
	// domain/resource: both parts are prepared already.
	return addr.Resource() != "" && addr.Local() != "" && has(addr.DomainString()+"/"+addr.Resource())
}

// lock returns the lock of the account key.
func (m *Module) lock(key string) *sync.Mutex {
	return &m.locks[maphash.String(m.seed, key)%uint64(len(m.locks))]
}

// list returns user's block list: the cached set when the user is online
// and it was read, else read from storage (and cached if the user has a
// session, which keeps the cache as small as the set of online users).
func (m *Module) list(ctx context.Context, user jid.JID) (blockSet, error) {
	key := user.Bare().String()
	if v, ok := m.lists.Load(key); ok {
		if s := v.(*entry).set.Load(); s != nil {
			return *s, nil
		}
	}
	l := m.lock(key)
	l.Lock()
	defer l.Unlock()
	s, _, err := m.read(ctx, key, user)
	return s, err
}

// read returns user's list and its cache entry (nil when the user is
// offline), reading storage unless it is cached; the account's lock is
// held.
func (m *Module) read(ctx context.Context, key string, user jid.JID) (blockSet, *entry, error) {
	e := m.entry(key, user)
	if e != nil {
		if s := e.set.Load(); s != nil {
			return *s, e, nil // read by another stanza meanwhile
		}
	}
	jids, err := m.deps.Store.Blocklist(ctx, user.Local(), user.DomainString())
	if err != nil {
		return nil, nil, err
	}
	s := make(blockSet, len(jids))
	for _, j := range jids {
		s[j] = struct{}{}
	}
	if e != nil {
		e.set.Store(&s)
	}
	return s, e, nil
}

// entry returns the cached entry of key, adding an empty one when the
// user has a session; nil for an offline user.
func (m *Module) entry(key string, user jid.JID) *entry {
	if v, ok := m.lists.Load(key); ok {
		return v.(*entry)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.lists.Load(key); ok {
		return v.(*entry)
	}
	if len(m.r.Sessions(user.Bare())) == 0 {
		return nil
	}
	e := &entry{}
	m.lists.Store(key, e)
	return e
}

// Invalidate makes the next stanza to or from user read user's block list
// from storage again, for a cluster node to call when another node changed
// the list.
func (m *Module) Invalidate(user jid.JID) {
	key := user.Bare().String()
	l := m.lock(key)
	l.Lock()
	defer l.Unlock()
	if v, ok := m.lists.Load(key); ok {
		v.(*entry).set.Store(nil)
	}
}

// isBlocked reports whether user's list matches addr. On a storage error
// it logs and lets the stanza through.
func (m *Module) isBlocked(ctx context.Context, user, addr jid.JID) bool {
	s, err := m.list(ctx, user)
	if err != nil {
		m.deps.Log.Error("load block list", "jid", user.Bare().String(), "err", err)
		return false
	}
	return s.blocks(addr)
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
// were generated by the server in the account's name (the account's own,
// which carry their Origin session, were checked by the outbound hook
// already), except unavailable presence and errors, which only make the
// account look offline.
func (m *Module) inbound(ctx context.Context, ev *router.Event) bool {
	st, from, to := ev.El, ev.From, ev.To
	if from.IsZero() || m.exempt(from, to) {
		return false
	}
	if m.isBlocked(ctx, to, from) {
		m.refuse(ctx, st)
		return true
	}
	if ev.Origin != nil || !m.r.Hosts(from.DomainString()) || from.Local() == "" {
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
	set, err := m.list(ctx, from)
	if err != nil {
		return nil, err
	}
	jids := slices.Sorted(maps.Keys(set))
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
	err = m.change(ctx, from, func(set blockSet) (blockSet, error) {
		for _, j := range jids {
			if _, ok := set[j]; !ok {
				added = append(added, j)
			}
		}
		if err := m.deps.Store.Block(ctx, from.Local(), from.DomainString(), jids); err != nil {
			return nil, err
		}
		next := maps.Clone(set)
		if next == nil {
			next = make(blockSet, len(added))
		}
		for _, j := range added {
			next[j] = struct{}{}
		}
		return next, nil
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
	err = m.change(ctx, from, func(set blockSet) (blockSet, error) {
		if err := m.deps.Store.Unblock(ctx, from.Local(), from.DomainString(), jids); err != nil {
			return nil, err
		}
		if len(jids) == 0 {
			gone = slices.Collect(maps.Keys(set))
			return blockSet{}, nil
		}
		next := maps.Clone(set)
		for _, j := range jids {
			delete(next, j)
		}
		return next, nil
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

// change applies fn, which writes storage and returns the new list, under
// the account's lock, and publishes the new list to the cache once the
// write is done, so that no read caches an older list. A failed write
// drops the cached copy: the next stanza reads what storage holds.
func (m *Module) change(ctx context.Context, user jid.JID, fn func(cur blockSet) (blockSet, error)) error {
	key := user.Bare().String()
	l := m.lock(key)
	l.Lock()
	defer l.Unlock()
	cur, e, err := m.read(ctx, key, user)
	if err != nil {
		return err
	}
	next, err := fn(cur)
	if e != nil {
		if err != nil {
			e.set.Store(nil)
		} else {
			e.set.Store(&next)
		}
	}
	return err
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
		m.lists.Delete(bare.String())
	}
}
