// Package muc is multi-user chat (XEP-0045, version 1.35) as a service of
// the server on conference.<domain> for each hosted domain.
//
// This is the first step of the MUC service: persistent rooms are stored
// (configuration, subject, affiliations) and loaded at start; the others
// live in memory. The protocol covers what a client needs to chat in a
// room:
//
//   - Entering (§7.2): presence to room@service/nick, with or without the
//     MUC <x/>; a new room is created by its first occupant, who becomes
//     its owner (status 201). A room created with the MUC <x/> is locked
//     (§10.1.2: others get item-not-found) until its owner accepts the
//     default configuration (an instant room, an empty submitted form) or
//     submits one; without it the room is instant at once (§10.1.3). The
//     new occupant gets every occupant's presence, then its own with
//     status 110 (and 100 in a non-anonymous room), the history (§7.2.15:
//     maxstanzas, maxchars, seconds, since) and the subject. Nick rules:
//     a nick taken by another user is conflict; one user may be in a room
//     from several resources under one nick (multi-session). Limits:
//     occupants per room (max_occupants, or the room's maxusers:
//     service-unavailable), a password (not-authorized), members-only
//     (registration-required), outcasts (forbidden). An occupant's
//     messages are rate-limited (messages_per_second, bursts of ten
//     times as many: resource-constraint, type wait); the history is
//     bounded in messages and bytes; room names and descriptions in
//     characters.
//   - Presence broadcast with muc#user items (affiliation, role, and the
//     real JID to moderators, or to all in a non-anonymous room), leaving
//     (§7.14, status 110 to the leaver), nick changes (§7.6: 303 and the
//     new nick), presence updates.
//   - Groupchat messages (§7.4) reflected to every occupant, the sender
//     included, from room@service/nick; visitors of a moderated room get
//     forbidden, non-occupants not-acceptable. Subject changes (§8.1) by
//     moderators, or by anyone when the room allows it.
//   - Private messages (§7.5) between occupants, from room@service/nick
//     with the muc#user <x/>.
//   - Owner configuration (§10.1, §10.2): the muc#roomconfig form
//     (roomname, roomdesc, persistentroom, publicroom, membersonly,
//     moderatedroom, passwordprotectedroom, roomsecret, whois, maxusers,
//     changesubject, allowinvites, allowpm); destroying a room (§10.9)
//     with an optional alternate venue and reason.
//   - Kicks and voice (§8.2-§8.4) and affiliations (§9-§10: member,
//     admin, owner, outcast with bans) through muc#admin, with the lists.
//   - Mediated invitations (§7.8.2) and declines.
//   - Room archives (XEP-0313 on the room's JID) for stored rooms with
//     muc#roomconfig_enablearchiving (on by default): groupchat messages
//     with a body get a <stanza-id by='room'/> (XEP-0359) and are written
//     behind by a group-commit writer (acknowledgements wait for it, as
//     for user archives); status 170 on entry; queries with the user
//     archive's form fields and paging, open to anyone but outcasts in a
//     public open room, to members and occupants otherwise.
//   - Moderation (XEP-0425 0.3, urn:xmpp:message-moderate:1, and the 0.2
//     form with urn:xmpp:fasten:0 and urn:xmpp:message-moderate:0): a
//     moderator retracts an archived message by its stanza-id; occupants
//     get the XEP-0424 <retract/> and the 0.2 <apply-to/> in one message,
//     the archive keeps a tombstone, the history forgets it.
//   - IQs from occupants to room/nick forwarded to that occupant under a
//     room-chosen id, the answer sent back (§7.9).
//   - XEP-0421 occupant ids on every presence and message from the room
//     (a keyed hash of the user's bare JID, per room; a client's own
//     <occupant-id/> is removed) and XEP-0410 self-pings answered by the
//     service (muc#self-ping-optimization).
//   - Service discovery (§6): the service (identity conference/text, its
//     public rooms as items) and each room (identity, the muc_* features
//     of its configuration and a muc#roominfo form).
//   - Hats (XEP-0317 0.2): the hats owners and admins give users
//     (DonHat, DoffHat) are shown in their presence and stored with the
//     room; clients' own <hats/> are removed.
//
// Still to come (issue 14): the archive of temporary rooms and the
// XEP-0317 ad-hoc commands (XEP-0050 on room JIDs).
package muc

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules/mam"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of XEP-0045.
const (
	NS         = "http://jabber.org/protocol/muc"
	NSUser     = "http://jabber.org/protocol/muc#user"
	NSAdmin    = "http://jabber.org/protocol/muc#admin"
	NSOwner    = "http://jabber.org/protocol/muc#owner"
	NSRoomInfo = "http://jabber.org/protocol/muc#roominfo"
	NSConfig   = "http://jabber.org/protocol/muc#roomconfig"
	NSData     = "jabber:x:data"
	NSDelay    = "urn:xmpp:delay"
)

