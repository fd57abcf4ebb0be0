// Package register implements XEP-0077 In-Band Registration: creating an
// account from a client before authentication (§3.1, rate-limited per IP
// address), and for a logged-in user changing the password (§3.3) and
// cancelling the account (§3.2). It is off unless [modules.register]
// enabled is set.
package register

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/c2s"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of XEP-0077.
const (
	// NSRegister is the IQ payload's namespace.
	NSRegister = "jabber:iq:register"
	// NSFeature is the stream feature's namespace.
	NSFeature = "http://jabber.org/features/iq-register"
)

// maxPasswordBytes bounds a password (PBKDF2 input).
const maxPasswordBytes = 1024

// Module is the in-band registration module.
type Module struct {
	deps    module.Deps
	enabled bool
	perHour int
	r       *router.Router

	mu     sync.Mutex
	recent map[string][]time.Time // by IP: account creations in the last hour
}

var (
	_ module.Module      = (*Module)(nil)
	_ c2s.PreAuthHandler = (*Module)(nil)
)

// Config is the [modules.register] table.
type Config struct {
	// Enabled lets anyone create an account from an XMPP client, and
	// logged-in users change their password or delete their account.
	Enabled bool `toml:"enabled"`
	// PerIPPerHour is how many accounts one IP address may create in an
	// hour.
	PerIPPerHour int `toml:"per_ip_per_hour"`
}

// Validate implements config.Validator.
func (c *Config) Validate() []config.Problem {
	if c.PerIPPerHour < 1 {
		return []config.Problem{{Key: "per_ip_per_hour", Msg: fmt.Sprintf("must be at least 1, got %d", c.PerIPPerHour)}}
	}
	return nil
}

// Info describes the module to the server.
var Info = module.Info{
	Name:   "register",
	XEPs:   []string{"XEP-0077"},
	Config: &Config{PerIPPerHour: 3},
	New:    module.Configured(New),
}

// New returns the module.
func New(deps module.Deps, cfg Config) (*Module, error) {
	return &Module{deps: deps, enabled: cfg.Enabled, perHour: cfg.PerIPPerHour,
		recent: make(map[string][]time.Time)}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "register" }

// Enabled reports whether registration is on.
func (m *Module) Enabled() bool { return m.enabled }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	m.r = r
	if !m.enabled {
		return
	}
	r.AddFeature(NSRegister)
	r.HandleIQ(stanza.IQGet, router.ClassLocal, NSRegister, "query", m.get)
	r.HandleIQ(stanza.IQSet, router.ClassLocal, NSRegister, "query", m.set)
}

// PreAuthFeature implements c2s.PreAuthHandler.
func (m *Module) PreAuthFeature() *xmlstream.Element {
	return xmlstream.NewElement(NSFeature, "register")
}

// HandlePreAuth implements c2s.PreAuthHandler: the registration form and
// account creation (§3.1).
func (m *Module) HandlePreAuth(ctx context.Context, remote net.Addr, domain string, iq *xmlstream.Element) (*xmlstream.Element, error) {
	q := iq.FirstChild()
	if q.Name.Space != NSRegister || q.Name.Local != "query" {
		return nil, stanza.NewError(stanza.ServiceUnavailable, "")
	}
	if stanza.Type(iq) == stanza.IQGet {
		return xmlstream.NewElement(NSRegister, "query").Append(
			xmlstream.NewElement(NSRegister, "instructions").AppendText("Choose a username and password for "+domain+"."),
			xmlstream.NewElement(NSRegister, "username"),
			xmlstream.NewElement(NSRegister, "password")), nil
	}
	if q.Child(NSRegister, "remove") != nil {
		return nil, stanza.NewError(stanza.NotAuthorized, "log in to cancel an account")
	}
	user, password, err := fields(q)
	if err != nil {
		return nil, err
	}
	u, perr := jid.New(user, domain, "")
	if perr != nil || user == "" {
		return nil, stanza.NewError(stanza.JIDMalformed, "the username is not a valid localpart")
	}
	ip := hostOf(remote)
	if !m.allow(ip) {
		m.deps.Log.Warn("registration rate limit", "ip", ip)
		return nil, stanza.NewError(stanza.PolicyViolation, "too many registrations from your address; try again later")
	}
	creds, err := credentials(password)
	if err != nil {
		return nil, err
	}
	err = m.deps.Store.CreateAccount(ctx, u.Local(), u.DomainString(), creds)
	switch {
	case errors.Is(err, storage.ErrExists):
		m.forget(ip)
		return nil, stanza.NewError(stanza.Conflict, "that username is taken")
	case err != nil:
		m.forget(ip)
		return nil, fmt.Errorf("register: create %s: %w", u, err)
	}
	m.deps.Log.Info("account registered", "jid", u.String(), "ip", ip)
	return nil, nil
}

