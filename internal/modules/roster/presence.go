package roster

import (
	"context"
	"errors"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// outbound handles presence from a local session (RFC 6121 §3, §4).
func (m *Module) outbound(ctx context.Context, ev *router.Event) bool {
	s, st := ev.Origin, ev.El
	if st.Name.Local != "presence" {
		return false
	}
	typ := stanza.Type(st)
	switch {
	case isSubscription(typ):
		if err := m.outboundSubscription(ctx, s.JID(), st); err != nil {
			m.deps.Log.Error("subscription", "jid", s.JID().String(), "err", err)
		}
		return true
	case typ == stanza.PresenceProbe:
		// RFC 6121 §4.3: probes are the server's business; a client's
		// probe is sent on from its bare JID.
		st.SetAttr("from", s.JID().Bare().String())
		return false
	case typ != "" && typ != stanza.PresenceUnavailable:
		return false // errors are routed as they are
	}
	if stanza.To(st) != "" {
		m.directed(s, st)
		return false
	}
	m.broadcast(ctx, s, st)
	return true
}

// directed records directed presence (RFC 6121 §4.6) so that it is
// followed by unavailable presence when the session ends.
func (m *Module) directed(s router.Session, st *xmlstream.Element) {
	to, err := jid.Parse(stanza.To(st))
	if err != nil {
		return
	}
	ss := sessState(s)
	m.mu.Lock()
	defer m.mu.Unlock()
	if stanza.Type(st) == stanza.PresenceUnavailable {
		delete(ss.directed, to.String())
		return
	}
	if ss.directed == nil {
		ss.directed = make(map[string]struct{})
	}
	ss.directed[to.String()] = struct{}{}
}

// broadcast handles presence without 'to' (RFC 6121 §4.2, §4.4, §4.5).
func (m *Module) broadcast(ctx context.Context, s router.Session, st *xmlstream.Element) {
	full := s.JID()
	user := full.Bare()
	unavailable := stanza.Type(st) == stanza.PresenceUnavailable
	ss := sessState(s)
	m.mu.Lock()
	initial := !ss.available && !unavailable
	wasAvailable := ss.available
	var directed []string
	if unavailable {
		ss.available = false
		ss.last = nil
		for j := range ss.directed {
			directed = append(directed, j)
		}
		ss.directed = nil
	} else {
		ss.available = true
		ss.last = st.Copy()
	}
	m.mu.Unlock()
	if unavailable && !wasAvailable {
		return // nothing to retract
	}
	if unavailable {
		m.keepUnavailable(ctx, user, st)
	}

	items, _, err := m.deps.Store.Roster(ctx, user.Local(), user.DomainString())
	if err != nil {
		m.deps.Log.Error("presence: roster", "jid", full.String(), "err", err)
	}
	sent := make(map[string]bool)
	for _, it := range items {
		if it.Subscription != storage.SubFrom && it.Subscription != storage.SubBoth {
			continue
		}
		c, err := jid.Parse(it.Contact)
		if err != nil || m.r.Blocked(ctx, user, c) {
			continue
		}
		sent[c.String()] = true
		m.r.Route(ctx, withTo(st, it.Contact))
	}
	for _, d := range directed {
		if !sent[d] {
			m.r.Route(ctx, withTo(st, d))
		}
	}
	// The user's own resources, including this one (§4.2.2, §4.4.2).
	for _, own := range m.r.Sessions(user) {
		if own == s {
			_ = own.Deliver(withTo(st, own.JID().String()))
			continue
		}
		if _, ok := own.Presence(); ok {
			_ = own.Deliver(withTo(st, own.JID().String()))
		}
	}
	if !initial {
		return
	}
	// Probes to the contacts the user is subscribed to (§4.2.2), and the
	// presence of the user's other resources to the new one.
	for _, it := range items {
		if it.Subscription != storage.SubTo && it.Subscription != storage.SubBoth {
			continue
		}
		m.r.Route(ctx, stanza.NewPresence(stanza.NSClient, stanza.PresenceProbe, it.Contact, user.String(), ""))
	}
	for _, own := range m.r.Sessions(user) {
		if own == s {
			continue
		}
		os := peek(own)
		m.mu.Lock()
		var last *xmlstream.Element
		if os != nil && os.available && os.last != nil {
			last = os.last.Copy()
		}
		m.mu.Unlock()
		if last != nil {
			_ = s.Deliver(withTo(last, full.String()))
		}
	}
	m.redeliverRequests(ctx, s)
	m.r.Available(ctx, s)
}

// withTo returns a copy of st addressed to to.
func withTo(st *xmlstream.Element, to string) *xmlstream.Element {
	c := st.Copy()
	c.SetAttr("to", to)
	return c
}

// redeliverRequests shows the user's unanswered subscription requests to
// a session that just became available (RFC 6121 §3.1.3).
func (m *Module) redeliverRequests(ctx context.Context, s router.Session) {
	user := s.JID().Bare()
	ps, err := m.deps.Store.PendingSubscriptions(ctx, user.Local(), user.DomainString())
	if err != nil {
		m.deps.Log.Error("presence: pending subscriptions", "jid", user.String(), "err", err)
		return
	}
	for _, p := range ps {
		e, err := xmlstream.ParseElement(p.Stanza, stanza.NSClient)
		if err != nil {
			continue
		}
		_ = s.Deliver(e)
	}
}

// inbound handles presence to a local account: subscription stanzas and
// probes are the server's (RFC 6121 §3, §4.3); available and unavailable
// presence is delivered by the router.
func (m *Module) inbound(ctx context.Context, ev *router.Event) bool {
	st, to := ev.El, ev.To
	if st.Name.Local != "presence" {
		return false
	}
	typ := stanza.Type(st)
	switch {
	case isSubscription(typ):
		m.inboundSubscription(ctx, st, to)
		return true
	case typ == stanza.PresenceProbe:
		m.answerProbe(ctx, st, to.Bare())
		return true
	}
	return false
}

// answerProbe answers a presence probe to user (RFC 6121 §4.3.2).
func (m *Module) answerProbe(ctx context.Context, probe *xmlstream.Element, user jid.JID) {
	from, err := jid.Parse(stanza.From(probe))
	if err != nil {
		return
	}
	prober := from.Bare()
	if !prober.Equal(user) {
		it, err := m.deps.Store.RosterItem(ctx, user.Local(), user.DomainString(), prober.String())
		if err != nil || (it.Subscription != storage.SubFrom && it.Subscription != storage.SubBoth) {
			// No subscription: presence is not revealed (§4.3.2.1).
			if err == nil || isNotFound(err) {
				m.r.Route(ctx, stanza.NewPresence(stanza.NSClient, stanza.PresenceUnsubscribed, prober.String(), user.String(), ""))
			}
			return
		}
		if m.r.Blocked(ctx, user, prober) {
			return
		}
	}
	any := false
	for _, s := range m.r.Sessions(user) {
		ss := peek(s)
		m.mu.Lock()
		var last *xmlstream.Element
		if ss != nil && ss.available && ss.last != nil {
			last = withTo(ss.last, from.String())
		}
		m.mu.Unlock()
		if last != nil {
			any = true
			m.r.Route(ctx, last)
		}
	}
	if any {
		return
	}
	var off *xmlstream.Element
	if doc, err := m.deps.Store.GetXML(ctx, user.Local(), user.DomainString(), lastUnavailableKey); err == nil {
		off, _ = xmlstream.ParseElement(doc, stanza.NSClient)
	}
	var p *xmlstream.Element
	if off != nil {
		p = withTo(off, from.String())
		p.SetAttr("from", user.String())
	} else {
		p = stanza.NewPresence(stanza.NSClient, stanza.PresenceUnavailable, from.String(), user.String(), "")
	}
	m.r.Route(ctx, p)
}

// sendPresenceTo sends the current presence of each available resource of
// user to contact (after contact's subscription was approved, §3.1.5).
func (m *Module) sendPresenceTo(ctx context.Context, user, contact jid.JID) {
	for _, s := range m.r.Sessions(user) {
		ss := peek(s)
		m.mu.Lock()
		var last *xmlstream.Element
		if ss != nil && ss.available && ss.last != nil {
			last = withTo(ss.last, contact.String())
		}
		m.mu.Unlock()
		if last != nil {
			m.r.Route(ctx, last)
		}
	}
}

// sendUnavailableTo sends unavailable presence from each available
// resource of user to contact (a subscription from contact ended).
func (m *Module) sendUnavailableTo(ctx context.Context, user, contact jid.JID) {
	for _, s := range m.r.Sessions(user) {
		if _, ok := s.Presence(); ok {
			m.r.Route(ctx, stanza.NewPresence(stanza.NSClient, stanza.PresenceUnavailable, contact.String(), s.JID().String(), ""))
		}
	}
}

// sessionEnded broadcasts unavailable presence for a session that ends
// without having sent it (RFC 6121 §4.5.3.2) and forgets the session.
func (m *Module) sessionEnded(ctx context.Context, s router.Session) {
	ss := peek(s)
	m.mu.Lock()
	retract := ss != nil && (ss.available || len(ss.directed) > 0)
	m.mu.Unlock()
	if retract {
		un := stanza.NewPresence(stanza.NSClient, stanza.PresenceUnavailable, "", s.JID().String(), "")
		if !ss.available {
			// Only directed presence to retract.
			m.mu.Lock()
			ss.available = true
			m.mu.Unlock()
		}
		m.broadcast(ctx, s, un)
	}
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// unblocked sends the user's current presence to the unblocked JIDs that
// may see it (XEP-0191 §3.4): roster contacts with a subscription from the
// user, whose bare JID or domain was unblocked.
func (m *Module) unblocked(ctx context.Context, user jid.JID, jids []string) {
	if len(jids) == 0 {
		return
	}
	items, _, err := m.deps.Store.Roster(ctx, user.Local(), user.DomainString())
	if err != nil {
		m.deps.Log.Error("presence: roster", "jid", user.String(), "err", err)
		return
	}
	for _, it := range items {
		if it.Subscription != storage.SubFrom && it.Subscription != storage.SubBoth {
			continue
		}
		c, err := jid.Parse(it.Contact)
		if err != nil || m.r.Blocked(ctx, user, c) {
			continue
		}
		for _, u := range jids {
			if u == c.String() || u == c.DomainString() {
				m.sendPresenceTo(ctx, user, c)
				break
			}
		}
	}
}

// lastUnavailableKey is the XMLStore key of a user's last unavailable
// presence, answered to probes while the user is offline (RFC 6121 §4.3.2).
const lastUnavailableKey = "presence:last-unavailable"

// keepUnavailable stores st as the user's last unavailable presence when
// no other resource of the user is still available.
func (m *Module) keepUnavailable(ctx context.Context, user jid.JID, st *xmlstream.Element) {
	for _, s := range m.r.Sessions(user) {
		if _, ok := s.Presence(); ok {
			return
		}
	}
	c := st.Copy()
	c.RemoveAttr("to")
	c.RemoveAttr("id")
	if err := m.deps.Store.PutXML(ctx, user.Local(), user.DomainString(), lastUnavailableKey, c.AppendXML(nil, stanza.NSClient)); err != nil {
		m.deps.Log.Error("presence: keep last unavailable", "jid", user.String(), "err", err)
	}
}
