// Package roster implements instant messaging and presence (RFC 6121): the
// roster (§2) with versioning (§2.6), presence subscriptions (§3) with the
// state machine of Appendix A and pre-approval (§3.4), and presence (§4):
// initial presence with probes, broadcasts, directed presence, probes
// answered, and unavailable presence when a session ends.
//
// Roster, subscription and presence are one module because each changes
// the others: approving a subscription sends presence, a presence
// broadcast follows the roster.
package roster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of the stream features this module announces.
const (
	// NSRosterVer is roster versioning's stream feature (RFC 6121 §2.6.1).
	NSRosterVer = "urn:xmpp:features:rosterver"
	// NSPreApproval is subscription pre-approval's (RFC 6121 §3.4.1).
	NSPreApproval = "urn:xmpp:features:pre-approval"
)

// maxTextLen bounds item names and group names, in characters.
const maxTextLen = 1023

// Module is the roster, subscription and presence module.
type Module struct {
	deps     module.Deps
	r        *router.Router
	maxItems int

	mu sync.Mutex // guards every session's sessionState fields
}

// stateKey holds the module's state in each session.
var stateKey = session.NewKey[*sessionState]()

// sessionState is what the module knows of one bound session.
type sessionState struct {
	interested bool                // asked for the roster: gets pushes
	available  bool                // sent available presence
	last       *xmlstream.Element  // its last broadcast presence
	directed   map[string]struct{} // JIDs it sent directed presence to
}

var _ module.Module = (*Module)(nil)

// Config is the [modules.roster] table.
type Config struct {
	// MaxItems is the most contacts a roster may hold.
	MaxItems int `toml:"max_items"`
}

// Validate implements config.Validator.
func (c *Config) Validate() []config.Problem {
	if c.MaxItems < 1 {
		return []config.Problem{{Key: "max_items", Msg: fmt.Sprintf("must be at least 1, got %d", c.MaxItems)}}
	}
	return nil
}

// Info describes the module to the server.
var Info = module.Info{
	Name:   "roster",
	XEPs:   []string{"RFC 6121"},
	Config: &Config{MaxItems: 1000},
	New:    module.Configured(New),
}

// New returns the module.
func New(deps module.Deps, cfg Config) (*Module, error) {
	return &Module{deps: deps, r: deps.Router, maxItems: cfg.MaxItems}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "roster" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	r.HandleIQ(stanza.IQGet, router.ClassLocal, stanza.NSRoster, "query", m.handleGet)
	r.HandleIQ(stanza.IQSet, router.ClassLocal, stanza.NSRoster, "query", m.handleSet)
	r.AddStreamFeature(xmlstream.NewElement(NSRosterVer, "ver"))
	r.AddStreamFeature(xmlstream.NewElement(NSPreApproval, "sub"))
	r.HookOutbound(0, m.outbound)
	r.HookInbound(0, m.inbound)
	r.OnSessionEnd(m.sessionEnded)
	r.OnUnblocked(m.unblocked)
}

// sessState returns the module's state in s, creating it.
func sessState(s router.Session) *sessionState {
	return stateKey.GetOrInit(s.Values(), func() *sessionState { return new(sessionState) })
}

// peek returns the module's state in s, or nil.
func peek(s router.Session) *sessionState {
	ss, _ := stateKey.Get(s.Values())
	return ss
}

// owner checks that a roster IQ is the sender's own (RFC 6121 §2.1.5,
// §2.3.3: only the user's own roster) and returns the sender's JID.
func owner(ev *router.Event) (jid.JID, error) {
	if ev.Class != router.ClassSelf || ev.From.Local() == "" {
		return jid.JID{}, stanza.NewError(stanza.Forbidden, "")
	}
	return ev.From, nil
}

