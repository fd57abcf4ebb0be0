package muc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/router"
	queue "github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Affiliations and roles (XEP-0045 §5).
const (
	affOwner   = "owner"
	affAdmin   = "admin"
	affMember  = "member"
	affOutcast = "outcast"
	affNone    = "none"

	roleModerator   = "moderator"
	roleParticipant = "participant"
	roleVisitor     = "visitor"
	roleNone        = "none"
)

// Status codes (XEP-0045 §15.6.2).
const (
	statusNonAnonymous = 100
	statusConfigChange = 104
	statusSelf         = 110
	statusLogging      = 170
	statusNowNonAnon   = 172
	statusNowSemiAnon  = 173
	statusCreated      = 201
	statusBanned       = 301
	statusNickChange   = 303
	statusKicked       = 307
	statusAffChange    = 321
	statusMembersOnly  = 322
	statusShutdown     = 332
)

// roomConfig is a room's muc#roomconfig settings.
type roomConfig struct {
	name, desc    string
	persistent    bool
	public        bool
	membersOnly   bool
	moderated     bool
	password      string   // "" for none
	whoisAnyone   bool     // non-anonymous: every occupant sees real JIDs
	maxUsers      int      // 0: the service's limit
	changeSubject bool     // participants may change the subject
	allowInvites  bool     // participants may invite
	allowPM       string   // who may send private messages: anyone, participants, moderators, none
	archive       bool     // keep an archive (stored rooms only)
	hidden        []string // roles whose presence is not broadcast (muc#roomconfig_presencebroadcast leaves them out)
}

// shows reports whether the presence of an occupant with role is
// broadcast to the others (muc#roomconfig_presencebroadcast).
func (c roomConfig) shows(role string) bool { return !slices.Contains(c.hidden, role) }

func defaultConfig() roomConfig {
	return roomConfig{public: true, allowPM: "anyone", archive: true}
}

// session is one of an occupant's client resources and its presence.
type session struct {
	full jid.JID
	pres *xmlstream.Element // the client's presence, the MUC <x/> removed
}

// occupant is a nick in a room: one user, from one or more resources.
type occupant struct {
	nick     string
	bare     jid.JID
	role     string
	sessions []session

	// shown is the occupant's current presence to the others, without a
	// 'to', serialised once: [0] without its real JID, [1] with it. Any
	// change to what the presence shows (presence, role, affiliation,
	// nick, sessions) is broadcast, and broadcasting clears it.
	shown [2]*queue.Shared

	lastVoiceRequest time.Time // when it last asked for voice (§7.13)
	seen             bool      // the others were sent its available presence (its role is broadcast)

	tokens float64   // the rate limit's bucket
	filled time.Time // when tokens was last topped up
}

// allow takes one message from o's rate limit: rate per second, bursts
// of ten times as many.
func (o *occupant) allow(now time.Time, rate float64) bool {
	burst := 10 * rate
	if o.filled.IsZero() {
		o.tokens = burst
	} else {
		o.tokens = min(burst, o.tokens+now.Sub(o.filled).Seconds()*rate)
	}
	o.filled = now
	if o.tokens < 1 {
		return false
	}
	o.tokens--
	return true
}

// latest returns the session whose presence the room shows.
func (o *occupant) latest() session { return o.sessions[len(o.sessions)-1] }

// histEntry is a message of the room's history.
type histEntry struct {
	msg   *xmlstream.Element // as broadcast, without 'to'
	stamp time.Time
	chars int
	bytes int
}

// room is one chat room; its fields are guarded by mu, which is held
// while the room routes what it sends, so that every occupant sees the
// room's traffic in one order.
type room struct {
	server  atomic.Pointer[Module] // the module serving the room: a reload may hand it to a new one (Succeed)
	jid     jid.JID
	creator jid.JID

	mu          sync.Mutex
	cfg         roomConfig
	locked      bool // created, not yet configured (§10.1.2)
	fresh       bool // no one entered yet: the creator's entry gets 201
	gone        bool
	occupants   []*occupant          // in order of entry
	byNick      map[string]*occupant // nicks compared as given (§7.2.9 leaves folding to the service)
	byJID       map[string]*occupant // full JID → occupant
	affs        map[string]string    // bare JID → affiliation other than none
	nicks       map[string]string    // bare JID → nick reserved by registration (§7.10)
	hats        map[string][]Hat     // bare JID → its XEP-0317 hats
	vcardXML    *xmlstream.Element   // the room's vCard (XEP-0486), nil for none
	avatarHash  string               // SHA-1 of its PHOTO, "" for none
	subject     *xmlstream.Element   // the last subject message, as broadcast
	history     []histEntry
	histLoaded  bool // the history holds the archive's latest messages (a stored room reads them on its first entry)
	histBytes   int
	idKey       []byte                // the key of occupant ids (XEP-0421), stable for the room's life
	pending     map[string]forwarded  // IQs forwarded to occupants, by the id the room gave them
	hatSessions map[string]hatSession // XEP-0317 commands waiting for their form, by session id
}

