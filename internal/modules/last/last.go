// Package last implements XEP-0012 Last Activity as a server.
//
// To a hosted domain (§5) the answer is the server's uptime in seconds. To
// an account's bare JID (§3), the server answers on the account's behalf:
// seconds 0 while the account has an available resource, otherwise the
// seconds since its last session ended and the status stored then, or
// item-not-found if it never logged out. Only the account itself and
// entities with a presence subscription to it may ask (§3, §8); anyone else
// gets forbidden. Full JIDs (§4, idle time) are the clients' to answer.
//
// When an account's last session ends, the module records the time (with
// an empty status: the status of the final unavailable presence is not
// known here). The records are written behind, many in one transaction
// (a mass logout of 10,000 sessions is a few transactions, not 10,000
// commits, and a logout costs no disk flush of its own); a query sees a
// record not yet written. A crash may lose the records of the last
// moments, which only make a user's last logout look older.
package last

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NS is the XEP-0012 namespace.
const NS = "jabber:iq:last"

// Module is the last activity module.
type Module struct {
	deps    module.Deps
	r       *router.Router
	started time.Time

	mu      sync.Mutex
	pending map[jid.JID]time.Time // logouts not yet written, by bare JID
	writing bool                  // the writer goroutine runs
	stopped bool
	wg      sync.WaitGroup
}

var (
	_ module.Module  = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)

// maxPending bounds the records waiting to be written; past it a logout
// is written at once, on the caller's goroutine.
const maxPending = 100000

// Info describes the module to the server.
var Info = module.Info{
	Name: "last",
	XEPs: []string{"XEP-0012"},
	New:  module.Plain(New),
}

// New returns the last activity module; the server's uptime counts from
// here.
func New(deps module.Deps) (*Module, error) {
	return &Module{deps: deps, started: deps.Now(), pending: make(map[jid.JID]time.Time)}, nil
}

// Stop implements module.Stopper: what is pending is written.
func (m *Module) Stop() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.wg.Wait()
	m.flush() // anything the writer had not taken
}

// Name implements module.Module.
func (m *Module) Name() string { return "last" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	m.r = r
	r.AddFeature(NS)
	r.HandleIQ(stanza.IQGet, router.ClassLocal, NS, "query", m.get)
	r.OnSessionEnd(m.sessionEnded)
}

func (m *Module) get(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	from := ev.From
	account := ev.To.Bare() // no 'to': the sender's own account
	if ev.Class == router.ClassServer {
		return result(m.deps.Now().Sub(m.started), ""), nil
	}
	ok, err := m.mayKnow(ctx, account, from)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, stanza.NewError(stanza.Forbidden, "")
	}
	for _, s := range m.r.Sessions(account) {
		if _, available := s.Presence(); available {
			return result(0, ""), nil
		}
	}
	m.mu.Lock()
	at, queued := m.pending[account]
	m.mu.Unlock()
	if queued {
		return result(m.deps.Now().Sub(at), ""), nil
	}
	at, status, err := m.deps.Store.LastActivity(ctx, account.Local(), account.DomainString())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, stanza.NewError(stanza.ItemNotFound, "")
	}
	if err != nil {
		return nil, err
	}
	return result(m.deps.Now().Sub(at), status), nil
}

// mayKnow reports whether from may see the account's availability: it is
// the account itself or subscribed to the account's presence (the
// account's roster item for it has subscription from or both).
func (m *Module) mayKnow(ctx context.Context, account, from jid.JID) (bool, error) {
	if from.Bare().Equal(account) {
		return true, nil
	}
	item, err := m.deps.Store.RosterItem(ctx, account.Local(), account.DomainString(), from.Bare().String())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return item.Subscription == storage.SubFrom || item.Subscription == storage.SubBoth, nil
}

// result returns the <query/> payload with d in whole seconds (never
// negative, should the clock step back) and status as its text.
func result(d time.Duration, status string) *xmlstream.Element {
	secs := max(int64(d/time.Second), 0)
	q := xmlstream.NewElement(NS, "query").SetAttr("seconds", strconv.FormatInt(secs, 10))
	if status != "" {
		q.AppendText(status)
	}
	return q
}

// sessionEnded records the logout time when the account's last session
// ends.
func (m *Module) sessionEnded(ctx context.Context, s router.Session) {
	bare := s.JID().Bare()
	if len(m.r.Sessions(bare)) > 0 {
		return
	}
	now := m.deps.Now()
	m.mu.Lock()
	if m.stopped || len(m.pending) >= maxPending {
		m.mu.Unlock()
		if err := m.deps.Store.SetLastActivity(ctx, bare.Local(), bare.DomainString(), now, ""); err != nil {
			m.deps.Log.Error("record last activity", "jid", bare.String(), "err", err)
		}
		return
	}
	m.pending[bare] = now
	if !m.writing {
		m.writing = true
		m.wg.Add(1)
		go m.write()
	}
	m.mu.Unlock()
}

// write writes the pending records until there are none, one
// transaction per round (what arrives during one goes in the next).
func (m *Module) write() {
	defer m.wg.Done()
	for m.flush() {
	}
}

// flush writes what is pending in one transaction and reports whether
// there was anything; when there is nothing it ends the writer's turn.
func (m *Module) flush() bool {
	m.mu.Lock()
	if len(m.pending) == 0 {
		m.writing = false
		m.mu.Unlock()
		return false
	}
	records := make([]storage.LastActivityRecord, 0, len(m.pending))
	for j, at := range m.pending {
		records = append(records, storage.LastActivityRecord{Local: j.Local(), Domain: j.DomainString(), At: at})
	}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := m.deps.Store.SetLastActivities(ctx, records)
	cancel()
	if err != nil {
		m.deps.Log.Error("record last activity", "records", len(records), "err", err)
	}
	m.mu.Lock()
	for _, r := range records {
		j, _ := jid.New(r.Local, r.Domain, "")
		if at, ok := m.pending[j]; ok && at.Equal(r.At) {
			delete(m.pending, j) // written (or given up); a newer logout stays
		}
	}
	m.mu.Unlock()
	return true
}
