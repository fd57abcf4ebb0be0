// Package mam implements XEP-0313 Message Archive Management
// (urn:xmpp:mam:2 and urn:xmpp:mam:2#extended) for the server's accounts,
// with XEP-0359 stanza ids, XEP-0059 result set paging and the XEP-0441
// archiving preferences.
//
// Archiving (§5.1.1): a message of type chat or normal with a body (or a
// XEP-0334 <store/> hint, and without <no-store/> or <no-permanent-store/>)
// is kept in its sender's archive when it leaves a local session and in its
// recipient's archive when it arrives for a local account (delivered,
// stored offline, or both: a message between two local accounts is in
// both archives), as the user's preferences say. Before delivery the
// recipient's copy gets <stanza-id by='user@domain' id='…'/> (XEP-0359 §4,
// XEP-0313 §3.5) with the id it has in the archive, after any stanza-id the
// sender put there in the recipient's name was removed; the sender's copy
// gets none (it would tell the recipient an id of an archive it cannot
// read).
//
// Writes are batched (group commit, see writer): delivery does not wait
// for the disk unless the queue of unwritten messages is full. A crash
// loses what was queued and not yet committed (the last few milliseconds
// of messages); a query first waits for what was queued before it.
//
// Queries (§4) go to the user's own bare JID, or have no 'to': the data
// form fields with, start, end, after-id, before-id and ids, RSM max
// (default 50, at most 250), after, before (empty: the last page) and
// <flip-page/>; results are sent to the querying session, then the <fin/>
// with complete and the RSM first/last. Another entity's query gets
// forbidden. The form (§4.1.5), the archive metadata (§7) and the
// preferences (XEP-0441) are answered too. expire_after deletes messages
// older than that once an hour; deleting an account deletes its archive.
package mam

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/stanza"
)

// Namespaces and features.
const (
	// NS is XEP-0313's namespace and disco feature.
	NS = "urn:xmpp:mam:2"
	// NSExtended is the feature of before-id, after-id, ids, flip-page
	// and metadata (§8).
	NSExtended = "urn:xmpp:mam:2#extended"
	// NSSID is XEP-0359's namespace and feature.
	NSSID = "urn:xmpp:sid:0"
	// NSRSM is XEP-0059 Result Set Management.
	NSRSM = "http://jabber.org/protocol/rsm"
	// NSForward is XEP-0297 Stanza Forwarding.
	NSForward = "urn:xmpp:forward:0"
	// NSHints is XEP-0334 Message Processing Hints.
	NSHints = "urn:xmpp:hints"
	// NSData is XEP-0004 Data Forms.
	NSData = "jabber:x:data"
)

// Hook priorities: after blocking (1000), so that a refused message is not
// archived, and before the roster module (0).
const (
	outboundPriority = 500
	inboundPriority  = 500
)

// sweepEvery is how often expired messages are deleted.
const sweepEvery = time.Hour

// The values of Config.Default and of the preferences' default.
const (
	Always = "always"
	Never  = "never"
	Roster = "roster"
)

// Config is the [modules.mam] table.
type Config struct {
	// Default says which messages are archived for users who did not
	// set their preferences: "always", "roster" (only those exchanged
	// with contacts in the user's roster) or "never".
	Default string `toml:"default"`
	// ExpireAfter is how long messages are kept; 0 keeps them until the
	// account is deleted.
	ExpireAfter config.Duration `toml:"expire_after"`
}

// Validate implements config.Validator.
func (c *Config) Validate() []config.Problem {
	var ps []config.Problem
	switch c.Default {
	case Always, Roster, Never:
	default:
		ps = append(ps, config.Problem{Key: "default", Msg: fmt.Sprintf(`must be "always", "roster" or "never", got %q`, c.Default)})
	}
	if c.ExpireAfter < 0 {
		ps = append(ps, config.Problem{Key: "expire_after", Msg: fmt.Sprintf("must not be negative, got %s", c.ExpireAfter)})
	}
	return ps
}

// Info describes the module to the server.
var Info = module.Info{
	Name:   "mam",
	XEPs:   []string{"XEP-0313", "XEP-0359", "XEP-0059", "XEP-0441"},
	Config: &Config{Default: Always},
	New:    module.Configured(New),
}

// Module is the message archive module.
type Module struct {
	deps  module.Deps
	cfg   Config
	ids   ids
	w     *writer
	prefs prefsCache

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ module.Module  = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)

// New returns the module.
func New(deps module.Deps, cfg Config) (*Module, error) {
	return &Module{deps: deps, cfg: cfg}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "mam" }

// Register implements module.Module. It starts the archive's writer and,
// with expire_after, the goroutine that deletes old messages.
func (m *Module) Register(r *router.Router) {
	m.w = newWriter(func(ctx context.Context, msgs []storage.ArchivedMessage) (int, error) {
		return m.deps.Store.AppendArchive(ctx, msgs)
	}, m.deps.Log)
	// XEP-0313 §8 wants the features on the account's bare JID; the disco
	// module answers there with a fixed list, so they are on the domain too.
	r.AddFeature(NS, NSExtended, NSSID)
	// XEP-0313 §8: clients look for the archive on their own bare JID.
	r.AddAccountFeature(NS, NSExtended)
	r.HookOutbound(outboundPriority, m.outbound)
	r.HookInbound(inboundPriority, m.inbound)
	// An acknowledged message is in the archive (XEP-0198 acks wait).
	r.OnSync(m.w.sync)
	const own = router.ClassSelf | router.ClassBare
	r.HandleIQ(stanza.IQSet, own, NS, "query", m.query)
	r.HandleIQ(stanza.IQGet, own, NS, "query", m.form)
	r.HandleIQ(stanza.IQGet, own, NS, "metadata", m.metadata)
	r.HandleIQ(stanza.IQGet, own, NS, "prefs", m.getPrefs)
	r.HandleIQ(stanza.IQSet, own, NS, "prefs", m.setPrefs)
	if m.cfg.ExpireAfter > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		m.cancel = cancel
		m.wg.Add(1)
		go m.loop(ctx)
	}
}

// Stop implements module.Stopper: it writes the queued messages and ends
// the module's goroutines.
func (m *Module) Stop() {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if m.w != nil {
		m.w.stop()
	}
}

func (m *Module) loop(ctx context.Context) {
	defer m.wg.Done()
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		if _, err := m.Expire(ctx); err != nil && ctx.Err() == nil {
			m.deps.Log.Error("archive: expiry failed", "err", err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// Expire deletes the messages older than expire_after (none when it is
// 0) and returns how many.
func (m *Module) Expire(ctx context.Context) (int, error) {
	if m.cfg.ExpireAfter <= 0 {
		return 0, nil
	}
	n, err := m.deps.Store.DeleteArchived(ctx, m.deps.Now().Add(-time.Duration(m.cfg.ExpireAfter)))
	if err != nil {
		return n, fmt.Errorf("mam: expire: %w", err)
	}
	if n > 0 {
		m.deps.Log.Info("archive: expired messages deleted", "messages", n)
	}
	return n, nil
}

var errStopped = errors.New("mam: stopped")