// NSOccupantID is XEP-0421's namespace.
const NSOccupantID = "urn:xmpp:occupant-id:0"

// NSSelfPing is the feature of XEP-0410 §4 (the service answers a
// self-ping itself).
const NSSelfPing = "http://jabber.org/protocol/muc#self-ping-optimization"

// occupantID is the XEP-0421 id of a user in the room: the same for all
// its clients and nicks, different in every room, not revealing the JID.
func (rm *room) occupantID(bare jid.JID) string {
	h := hmac.New(sha256.New, rm.idKey)
	h.Write([]byte(bare.String()))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

// occupantIDElement is the <occupant-id/> of a user.
func (rm *room) occupantIDElement(bare jid.JID) *xmlstream.Element {
	return &xmlstream.Element{Name: xmlstream.Name{Space: NSOccupantID, Local: "occupant-id"},
		Attr: []xmlstream.Attr{{Name: xmlstream.Name{Local: "id"}, Value: rm.occupantID(bare)}}}
}

func newIDKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

func newRoom(m *Module, j, creator jid.JID, locked bool) *room {
	rm := &room{
		jid: j, creator: creator, cfg: defaultConfig(), locked: locked, fresh: true,
		byNick: make(map[string]*occupant), byJID: make(map[string]*occupant),
		affs: map[string]string{creator.String(): affOwner}, nicks: make(map[string]string), hats: make(map[string][]Hat),
		idKey: newIDKey(), histLoaded: true,
	}
	rm.server.Store(m)
	return rm
}

// mod is the module serving the room.
func (rm *room) mod() *Module { return rm.server.Load() }

// loadHistory fills the history of a stored room from its archive, the
// first time someone enters after a restart; rm.mu is held.
func (rm *room) loadHistory(ctx context.Context) {
	rm.histLoaded = true
	if !rm.archiving() || rm.mod().cfg.History == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	page, err := rm.mod().deps.Store.QueryRoomArchive(ctx, rm.jid.String(), storage.ArchiveQuery{Max: rm.mod().cfg.History, Last: true})
	if err != nil {
		rm.mod().deps.Log.Warn("muc: read the history from the room's archive", "room", rm.jid.String(), "err", err)
		return
	}
	old := rm.history
	rm.history, rm.histBytes = nil, 0
	for _, am := range page.Messages {
		msg, err := xmlstream.ParseElement(am.Stanza, stanza.NSClient)
		if err != nil {
			continue
		}
		body := msg.Child(stanza.NSClient, "body")
		if body == nil {
			continue // a retracted message's tombstone
		}
		rm.rememberAt(msg, len(body.Text()), am.Stamp)
	}
	for _, e := range old { // anything said since (none: the first entry comes first)
		rm.rememberAt(e.msg, e.chars, e.stamp)
	}
}

// archiving reports whether the room keeps an archive.
func (rm *room) archiving() bool { return rm.cfg.persistent && rm.cfg.archive && rm.mod().w != nil }

// affiliation returns the affiliation of the bare JID.
func (rm *room) affiliation(bare jid.JID) string {
	if a, ok := rm.affs[bare.String()]; ok {
		return a
	}
	return affNone
}

// defaultRole is the role an affiliation enters with (§5.1.2).
func (rm *room) defaultRole(aff string) string {
	switch aff {
	case affOwner, affAdmin:
		return roleModerator
	case affMember:
		return roleParticipant
	}
	if rm.cfg.moderated {
		return roleVisitor
	}
	return roleParticipant
}

// nickJID returns room@service/nick.
func (rm *room) nickJID(nick string) string { return rm.jid.String() + "/" + nick }

// seesJIDs reports whether the occupant o sees the others' real JIDs.
func (rm *room) seesJIDs(o *occupant) bool { return rm.cfg.whoisAnyone || o.role == roleModerator }

// enter handles available presence to room/nick (§7.2). It reports false
// when the room is gone (emptied or destroyed meanwhile): the caller
// creates a new one.
func (rm *room) enter(ctx context.Context, ev *router.Event) bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	st, full, nick := ev.El, ev.From, ev.To.Resource()
	if rm.gone {
		return false
	}
	pres := clientPresence(st)
	if o := rm.byJID[full.String()]; o != nil {
		if o.nick != nick {
			rm.changeNick(ctx, ev, o, nick, pres)
			return true
		}
		// A presence update (§7.7).
		for i := range o.sessions {
			if o.sessions[i].full.Equal(full) {
				o.sessions[i].pres = pres
			}
		}
		rm.broadcastPresence(ctx, o, nil)
		return true
	}
	aff := rm.affiliation(full.Bare())
	x := st.Child(NS, "x")
	switch {
	case rm.locked && aff != affOwner:
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.ItemNotFound, "the room is locked until its owner configures it"))
		return true
	case aff == affOutcast:
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.Forbidden, "you are banned from this room"))
		return true
	case rm.cfg.membersOnly && aff == affNone:
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.RegistrationRequired, "the room is members-only"))
		return true
	case rm.cfg.password != "" && (x == nil || childText(x, NS, "password") != rm.cfg.password):
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.NotAuthorized, "a password is required"))
		return true
	}
	o := rm.byNick[nick]
	if o != nil && !o.bare.Equal(full.Bare()) {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.Conflict, "the nick is taken"))
		return true
	}
	if by := rm.reservedBy(nick); by != "" && by != full.Bare().String() {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.Conflict, "the nick is reserved by another user"))
		return true
	}
	if o == nil && aff != affOwner && aff != affAdmin && len(rm.occupants) >= rm.maxUsers() {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, "the room is full"))
		return true
	}
	created := rm.fresh
	rm.fresh = false
	if o == nil {
		o = &occupant{nick: nick, bare: full.Bare(), role: rm.defaultRole(aff)}
		rm.occupants = append(rm.occupants, o)
		rm.byNick[nick] = o
	}
	o.sessions = append(o.sessions, session{full: full, pres: pres})
	rm.byJID[full.String()] = o

	o.shown = [2]*queue.Shared{} // a new session: its presence shows now
	// §7.2.3: the others' presence, then the occupant's own.
	for _, other := range rm.occupants {
		if other != o && other.seen {
			rm.mod().r.DeliverShared(ctx, rm.shownPresence(other, rm.seesJIDs(o)), full)
		}
	}
	self := []int{statusSelf}
	if rm.cfg.whoisAnyone {
		self = append(self, statusNonAnonymous)
	}
	if rm.archiving() {
		self = append(self, statusLogging)
	}
	if created {
		self = append(self, statusCreated)
	}
	if o.seen = rm.cfg.shows(o.role); o.seen {
		rm.fanout(ctx, o, func(withJID bool) *queue.Shared { return rm.shownPresence(o, withJID) })
	}
	rm.route(ctx, rm.presenceOf(o, full, true, self))
	for _, s := range o.sessions {
		if !s.full.Equal(full) {
			rm.route(ctx, rm.presenceOf(o, s.full, true, []int{statusSelf}))
		}
	}
	rm.sendHistory(ctx, full, x)
	rm.sendSubject(ctx, full)
	if rm.avatarHash != "" {
		rm.route(ctx, rm.avatarPresence(full.String()))
	}
	return true
}

