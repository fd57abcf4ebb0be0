package pep

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// maxEntitiesPerOwner bounds the resources tracked for one account
// (its contacts' and its own): presence from more is not tracked.
const maxEntitiesPerOwner = 4096

// capsQueryTimeout bounds a disco#info query for capabilities.
const capsQueryTimeout = 30 * time.Second

// entity is an available resource whose presence an account received.
type entity struct {
	jid  jid.JID
	key  string    // its capabilities' cache key, "" for none
	info *capsInfo // nil until known
}

// presenceTable is, per account, the resources that sent it available
// presence, with their capabilities. Its mutex is a leaf.
type presenceTable struct {
	mu     sync.Mutex
	owners map[string]map[string]*entity // owner bare → full JID → entity
}

func newPresenceTable() *presenceTable {
	return &presenceTable{owners: map[string]map[string]*entity{}}
}

// available records full as available for owner with capabilities key;
// changed is true when it is new or its capabilities changed (its info
// is then unknown again).
func (p *presenceTable) available(owner, full jid.JID, key string) (changed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := owner.String()
	es := p.owners[o]
	if es == nil {
		es = map[string]*entity{}
		p.owners[o] = es
	}
	f := full.String()
	if e := es[f]; e != nil {
		if e.key == key {
			return false
		}
		e.key, e.info = key, nil
		return true
	}
	if len(es) >= maxEntitiesPerOwner {
		return false
	}
	es[f] = &entity{jid: full, key: key}
	return true
}

// unavailable forgets full for owner.
func (p *presenceTable) unavailable(owner, full jid.JID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := owner.String()
	es := p.owners[o]
	delete(es, full.String())
	if len(es) == 0 {
		delete(p.owners, o)
	}
}

// setInfo sets the capabilities of full for owner if it still announces
// key; it reports whether it did.
func (p *presenceTable) setInfo(owner, full jid.JID, key string, info *capsInfo) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.owners[owner.String()][full.String()]
	if e == nil || e.key != key {
		return false
	}
	e.info = info
	return true
}

// interested returns the resources of others than owner that want
// notifications of node.
func (p *presenceTable) interested(owner jid.JID, node string) []jid.JID {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []jid.JID
	for _, e := range p.owners[owner.String()] {
		if e.info.wants(node) && !e.jid.Bare().Equal(owner) {
			out = append(out, e.jid)
		}
	}
	return out
}

// resources returns the resources of contact known to owner with their
// capabilities (copies).
func (p *presenceTable) resources(owner, contact jid.JID) []entity {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []entity
	for _, e := range p.owners[owner.String()] {
		if e.info != nil && e.jid.Bare().Equal(contact) {
			out = append(out, *e)
		}
	}
	return out
}

// inboundPresence watches available and unavailable presence to a local
// account from another entity's resource (XEP-0163 §4.3: the
// capabilities in it say which notifications the resource wants). It
// never handles the stanza.
func (m *Module) inboundPresence(ctx context.Context, ev *router.Event) bool {
	if ev.El.Name.Local != "presence" || (ev.Class != router.ClassBare && ev.Class != router.ClassFull) {
		return false
	}
	owner, from := ev.To.Bare(), ev.From
	if from.Resource() == "" || from.Bare().Equal(owner) {
		return false
	}
	m.presence(ctx, owner, from, ev.El)
	return false
}

// outboundPresence watches the presence broadcasts of the account's own
// resources: their capabilities say what the last items sent to a new
// resource are. It never handles the stanza.
func (m *Module) outboundPresence(ctx context.Context, ev *router.Event) bool {
	if ev.El.Name.Local != "presence" || ev.Origin == nil || stanza.To(ev.El) != "" {
		return false
	}
	full := ev.Origin.JID()
	m.presence(ctx, full.Bare(), full, ev.El)
	return false
}

