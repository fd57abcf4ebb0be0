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
// known here).
package last

import (
	"context"
	"errors"
	"strconv"
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
}

var _ module.Module = (*Module)(nil)

// Info describes the module to the server.
var Info = module.Info{
	Name: "last",
	XEPs: []string{"XEP-0012"},
	New:  module.Plain(New),
}

// New returns the last activity module; the server's uptime counts from
// here.
func New(deps module.Deps) (*Module, error) {
	return &Module{deps: deps, started: deps.Now()}, nil
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
	if err := m.deps.Store.SetLastActivity(ctx, bare.Local(), bare.DomainString(), m.deps.Now(), ""); err != nil {
		m.deps.Log.Error("record last activity", "jid", bare.String(), "err", err)
	}
}
