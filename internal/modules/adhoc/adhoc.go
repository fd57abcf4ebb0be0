// Package adhoc implements XEP-0050 Ad-Hoc Commands on the server's
// domains, and the XEP-0133 Service Administration commands on top of
// them for the administrators named in [server] admins.
//
// Discovery (§2.2, §2.3): disco#items to the node
// http://jabber.org/protocol/commands of a hosted domain lists the
// commands the requester may run (an administrator the admin commands,
// anyone else an empty list); disco#info to a command node is the
// identity automation/command-node with the commands and data forms
// features; a node the requester may not run is item-not-found.
//
// Execution (§3, §4): an iq set <command action='execute'/> starts a
// session (status executing, a XEP-0004 form and the allowed <actions/>)
// or, for a command without a form, completes at once. The requester
// goes on with next, prev and complete carrying its submitted form and
// the sessionid, or cancel (status canceled). The errors are §4.6's:
// malformed-action for an action not in the protocol, bad-action for one
// the stage does not allow, bad-sessionid for a session the requester
// does not hold, session-expired (not-allowed) for one that timed out,
// bad-payload when a required field is empty, forbidden for a command
// the requester may not run, item-not-found for an unknown node.
// Results and failures of the operation itself are a completed command
// with a <note/> (type info or error).
//
// Sessions are bounded: at most MaxSessions per account (starting
// another drops the account's oldest), each expiring Timeout after its
// last step, and every session of a client resource ends with it.
package adhoc

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSCommands is the XEP-0050 namespace, also the node of the command
// list.
const NSCommands = "http://jabber.org/protocol/commands"

// The statuses of a command (XEP-0050 §3.4).
const (
	StatusExecuting = "executing"
	StatusCompleted = "completed"
	StatusCanceled  = "canceled"
)

// The actions of a command (XEP-0050 §3.4).
const (
	ActionExecute  = "execute"
	ActionNext     = "next"
	ActionPrev     = "prev"
	ActionComplete = "complete"
	ActionCancel   = "cancel"
)

// Config is the [modules.adhoc] table.
type Config struct {
	// MaxSessions is how many command sessions one account may hold at
	// once; starting another drops its oldest.
	MaxSessions int `toml:"max_sessions"`
	// Timeout is how long a session waits for the requester's next step
	// before it expires (session-expired).
	Timeout config.Duration `toml:"timeout"`
}

// Validate implements config.Validator.
func (c *Config) Validate() []config.Problem {
	var ps []config.Problem
	if c.MaxSessions < 1 {
		ps = append(ps, config.Problem{Key: "max_sessions", Msg: fmt.Sprintf("must be at least 1, got %d", c.MaxSessions)})
	}
	if c.Timeout <= 0 {
		ps = append(ps, config.Problem{Key: "timeout", Msg: fmt.Sprintf("must be positive, got %s", c.Timeout)})
	}
	return ps
}

// Info describes the module to the server.
var Info = module.Info{
	Name:   "adhoc",
	XEPs:   []string{"XEP-0050", "XEP-0133"},
	Config: &Config{MaxSessions: 5, Timeout: config.Duration(10 * time.Minute)},
	New:    module.Configured(New),
}

// Command is an ad-hoc command: its node and name, who may run it, the
// forms of its stages and what it does with what was submitted.
type Command struct {
	Node, Name string
	// Admin restricts the command to the server's administrators.
	Admin bool
	// Forms build the form of each stage, in order; a command without
	// any completes when executed.
	Forms []func(ctx context.Context, c *Call) (Form, error)
	// Run completes the command. An error that is not a stanza.Error
	// becomes internal-server-error.
	Run func(ctx context.Context, c *Call) (Result, error)
}

// Call is one run of a command.
type Call struct {
	// Domain is the hosted domain addressed; From the requester.
	Domain, From jid.JID
	// Values are the fields submitted so far, later stages over earlier.
	Values Values
}

// Result is what a completed command returns: a note, a result form, or
// both.
type Result struct {
	NoteType, Note string // NoteType info, warn or error
	Form           *Form
}