// maxUsers is the room's occupant limit.
func (rm *room) maxUsers() int {
	if rm.cfg.maxUsers > 0 && rm.cfg.maxUsers < rm.mod().cfg.MaxOccupants {
		return rm.cfg.maxUsers
	}
	return rm.mod().cfg.MaxOccupants
}

// changeNick handles presence to a new nick from an occupant (§7.6).
func (rm *room) changeNick(ctx context.Context, ev *router.Event, o *occupant, nick string, pres *xmlstream.Element) {
	if other := rm.byNick[nick]; other != nil {
		rm.mod().r.Bounce(ctx, ev.El, stanza.NewError(stanza.Conflict, "the nick is taken"))
		return
	}
	if len(o.sessions) > 1 {
		rm.mod().r.Bounce(ctx, ev.El, stanza.NewError(stanza.NotAcceptable, "leave from your other resources to change the nick"))
		return
	}
	// Unavailable from the old nick with 303 and the new one.
	gone := func(to jid.JID, withJID bool, codes []int) *xmlstream.Element {
		p := rm.presenceOf(o, to, withJID, codes)
		p.SetAttr("type", stanza.PresenceUnavailable)
		userX(p).Child(NSUser, "item").SetAttr("nick", nick)
		return p
	}
	rm.fanout(ctx, o, func(withJID bool) *queue.Shared {
		return queue.NewShared(gone(jid.JID{}, withJID, []int{statusNickChange}))
	})
	for _, s := range o.sessions {
		rm.route(ctx, gone(s.full, true, []int{statusNickChange, statusSelf}))
	}
	delete(rm.byNick, o.nick)
	o.nick = nick
	rm.byNick[nick] = o
	o.sessions[0].pres = pres
	rm.broadcastPresence(ctx, o, nil)
}

