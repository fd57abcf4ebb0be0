// Package bookmarks implements XEP-0402 PEP Native Bookmarks on top of the
// pep module, kept in step with the older forms of the same list that
// clients still use: XEP-0048 bookmarks in XEP-0049 private XML storage
// (the "#compat" feature) and XEP-0048 bookmarks in PEP, one item of the
// 'storage:bookmarks' node (XEP-0223, the "#compat-pep" feature), which is
// also the conversion XEP-0411 describes.
//
// XEP-0402 keeps one item per room on the 'urn:xmpp:bookmarks:1' node,
// its id the room's JID, its payload a <conference/> (name, autojoin,
// <nick/>, <password/>, <extensions/>). When a client publishes or
// retracts one, the server rewrites the XEP-0048 <storage/> from the
// node's items (keeping its <url/> bookmarks and the order of the rooms it
// had) in private storage and in the legacy PEP item. When a client sets
// the <storage/> in either place, the server publishes the conferences
// that changed as XEP-0402 items, retracts those that are gone (both
// notified to the account's resources, XEP-0411 §3), and writes the other
// copy. Unknown children of a XEP-0048 <conference/> are the XEP-0402
// <extensions/>, and back.
//
// A change the server makes does not sync back: its publishes are marked
// as the server's (pep.Published.ByServer), and it writes private storage
// without going through the private module's handler; the sync runs
// under a per-account lock, so that two clients' changes do not cross. An
// account whose bookmarks are only in XEP-0048 form gets them as XEP-0402
// items when a session first comes online. Deleting or purging the
// XEP-0402 node empties the XEP-0048 lists of their conferences.
// Retracting the legacy item or deleting the legacy node is not
// mirrored: clients that moved to XEP-0402 do that to clean up, and it
// must not erase the bookmarks.
package bookmarks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/modules/private"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces and disco features.
const (
	// NS is the XEP-0402 namespace and node.
	NS = "urn:xmpp:bookmarks:1"
	// NS48 is the XEP-0048 namespace, and the legacy PEP node.
	NS48 = "storage:bookmarks"
	// NSConversion is the XEP-0411 feature.
	NSConversion = "urn:xmpp:bookmarks-conversion:0"
	// FeatureCompat is announced when private storage is kept in step.
	FeatureCompat = NS + "#compat"
	// FeatureCompatPEP is announced for the legacy PEP node.
	FeatureCompatPEP = NS + "#compat-pep"
)

// legacyItem is the id of the one item of the legacy PEP node (XEP-0048
// §3.3, XEP-0223).
const legacyItem = "current"

// options402 are the publish-options XEP-0402 §3 requires of the node.
var options402 = map[string]string{
	"pubsub#persist_items":            "true",
	"pubsub#max_items":                "max",
	"pubsub#send_last_published_item": "never",
	"pubsub#access_model":             "whitelist",
}

// options48 are those XEP-0048 §3.3 (XEP-0223) gives the legacy node.
var options48 = map[string]string{
	"pubsub#persist_items": "true",
	"pubsub#access_model":  "whitelist",
}

// Info describes the module to the server.
var Info = module.Info{
	Name: "bookmarks",
	XEPs: []string{"XEP-0402", "XEP-0048", "XEP-0411", "XEP-0223"},
	New:  module.Plain(New),
}

// Module is the bookmarks module.
type Module struct {
	deps    module.Deps
	pep     *pep.Module
	private *private.Module // nil when that module is disabled
	limits  pep.Config
	removes []func() // what Register added to pep and private
}

// locks serialises the syncs of each account, across the module's
// instances: during a reload that builds it again the old and the new one
// both run until the old one stops.
var locks accountLocks

var (
	_ module.Module  = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)

// New returns the bookmarks module. It needs the pep module, built
// before it; private storage is kept in step when the private module
// runs.
func New(deps module.Deps) (*Module, error) {
	m := &Module{deps: deps}
	if deps.Module != nil {
		m.pep, _ = deps.Module("pep").(*pep.Module)
		m.private, _ = deps.Module("private").(*private.Module)
	}
	if m.pep == nil {
		return nil, errors.New("bookmarks: the pep module is disabled: disable bookmarks too")
	}
	m.limits = m.pep.Limits()
	return m, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "bookmarks" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	r.AddAccountFeature(FeatureCompatPEP, NSConversion)
	if m.private != nil {
		r.AddAccountFeature(FeatureCompat)
		m.removes = append(m.removes, m.private.Handle(NS48, "storage", privateHandler{m}))
	}
	m.removes = append(m.removes, m.pep.OnPublished(m.published), m.pep.OnRetracted(m.retracted), m.pep.OnEmptied(m.emptied))
	r.OnAvailable(m.available)
}

// Stop implements module.Stopper: it takes its functions out of the pep
// and private modules, which may run on without it.
func (m *Module) Stop() {
	for _, remove := range m.removes {
		remove()
	}
	m.removes = nil
}

// syncing marks the context of a sync: what it causes is not synced.
type syncing struct{}

func inSync(ctx context.Context) bool { return ctx.Value(syncing{}) != nil }