// infoNote and errorNote are the usual results.
func infoNote(format string, args ...any) Result {
	return Result{NoteType: "info", Note: fmt.Sprintf(format, args...)}
}

func errorNote(format string, args ...any) Result {
	return Result{NoteType: "error", Note: fmt.Sprintf(format, args...)}
}

// Module is the ad-hoc commands module.
type Module struct {
	deps     module.Deps
	max      int
	timeout  time.Duration
	r        *router.Router
	commands []Command // in the order listed

	mu       sync.Mutex
	sessions map[string]*cmdSession // by sessionid
	byUser   map[string][]string    // account bare JID → its sessionids, oldest first
}

// cmdSession is a command in progress.
type cmdSession struct {
	id      string
	cmd     *Command
	owner   jid.JID // the requester's full JID
	domain  jid.JID
	stage   int
	values  []Values   // submitted, per stage
	shown   [][]string // the required fields of each stage's form
	expires time.Time
}

var (
	_ module.Module      = (*Module)(nil)
	_ router.ServerDisco = (*Module)(nil)
)

// New returns the ad-hoc commands module.
func New(deps module.Deps, cfg Config) (*Module, error) {
	m := &Module{
		deps:     deps,
		max:      cfg.MaxSessions,
		timeout:  time.Duration(cfg.Timeout),
		sessions: make(map[string]*cmdSession),
		byUser:   make(map[string][]string),
	}
	if m.deps.Now == nil {
		m.deps.Now = time.Now
	}
	m.commands = adminCommands(m)
	return m, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "adhoc" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	m.r = r
	r.AddFeature(NSCommands)
	r.AddServerDisco(m)
	r.HandleIQ(stanza.IQSet, router.ClassServer, NSCommands, "command", m.command)
	r.OnSessionEnd(func(_ context.Context, s router.Session) { m.endSessions(s.JID()) })
}

// allowed reports whether from may run cmd: a command for administrators
// only to an administrator's local session.
func (m *Module) allowed(cmd *Command, from jid.JID, local bool) bool {
	if !cmd.Admin {
		return true
	}
	return local && m.deps.IsAdmin != nil && m.deps.IsAdmin(from.Bare())
}

// local reports whether from is a client session of a hosted domain.
func (m *Module) local(from jid.JID) bool {
	return m.r != nil && m.r.Hosts(from.DomainString()) && from.Local() != ""
}

func (m *Module) lookup(node string) *Command {
	for i := range m.commands {
		if m.commands[i].Node == node {
			return &m.commands[i]
		}
	}
	return nil
}

// ServerNodeItems implements router.ServerDisco: the commands from may
// run (XEP-0050 §2.2).
func (m *Module) ServerNodeItems(_ context.Context, domain, from jid.JID, node string) ([]*xmlstream.Element, bool, error) {
	if node != NSCommands {
		return nil, false, nil
	}
	var items []*xmlstream.Element
	for i := range m.commands {
		c := &m.commands[i]
		if m.allowed(c, from, m.local(from)) {
			items = append(items, xmlstream.NewElement(stanza.NSDiscoItems, "item").
				SetAttr("jid", domain.String()).SetAttr("node", c.Node).SetAttr("name", c.Name))
		}
	}
	return items, true, nil
}

// ServerNodeInfo implements router.ServerDisco: the command list and each
// command the requester may run (XEP-0050 §2.3).
func (m *Module) ServerNodeInfo(_ context.Context, _, from jid.JID, node string) ([]*xmlstream.Element, bool, error) {
	identity := func(typ, name string) *xmlstream.Element {
		e := xmlstream.NewElement(stanza.NSDiscoInfo, "identity").SetAttr("category", "automation").SetAttr("type", typ)
		if name != "" {
			e.SetAttr("name", name)
		}
		return e
	}
	feature := func(v string) *xmlstream.Element {
		return xmlstream.NewElement(stanza.NSDiscoInfo, "feature").SetAttr("var", v)
	}
	if node == NSCommands {
		return []*xmlstream.Element{identity("command-list", ""), feature(NSCommands)}, true, nil
	}
	c := m.lookup(node)
	if c == nil || !m.allowed(c, from, m.local(from)) {
		return nil, false, nil
	}
	return []*xmlstream.Element{identity("command-node", c.Name), feature(NSCommands), feature(NSData)}, true, nil
}