// broadcastPresence sends o's presence to every occupant, with codes and
// 110 to o's own sessions.
func (rm *room) broadcastPresence(ctx context.Context, o *occupant, codes []int) {
	o.shown = [2]*queue.Shared{}
	switch {
	case rm.cfg.shows(o.role):
		o.seen = true
		rm.fanout(ctx, o, func(withJID bool) *queue.Shared {
			if codes == nil {
				return rm.shownPresence(o, withJID)
			}
			return queue.NewShared(rm.presenceOf(o, jid.JID{}, withJID, codes))
		})
	case o.seen:
		// Its new role is not broadcast: to the others it leaves.
		o.seen = false
		rm.fanout(ctx, o, func(withJID bool) *queue.Shared {
			return queue.NewShared(rm.unavailable(o, jid.JID{}, withJID, codes, ""))
		})
	}
	self := append(slices.Clone(codes), statusSelf)
	for _, s := range o.sessions {
		rm.route(ctx, rm.presenceOf(o, s.full, true, self))
	}
}

// shownPresence is o's current presence to the others, with or without
// its real JID, serialised once until it changes; rm.mu is held.
func (rm *room) shownPresence(o *occupant, withJID bool) *queue.Shared {
	k := 0
	if withJID {
		k = 1
	}
	if o.shown[k] == nil {
		o.shown[k] = queue.NewShared(rm.presenceOf(o, jid.JID{}, withJID, nil))
	}
	return o.shown[k]
}

// fanout sends a stanza about o to the sessions of every other occupant:
// mk makes it without a 'to', with o's real JID or without, each of the
// two at most once for all its recipients; rm.mu is held.
func (rm *room) fanout(ctx context.Context, o *occupant, mk func(withJID bool) *queue.Shared) {
	var variants [2]*queue.Shared
	for _, other := range rm.occupants {
		if other == o {
			continue
		}
		k := 0
		if rm.seesJIDs(other) {
			k = 1
		}
		if variants[k] == nil {
			variants[k] = mk(k == 1)
		}
		for _, s := range other.sessions {
			rm.mod().r.DeliverShared(ctx, variants[k], s.full)
		}
	}
}

// leave handles unavailable presence from an occupant's session (§7.14).
func (rm *room) leave(ctx context.Context, ev *router.Event) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	o := rm.byJID[ev.From.String()]
	if o == nil {
		return
	}
	status := childText(ev.El, ev.El.Name.Space, "status")
	if len(o.sessions) > 1 {
		// One resource of a multi-session nick leaves: it alone is told.
		o.sessions = slices.DeleteFunc(o.sessions, func(s session) bool { return s.full.Equal(ev.From) })
		delete(rm.byJID, ev.From.String())
		p := rm.unavailable(o, ev.From, true, []int{statusSelf}, status)
		rm.route(ctx, p)
		rm.broadcastPresence(ctx, o, nil)
		return
	}
	rm.removeLocked(ctx, o, func(p *xmlstream.Element) {
		if status != "" {
			p.Append(xmlstream.NewElement(stanza.NSClient, "status").AppendText(status))
		}
	}, nil)
}

// remove removes the occupant with the full JID (all its sessions), with
// the status codes in codes; edit, if not nil, adjusts each presence.
func (rm *room) remove(ctx context.Context, full jid.JID, codes []int, reason string) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if o := rm.byJID[full.String()]; o != nil {
		rm.removeLocked(ctx, o, reasonEdit(reason, ""), codes)
	}
}