// handleGet answers a roster get (RFC 6121 §2.1.3), with versioning
// (§2.6.3): an empty result when the client is up to date, or an empty
// result followed by pushes of what changed.
func (m *Module) handleGet(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	iq := ev.El
	from, err := owner(ev)
	if err != nil {
		return nil, err
	}
	q := iq.FirstChild()
	if q.FirstChild() != nil {
		return nil, stanza.NewError(stanza.BadRequest, "a roster get has no items")
	}
	if ev.Origin != nil {
		ss := sessState(ev.Origin)
		m.mu.Lock()
		ss.interested = true
		m.mu.Unlock()
	}
	local, domain := from.Local(), from.DomainString()
	if ver, ok := q.LookupAttr("", "ver"); ok && ver != "" {
		since, perr := strconv.ParseInt(ver, 10, 64)
		if perr == nil {
			changes, current, ok, err := m.deps.Store.RosterChanges(ctx, local, domain, since)
			if err != nil {
				return nil, fmt.Errorf("roster: changes: %w", err)
			}
			if ok {
				// An empty result, then a push per change, in that order.
				m.r.Route(ctx, stanza.IQResultFor(iq))
				for _, c := range changes {
					if s := ev.Origin; s != nil {
						_ = s.Deliver(pushElement(from, c.Item, c.Removed))
					}
				}
				_ = current
				return nil, router.ErrReplied
			}
		}
	}
	items, ver, err := m.deps.Store.Roster(ctx, local, domain)
	if err != nil {
		return nil, fmt.Errorf("roster: get: %w", err)
	}
	res := xmlstream.NewElement(stanza.NSRoster, "query").SetAttr("ver", strconv.FormatInt(ver, 10))
	for _, it := range items {
		res.Append(itemElement(it))
	}
	return res, nil
}

// handleSet processes a roster set (RFC 6121 §2.3, §2.5).
func (m *Module) handleSet(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	iq := ev.El
	from, err := owner(ev)
	if err != nil {
		return nil, err
	}
	item, remove, err := parseSetItem(iq.FirstChild(), from)
	if err != nil {
		return nil, err
	}
	user := from.Bare()
	if remove {
		return nil, m.removeItem(ctx, user, item.Contact)
	}
	old, err := m.deps.Store.RosterItem(ctx, user.Local(), user.DomainString(), item.Contact)
	switch {
	case err == nil:
		// Keep the subscription state; only name and groups change.
		old.Name, old.Groups = item.Name, item.Groups
		item = old
	case errors.Is(err, storage.ErrNotFound):
		item.Subscription = storage.SubNone
	default:
		return nil, fmt.Errorf("roster: set: %w", err)
	}
	if err := m.put(ctx, user, item); err != nil {
		return nil, err
	}
	return nil, nil
}

// parseSetItem validates the query of a roster set.
func parseSetItem(q *xmlstream.Element, from jid.JID) (it storage.RosterItem, remove bool, err error) {
	items := q.ChildrenNS(stanza.NSRoster)
	if len(items) != 1 || items[0].Name.Local != "item" {
		return it, false, stanza.NewError(stanza.BadRequest, "a roster set has exactly one item")
	}
	e := items[0]
	c, perr := jid.Parse(e.Attribute("jid"))
	if perr != nil {
		return it, false, stanza.NewError(stanza.BadRequest, "the item's jid is not a valid JID")
	}
	it.Contact = c.String()
	if !c.IsBare() && !c.IsDomain() {
		// Roster items are bare JIDs (RFC 6121 §2.1.2.2); keep what the
		// client gave, minus the resource.
		it.Contact = c.Bare().String()
	}
	if c.Bare().Equal(from.Bare()) {
		return it, false, stanza.NewError(stanza.NotAllowed, "a roster does not hold its own account")
	}
	switch sub := e.Attribute("subscription"); sub {
	case "remove":
		return it, true, nil
	case "", "none", "to", "from", "both":
		// Ignored: the server owns the state (RFC 6121 §2.1.2.5).
	default:
		return it, false, stanza.NewError(stanza.BadRequest, "subscription may only be 'remove'")
	}
	it.Name = e.Attribute("name")
	if utf8.RuneCountInString(it.Name) > maxTextLen {
		return it, false, stanza.NewError(stanza.NotAcceptable, "name too long")
	}
	for _, g := range e.ChildrenNS(stanza.NSRoster) {
		if g.Name.Local != "group" {
			continue
		}
		name := g.Text()
		switch {
		case strings.TrimSpace(name) == "":
			return it, false, stanza.NewError(stanza.NotAcceptable, "empty group name")
		case utf8.RuneCountInString(name) > maxTextLen:
			return it, false, stanza.NewError(stanza.NotAcceptable, "group name too long")
		}
		for _, prev := range it.Groups {
			if prev == name {
				return it, false, stanza.NewError(stanza.BadRequest, "duplicate group")
			}
		}
		it.Groups = append(it.Groups, name)
	}
	return it, false, nil
}