func (m *Module) presence(ctx context.Context, owner, from jid.JID, p *xmlstream.Element) {
	switch stanza.Type(p) {
	case "":
	case stanza.PresenceUnavailable:
		m.pres.unavailable(owner, from)
		return
	default:
		return
	}
	ref, ok := parseCaps(p)
	key := ""
	if ok {
		key = ref.key()
	}
	if !m.pres.available(owner, from, key) || key == "" {
		return
	}
	w := waiter{owner: owner, full: from}
	info, query := m.caps.lookup(key, w)
	switch {
	case info != nil:
		m.learnt(ctx, w, key, info)
	case query:
		m.queryCaps(w, ref)
	}
}

// subscribed sends the contact's resources known to the account, now
// subscribed to its presence, the last items they want (XEP-0060
// §12.7: on subscription).
func (m *Module) subscribed(ctx context.Context, owner, contact jid.JID) {
	for _, e := range m.pres.resources(owner, contact) {
		m.sendLast(ctx, owner, e.jid, e.info)
	}
}

// sessionEnded forgets a session of the account.
func (m *Module) sessionEnded(_ context.Context, s router.Session) {
	m.pres.unavailable(s.JID().Bare(), s.JID())
}

// learnt applies capabilities learnt for w: the resource gets the last
// items of the nodes it wants (XEP-0163 §4.3.2, send_last_published_item
// on_sub_and_presence).
func (m *Module) learnt(ctx context.Context, w waiter, key string, info *capsInfo) {
	if m.pres.setInfo(w.owner, w.full, key, info) && len(info.notify) > 0 {
		m.sendLast(ctx, w.owner, w.full, info)
	}
}

// queryCaps asks w.full for the disco#info of its capabilities (XEP-0115
// §6.2) on a goroutine of its own, from the account's bare JID; at most
// maxCapsQueries run at once (past that the hash stays unknown until the
// resource announces it again).
func (m *Module) queryCaps(w waiter, ref capsRef) {
	key := ref.key()
	select {
	case m.queries <- struct{}{}:
	default:
		m.caps.abandon(key)
		return
	}
	if !m.spawn(func() {
		defer func() { <-m.queries }()
		m.runCapsQuery(w, ref)
	}) {
		<-m.queries
	}
}

// spawn runs fn on a goroutine the module waits for when it stops,
// unless it is stopping.
func (m *Module) spawn(fn func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn()
	}()
	return true
}

func (m *Module) runCapsQuery(w waiter, ref capsRef) {
	key := ref.key()
	ctx, cancel := context.WithTimeout(m.bg, capsQueryTimeout)
	defer cancel()
	iq := stanza.NewIQ(stanza.NSClient, stanza.IQGet, w.full.String(), w.owner.String(), "")
	iq.Append(xmlstream.NewElement(stanza.NSDiscoInfo, "query").SetAttr("node", ref.node+"#"+ref.ver))
	res, err := m.r.IQ(ctx, iq)
	var q *xmlstream.Element
	if err == nil {
		q = res.Child(stanza.NSDiscoInfo, "query")
	} else if ctx.Err() == nil && !isStanzaError(err) {
		m.deps.Log.Warn("capabilities query", "jid", w.full.String(), "err", err)
	}
	var info *capsInfo
	if q != nil {
		info = notifyOf(q)
		if got, ok := CapsHash(ref.hash, q); ok && got == ref.ver {
			for _, x := range m.caps.verified(key, info) {
				m.learnt(ctx, x, key, info)
			}
			return
		}
	}
	// §5.4: an answer that does not hash to the announced string is not
	// accepted for that string, only for the entity that gave it (for
	// every account that waited on that entity).
	same, next, again := m.caps.failed(key, w.full)
	if info != nil {
		for _, x := range same {
			m.learnt(ctx, x, key, info)
		}
	}
	if again && m.bg.Err() == nil {
		m.queryCaps(next, ref)
	}
}

func isStanzaError(err error) bool {
	var se *stanza.Error
	return errors.As(err, &se)
}