// removeLocked removes o from the room and tells everyone, o included;
// rm.mu is held.
func (rm *room) removeLocked(ctx context.Context, o *occupant, edit func(*xmlstream.Element), codes []int) {
	o.role = roleNone
	gone := func(to jid.JID, withJID bool, codes []int) *xmlstream.Element {
		p := rm.unavailable(o, to, withJID, codes, "")
		if edit != nil {
			edit(p)
		}
		return p
	}
	if o.seen {
		rm.fanout(ctx, o, func(withJID bool) *queue.Shared { return queue.NewShared(gone(jid.JID{}, withJID, codes)) })
	}
	self := append(slices.Clone(codes), statusSelf)
	for _, s := range o.sessions {
		rm.route(ctx, gone(s.full, true, self))
	}
	rm.drop(o)
}

// drop removes o from the tables, and an empty temporary room from the
// service; rm.mu is held.
func (rm *room) drop(o *occupant) {
	for _, s := range o.sessions {
		delete(rm.byJID, s.full.String())
	}
	delete(rm.byNick, o.nick)
	rm.occupants = slices.DeleteFunc(rm.occupants, func(x *occupant) bool { return x == o })
	if len(rm.occupants) == 0 && !rm.cfg.persistent {
		rm.gone = true
		rm.mod().gone(rm)
	}
}

// shutdown removes every occupant, telling each of its clients with 332
// (see Module.Drain).
func (rm *room) shutdown(ctx context.Context) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for _, o := range slices.Clone(rm.occupants) {
		o.role = roleNone
		for _, s := range o.sessions {
			rm.route(ctx, rm.unavailable(o, s.full, true, []int{statusShutdown, statusSelf}, ""))
		}
		rm.drop(o)
	}
}

// unavailable is o's unavailable presence to the full JID to.
func (rm *room) unavailable(o *occupant, to jid.JID, withJID bool, codes []int, status string) *xmlstream.Element {
	p := stanza.NewPresence(stanza.NSClient, stanza.PresenceUnavailable, to.String(), rm.nickJID(o.nick), "")
	if status != "" {
		p.Append(xmlstream.NewElement(stanza.NSClient, "status").AppendText(status))
	}
	p.Append(rm.userX(o, withJID, codes), rm.occupantIDElement(o.bare))
	return p
}

// presenceOf is o's current presence to the full JID to.
func (rm *room) presenceOf(o *occupant, to jid.JID, withJID bool, codes []int) *xmlstream.Element {
	s := o.latest()
	p := stanza.NewPresence(stanza.NSClient, "", to.String(), rm.nickJID(o.nick), "")
	for _, c := range s.pres.Children {
		if c.Elem != nil {
			p.Children = append(p.Children, c)
		}
	}
	p.Append(rm.userX(o, withJID, codes), rm.occupantIDElement(o.bare))
	if h := rm.hatsElement(o.bare); h != nil {
		p.Append(h)
	}
	return p
}

// userX is the muc#user <x/> describing o.
func (rm *room) userX(o *occupant, withJID bool, codes []int) *xmlstream.Element {
	item := xmlstream.NewElement(NSUser, "item").SetAttr("affiliation", rm.affiliation(o.bare)).SetAttr("role", o.role)
	if withJID {
		item.SetAttr("jid", o.latest().full.String())
	}
	x := xmlstream.NewElement(NSUser, "x").Append(item)
	for _, c := range codes {
		x.Append(xmlstream.NewElement(NSUser, "status").SetAttr("code", strconv.Itoa(c)))
	}
	return x
}

// userX returns the muc#user <x/> of a presence built by presenceOf.
func userX(p *xmlstream.Element) *xmlstream.Element { return p.Child(NSUser, "x") }

// clientPresence is what the room keeps of an occupant's presence: its
// children but the MUC <x/>, occupant ids and hats.
func clientPresence(st *xmlstream.Element) *xmlstream.Element {
	p := xmlstream.NewElement(st.Name.Space, "presence")
	for _, c := range st.Children {
		e := c.Elem
		if e == nil || (e.Name.Space == NS && e.Name.Local == "x") || (e.Name.Space == NSUser && e.Name.Local == "x") ||
			e.Name.Space == NSOccupantID || e.Name.Space == NSHats {
			continue // the room's to say (XEP-0421 §4, XEP-0317: no one claims a hat)
		}
		p.Append(e.Copy())
	}
	return p
}

// childText returns the text of e's child {space}local, or "".
func childText(e *xmlstream.Element, space, local string) string {
	if c := e.Child(space, local); c != nil {
		return c.Text()
	}
	return ""
}