// put stores an item and pushes it to the user's interested resources.
func (m *Module) put(ctx context.Context, user jid.JID, it storage.RosterItem) error {
	ver, err := m.deps.Store.PutRosterItem(ctx, user.Local(), user.DomainString(), it, m.maxItems)
	if errors.Is(err, storage.ErrLimit) {
		return stanza.NewError(stanza.NotAllowed, fmt.Sprintf("the roster is full (%d items)", m.maxItems))
	}
	if err != nil {
		return fmt.Errorf("roster: put %s: %w", it.Contact, err)
	}
	it.Version = ver
	m.push(ctx, user, it, false)
	return nil
}

// removeItem removes a contact (RFC 6121 §2.5.2): unsubscribe and
// unsubscribed go to the contact as the subscription requires, then the
// item is deleted and the removal pushed.
func (m *Module) removeItem(ctx context.Context, user jid.JID, contact string) error {
	it, err := m.deps.Store.RosterItem(ctx, user.Local(), user.DomainString(), contact)
	if errors.Is(err, storage.ErrNotFound) {
		return stanza.NewError(stanza.ItemNotFound, "")
	}
	if err != nil {
		return fmt.Errorf("roster: remove: %w", err)
	}
	cj, _ := jid.Parse(contact)
	if it.Subscription == storage.SubTo || it.Subscription == storage.SubBoth || it.AskOut {
		m.r.Route(ctx, stanza.NewPresence(stanza.NSClient, stanza.PresenceUnsubscribe, contact, user.String(), ""))
	}
	if it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth || it.PendingIn {
		m.sendUnavailableTo(ctx, user, cj)
		m.r.Route(ctx, stanza.NewPresence(stanza.NSClient, stanza.PresenceUnsubscribed, contact, user.String(), ""))
	}
	_ = m.deps.Store.DeletePendingSubscription(ctx, user.Local(), user.DomainString(), contact)
	ver, err := m.deps.Store.DeleteRosterItem(ctx, user.Local(), user.DomainString(), contact)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("roster: remove: %w", err)
	}
	m.push(ctx, user, storage.RosterItem{Contact: contact, Version: ver}, true)
	return nil
}

// itemElement returns the <item/> of a roster result or push.
func itemElement(it storage.RosterItem) *xmlstream.Element {
	e := xmlstream.NewElement(stanza.NSRoster, "item").SetAttr("jid", it.Contact)
	if it.Name != "" {
		e.SetAttr("name", it.Name)
	}
	sub := string(it.Subscription)
	if sub == "" {
		sub = string(storage.SubNone)
	}
	e.SetAttr("subscription", sub)
	if it.AskOut {
		e.SetAttr("ask", "subscribe")
	}
	if it.Approved {
		e.SetAttr("approved", "true")
	}
	for _, g := range it.Groups {
		e.Append(xmlstream.NewElement(stanza.NSRoster, "group").AppendText(g))
	}
	return e
}

// pushElement builds a roster push of it for the resource to.
func pushElement(to jid.JID, it storage.RosterItem, removed bool) *xmlstream.Element {
	var item *xmlstream.Element
	if removed {
		item = xmlstream.NewElement(stanza.NSRoster, "item").SetAttr("jid", it.Contact).SetAttr("subscription", "remove")
	} else {
		item = itemElement(it)
	}
	q := xmlstream.NewElement(stanza.NSRoster, "query").SetAttr("ver", strconv.FormatInt(it.Version, 10)).Append(item)
	return stanza.NewIQ(stanza.NSClient, stanza.IQSet, to.String(), to.Bare().String(), pushID()).Append(q)
}

// push sends a roster push to every interested resource of user (RFC 6121
// §2.1.6).
func (m *Module) push(ctx context.Context, user jid.JID, it storage.RosterItem, removed bool) {
	for _, s := range m.r.Sessions(user) {
		st := peek(s)
		m.mu.Lock()
		interested := st != nil && st.interested
		m.mu.Unlock()
		if interested {
			_ = s.Deliver(pushElement(s.JID(), it, removed))
		}
	}
}

// pushID returns a fresh id for a roster push.
func pushID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "push-" + hex.EncodeToString(b[:])
}
