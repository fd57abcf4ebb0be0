package roster

import (
	"context"
	"errors"
	"fmt"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// state is a subscription state of RFC 6121 Appendix A: the stored
// subscription plus the two pending flags.
type state struct {
	sub       storage.Subscription
	pendOut   bool
	pendIn    bool
	exists    bool // there is a roster item
	preApprov bool
}

func (s state) hasTo() bool   { return s.sub == storage.SubTo || s.sub == storage.SubBoth }
func (s state) hasFrom() bool { return s.sub == storage.SubFrom || s.sub == storage.SubBoth }

func subWithTo(sub storage.Subscription, on bool) storage.Subscription {
	from := sub == storage.SubFrom || sub == storage.SubBoth
	return combine(on, from)
}

func subWithFrom(sub storage.Subscription, on bool) storage.Subscription {
	to := sub == storage.SubTo || sub == storage.SubBoth
	return combine(to, on)
}

func combine(to, from bool) storage.Subscription {
	switch {
	case to && from:
		return storage.SubBoth
	case to:
		return storage.SubTo
	case from:
		return storage.SubFrom
	}
	return storage.SubNone
}

// Transition is the outcome of a subscription stanza in a state: the new
// state, whether the stanza is routed on (outbound) or delivered to the
// user (inbound), and whether the roster item changed (a push).
type Transition struct {
	Next    state
	Forward bool
	Changed bool
}

// outboundTransition applies a subscription stanza the user sends
// (RFC 6121 Appendix A.2 and A.4, §3.4 pre-approval).
func outboundTransition(s state, typ string) Transition {
	n := s
	switch typ {
	case stanza.PresenceSubscribe:
		if !s.hasTo() {
			n.pendOut = true
		}
		// Routed in every state: the contact's server answers a request
		// it already granted with 'subscribed' (§3.1.3).
		return Transition{Next: n, Forward: true, Changed: n != s || !s.exists}
	case stanza.PresenceSubscribed:
		if s.hasFrom() {
			return Transition{Next: s}
		}
		if s.pendIn {
			n.sub = subWithFrom(s.sub, true)
			n.pendIn = false
			n.preApprov = false
			return Transition{Next: n, Forward: true, Changed: true}
		}
		// No request to answer: a pre-approval (§3.4).
		n.preApprov = true
		return Transition{Next: n, Changed: !s.preApprov || !s.exists}
	case stanza.PresenceUnsubscribe:
		n.sub = subWithTo(s.sub, false)
		n.pendOut = false
		return Transition{Next: n, Forward: true, Changed: n != s}
	case stanza.PresenceUnsubscribed:
		n.sub = subWithFrom(s.sub, false)
		n.pendIn = false
		n.preApprov = false
		changed := n != s
		return Transition{Next: n, Forward: changed || s.hasFrom(), Changed: changed}
	}
	return Transition{Next: s}
}

// inboundTransition applies a subscription stanza from a contact to the
// user (RFC 6121 Appendix A.3 and A.5). For 'subscribe' in a state that
// already has 'from', or pre-approved, the caller answers automatically.
func inboundTransition(s state, typ string) Transition {
	n := s
	switch typ {
	case stanza.PresenceSubscribe:
		if s.hasFrom() {
			return Transition{Next: s}
		}
		if s.preApprov {
			n.sub = subWithFrom(s.sub, true)
			n.preApprov = false
			n.pendIn = false
			return Transition{Next: n, Changed: true}
		}
		n.pendIn = true
		return Transition{Next: n, Forward: true, Changed: n != s}
	case stanza.PresenceSubscribed:
		if !s.pendOut || s.hasTo() {
			return Transition{Next: s}
		}
		n.sub = subWithTo(s.sub, true)
		n.pendOut = false
		return Transition{Next: n, Forward: true, Changed: true}
	case stanza.PresenceUnsubscribe:
		if !s.hasFrom() && !s.pendIn {
			return Transition{Next: s}
		}
		n.sub = subWithFrom(s.sub, false)
		n.pendIn = false
		return Transition{Next: n, Forward: true, Changed: true}
	case stanza.PresenceUnsubscribed:
		if !s.hasTo() && !s.pendOut {
			return Transition{Next: s}
		}
		n.sub = subWithTo(s.sub, false)
		n.pendOut = false
		return Transition{Next: n, Forward: true, Changed: true}
	}
	return Transition{Next: s}
}

func isSubscription(typ string) bool {
	switch typ {
	case stanza.PresenceSubscribe, stanza.PresenceSubscribed, stanza.PresenceUnsubscribe, stanza.PresenceUnsubscribed:
		return true
	}
	return false
}

// load returns the user's state toward contact, and the stored item.
func (m *Module) load(ctx context.Context, user jid.JID, contact string) (state, storage.RosterItem, error) {
	it, err := m.deps.Store.RosterItem(ctx, user.Local(), user.DomainString(), contact)
	switch {
	case err == nil:
		return state{sub: it.Subscription, pendOut: it.AskOut, pendIn: it.PendingIn, exists: true, preApprov: it.Approved}, it, nil
	case errors.Is(err, storage.ErrNotFound):
		// Without an item, an unanswered request is in the pending table.
		ps, perr := m.deps.Store.PendingSubscriptions(ctx, user.Local(), user.DomainString())
		if perr != nil {
			return state{}, it, perr
		}
		s := state{sub: storage.SubNone}
		for _, p := range ps {
			if p.Contact == contact {
				s.pendIn = true
			}
		}
		return s, storage.RosterItem{Contact: contact, Subscription: storage.SubNone}, nil
	}
	return state{}, it, err
}

// save stores the new state. Without a roster item, only a pending
// inbound request exists (kept in the pending table): no item is created
// for it (RFC 6121 §3.1.3).
func (m *Module) save(ctx context.Context, user jid.JID, it storage.RosterItem, n state, push bool) error {
	visible := it.Version == 0 || it.Subscription != n.sub || it.AskOut != n.pendOut || it.Approved != n.preApprov
	push = push && visible // a change only to PendingIn shows nothing to clients
	it.Subscription, it.AskOut, it.PendingIn, it.Approved = n.sub, n.pendOut, n.pendIn, n.preApprov
	needItem := it.Version != 0 || n.sub != storage.SubNone || n.pendOut || n.preApprov
	if !needItem {
		return nil
	}
	ver, err := m.deps.Store.PutRosterItem(ctx, user.Local(), user.DomainString(), it, m.maxItems)
	if err != nil {
		return err
	}
	it.Version = ver
	if push {
		m.push(ctx, user, it, false)
	}
	return nil
}

// outboundSubscription handles a subscription stanza from a local user's
// session (RFC 6121 §3, the user's server).
func (m *Module) outboundSubscription(ctx context.Context, from jid.JID, p *xmlstream.Element) error {
	user := from.Bare()
	to, err := jid.Parse(stanza.To(p))
	if err != nil {
		m.r.Route(ctx, p) // the router answers jid-malformed
		return nil
	}
	contact := to.Bare()
	if contact.Equal(user) {
		return nil // subscriptions to oneself are implicit
	}
	s, it, err := m.load(ctx, user, contact.String())
	if err != nil {
		return fmt.Errorf("roster: load %s: %w", contact, err)
	}
	typ := stanza.Type(p)
	tr := outboundTransition(s, typ)
	if tr.Changed {
		if err := m.save(ctx, user, it, tr.Next, true); err != nil {
			if errors.Is(err, storage.ErrLimit) {
				m.r.Route(ctx, stanza.ErrorReply(p, stanza.NewError(stanza.NotAllowed, "the roster is full")))
				return nil
			}
			return fmt.Errorf("roster: save %s: %w", contact, err)
		}
	}
	if typ == stanza.PresenceSubscribed || typ == stanza.PresenceUnsubscribed {
		_ = m.deps.Store.DeletePendingSubscription(ctx, user.Local(), user.DomainString(), contact.String())
	}
	if !tr.Forward {
		return nil
	}
	// Stamped with the bare JIDs (RFC 6121 §3.1.2, §3.1.5).
	p.SetAttr("to", contact.String())
	p.SetAttr("from", user.String())
	m.r.Route(ctx, p)
	switch {
	case typ == stanza.PresenceSubscribed:
		// The contact now gets the user's presence (§3.1.5).
		m.sendPresenceTo(ctx, user, contact)
		m.r.Subscribed(ctx, user, contact)
	case typ == stanza.PresenceUnsubscribed && s.hasFrom():
		m.sendUnavailableTo(ctx, user, contact)
	}
	return nil
}

// inboundSubscription handles a subscription stanza from a contact to a
// local user (RFC 6121 §3, the contact's server side of each exchange).
func (m *Module) inboundSubscription(ctx context.Context, p *xmlstream.Element, to jid.JID) {
	user := to.Bare()
	from, err := jid.Parse(stanza.From(p))
	if err != nil {
		return
	}
	contact := from.Bare()
	exists, err := m.deps.Store.AccountExists(ctx, user.Local(), user.DomainString())
	if err != nil || !exists {
		if stanza.Type(p) == stanza.PresenceSubscribe {
			// RFC 6121 §3.1.3: no such user: unsubscribed.
			m.r.Route(ctx, stanza.NewPresence(stanza.NSClient, stanza.PresenceUnsubscribed, contact.String(), user.String(), ""))
		}
		return
	}
	s, it, err := m.load(ctx, user, contact.String())
	if err != nil {
		m.deps.Log.Error("roster: load", "user", user.String(), "contact", contact.String(), "err", err)
		return
	}
	typ := stanza.Type(p)
	tr := inboundTransition(s, typ)
	p.SetAttr("to", user.String())
	p.SetAttr("from", contact.String())
	if tr.Changed {
		if err := m.save(ctx, user, it, tr.Next, true); err != nil {
			m.deps.Log.Error("roster: save", "user", user.String(), "contact", contact.String(), "err", err)
			return
		}
	}
	switch typ {
	case stanza.PresenceSubscribe:
		if !tr.Forward {
			// Already subscribed, or pre-approved: answer for the user.
			m.r.Route(ctx, stanza.NewPresence(stanza.NSClient, stanza.PresenceSubscribed, contact.String(), user.String(), ""))
			if tr.Changed {
				m.sendPresenceTo(ctx, user, contact)
				m.r.Subscribed(ctx, user, contact)
			}
			return
		}
		// Kept until answered, shown again at each login (§3.1.3).
		b := p.AppendXML(nil, stanza.NSClient)
		if err := m.deps.Store.PutPendingSubscription(ctx, user.Local(), user.DomainString(),
			storage.PendingSubscription{Contact: contact.String(), Stanza: b}); err != nil {
			m.deps.Log.Error("roster: store subscription request", "user", user.String(), "err", err)
		}
		m.deliverAvailable(ctx, user, p)
		m.r.SubscriptionRequest(ctx, user, p)
	case stanza.PresenceUnsubscribe:
		_ = m.deps.Store.DeletePendingSubscription(ctx, user.Local(), user.DomainString(), contact.String())
		if tr.Forward {
			m.deliverAvailable(ctx, user, p)
		}
	default:
		if tr.Forward {
			m.deliverAvailable(ctx, user, p)
		}
		if typ == stanza.PresenceSubscribed && tr.Forward {
			// The contact's server sends the contact's presence
			// itself; for a local contact that is sendPresenceTo in
			// its outbound handling.
			return
		}
	}
}

// deliverAvailable delivers st to each available resource of user.
func (m *Module) deliverAvailable(ctx context.Context, user jid.JID, st *xmlstream.Element) {
	for _, s := range m.r.Sessions(user) {
		if _, ok := s.Presence(); ok {
			_ = s.Deliver(st)
		}
	}
}