// reasonEdit returns an edit adding a reason (and actor) to the item of
// an unavailable presence, or nil.
func reasonEdit(reason, actor string) func(*xmlstream.Element) {
	if reason == "" && actor == "" {
		return nil
	}
	return func(p *xmlstream.Element) {
		item := userX(p).Child(NSUser, "item")
		if actor != "" {
			item.Append(xmlstream.NewElement(NSUser, "actor").SetAttr("nick", actor))
		}
		if reason != "" {
			item.Append(xmlstream.NewElement(NSUser, "reason").AppendText(reason))
		}
	}
}

// route sends st; rm.mu is held (deliveries only enqueue).
func (rm *room) route(ctx context.Context, st *xmlstream.Element) { rm.mod().route(ctx, st) }

// message handles a message to the room or to an occupant.
func (rm *room) message(ctx context.Context, ev *router.Event) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	st := ev.El
	if rm.gone {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.ItemNotFound, "no such room"))
		return
	}
	o := rm.byJID[ev.From.String()]
	if o != nil && !o.allow(rm.mod().now(), rm.mod().cfg.MessagesPerSecond) {
		rm.mod().r.Bounce(ctx, st, &stanza.Error{Type: stanza.Wait, Condition: stanza.ResourceConstraint,
			Text: "you are sending too fast for this room; wait a moment"})
		return
	}
	if ev.To.Resource() != "" {
		rm.private(ctx, ev, o)
		return
	}
	if stanza.Type(st) != stanza.MessageGroupchat {
		if x := st.Child(NSUser, "x"); x != nil {
			rm.invitation(ctx, ev, o, x)
			return
		}
		if x := st.Child(NSData, "x"); x != nil && dataform.FormType(x) == FormRequest {
			rm.voice(ctx, ev, o, x)
			return
		}
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.BadRequest, "messages to the room are of type groupchat"))
		return
	}
	switch {
	case o == nil:
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.NotAcceptable, "only occupants may send messages to the room"))
		return
	case o.role == roleVisitor:
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.Forbidden, "visitors may not speak in this moderated room"))
		return
	}
	subject := st.Child(st.Name.Space, "subject")
	body := st.Child(st.Name.Space, "body")
	if subject != nil && body == nil {
		if o.role != roleModerator && !rm.cfg.changeSubject {
			rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.Forbidden, "only moderators may change the subject"))
			return
		}
	}
	out := xmlstream.NewElement(st.Name.Space, "message").SetAttr("from", rm.nickJID(o.nick)).SetAttr("type", stanza.MessageGroupchat)
	if id := stanza.ID(st); id != "" {
		out.SetAttr("id", id)
	}
	for _, c := range st.Children {
		if e := c.Elem; e != nil && !(e.Name.Space == NSUser && e.Name.Local == "x") &&
			!(e.Name.Space == "urn:xmpp:sid:0" && e.Name.Local == "stanza-id") && e.Name.Space != NSOccupantID {
			out.Append(e)
		}
	}
	out.Append(rm.occupantIDElement(o.bare))
	if subject != nil && body == nil {
		rm.subject = out
		rm.persist(ctx)
	} else if body != nil {
		if rm.archiving() {
			rm.archive(ctx, out, o.nick)
		}
		rm.remember(out, len(body.Text()))
	}
	rm.broadcast(ctx, out)
}

// archive gives a groupchat message its stanza-id by the room (XEP-0359)
// and queues it for the room's archive; rm.mu is held.
func (rm *room) archive(ctx context.Context, out *xmlstream.Element, nick string) {
	id, stamp := rm.mod().ids.Next(rm.mod().now())
	out.Append(&xmlstream.Element{Name: xmlstream.Name{Space: NSStanzaID, Local: "stanza-id"},
		Attr: []xmlstream.Attr{{Name: xmlstream.Name{Local: "by"}, Value: rm.jid.String()}, {Name: xmlstream.Name{Local: "id"}, Value: id}}})
	row := storage.ArchivedMessage{Local: rm.jid.Local(), Domain: rm.jid.DomainString(), ID: id,
		With: rm.jid.String(), WithResource: nick, Stamp: stamp, Stanza: out.AppendXML(make([]byte, 0, 512), stanza.NSClient)}
	if err := rm.mod().w.Enqueue(ctx, row); err != nil {
		rm.mod().deps.Log.Warn("muc: message not archived", "room", rm.jid.String(), "err", err)
	}
}

// NSStanzaID is XEP-0359's namespace.
const NSStanzaID = "urn:xmpp:sid:0"

