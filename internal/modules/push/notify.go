package push

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// pushState is one registration's notifications within a throttle
// interval; guarded by Module.mu.
type pushState struct {
	last    time.Time   // when the latest notification went out
	timer   *time.Timer // the end of the interval, when one is pending
	sending bool        // a notification waits for the app server

	// What arrived since the latest notification.
	msgs, subs   int
	sender, body string
}

// summary is one notification's content.
type summary struct {
	msgs, subs   int
	sender, body string
}

// queued is what a session's queue tells about acknowledgements.
type queued interface{ Queue() *session.Queue }

// important reports whether a message is worth waking a device for, and
// returns its body.
func important(st *xmlstream.Element) (string, bool) {
	switch stanza.Type(st) {
	case stanza.MessageError, stanza.MessageHeadline, stanza.MessageGroupchat:
		return "", false // groupchat: see mention
	}
	found := false
	body := ""
	for _, ch := range st.Children {
		e := ch.Elem
		if e == nil {
			continue
		}
		if e.Name.Local == "body" && e.Name.Space == st.Name.Space {
			if t := e.Text(); t != "" {
				found = true
				if body == "" {
					body = t
				}
			}
			continue
		}
		switch e.Name.Space + " " + e.Name.Local {
		case "eu.siacs.conversations.axolotl encrypted", // OMEMO (legacy)
			"urn:xmpp:omemo:2 encrypted",        // OMEMO 2 (XEP-0384)
			"urn:xmpp:openpgp:0 openpgp",        // XEP-0373
			"jabber:x:encrypted x",              // XEP-0027
			"urn:xmpp:jingle-message:0 propose": // a call (XEP-0353)
			found = true
		}
	}
	return body, found
}

// delivered sees each message queued to local sessions: a detached
// session that enabled push gets its device woken; for a connected one,
// the message is remembered until the client acknowledges it.
func (m *Module) delivered(_ context.Context, ev *router.Event, to []router.Session) {
	var body string
	checked, ok := false, false
	groupchat := stanza.Type(ev.El) == stanza.MessageGroupchat
	for _, s := range to {
		st, has := sessKey.Get(s.Values())
		if !has {
			continue
		}
		if groupchat {
			body, ok = mention(ev, st)
		} else if !checked {
			body, ok = important(ev.El)
			checked = true
		}
		if !ok {
			if groupchat {
				continue
			}
			return
		}
		if s.Detached() {
			m.notifySession(st, summary{msgs: 1, sender: ev.From.String(), body: body})
			continue
		}
		m.mark(s, st)
	}
}

// mark remembers the latest important message queued to a connected,
// stream-managed session, and arms the ack_delay check.
func (m *Module) mark(s router.Session, st *sessState) {
	qs, ok := s.(queued)
	if !ok || !qs.Queue().SM() {
		return // no acknowledgements: nothing to watch
	}
	sent, _ := qs.Queue().Counts()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.mark, st.marked = sent, true
	if m.cfg.AckDelay <= 0 || st.timer != nil {
		return
	}
	if !m.spawn() {
		return
	}
	st.timer = time.AfterFunc(time.Duration(m.cfg.AckDelay), func() {
		defer m.wg.Done()
		m.ackCheck(s, st)
	})
}

// unacked reports whether the session's client has not acknowledged the
// marked message, and clears the mark; st.mu is held.
func unacked(s router.Session, st *sessState) bool {
	if !st.marked {
		return false
	}
	st.marked = false
	qs, ok := s.(queued)
	if !ok {
		return false
	}
	_, acked := qs.Queue().Counts()
	return int32(acked-st.mark) < 0 // mod 2^32 (XEP-0198 §4)
}

// ackCheck runs ack_delay after an important message went to a connected
// session: if it is still unacknowledged, the connection is probably
// dead and the device is woken to reconnect.
func (m *Module) ackCheck(s router.Session, st *sessState) {
	st.mu.Lock()
	st.timer = nil
	wake := !s.Detached() && unacked(s, st)
	st.mu.Unlock()
	if wake {
		m.deps.Log.Debug("push: message unacknowledged, waking the device", "jid", s.JID().String())
		m.notifySession(st, summary{msgs: 1})
	}
}

// detached wakes the device of a session that lost its connection with an
// important message unacknowledged.
func (m *Module) detached(_ context.Context, s router.Session) {
	st, ok := sessKey.Get(s.Values())
	if !ok {
		return
	}
	st.mu.Lock()
	wake := unacked(s, st)
	st.mu.Unlock()
	if wake {
		m.notifySession(st, summary{msgs: 1})
	}
}

// notifySession notifies every registration the session enabled.
func (m *Module) notifySession(st *sessState, sum summary) {
	st.mu.Lock()
	regs := append([]regID(nil), st.regs...)
	st.mu.Unlock()
	for _, id := range regs {
		m.notify(id, sum)
	}
}

