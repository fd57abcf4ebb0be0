// Package push implements XEP-0357 Push Notifications (urn:xmpp:push:0,
// version 0.4.1) on the user's server: a client registers an app server
// that can wake its device, and the server publishes a notification
// there when something arrives that the device would otherwise miss.
//
//   - Enabling (§5): <enable jid='app server' node='device node'/> in an
//     IQ set from a local session to its own account (no 'to', or its
//     bare JID), with an optional publish-options form
//     (FORM_TYPE http://jabber.org/protocol/pubsub#publish-options, the
//     app server's secret). It is stored for the account, replacing one of
//     the same jid and node; an account keeps max_registrations, the
//     oldest going first. The session that enabled it is the one the
//     registration wakes, and while it waits for a stream-management
//     resumption it stays resumable for resume_timeout (72 h by default,
//     as Prosody and ejabberd do) rather than what the client asked.
//   - Disabling (§6): <disable jid='…'/> removes every registration of the
//     app server, <disable jid='…' node='…'/> one.
//   - When (§7): an important message (a body, an encrypted payload —
//     OMEMO, OpenPGP —, or a XEP-0353 call proposal; not chat states,
//     receipts or markers alone, not groupchat, errors or headlines)
//     queued to a detached session that enabled push; a session that
//     loses its connection while such a message is unacknowledged; an
//     attached session that has not acknowledged one after ack_delay (its
//     connection is probably dead: the device is woken to reconnect); a
//     message stored offline (every registration of the account whose
//     session is not connected); and an inbound subscription request
//     while no session of the account is connected.
//   - What (§7, Example 12): an IQ set from the account's bare JID to the
//     app server: pubsub <publish node='…'> of one <item> holding
//     <notification xmlns='urn:xmpp:push:0'> with the urn:xmpp:push:summary
//     form — message-count, pending-subscription-count when there are
//     requests, last-message-sender and last-message-body only when the operator
//     sets include_sender and include_body (they leave the server, in
//     clear, for a third party) — and the registration's publish-options.
//     A remote app server is reached over s2s.
//   - Groupchat mentions: a groupchat message whose body names the
//     session's nick in that room (the nick of its last presence to the
//     room, local or remote) is important too.
//   - Throttling: at most one notification per registration per throttle
//     interval; what arrives meanwhile is counted into one notification
//     at the end of the interval.
//   - Errors (§8): an error answer from the app server removes the
//     registration, except type wait and the remote-server errors of a
//     federation failure; no answer within 30 s is logged and kept.
package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of XEP-0357 and of the forms it uses.
const (
	// NS is XEP-0357's namespace and account feature.
	NS = "urn:xmpp:push:0"
	// NSSummary is the FORM_TYPE of the notification's summary form.
	NSSummary = "urn:xmpp:push:summary"
	// NSPubsub is XEP-0060's namespace.
	NSPubsub = "http://jabber.org/protocol/pubsub"
	// NSPublishOptions is the FORM_TYPE of publish-options (XEP-0060
	// §7.1.5).
	NSPublishOptions = "http://jabber.org/protocol/pubsub#publish-options"
	// NSData is XEP-0004 Data Forms.
	NSData = dataform.NS
)

// Limits on what a client can make the server store per registration.
const (
	maxJIDBytes     = 1023 // RFC 7622 §3.1: the most a JID may hold
	maxNodeBytes    = 1024
	maxOptionsBytes = 4096
	maxBodyBytes    = 512 // of last-message-body
)

// answerTimeout is how long a notification waits for the app server.
const answerTimeout = 30 * time.Second

// maxInFlight bounds the notifications waiting for an app server at once.
const maxInFlight = 256

// Config is the [modules.push] table.
type Config struct {
	// MaxRegistrations is how many registrations (devices) an account
	// keeps; past it, enabling one removes the oldest.
	MaxRegistrations int `toml:"max_registrations"`
	// ResumeTimeout is how long a session that enabled push waits for a
	// resumption once detached, whatever the client asked for.
	ResumeTimeout config.Duration `toml:"resume_timeout"`
	// Throttle is the least time between two notifications to one
	// registration.
	Throttle config.Duration `toml:"throttle"`
	// AckDelay is how long a connected session that enabled push may
	// leave an important message unacknowledged (XEP-0198) before its
	// device is woken; 0 turns that off.
	AckDelay config.Duration `toml:"ack_delay"`
	// IncludeSender puts last-message-sender in notifications.
	IncludeSender bool `toml:"include_sender"`
	// IncludeBody puts last-message-body (the first 512 bytes) in
	// notifications.
	IncludeBody bool `toml:"include_body"`
}