// fields returns the username and password of a registration set;
// missing ones are not-acceptable (§3.1).
func fields(q *xmlstream.Element) (user, password string, err error) {
	ue, pe := q.Child(NSRegister, "username"), q.Child(NSRegister, "password")
	if ue == nil || pe == nil || pe.Text() == "" {
		return "", "", stanza.NewError(stanza.NotAcceptable, "username and password are required")
	}
	return strings.TrimSpace(ue.Text()), pe.Text(), nil
}

func credentials(password string) ([]storage.Credential, error) {
	if len(password) > maxPasswordBytes {
		return nil, stanza.NewError(stanza.NotAcceptable, "password too long")
	}
	cs, err := sasl.NewCredentials(password, 0)
	if err != nil {
		return nil, stanza.NewError(stanza.NotAcceptable, "unusable password")
	}
	out := make([]storage.Credential, len(cs))
	for i, c := range cs {
		out[i] = storage.Credential{Hash: string(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	}
	return out, nil
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// allow counts a registration attempt from ip and reports whether it is
// within the hourly limit.
func (m *Module) allow(ip string) bool {
	now := m.deps.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, ts := range m.recent {
		// Forget old entries, so the map holds only the last hour's IPs.
		i := 0
		for i < len(ts) && now.Sub(ts[i]) >= time.Hour {
			i++
		}
		if i == len(ts) {
			delete(m.recent, k)
		} else {
			m.recent[k] = ts[i:]
		}
	}
	if len(m.recent[ip]) >= m.perHour {
		return false
	}
	m.recent[ip] = append(m.recent[ip], now)
	return true
}

// forget takes back the last attempt of ip (it created nothing).
func (m *Module) forget(ip string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ts := m.recent[ip]; len(ts) > 0 {
		m.recent[ip] = ts[:len(ts)-1]
	}
}

// self returns the sender of an IQ about its own account: addressed to
// it, or to the sender's domain.
func self(ev *router.Event) (jid.JID, error) {
	own := ev.Class == router.ClassSelf ||
		(ev.Class == router.ClassServer && ev.To.DomainString() == ev.From.DomainString())
	if !own || ev.From.Local() == "" {
		return jid.JID{}, stanza.NewError(stanza.Forbidden, "")
	}
	return ev.From, nil
}

// get tells a logged-in user they are registered (§3.2.1).
func (m *Module) get(_ context.Context, ev *router.Event) (*xmlstream.Element, error) {
	from, err := self(ev)
	if err != nil {
		return nil, err
	}
	return xmlstream.NewElement(NSRegister, "query").Append(
		xmlstream.NewElement(NSRegister, "registered"),
		xmlstream.NewElement(NSRegister, "username").AppendText(from.Local())), nil
}

// set changes the password (§3.3) or cancels the account (§3.2).
func (m *Module) set(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	iq := ev.El
	from, err := self(ev)
	if err != nil {
		return nil, err
	}
	q := iq.FirstChild()
	if q.Child(NSRegister, "remove") != nil {
		return nil, m.cancel(ctx, iq, from)
	}
	user, password, err := fields(q)
	if err != nil {
		return nil, err
	}
	if user != from.Local() {
		return nil, stanza.NewError(stanza.BadRequest, "the username is not yours")
	}
	creds, err := credentials(password)
	if err != nil {
		return nil, err
	}
	if err := m.deps.Store.SetCredentials(ctx, from.Local(), from.DomainString(), creds); err != nil {
		return nil, fmt.Errorf("register: change password of %s: %w", from.Bare(), err)
	}
	m.deps.Log.Info("password changed", "jid", from.Bare().String())
	return nil, nil
}

// cancel deletes the account, answers, then ends every session of it
// (§3.2: the result goes out before the stream closes).
func (m *Module) cancel(ctx context.Context, iq *xmlstream.Element, from jid.JID) error {
	if err := m.deps.Store.DeleteAccount(ctx, from.Local(), from.DomainString()); err != nil {
		return fmt.Errorf("register: delete %s: %w", from.Bare(), err)
	}
	m.deps.Log.Info("account cancelled", "jid", from.Bare().String())
	reply := stanza.IQResultFor(iq)
	reply.RemoveAttr("from")
	m.r.Route(ctx, reply)
	for _, s := range m.r.Sessions(from.Bare()) {
		s.Close(&stream.Error{Condition: stream.NotAuthorized, Text: "account removed"})
	}
	return router.ErrReplied
}