// undeliverable sees a message that no resource took (it goes to offline
// storage next): the account's devices are woken.
func (m *Module) undeliverable(_ context.Context, ev *router.Event) bool {
	body, ok := important(ev.El)
	if !ok {
		return false
	}
	m.notifyAccount(ev.To.Bare(), summary{msgs: 1, sender: ev.From.String(), body: body})
	return false
}

// subscriptionRequest wakes the account's devices for a subscription
// request when none of its sessions is connected to show it.
func (m *Module) subscriptionRequest(_ context.Context, user jid.JID, p *xmlstream.Element) {
	for _, s := range m.r.Sessions(user) {
		if _, avail := s.Presence(); avail && !s.Detached() {
			return
		}
	}
	m.notifyAccount(user, summary{subs: 1, sender: stanza.From(p)})
}

// notifyAccount notifies every registration of the account except those
// whose session is connected (it has what arrived), off the caller's
// goroutine: the registrations are read from the store.
func (m *Module) notifyAccount(user jid.JID, sum summary) {
	if !m.spawn() {
		return
	}
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, answerTimeout)
		defer cancel()
		regs, err := m.deps.Store.PushRegistrations(ctx, user.Local(), user.DomainString())
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				m.deps.Log.Error("push: read registrations", "user", user.String(), "err", err)
			}
			return
		}
		if len(regs) == 0 {
			return
		}
		connected := map[regID]bool{}
		for _, s := range m.r.Sessions(user) {
			st, ok := sessKey.Get(s.Values())
			if !ok || s.Detached() {
				continue
			}
			st.mu.Lock()
			for _, id := range st.regs {
				connected[id] = true
			}
			st.mu.Unlock()
		}
		for _, reg := range regs {
			id := regID{account: user, service: reg.Service, node: reg.Node}
			if !connected[id] {
				m.notify(id, sum)
			}
		}
	}()
}

// spawn counts a goroutine of the module, unless it stopped.
func (m *Module) spawn() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return false
	}
	m.wg.Add(1)
	return true
}

// notify counts sum into the registration's next notification and sends
// it now, or at the end of the throttle interval.
func (m *Module) notify(id regID, sum summary) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	ps := m.pending[id]
	if ps == nil {
		ps = new(pushState)
		m.pending[id] = ps
	}
	ps.msgs += sum.msgs
	ps.subs += sum.subs
	if sum.sender != "" {
		ps.sender = sum.sender
	}
	if sum.body != "" {
		ps.body = sum.body
	}
	if ps.sending || ps.timer != nil {
		return // counted into the one pending
	}
	if wait := time.Until(ps.last.Add(time.Duration(m.cfg.Throttle))); wait > 0 {
		m.arm(id, ps, wait)
		return
	}
	m.start(id, ps)
}

// arm schedules the end of the registration's throttle interval; m.mu is
// held.
func (m *Module) arm(id regID, ps *pushState, wait time.Duration) {
	m.wg.Add(1)
	ps.timer = time.AfterFunc(wait, func() {
		defer m.wg.Done()
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.stopped || m.pending[id] != ps {
			return
		}
		ps.timer = nil
		if ps.msgs+ps.subs == 0 {
			delete(m.pending, id) // the interval is over, nothing came
			return
		}
		m.start(id, ps)
	})
}

// start sends what ps counted; m.mu is held.
func (m *Module) start(id regID, ps *pushState) {
	sum := summary{msgs: ps.msgs, subs: ps.subs, sender: ps.sender, body: ps.body}
	ps.msgs, ps.subs, ps.sender, ps.body = 0, 0, "", ""
	ps.sending, ps.last = true, time.Now()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.send(id, sum)
		m.mu.Lock()
		defer m.mu.Unlock()
		ps.sending = false
		if m.stopped || m.pending[id] != ps {
			return
		}
		wait := time.Until(ps.last.Add(time.Duration(m.cfg.Throttle)))
		switch {
		case wait > 0:
			m.arm(id, ps, wait)
		case ps.msgs+ps.subs > 0:
			m.start(id, ps)
		default:
			delete(m.pending, id)
		}
	}()
}

// send publishes one notification to the registration's app server
// (§7) and removes the registration if the app server refuses it (§8).
func (m *Module) send(id regID, sum summary) {
	select {
	case m.sem <- struct{}{}:
		defer func() { <-m.sem }()
	case <-m.ctx.Done():
		return
	}
	ctx, cancel := context.WithTimeout(m.ctx, answerTimeout)
	defer cancel()
	user := id.account
	reg, ok, err := m.registration(ctx, id)
	if err != nil || !ok {
		if err != nil && !errors.Is(err, context.Canceled) {
			m.deps.Log.Error("push: read registration", "user", user.String(), "err", err)
		}
		return
	}
	iq, err := m.notification(reg, user, sum)
	if err != nil {
		m.deps.Log.Error("push: stored publish-options", "user", user.String(), "service", reg.Service, "err", err)
		return
	}
	_, err = m.r.IQ(ctx, iq)
	switch {
	case err == nil:
		m.deps.Log.Debug("push: notified", "user", user.String(), "service", reg.Service)
	case errTransient(err):
		if m.ctx.Err() == nil {
			m.deps.Log.Warn("push: notification failed, registration kept", "user", user.String(), "service", reg.Service, "err", err)
		}
	default:
		m.deps.Log.Info("push: app server refused the notification, registration removed", "user", user.String(), "service", reg.Service, "err", err)
		if _, derr := m.deps.Store.DeletePushRegistrations(ctx, user.Local(), user.DomainString(), reg.Service, reg.Node); derr != nil {
			m.deps.Log.Error("push: remove registration", "user", user.String(), "err", derr)
		}
		m.forget(user, func(r regID) bool { return r == id })
	}
}