// Validate implements config.Validator.
func (c *Config) Validate() []config.Problem {
	var ps []config.Problem
	if c.MaxRegistrations < 1 {
		ps = append(ps, config.Problem{Key: "max_registrations", Msg: fmt.Sprintf("must be at least 1, got %d", c.MaxRegistrations)})
	}
	if c.ResumeTimeout < 0 {
		ps = append(ps, config.Problem{Key: "resume_timeout", Msg: fmt.Sprintf("must not be negative, got %s", c.ResumeTimeout)})
	}
	if c.Throttle < 0 {
		ps = append(ps, config.Problem{Key: "throttle", Msg: fmt.Sprintf("must not be negative, got %s", c.Throttle)})
	}
	if c.AckDelay < 0 {
		ps = append(ps, config.Problem{Key: "ack_delay", Msg: fmt.Sprintf("must not be negative, got %s", c.AckDelay)})
	}
	return ps
}

// Info describes the module to the server.
var Info = module.Info{
	Name: "push",
	XEPs: []string{"XEP-0357"},
	Config: &Config{
		MaxRegistrations: 10,
		ResumeTimeout:    config.Duration(72 * time.Hour),
		Throttle:         config.Duration(10 * time.Second),
		AckDelay:         config.Duration(30 * time.Second),
	},
	New: module.Configured(New),
}

// Module is the push module.
type Module struct {
	deps module.Deps
	cfg  Config
	r    *router.Router

	ctx    context.Context // canceled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}

	mu      sync.Mutex
	stopped bool
	pending map[regID]*pushState // registrations notified within the throttle interval
}

var (
	_ module.Module  = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)

// New returns the push module.
func New(deps module.Deps, cfg Config) (*Module, error) {
	ctx, cancel := context.WithCancel(context.Background())
	return &Module{
		deps: deps, cfg: cfg,
		ctx: ctx, cancel: cancel,
		sem:     make(chan struct{}, maxInFlight),
		pending: make(map[regID]*pushState),
	}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "push" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	m.r = r
	r.AddAccountFeature(NS)
	classes := router.ClassServer | router.ClassSelf | router.ClassBare
	r.HandleIQ(stanza.IQSet, classes, NS, "enable", m.enable)
	r.HandleIQ(stanza.IQSet, classes, NS, "disable", m.disable)
	r.HookDelivered(-100, m.delivered)
	r.HookUndeliverable(UndeliverablePriority, m.undeliverable)
	r.OnDetached(m.detached)
	r.OnSubscriptionRequest(m.subscriptionRequest)
	r.OnSessionEnd(m.sessionEnd)
	r.HookOutbound(-2000, m.outbound)
}

// UndeliverablePriority is the priority of the undeliverable hook, which
// only looks: above offline storage (0), which then stores the message.
const UndeliverablePriority = 50