// broadcast sends msg (without 'to') to every occupant's sessions,
// serialised once.
func (rm *room) broadcast(ctx context.Context, msg *xmlstream.Element) {
	sh := queue.NewShared(msg)
	for _, o := range rm.occupants {
		for _, s := range o.sessions {
			rm.mod().r.DeliverShared(ctx, sh, s.full)
		}
	}
}

// addressed returns a shallow copy of msg addressed to to: the children
// are shared (nothing on the way changes them) and the attributes copied.
func addressed(msg *xmlstream.Element, to string) *xmlstream.Element {
	c := *msg
	c.Attr = append(make([]xmlstream.Attr, 0, len(msg.Attr)+1), msg.Attr...)
	c.Children = msg.Children[:len(msg.Children):len(msg.Children)]
	c.SetAttr("to", to)
	return &c
}

// remember adds a broadcast message to the history, the oldest going
// past its count or bytes.
func (rm *room) remember(msg *xmlstream.Element, chars int) {
	rm.rememberAt(msg, chars, rm.mod().now())
}

// rememberAt is remember for a message sent at stamp.
func (rm *room) rememberAt(msg *xmlstream.Element, chars int, stamp time.Time) {
	max, maxBytes := rm.mod().cfg.History, rm.mod().cfg.HistoryBytes
	size := len(msg.AppendXML(nil, stanza.NSClient))
	if max == 0 || size > maxBytes {
		return
	}
	for len(rm.history) > 0 && (len(rm.history) >= max || rm.histBytes+size > maxBytes) {
		rm.histBytes -= rm.history[0].bytes
		rm.history[0] = histEntry{}
		rm.history = rm.history[1:]
	}
	rm.history = append(rm.history, histEntry{msg: msg, stamp: stamp, chars: chars, bytes: size})
	rm.histBytes += size
}

// sendHistory sends the history to a new occupant's session, as its MUC
// <history/> asks (§7.2.15).
func (rm *room) sendHistory(ctx context.Context, to jid.JID, x *xmlstream.Element) {
	if !rm.histLoaded {
		rm.loadHistory(ctx)
	}
	from := 0
	if x != nil {
		if h := x.Child(NS, "history"); h != nil {
			from = len(rm.history)
			maxStanzas, maxChars, chars := len(rm.history), -1, 0
			if v, err := strconv.Atoi(h.Attribute("maxstanzas")); err == nil && v >= 0 {
				maxStanzas = v
			}
			if v, err := strconv.Atoi(h.Attribute("maxchars")); err == nil && v >= 0 {
				maxChars = v
			}
			var since time.Time
			if v, err := strconv.Atoi(h.Attribute("seconds")); err == nil && v >= 0 {
				since = rm.mod().now().Add(-time.Duration(v) * time.Second)
			}
			if v, err := time.Parse(time.RFC3339, h.Attribute("since")); err == nil && v.After(since) {
				since = v
			}
			for i := len(rm.history) - 1; i >= 0 && len(rm.history)-i <= maxStanzas; i-- {
				e := rm.history[i]
				if e.stamp.Before(since) {
					break
				}
				if chars += e.chars; maxChars >= 0 && chars > maxChars {
					break
				}
				from = i
			}
		}
	}
	for _, e := range rm.history[from:] {
		m := addressed(e.msg, to.String())
		m.Children = append(m.Children, xmlstream.Child{Elem: xmlstream.NewElement(NSDelay, "delay").
			SetAttr("from", rm.jid.String()).SetAttr("stamp", e.stamp.UTC().Format("2006-01-02T15:04:05.000Z"))})
		rm.route(ctx, m)
	}
}

// sendSubject sends the subject, empty if none was set (§7.2.16).
func (rm *room) sendSubject(ctx context.Context, to jid.JID) {
	if rm.subject != nil {
		rm.route(ctx, addressed(rm.subject, to.String()))
		return
	}
	m := stanza.NewMessage(stanza.NSClient, stanza.MessageGroupchat, to.String(), rm.jid.String(), "")
	m.Append(xmlstream.NewElement(stanza.NSClient, "subject"))
	rm.route(ctx, m)
}

