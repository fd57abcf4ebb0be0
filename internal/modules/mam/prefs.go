package mam

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// prefsKey is where a user's preferences are in storage.XMLStore.
const prefsKey = "mam:prefs"

// prefs are a user's archiving preferences (XEP-0441 §3): the default and
// the bare JIDs always and never archived.
type prefs struct {
	def           string
	always, never []string
}

// prefsTTL bounds how long a user's preferences are kept in memory: a
// change made elsewhere (another node, or the account deleted and created
// again) applies after at most that long. A change through this module
// applies at once.
const prefsTTL = time.Minute

// maxCachedPrefs bounds the preferences kept in memory; past it the cache
// starts again empty.
const maxCachedPrefs = 100_000

// prefsCache keeps users' preferences, so that archiving a message reads
// none from storage.
type prefsCache struct {
	mu sync.Mutex
	m  map[string]cachedPrefs // bare JID → preferences
}

type cachedPrefs struct {
	p      prefs
	loaded time.Time
}

func (c *prefsCache) get(owner string, now time.Time) (prefs, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[owner]
	if !ok || now.Sub(e.loaded) > prefsTTL || now.Before(e.loaded) {
		return prefs{}, false
	}
	return e.p, true
}

func (c *prefsCache) put(owner string, p prefs, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedPrefs {
		c.m = make(map[string]cachedPrefs)
	}
	c.m[owner] = cachedPrefs{p, now}
}

// cachedPrefs returns owner's preferences from the cache or storage.
func (m *Module) cachedPrefs(ctx context.Context, owner jid.JID) (prefs, error) {
	now := m.deps.Now()
	if p, ok := m.prefs.get(owner.String(), now); ok {
		return p, nil
	}
	p, err := m.loadPrefs(ctx, owner)
	if err == nil {
		m.prefs.put(owner.String(), p, now)
	}
	return p, err
}

// loadPrefs returns owner's preferences from storage, or the configured
// default.
func (m *Module) loadPrefs(ctx context.Context, owner jid.JID) (prefs, error) {
	doc, err := m.deps.Store.GetXML(ctx, owner.Local(), owner.DomainString(), prefsKey)
	if errors.Is(err, storage.ErrNotFound) {
		return prefs{def: m.cfg.Default}, nil
	}
	if err != nil {
		return prefs{}, err
	}
	e, err := xmlstream.ParseElement(doc, NS)
	if err != nil {
		return prefs{}, err
	}
	p, perr := parsePrefs(e)
	if perr != nil {
		return prefs{}, perr
	}
	return p, nil
}

// wants reports whether a message between owner and the bare JID with is
// archived in owner's archive.
func (m *Module) wants(ctx context.Context, owner, with jid.JID) bool {
	p, err := m.cachedPrefs(ctx, owner)
	if err != nil {
		m.deps.Log.Error("archive: preferences unreadable, archiving", "jid", owner.String(), "err", err)
		return true
	}
	w := with.String()
	switch {
	case slices.Contains(p.never, w):
		return false
	case slices.Contains(p.always, w):
		return true
	case p.def == Always:
		return true
	case p.def == Roster:
		_, err := m.deps.Store.RosterItem(ctx, owner.Local(), owner.DomainString(), w)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			m.deps.Log.Error("archive: roster unreadable, archiving", "jid", owner.String(), "err", err)
			return true
		}
		return err == nil
	}
	return false
}

// parsePrefs reads a <prefs/> element; a bad one is bad-request.
func parsePrefs(e *xmlstream.Element) (prefs, error) {
	p := prefs{def: e.Attribute("default")}
	switch p.def {
	case Always, Never, Roster:
	default:
		return prefs{}, stanza.NewError(stanza.BadRequest, "default must be always, never or roster")
	}
	for _, list := range []struct {
		name string
		to   *[]string
	}{{"always", &p.always}, {"never", &p.never}} {
		l := e.Child(NS, list.name)
		if l == nil {
			continue
		}
		for _, j := range l.ChildrenNS(NS) {
			if j.Name.Local != "jid" {
				continue
			}
			parsed, err := jid.Parse(j.Text())
			if err != nil {
				return prefs{}, stanza.NewError(stanza.JIDMalformed, "")
			}
			if s := parsed.Bare().String(); !slices.Contains(*list.to, s) {
				*list.to = append(*list.to, s)
			}
		}
	}
	return p, nil
}

func (p prefs) element() *xmlstream.Element {
	e := xmlstream.NewElement(NS, "prefs").SetAttr("default", p.def)
	for _, list := range []struct {
		name string
		jids []string
	}{{"always", p.always}, {"never", p.never}} {
		l := xmlstream.NewElement(NS, list.name)
		for _, j := range list.jids {
			l.Append(xmlstream.NewElement(NS, "jid").AppendText(j))
		}
		e.Append(l)
	}
	return e
}

// getPrefs answers a preferences request (XEP-0441 §3.1).
func (m *Module) getPrefs(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	owner, err := archiveOf(ev)
	if err != nil {
		return nil, err
	}
	p, err := m.loadPrefs(ctx, owner)
	if err != nil {
		return nil, err
	}
	return p.element(), nil
}

// setPrefs replaces the preferences (XEP-0441 §3.2) and answers with them.
func (m *Module) setPrefs(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	owner, err := archiveOf(ev)
	if err != nil {
		return nil, err
	}
	p, err := parsePrefs(ev.El.FirstChild())
	if err != nil {
		return nil, err
	}
	e := p.element()
	if err := m.deps.Store.PutXML(ctx, owner.Local(), owner.DomainString(), prefsKey, e.AppendXML(nil, NS)); err != nil {
		return nil, err
	}
	m.prefs.put(owner.String(), p, m.deps.Now())
	return e, nil
}