// commandError is a XEP-0050 §4.6 error: a general condition with the
// application-specific one.
func commandError(cond stanza.Condition, app string) *stanza.Error {
	e := stanza.NewError(cond, "")
	e.App = xmlstream.NewElement(NSCommands, app)
	return e
}

// The errors of §4.6, each a new value: an error's element is appended to
// the reply, so replies do not share one.
func errMalformedAction() error { return commandError(stanza.BadRequest, "malformed-action") }
func errBadAction() error       { return commandError(stanza.BadRequest, "bad-action") }
func errBadSessionID() error    { return commandError(stanza.BadRequest, "bad-sessionid") }
func errBadPayload() error      { return commandError(stanza.BadRequest, "bad-payload") }
func errSessionExpired() error  { return commandError(stanza.NotAllowed, "session-expired") }

// command handles an iq set <command/> to a hosted domain.
func (m *Module) command(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	el := ev.El.Child(NSCommands, "command")
	node, sid, action := el.Attribute("node"), el.Attribute("sessionid"), el.Attribute("action")
	cmd := m.lookup(node)
	if cmd == nil {
		return nil, stanza.NewError(stanza.ItemNotFound, "")
	}
	if !m.allowed(cmd, ev.From, ev.Origin != nil) {
		return nil, stanza.NewError(stanza.Forbidden, "")
	}
	switch action {
	case "", ActionExecute, ActionNext, ActionPrev, ActionComplete, ActionCancel:
	default:
		return nil, errMalformedAction()
	}
	if sid == "" {
		if action != "" && action != ActionExecute {
			return nil, errBadSessionID()
		}
		return m.start(ctx, cmd, ev)
	}
	s, err := m.session(sid, node, ev.From)
	if err != nil {
		return nil, err
	}
	if action == ActionCancel {
		m.drop(s)
		return reply(s.cmd.Node, s.id, StatusCanceled), nil
	}
	last := len(s.cmd.Forms) - 1
	if action == "" || action == ActionExecute {
		action = ActionComplete
		if s.stage < last {
			action = ActionNext
		}
	}
	switch {
	case action == ActionPrev && s.stage > 0:
		s.stage--
		return m.show(ctx, s)
	case action == ActionNext && s.stage < last, action == ActionComplete && s.stage == last:
	default:
		return nil, errBadAction()
	}
	v, ok := parseSubmit(el.Child(NSData, "x"))
	if !ok {
		v = Values{}
	}
	for _, name := range s.shown[s.stage] {
		if v.Get(name) == "" {
			return nil, errBadPayload()
		}
	}
	s.values[s.stage] = v
	if action == ActionNext {
		s.stage++
		return m.show(ctx, s)
	}
	m.drop(s)
	return m.run(ctx, s.cmd, s.id, s.call())
}

// call returns the values submitted to s so far.
func (s *cmdSession) call() *Call {
	c := &Call{Domain: s.domain, From: s.owner, Values: Values{}}
	for _, v := range s.values[:s.stage+1] {
		for k, vs := range v {
			c.Values[k] = vs
		}
	}
	return c
}

// start begins a run of cmd.
func (m *Module) start(ctx context.Context, cmd *Command, ev *router.Event) (*xmlstream.Element, error) {
	domain := ev.To.Domain()
	id := rand.Text()
	if len(cmd.Forms) == 0 {
		return m.run(ctx, cmd, id, &Call{Domain: domain, From: ev.From, Values: Values{}})
	}
	s := &cmdSession{
		id: id, cmd: cmd, owner: ev.From, domain: domain,
		values: make([]Values, len(cmd.Forms)), shown: make([][]string, len(cmd.Forms)),
	}
	m.add(s)
	return m.show(ctx, s)
}