// with runs fn for the account under its lock, its context marked.
func (m *Module) with(ctx context.Context, account jid.JID, fn func(ctx context.Context) error) error {
	unlock := locks.lock(account.String())
	defer unlock()
	return fn(context.WithValue(ctx, syncing{}, true))
}

// published mirrors a client's publish on either PEP node.
func (m *Module) published(ctx context.Context, p pep.Published) {
	if p.ByServer || inSync(ctx) {
		return
	}
	var err error
	switch p.Node {
	case NS:
		err = m.with(ctx, p.Account, func(ctx context.Context) error { return m.from402(ctx, p.Account) })
	case NS48:
		if p.Item.Payload == nil || p.Item.Payload.Name != (xmlstream.Name{Space: NS48, Local: "storage"}) {
			return
		}
		err = m.with(ctx, p.Account, func(ctx context.Context) error {
			return m.from48(ctx, p.Account, p.Item.Payload, false)
		})
	default:
		return
	}
	if err != nil {
		m.deps.Log.Error("sync after a publish", "jid", p.Account.String(), "node", p.Node, "err", err)
	}
}

// retracted mirrors a client's retraction of a XEP-0402 item.
func (m *Module) retracted(ctx context.Context, account jid.JID, node, _ string) {
	if node != NS || inSync(ctx) {
		return
	}
	if err := m.with(ctx, account, func(ctx context.Context) error { return m.from402(ctx, account) }); err != nil {
		m.deps.Log.Error("sync after a retraction", "jid", account.String(), "err", err)
	}
}

// emptied mirrors a client's deletion or purge of the XEP-0402 node:
// the XEP-0048 copies lose their conferences.
func (m *Module) emptied(ctx context.Context, account jid.JID, node string) {
	if node != NS || inSync(ctx) {
		return
	}
	if err := m.with(ctx, account, func(ctx context.Context) error { return m.from402(ctx, account) }); err != nil {
		m.deps.Log.Error("sync after the node was emptied", "jid", account.String(), "err", err)
	}
}

// available converts an account's XEP-0048 bookmarks to XEP-0402 items
// when it has none yet (XEP-0411 §3: before the client reads them).
func (m *Module) available(ctx context.Context, s router.Session) {
	account := s.JID().Bare()
	if _, err := m.pep.NodeConfiguration(ctx, account, NS); !errors.Is(err, storage.ErrNotFound) {
		return
	}
	err := m.with(ctx, account, func(ctx context.Context) error {
		if _, err := m.pep.NodeConfiguration(ctx, account, NS); !errors.Is(err, storage.ErrNotFound) {
			return nil // converted meanwhile
		}
		st, fromPrivate, err := m.legacy(ctx, account)
		if err != nil || len(parse48(st)) == 0 {
			return err
		}
		return m.from48(ctx, account, st, fromPrivate)
	})
	if err != nil {
		m.deps.Log.Error("convert XEP-0048 bookmarks", "jid", account.String(), "err", err)
	}
}

// legacy returns the account's XEP-0048 <storage/>: the one in private
// storage (fromPrivate), else the legacy PEP item's, else nil.
func (m *Module) legacy(ctx context.Context, account jid.JID) (st *xmlstream.Element, fromPrivate bool, err error) {
	if m.private != nil {
		st, err := m.private.Load(ctx, account, NS48, "storage")
		if err != nil || st != nil {
			return st, true, err
		}
	}
	its, err := m.pep.Items(ctx, account, NS48, nil, 1)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && len(its) == 0) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if p := its[0].Payload; p != nil && p.Name == (xmlstream.Name{Space: NS48, Local: "storage"}) {
		return p, false, nil
	}
	return nil, false, nil
}

// item is a XEP-0402 item read back: its id as stored and its bookmark.
type item struct {
	id string
	b  bookmark
}

// items402 returns the account's XEP-0402 bookmarks, oldest first; items
// that are not a room's bookmark are left out.
func (m *Module) items402(ctx context.Context, account jid.JID) ([]item, error) {
	its, err := m.pep.Items(ctx, account, NS, nil, 0)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]item, 0, len(its))
	for _, it := range slices.Backward(its) {
		if b, ok := from402(it.ID, it.Payload); ok {
			out = append(out, item{it.ID, b})
		}
	}
	return out, nil
}

// from402 rewrites both XEP-0048 copies from the XEP-0402 items.
func (m *Module) from402(ctx context.Context, account jid.JID) error {
	its, err := m.items402(ctx, account)
	if err != nil {
		return err
	}
	bms := make([]bookmark, len(its))
	for i, it := range its {
		bms[i] = it.b
	}
	base, _, err := m.legacy(ctx, account)
	if err != nil {
		return err
	}
	st := merge48(base, bms)
	if m.private != nil {
		if err := m.private.Put(ctx, account, st); err != nil {
			return err
		}
	}
	return m.publish48(ctx, account, st)
}