// private handles a message to room/nick (§7.5).
func (rm *room) private(ctx context.Context, ev *router.Event, o *occupant) {
	st := ev.El
	if stanza.Type(st) == stanza.MessageGroupchat {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.BadRequest, "groupchat messages go to the room"))
		return
	}
	if o == nil {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.NotAcceptable, "only occupants may send private messages"))
		return
	}
	switch rm.cfg.allowPM {
	case "none":
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.Forbidden, "private messages are off in this room"))
		return
	case "moderators":
		if o.role != roleModerator {
			rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.Forbidden, "only moderators may send private messages"))
			return
		}
	case "participants":
		if o.role == roleVisitor {
			rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.Forbidden, "visitors may not send private messages"))
			return
		}
	}
	to := rm.byNick[ev.To.Resource()]
	if to == nil {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.ItemNotFound, "no such occupant"))
		return
	}
	out := xmlstream.NewElement(st.Name.Space, "message").SetAttr("from", rm.nickJID(o.nick))
	for _, a := range st.Attr {
		if a.Name.Space == "" && (a.Name.Local == "type" || a.Name.Local == "id" || a.Name.Local == "xml:lang") {
			out.SetAttr(a.Name.Local, a.Value)
		}
	}
	for _, c := range st.Children {
		if c.Elem != nil && !(c.Elem.Name.Space == NSUser && c.Elem.Name.Local == "x") && c.Elem.Name.Space != NSOccupantID {
			out.Append(c.Elem)
		}
	}
	out.Append(xmlstream.NewElement(NSUser, "x"), rm.occupantIDElement(o.bare))
	for _, s := range to.sessions {
		rm.route(ctx, addressed(out, s.full.String()))
	}
}

// invitation handles mediated invitations and declines (§7.8.2, §7.8.3).
func (rm *room) invitation(ctx context.Context, ev *router.Event, o *occupant, x *xmlstream.Element) {
	st := ev.El
	if inv := x.Child(NSUser, "invite"); inv != nil {
		if o == nil {
			rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.NotAcceptable, "only occupants may invite"))
			return
		}
		aff := rm.affiliation(o.bare)
		privileged := aff == affOwner || aff == affAdmin || o.role == roleModerator
		if !rm.cfg.allowInvites && !privileged && (rm.cfg.membersOnly || o.role == roleVisitor) {
			rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.Forbidden, "you may not invite to this room"))
			return
		}
		to, err := jid.Parse(inv.Attribute("to"))
		if err != nil {
			rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.JIDMalformed, "invite to whom?"))
			return
		}
		if rm.cfg.membersOnly && rm.affiliation(to.Bare()) == affNone && privileged {
			rm.affs[to.Bare().String()] = affMember // §9.3: invited to a members-only room
			for _, o := range rm.occupants {
				if o.bare.Equal(to.Bare()) {
					o.shown = [2]*queue.Shared{}
				}
			}
			rm.persistAffiliation(ctx, to.Bare().String(), affMember)
		}
		out := stanza.NewMessage(stanza.NSClient, "", to.String(), rm.jid.String(), "")
		ux := xmlstream.NewElement(NSUser, "x")
		fwd := xmlstream.NewElement(NSUser, "invite").SetAttr("from", ev.From.String())
		if r := childText(inv, NSUser, "reason"); r != "" {
			fwd.Append(xmlstream.NewElement(NSUser, "reason").AppendText(r))
		}
		ux.Append(fwd)
		if rm.cfg.password != "" {
			ux.Append(xmlstream.NewElement(NSUser, "password").AppendText(rm.cfg.password))
		}
		out.Append(ux)
		out.Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(ev.From.Bare().String() + " invites you to the room " + rm.jid.String()))
		rm.route(ctx, out)
		return
	}
	if dec := x.Child(NSUser, "decline"); dec != nil {
		to, err := jid.Parse(dec.Attribute("to"))
		if err != nil {
			rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.JIDMalformed, "decline to whom?"))
			return
		}
		out := stanza.NewMessage(stanza.NSClient, "", to.String(), rm.jid.String(), "")
		fwd := xmlstream.NewElement(NSUser, "decline").SetAttr("from", ev.From.Bare().String())
		if r := childText(dec, NSUser, "reason"); r != "" {
			fwd.Append(xmlstream.NewElement(NSUser, "reason").AppendText(r))
		}
		out.Append(xmlstream.NewElement(NSUser, "x").Append(fwd))
		rm.route(ctx, out)
		return
	}
	rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.BadRequest, ""))
}

// lower reports whether affiliation a ranks below b.
func lower(a, b string) bool { return rank(a) < rank(b) }

func rank(a string) int {
	switch a {
	case affOwner:
		return 4
	case affAdmin:
		return 3
	case affMember:
		return 2
	case affNone:
		return 1
	}
	return 0
}
