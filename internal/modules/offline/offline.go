// Package offline stores messages for users who have no available resource
// (RFC 6121 §8.5.2.2.1, XEP-0160 best practices) and delivers them, with an
// XEP-0203 delay stamp, when the user next sends initial presence with a
// non-negative priority.
//
// A message is committed to storage before the router finishes with it, so
// once a stanza after it on the sender's stream was answered, the message
// survives a crash of the server.
//
// Delivery takes the messages out of storage in one transaction
// (storage.Offline.TakeOffline), so that when two resources come online at
// once, on this server or on two that share the database, each message
// goes to one of them; the module keeps no lock or state of its own.
package offline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSChatStates is XEP-0085's namespace: messages holding only a chat state
// are not worth keeping.
const NSChatStates = "http://jabber.org/protocol/chatstates"

// NSOffline is the disco feature of XEP-0160 "msgoffline".
const NSOffline = "msgoffline"

// Module is the offline storage module.
type Module struct {
	deps  module.Deps
	quota int
}

var _ module.Module = (*Module)(nil)

// Config is the [modules.offline] table.
type Config struct {
	// Quota is the most messages kept per user; more are refused with
	// service-unavailable. 0 turns offline storage off.
	Quota int `toml:"quota"`
}

// Validate implements config.Validator.
func (c *Config) Validate() []config.Problem {
	if c.Quota < 0 {
		return []config.Problem{{Key: "quota", Msg: fmt.Sprintf("must not be negative, got %d", c.Quota)}}
	}
	return nil
}

// Info describes the module to the server.
var Info = module.Info{
	Name:   "offline",
	XEPs:   []string{"RFC 6121", "XEP-0160", "XEP-0203"},
	Config: &Config{Quota: 1000},
	New:    module.Configured(New),
}

// New returns the module.
func New(deps module.Deps, cfg Config) (*Module, error) {
	return &Module{deps: deps, quota: cfg.Quota}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "offline" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	if m.quota == 0 {
		return // turned off: undeliverable messages get service-unavailable
	}
	r.AddFeature(NSOffline)
	r.HookUndeliverable(0, m.undeliverable)
	r.OnAvailable(m.deliver)
}

// undeliverable stores a message no resource took; a refusal (no such
// account, a full quota) or a storage failure is answered to the sender.
func (m *Module) undeliverable(ctx context.Context, ev *router.Event) bool {
	user := ev.To.Bare()
	if !worthKeeping(ev.El) {
		return true // a chat state alone: dropped silently (XEP-0160 §3)
	}
	err := m.store(ctx, ev.El, user)
	if err == nil {
		// A resource may have become available after the router found
		// none and before the message was stored: its initial-presence
		// delivery then missed it. Stored first, checked second, so one
		// of the two deliveries sees it (and TakeOffline gives it to
		// only one).
		for _, s := range m.deps.Router.Sessions(user) {
			if prio, ok := s.Presence(); ok && prio >= 0 {
				m.deliver(ctx, s)
				break
			}
		}
		return true
	}
	se, ok := err.(*stanza.Error)
	if !ok {
		m.deps.Log.Error("offline storage failed", "to", ev.To.String(), "err", err)
		se = stanza.NewError(stanza.InternalServerError, "")
	}
	m.deps.Router.Bounce(ctx, ev.El, se)
	return true
}

// store keeps a message for an account without an available resource.
func (m *Module) store(ctx context.Context, st *xmlstream.Element, to jid.JID) error {
	if !worthKeeping(st) {
		return nil // a chat state alone: dropped silently (XEP-0160 §3)
	}
	now := m.deps.Now().UTC()
	c := st.Copy()
	// XEP-0203: when and where the message was delayed.
	c.Append(xmlstream.NewElement(stanza.NSDelay, "delay").
		SetAttr("from", to.DomainString()).
		SetAttr("stamp", now.Format("2006-01-02T15:04:05.000Z")).
		AppendText("Offline storage"))
	b := c.AppendXML(nil, stanza.NSClient)
	err := m.deps.Store.StoreOffline(ctx, to.Local(), to.DomainString(), storage.OfflineMessage{Stanza: b, Stamp: now}, m.quota)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return stanza.NewError(stanza.ServiceUnavailable, "") // no such account
	case errors.Is(err, storage.ErrLimit):
		m.deps.Log.Info("offline quota reached", "jid", to.String())
		return stanza.NewError(stanza.ServiceUnavailable, "the recipient's offline storage is full")
	case err != nil:
		return fmt.Errorf("offline: store: %w", err)
	}
	return nil
}

// worthKeeping reports whether a message carries more than a chat state.
func worthKeeping(st *xmlstream.Element) bool {
	for _, ch := range st.Children {
		if ch.Elem != nil && ch.Elem.Name.Space != NSChatStates {
			return true
		}
	}
	return false
}

// deliver sends the stored messages to a session that became available
// with a non-negative priority. They leave storage as they are taken; if
// the session goes away before it has them all, the rest are stored again
// (after any that arrived meanwhile).
func (m *Module) deliver(ctx context.Context, s router.Session) {
	if prio, ok := s.Presence(); !ok || prio < 0 {
		return
	}
	user := s.JID().Bare()
	msgs, err := m.deps.Store.TakeOffline(ctx, user.Local(), user.DomainString())
	if err != nil {
		m.deps.Log.Error("offline: take", "jid", user.String(), "err", err)
		return
	}
	for i, msg := range msgs {
		e, err := xmlstream.ParseElement(msg.Stanza, stanza.NSClient)
		if err != nil {
			m.deps.Log.Error("offline: stored message unreadable, dropped", "jid", user.String(), "id", msg.ID, "err", err)
			continue
		}
		if err := s.Deliver(e); err != nil {
			m.putBack(ctx, user, msgs[i:])
			return
		}
	}
}

// putBack stores again the messages a session that went away did not
// take, without a quota: they were accepted once.
func (m *Module) putBack(ctx context.Context, user jid.JID, msgs []storage.OfflineMessage) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, msg := range msgs {
		if err := m.deps.Store.StoreOffline(ctx, user.Local(), user.DomainString(), msg, 0); err != nil {
			m.deps.Log.Error("offline: store again after a failed delivery", "jid", user.String(), "err", err)
			return
		}
	}
}