// registration reads one registration from the store.
func (m *Module) registration(ctx context.Context, id regID) (storage.PushRegistration, bool, error) {
	regs, err := m.deps.Store.PushRegistrations(ctx, id.account.Local(), id.account.DomainString())
	if err != nil {
		return storage.PushRegistration{}, false, err
	}
	for _, r := range regs {
		if r.Service == id.service && r.Node == id.node {
			return r, true, nil
		}
	}
	return storage.PushRegistration{}, false, nil
}

// notification builds the publish of §7 (Example 12).
func (m *Module) notification(reg storage.PushRegistration, user jid.JID, sum summary) (*xmlstream.Element, error) {
	form := xmlstream.NewElement(NSData, "x").SetAttr("type", "submit")
	field := func(name, value string) {
		form.Append(xmlstream.NewElement(NSData, "field").SetAttr("var", name).
			Append(xmlstream.NewElement(NSData, "value").AppendText(value)))
	}
	field("FORM_TYPE", NSSummary)
	field("message-count", strconv.Itoa(sum.msgs))
	if sum.subs > 0 {
		field("pending-subscription-count", strconv.Itoa(sum.subs))
	}
	if m.cfg.IncludeSender && sum.sender != "" {
		field("last-message-sender", sum.sender)
	}
	if m.cfg.IncludeBody && sum.body != "" {
		field("last-message-body", truncate(sum.body, maxBodyBytes))
	}
	pubsub := xmlstream.NewElement(NSPubsub, "pubsub").Append(
		xmlstream.NewElement(NSPubsub, "publish").SetAttr("node", reg.Node).Append(
			xmlstream.NewElement(NSPubsub, "item").Append(
				xmlstream.NewElement(NS, "notification").Append(form))))
	if reg.Options != nil {
		opts, err := xmlstream.ParseElement(reg.Options, NSData)
		if err != nil {
			return nil, err
		}
		pubsub.Append(xmlstream.NewElement(NSPubsub, "publish-options").Append(opts))
	}
	return stanza.NewIQ(stanza.NSClient, stanza.IQSet, reg.Service, user.String(), "").Append(pubsub), nil
}

// truncate cuts s to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// mention reports whether a groupchat message names the session's nick
// in the room it comes from, and returns its body.
func mention(ev *router.Event, st *sessState) (string, bool) {
	b := ev.El.Child(ev.El.Name.Space, "body")
	if b == nil {
		return "", false
	}
	st.mu.Lock()
	nick := st.nicks[ev.From.Bare().String()]
	st.mu.Unlock()
	if nick == "" || ev.From.Resource() == nick {
		return "", false // not in the room that we know of, or our own message
	}
	body := b.Text()
	return body, containsWord(strings.ToLower(body), strings.ToLower(nick))
}

// containsWord reports whether word occurs in s between non-letters.
func containsWord(s, word string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], word)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(word)
		before, _ := utf8.DecodeLastRuneInString(s[:start])
		after, _ := utf8.DecodeRuneInString(s[end:])
		if (start == 0 || !unicode.IsLetter(before) && !unicode.IsDigit(before)) &&
			(end == len(s) || !unicode.IsLetter(after) && !unicode.IsDigit(after)) {
			return true
		}
		i = start + 1
	}
}

// outbound remembers, for sessions that enabled push, their nick in the
// rooms they enter (presence to room@service/nick), to tell mentions.
func (m *Module) outbound(_ context.Context, ev *router.Event) bool {
	if ev.El.Name.Local != "presence" || ev.Origin == nil || ev.To.Resource() == "" || ev.Class != router.ClassRemote && ev.Class != router.ClassService {
		return false
	}
	st, ok := sessKey.Get(ev.Origin.Values())
	if !ok {
		return false
	}
	room := ev.To.Bare().String()
	st.mu.Lock()
	defer st.mu.Unlock()
	switch stanza.Type(ev.El) {
	case "":
		if st.nicks == nil {
			st.nicks = make(map[string]string)
		}
		if _, known := st.nicks[room]; known || len(st.nicks) < maxRooms {
			st.nicks[room] = ev.To.Resource()
		}
	case stanza.PresenceUnavailable:
		delete(st.nicks, room)
	}
	return false
}