// show returns the form of s's stage, with the actions it allows.
func (m *Module) show(ctx context.Context, s *cmdSession) (*xmlstream.Element, error) {
	f, err := s.cmd.Forms[s.stage](ctx, s.call())
	if err != nil {
		m.drop(s)
		return nil, fmt.Errorf("adhoc: %s: form %d: %w", s.cmd.Node, s.stage, err)
	}
	var required []string
	for _, fd := range f.Fields {
		if fd.Required {
			required = append(required, fd.Var)
		}
	}
	s.shown[s.stage] = required
	m.touch(s)
	actions := xmlstream.NewElement(NSCommands, "actions")
	if s.stage > 0 {
		actions.Append(xmlstream.NewElement(NSCommands, ActionPrev))
	}
	if s.stage < len(s.cmd.Forms)-1 {
		actions.SetAttr("execute", ActionNext).Append(xmlstream.NewElement(NSCommands, ActionNext))
	} else {
		actions.SetAttr("execute", ActionComplete).Append(xmlstream.NewElement(NSCommands, ActionComplete))
	}
	f.Type = "form"
	return reply(s.cmd.Node, s.id, StatusExecuting).Append(actions, f.Element()), nil
}

// run completes cmd.
func (m *Module) run(ctx context.Context, cmd *Command, id string, c *Call) (*xmlstream.Element, error) {
	res, err := cmd.Run(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("adhoc: %s: %w", cmd.Node, err)
	}
	out := reply(cmd.Node, id, StatusCompleted)
	if res.Note != "" {
		out.Append(xmlstream.NewElement(NSCommands, "note").SetAttr("type", res.NoteType).AppendText(res.Note))
	}
	if res.Form != nil {
		f := *res.Form
		f.Type = "result"
		out.Append(f.Element())
	}
	m.deps.Log.Info("ad-hoc command", "jid", c.From.String(), "node", cmd.Node, "note", res.NoteType)
	return out, nil
}

func reply(node, sid, status string) *xmlstream.Element {
	return xmlstream.NewElement(NSCommands, "command").SetAttr("node", node).SetAttr("sessionid", sid).SetAttr("status", status)
}

// session returns the requester's session sid for node.
func (m *Module) session(sid, node string, from jid.JID) (*cmdSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[sid]
	if s == nil || s.cmd.Node != node || !s.owner.Equal(from) {
		return nil, errBadSessionID()
	}
	if !m.deps.Now().Before(s.expires) {
		m.dropLocked(s)
		return nil, errSessionExpired()
	}
	return s, nil
}

// add keeps s, dropping the owner's expired sessions and, past the
// limit, its oldest.
func (m *Module) add(s *cmdSession) {
	m.mu.Lock()
	defer m.mu.Unlock()
	user := s.owner.Bare().String()
	now := m.deps.Now()
	for _, id := range slices.Clone(m.byUser[user]) {
		if old := m.sessions[id]; old != nil && !now.Before(old.expires) {
			m.dropLocked(old)
		}
	}
	for len(m.byUser[user]) >= m.max {
		m.dropLocked(m.sessions[m.byUser[user][0]])
	}
	s.expires = now.Add(m.timeout)
	m.sessions[s.id] = s
	m.byUser[user] = append(m.byUser[user], s.id)
}

// touch moves s's expiry to a timeout from now.
func (m *Module) touch(s *cmdSession) {
	m.mu.Lock()
	s.expires = m.deps.Now().Add(m.timeout)
	m.mu.Unlock()
}

func (m *Module) drop(s *cmdSession) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropLocked(s)
}

func (m *Module) dropLocked(s *cmdSession) {
	delete(m.sessions, s.id)
	user := s.owner.Bare().String()
	ids := slices.DeleteFunc(m.byUser[user], func(id string) bool { return id == s.id })
	if len(ids) == 0 {
		delete(m.byUser, user)
	} else {
		m.byUser[user] = ids
	}
}

// endSessions drops the sessions of a client resource that ended.
func (m *Module) endSessions(full jid.JID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range slices.Clone(m.byUser[full.Bare().String()]) {
		if s := m.sessions[id]; s != nil && s.owner.Equal(full) {
			m.dropLocked(s)
		}
	}
}

// Sessions returns how many command sessions are in progress.
func (m *Module) Sessions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}