// Config is the [modules.muc] table.
type Config struct {
	// Subdomain names the service: <subdomain>.<domain> for each hosted
	// domain.
	Subdomain string `toml:"subdomain"`
	// Create says who may create rooms: "local" (users of the server's
	// domains) or "anyone" (users of other servers too).
	Create string `toml:"create"`
	// MaxOccupants bounds the occupants of a room (a room's maxusers may
	// lower it).
	MaxOccupants int `toml:"max_occupants"`
	// MaxRooms bounds the rooms of the service.
	MaxRooms int `toml:"max_rooms"`
	// MaxRoomsPerUser bounds the rooms one user may create (and own).
	MaxRoomsPerUser int `toml:"max_rooms_per_user"`
	// History is how many messages a room keeps for those who enter.
	History int `toml:"history"`
	// HistoryBytes bounds the bytes of a room's history.
	HistoryBytes int `toml:"history_bytes"`
	// MessagesPerSecond is how many messages (groupchat, private,
	// invitations) an occupant may send per second on average, in bursts
	// of up to 10 times as many; past it the room answers
	// resource-constraint (type wait).
	MessagesPerSecond float64 `toml:"messages_per_second"`
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Validate implements config.Validator.
func (c *Config) Validate() []config.Problem {
	var ps []config.Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, config.Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if !labelRE.MatchString(c.Subdomain) {
		add("subdomain", "must be one lower-case DNS label such as \"conference\", got %q", c.Subdomain)
	}
	if c.Create != "local" && c.Create != "anyone" {
		add("create", `must be "local" or "anyone", got %q`, c.Create)
	}
	if c.MaxOccupants < 1 {
		add("max_occupants", "must be at least 1, got %d", c.MaxOccupants)
	}
	if c.MaxRooms < 1 {
		add("max_rooms", "must be at least 1, got %d", c.MaxRooms)
	}
	if c.MaxRoomsPerUser < 1 {
		add("max_rooms_per_user", "must be at least 1, got %d", c.MaxRoomsPerUser)
	}
	if c.History < 0 || c.History > 1000 {
		add("history", "must be between 0 and 1000, got %d", c.History)
	}
	if c.HistoryBytes < 0 {
		add("history_bytes", "must not be negative, got %d", c.HistoryBytes)
	}
	if c.MessagesPerSecond <= 0 {
		add("messages_per_second", "must be positive, got %g", c.MessagesPerSecond)
	}
	return ps
}

// Info describes the module to the server.
var Info = module.Info{
	Name: "muc",
	XEPs: []string{"XEP-0045", "XEP-0249", "XEP-0410", "XEP-0317", "XEP-0421", "XEP-0425", "XEP-0486"},
	Config: &Config{
		Subdomain:         "conference",
		Create:            "local",
		MaxOccupants:      1000,
		MaxRooms:          10000,
		MaxRoomsPerUser:   100,
		History:           20,
		HistoryBytes:      256 << 10,
		MessagesPerSecond: 5,
	},
	New: module.Configured(New),
}

// Module is the MUC service.
type Module struct {
	deps module.Deps
	cfg  Config
	r    *router.Router
	w    *mam.Writer // the rooms' archives, written behind
	ids  mam.IDs

	wg    sync.WaitGroup // occupantError's removals
	mu    sync.Mutex
	rooms map[string]*room // by bare room JID
	owned map[string]int   // rooms created per user (bare JID)
}

var (
	_ module.Module    = (*Module)(nil)
	_ module.Stopper   = (*Module)(nil)
	_ module.Drainer   = (*Module)(nil)
	_ module.Successor = (*Module)(nil)
)

// New returns the MUC module.
func New(deps module.Deps, cfg Config) (*Module, error) {
	return &Module{deps: deps, cfg: cfg, rooms: make(map[string]*room), owned: make(map[string]int)}, nil
}

// Service returns the sub-domain label of the service (module.Service).
func (c Config) Service(config.Config) (string, bool) { return c.Subdomain, true }

// Name implements module.Module.
func (m *Module) Name() string { return "muc" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	m.r = r
	if m.deps.Store != nil {
		m.w = mam.NewWriter(m.deps.Store.AppendRoomArchive, m.deps.Log)
		r.OnSync(m.w.Sync) // an acknowledged groupchat message is archived
	}
	for _, d := range r.Domains() {
		service := m.cfg.Subdomain + "." + d
		r.AddService(service, m.serve)
		if err := m.load(service); err != nil {
			m.deps.Log.Error("muc: load rooms", "service", service, "err", err)
		}
	}
}

// Stop implements module.Stopper: the removals of occupants in flight
// end and the archive writer writes what it holds.
func (m *Module) Stop() {
	m.wg.Wait()
	if m.w != nil {
		m.w.Stop()
	}
}

// Drain implements module.Drainer: at shutdown every occupant leaves its
// rooms, each of its clients told with status 332 (XEP-0045 §7.14: the
// service is shutting down). Only the occupant itself hears of its
// leaving: everyone leaves, and n presences to n occupants would be n².
func (m *Module) Drain(ctx context.Context) {
	m.mu.Lock()
	rooms := make([]*room, 0, len(m.rooms))
	for _, rm := range m.rooms {
		rooms = append(rooms, rm)
	}
	m.mu.Unlock()
	for _, rm := range rooms {
		rm.shutdown(ctx)
	}
}

// Succeed implements module.Successor: when a reload builds the module
// again (new settings, new domains), the rooms in memory go on in the new
// module as they are, occupants, history and all, instead of vanishing
// under their occupants; the new settings apply from then on. Rooms of a
// service the new module no longer runs (its subdomain changed, or the
// domain is gone) close as at shutdown, each occupant told with status
// 332.
func (m *Module) Succeed(ctx context.Context, prev module.Module) bool {
	p, ok := prev.(*Module)
	if !ok {
		return false
	}
	services := make(map[string]bool)
	for _, d := range m.r.Domains() {
		services[m.cfg.Subdomain+"."+d] = true
	}
	p.mu.Lock()
	rooms := p.rooms
	p.rooms, p.owned = make(map[string]*room), make(map[string]int)
	p.mu.Unlock()
	var closed []*room
	m.mu.Lock()
	for key, rm := range rooms {
		if !services[rm.jid.DomainString()] {
			closed = append(closed, rm)
			continue
		}
		rm.server.Store(m)
		m.rooms[key] = rm // in place of the stored room load read again
	}
	clear(m.owned)
	for _, rm := range m.rooms {
		if !rm.creator.IsZero() {
			m.owned[rm.creator.String()]++
		}
	}
	m.mu.Unlock()
	for _, rm := range closed {
		rm.shutdown(ctx)
	}
	if len(rooms) > 0 {
		m.deps.Log.Info("muc: rooms taken over from the module this reload replaced", "rooms", len(rooms)-len(closed), "closed", len(closed))
	}
	return true
}

// serve handles every stanza to the service and its rooms.
func (m *Module) serve(ctx context.Context, ev *router.Event) {
	st := ev.El
	if ev.From.IsZero() {
		return
	}
	if ev.To.Local() == "" {
		m.serveService(ctx, ev)
		return
	}
	if typ := stanza.Type(st); typ == stanza.MessageError && st.Name.Local == "message" {
		m.occupantError(ctx, ev)
		return
	}
	bare := ev.To.Bare()
	switch st.Name.Local {
	case "presence":
		m.presence(ctx, ev)
	case "message":
		rm := m.room(bare)
		if rm == nil {
			m.r.Bounce(ctx, st, stanza.NewError(stanza.ItemNotFound, "no such room"))
			return
		}
		rm.message(ctx, ev)
	case "iq":
		rm := m.room(bare)
		if rm == nil {
			if t := stanza.Type(st); t == stanza.IQGet || t == stanza.IQSet {
				m.r.Bounce(ctx, st, stanza.NewError(stanza.ItemNotFound, "no such room"))
			}
			return
		}
		rm.iq(ctx, ev)
	}
}

// room returns the room with the bare JID, or nil.
func (m *Module) room(bare jid.JID) *room {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms[bare.String()]
}

// presence handles presence to room@service/nick.
func (m *Module) presence(ctx context.Context, ev *router.Event) {
	st := ev.El
	typ := stanza.Type(st)
	rm := m.room(ev.To.Bare())
	switch {
	case typ == stanza.PresenceError:
		if rm != nil {
			rm.remove(ctx, ev.From, nil, "")
		}
		return
	case typ == stanza.PresenceUnavailable:
		if rm != nil {
			rm.leave(ctx, ev)
		}
		return
	case typ != "":
		return // subscriptions and probes: rooms have none
	}
	if ev.To.Resource() == "" {
		// §7.2.1: a nick is needed.
		m.r.Bounce(ctx, st, stanza.NewError(stanza.JIDMalformed, "enter a room as room@service/nick"))
		return
	}
	for range 3 {
		if rm == nil {
			var err *stanza.Error
			if rm, err = m.create(ev); err != nil {
				m.r.Bounce(ctx, st, err)
				return
			}
		}
		if rm.enter(ctx, ev) {
			return
		}
		rm = nil // emptied or destroyed meanwhile: a new room
	}
	m.r.Bounce(ctx, st, stanza.NewError(stanza.ResourceConstraint, "the room keeps going away; try again"))
}

// create makes the room ev enters, owned by its sender, if the sender may
// create one.
func (m *Module) create(ev *router.Event) (*room, *stanza.Error) {
	creator := ev.From.Bare()
	if m.cfg.Create == "local" && !m.r.Hosts(creator.DomainString()) {
		return nil, stanza.NewError(stanza.NotAllowed, "only users of this server may create rooms")
	}
	if err := validRoomName(ev.To.Local()); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := ev.To.Bare().String()
	if rm := m.rooms[key]; rm != nil {
		return rm, nil // created meanwhile
	}
	if len(m.rooms) >= m.cfg.MaxRooms {
		return nil, stanza.NewError(stanza.ResourceConstraint, "the service holds as many rooms as it may")
	}
	if m.owned[creator.String()] >= m.cfg.MaxRoomsPerUser {
		return nil, stanza.NewError(stanza.PolicyViolation, fmt.Sprintf("you own %d rooms, the most this service allows", m.cfg.MaxRoomsPerUser))
	}
	muc := ev.El.Child(NS, "x") != nil
	rm := newRoom(m, ev.To.Bare(), creator, muc)
	m.rooms[key] = rm
	m.owned[creator.String()]++
	return rm, nil
}

// validRoomName checks a room's local part: JID rules already hold; no
// spaces or control characters (what clients show as its address).
func validRoomName(local string) *stanza.Error {
	for _, r := range local {
		if r <= ' ' || r == 0x7f {
			return stanza.NewError(stanza.JIDMalformed, "room names have no spaces")
		}
	}
	return nil
}

// gone removes an empty temporary or destroyed room.
func (m *Module) gone(rm *room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rooms[rm.jid.String()] == rm {
		delete(m.rooms, rm.jid.String())
		if n := m.owned[rm.creator.String()]; n > 1 {
			m.owned[rm.creator.String()] = n - 1
		} else {
			delete(m.owned, rm.creator.String())
		}
	}
}

// occupantError handles a message error from an occupant's client: the
// occupant is gone (XEP-0045 §7.2.17 on errors from occupants).
//
// The removal runs on its own goroutine: the error may be the router's
// bounce of a stanza the room is delivering (an occupant whose queue is
// full), raised while the room's lock is held, which removing it here
// would take again and deadlock the room.
func (m *Module) occupantError(ctx context.Context, ev *router.Event) {
	rm := m.room(ev.To.Bare())
	if rm == nil {
		return
	}
	if se, ok := stanza.ParseError(ev.El); !ok || se.Type != stanza.Cancel {
		return
	}
	from := ev.From
	ctx = context.WithoutCancel(ctx)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		rm.remove(ctx, from, nil, "")
	}()
}

// now is the module's clock.
func (m *Module) now() time.Time { return m.deps.Now() }

// route sends st through the router.
func (m *Module) route(ctx context.Context, st *xmlstream.Element) { m.r.Route(ctx, st) }