// Stop implements module.Stopper: pending notifications are dropped and
// those waiting for an app server given up.
func (m *Module) Stop() {
	m.mu.Lock()
	m.stopped = true
	for id, st := range m.pending {
		if st.timer != nil && st.timer.Stop() {
			m.wg.Done()
		}
		delete(m.pending, id)
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// regID names one registration of one account.
type regID struct {
	account jid.JID // bare
	service string
	node    string
}

// sessState is what the module keeps in a session that enabled push.
type sessState struct {
	mu   sync.Mutex
	regs []regID // the registrations this session enabled
	// mark is the stream-management count of the latest important
	// message queued to the session (valid when marked): until the
	// client acknowledged it, the device may need waking.
	mark   uint32
	marked bool
	timer  *time.Timer // ack_delay check
	// nicks holds the session's nick in each room it entered (bare room
	// JID → nick), to tell mentions in groupchat messages.
	nicks map[string]string
}

// maxRooms bounds the rooms whose nick a session's state remembers.
const maxRooms = 1000

var sessKey = session.NewKey[*sessState]()

// own reports whether an IQ of ev addresses the sender's own account (no
// 'to', its bare JID, or its domain): XEP-0357 commands go there.
func own(ev *router.Event) bool {
	return ev.Origin != nil && (ev.Class == router.ClassSelf ||
		(ev.Class == router.ClassServer && ev.To.DomainString() == ev.From.DomainString()))
}

// enable handles <enable/> (§5).
func (m *Module) enable(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	if !own(ev) {
		return nil, stanza.NewError(stanza.NotAllowed, "push notifications are enabled by the account's own clients")
	}
	en := ev.El.FirstChild()
	service, node, err := target(en, true)
	if err != nil {
		return nil, err
	}
	user := ev.From.Bare()
	if service.Bare().Equal(user) {
		return nil, stanza.NewError(stanza.NotAcceptable, "the app server cannot be the account itself")
	}
	var options []byte
	for _, x := range en.ChildrenNS(NSData) {
		if x.Name.Local != "x" {
			continue
		}
		if options != nil {
			return nil, stanza.NewError(stanza.BadRequest, "more than one publish-options form")
		}
		if t := x.Attribute("type"); t != "submit" {
			return nil, stanza.NewError(stanza.BadRequest, "publish-options must be a form of type submit")
		}
		if dataform.FormType(x) != NSPublishOptions {
			return nil, stanza.NewError(stanza.BadRequest, "the form's FORM_TYPE must be "+NSPublishOptions)
		}
		options = x.AppendXML(nil, NSData)
		if len(options) > maxOptionsBytes {
			return nil, stanza.NewError(stanza.NotAcceptable, fmt.Sprintf("publish-options over %d bytes", maxOptionsBytes))
		}
	}
	reg := storage.PushRegistration{Service: service.String(), Node: node, Options: options, Created: m.deps.Now()}
	removed, err := m.deps.Store.PutPushRegistration(ctx, user.Local(), user.DomainString(), reg, m.cfg.MaxRegistrations)
	if err != nil {
		return nil, fmt.Errorf("push: enable: %w", err)
	}
	for _, old := range removed {
		m.forget(user, func(id regID) bool { return id.service == old.Service && id.node == old.Node })
		m.deps.Log.Info("push registration removed: too many for the account", "user", user.String(), "service", old.Service)
	}
	id := regID{account: user, service: reg.Service, node: node}
	st := sessKey.GetOrInit(ev.Origin.Values(), func() *sessState { return new(sessState) })
	st.mu.Lock()
	if !slices.Contains(st.regs, id) {
		st.regs = append(st.regs, id)
	}
	st.mu.Unlock()
	if m.cfg.ResumeTimeout > 0 {
		session.KeepDetached.Set(ev.Origin.Values(), time.Duration(m.cfg.ResumeTimeout))
	}
	m.deps.Log.Debug("push enabled", "jid", ev.From.String(), "service", reg.Service)
	return nil, nil
}

// disable handles <disable/> (§6).
func (m *Module) disable(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	if !own(ev) {
		return nil, stanza.NewError(stanza.NotAllowed, "push notifications are disabled by the account's own clients")
	}
	service, node, err := target(ev.El.FirstChild(), false)
	if err != nil {
		return nil, err
	}
	user := ev.From.Bare()
	if _, err := m.deps.Store.DeletePushRegistrations(ctx, user.Local(), user.DomainString(), service.String(), node); err != nil {
		return nil, fmt.Errorf("push: disable: %w", err)
	}
	m.forget(user, func(id regID) bool { return id.service == service.String() && (node == "" || id.node == node) })
	return nil, nil
}

// target reads the 'jid' and 'node' of <enable/> or <disable/>.
func target(e *xmlstream.Element, needNode bool) (jid.JID, string, error) {
	raw, node := e.Attribute("jid"), e.Attribute("node")
	if raw == "" {
		return jid.JID{}, "", stanza.NewError(stanza.BadRequest, "missing 'jid': the app server's address")
	}
	if len(raw) > maxJIDBytes {
		return jid.JID{}, "", stanza.NewError(stanza.JIDMalformed, "")
	}
	service, err := jid.Parse(raw)
	if err != nil {
		return jid.JID{}, "", stanza.NewError(stanza.JIDMalformed, "")
	}
	if needNode && node == "" {
		return jid.JID{}, "", stanza.NewError(stanza.BadRequest, "missing 'node': the app server's node for this device")
	}
	if len(node) > maxNodeBytes {
		return jid.JID{}, "", stanza.NewError(stanza.NotAcceptable, fmt.Sprintf("node over %d bytes", maxNodeBytes))
	}
	return service, node, nil
}

// forget removes the registrations that match from the account's
// sessions. A notification still pending for one finds it gone from the
// store and is dropped.
func (m *Module) forget(user jid.JID, match func(regID) bool) {
	for _, s := range m.r.Sessions(user) {
		st, ok := sessKey.Get(s.Values())
		if !ok {
			continue
		}
		st.mu.Lock()
		kept := st.regs[:0]
		for _, id := range st.regs {
			if !match(id) {
				kept = append(kept, id)
			}
		}
		st.regs = kept
		none := len(kept) == 0
		st.mu.Unlock()
		if none {
			session.KeepDetached.Set(s.Values(), 0)
		}
	}
}

// sessionEnd stops a session's ack_delay timer.
func (m *Module) sessionEnd(_ context.Context, s router.Session) {
	st, ok := sessKey.Get(s.Values())
	if !ok {
		return
	}
	st.mu.Lock()
	if st.timer != nil && st.timer.Stop() {
		m.wg.Done()
	}
	st.timer = nil
	st.mu.Unlock()
}

// errTransient reports whether an error answer to a notification leaves
// the registration in place (§8 is about the app server refusing it).
func errTransient(err error) bool {
	var se *stanza.Error
	if !errors.As(err, &se) {
		return true // no answer, or a local failure
	}
	switch se.Condition {
	case stanza.RemoteServerNotFound, stanza.RemoteServerTimeout:
		return true // federation, not the app server
	}
	return se.Type == stanza.Wait
}