// from48 makes the XEP-0402 items those of st, a XEP-0048 <storage/>
// set in private storage (fromPrivate) or in the legacy PEP item, and
// writes the other copy.
func (m *Module) from48(ctx context.Context, account jid.JID, st *xmlstream.Element, fromPrivate bool) error {
	bms := parse48(st)
	have, err := m.items402(ctx, account)
	if err != nil {
		return err
	}
	ids := make(map[string]item, len(have))
	for _, it := range have {
		ids[it.b.Room] = it
	}
	keep := make(map[string]bool, len(bms))
	for _, b := range bms {
		keep[b.Room] = true
		id := b.Room
		if old, ok := ids[b.Room]; ok {
			if old.b.equal(b) {
				continue
			}
			id = old.id
		}
		if err := m.publish(ctx, account, NS, id, b.to402(), options402); err != nil {
			return fmt.Errorf("bookmarks: publish %s: %w", b.Room, err)
		}
	}
	for _, it := range have {
		if keep[it.b.Room] {
			continue
		}
		if err := m.pep.Retract(ctx, account, NS, it.id); err != nil && !errors.Is(err, storage.ErrNotFound) && !isCondition(err, stanza.ItemNotFound) {
			return fmt.Errorf("bookmarks: retract %s: %w", it.id, err)
		}
	}
	if fromPrivate {
		return m.publish48(ctx, account, st)
	}
	if m.private != nil {
		return m.private.Put(ctx, account, st)
	}
	return nil
}

// publish48 publishes st as the legacy PEP item. One too large for an
// item is left out (logged): private storage still has it.
func (m *Module) publish48(ctx context.Context, account jid.JID, st *xmlstream.Element) error {
	if n := len(st.AppendXML(nil, "")); n > m.limits.MaxItemBytes {
		m.deps.Log.Warn("bookmarks too large for the XEP-0048 PEP item", "jid", account.String(), "bytes", n)
		return nil
	}
	if err := m.publish(ctx, account, NS48, legacyItem, st, options48); err != nil {
		return fmt.Errorf("bookmarks: publish the XEP-0048 item: %w", err)
	}
	return nil
}

// publish publishes on the account's behalf with options; a node the
// account configured otherwise keeps its configuration.
func (m *Module) publish(ctx context.Context, account jid.JID, node, id string, payload *xmlstream.Element, options map[string]string) error {
	_, err := m.pep.Publish(ctx, account, node, id, payload, options)
	if isPreconditionNotMet(err) {
		_, err = m.pep.Publish(ctx, account, node, id, payload, nil)
	}
	return err
}

func isPreconditionNotMet(err error) bool {
	var se *stanza.Error
	return errors.As(err, &se) && se.App != nil && se.App.Name.Local == "precondition-not-met"
}

func isCondition(err error, c stanza.Condition) bool {
	var se *stanza.Error
	return errors.As(err, &se) && se.Condition == c
}

// privateHandler is the private module's handler of
// {storage:bookmarks}storage.
type privateHandler struct{ m *Module }

// Set stores a client's XEP-0048 bookmarks and syncs them to PEP. A list
// that the PEP nodes could not hold (more bookmarks than a node's
// max_items cap, larger than an item) is not-acceptable.
func (h privateHandler) Set(ctx context.Context, account jid.JID, st *xmlstream.Element) error {
	m := h.m
	if n := len(parse48(st)); n > m.limits.MaxItems {
		return stanza.NewError(stanza.NotAcceptable, fmt.Sprintf("at most %d bookmarks, got %d", m.limits.MaxItems, n))
	}
	if n := len(st.AppendXML(nil, "")); n > m.limits.MaxItemBytes {
		return stanza.NewError(stanza.NotAcceptable, fmt.Sprintf("the bookmarks have %d bytes, the most allowed is %d", n, m.limits.MaxItemBytes))
	}
	return m.with(ctx, account, func(ctx context.Context) error {
		if err := m.private.Put(ctx, account, st); err != nil {
			return err
		}
		return m.from48(ctx, account, st, true)
	})
}

// Get returns the stored XEP-0048 bookmarks, or those of the XEP-0402
// items when none are stored.
func (h privateHandler) Get(ctx context.Context, account jid.JID) (*xmlstream.Element, error) {
	m := h.m
	st, err := m.private.Load(ctx, account, NS48, "storage")
	if err != nil || st != nil {
		return st, err
	}
	its, err := m.items402(ctx, account)
	if err != nil || len(its) == 0 {
		return nil, err
	}
	bms := make([]bookmark, len(its))
	for i, it := range its {
		bms[i] = it.b
	}
	return merge48(nil, bms), nil
}

// accountLocks serialises the syncs of each account. A sync holds its
// account's lock across storage calls and publishes (which only enqueue
// notifications); nothing it calls takes the lock again (the hooks its
// publishes run see the marked context and return first).
type accountLocks struct {
	mu sync.Mutex
	m  map[string]*accountLock
}

type accountLock struct {
	mu    sync.Mutex
	users int
}

// lock takes key's lock and returns its release.
func (l *accountLocks) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*accountLock{}
	}
	al := l.m[key]
	if al == nil {
		al = &accountLock{}
		l.m[key] = al
	}
	al.users++
	l.mu.Unlock()
	al.mu.Lock()
	return func() {
		al.mu.Unlock()
		l.mu.Lock()
		if al.users--; al.users == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}
