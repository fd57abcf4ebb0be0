package muc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/modules/mam"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// serveService answers stanzas to the service itself: disco#info and
// disco#items (§6.1, §6.3).
func (m *Module) serveService(ctx context.Context, ev *router.Event) {
	st := ev.El
	if st.Name.Local != "iq" {
		return
	}
	typ := stanza.Type(st)
	if typ != stanza.IQGet && typ != stanza.IQSet {
		return
	}
	q := st.FirstChild()
	if typ == stanza.IQGet && q != nil && q.Name.Local == "query" {
		switch q.Name.Space {
		case stanza.NSDiscoInfo:
			if q.Attribute("node") != "" {
				m.r.Bounce(ctx, st, stanza.NewError(stanza.ItemNotFound, ""))
				return
			}
			res := xmlstream.NewElement(stanza.NSDiscoInfo, "query").Append(
				xmlstream.NewElement(stanza.NSDiscoInfo, "identity").SetAttr("category", "conference").
					SetAttr("type", "text").SetAttr("name", "Chatrooms"))
			for _, f := range []string{NS, stanza.NSDiscoInfo, stanza.NSDiscoItems, "jabber:x:conference"} {
				res.Append(xmlstream.NewElement(stanza.NSDiscoInfo, "feature").SetAttr("var", f))
			}
			m.reply(ctx, st, res)
			return
		case stanza.NSDiscoItems:
			res := xmlstream.NewElement(stanza.NSDiscoItems, "query")
			for _, it := range m.publicRooms(ev.To.DomainString()) {
				res.Append(it)
			}
			m.reply(ctx, st, res)
			return
		}
	}
	m.r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
}

// publicRooms lists the service's public, unlocked rooms as disco items.
func (m *Module) publicRooms(service string) []*xmlstream.Element {
	m.mu.Lock()
	rooms := make([]*room, 0, len(m.rooms))
	for _, rm := range m.rooms {
		if rm.jid.DomainString() == service {
			rooms = append(rooms, rm)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(rooms, func(a, b *room) int { return strings.Compare(a.jid.String(), b.jid.String()) })
	var out []*xmlstream.Element
	for _, rm := range rooms {
		rm.mu.Lock()
		if rm.cfg.public && !rm.locked && !rm.gone {
			it := xmlstream.NewElement(stanza.NSDiscoItems, "item").SetAttr("jid", rm.jid.String())
			if rm.cfg.name != "" {
				it.SetAttr("name", rm.cfg.name)
			}
			out = append(out, it)
		}
		rm.mu.Unlock()
	}
	return out
}

// reply routes the result of the IQ req with payload.
func (m *Module) reply(ctx context.Context, req, payload *xmlstream.Element) {
	res := stanza.IQResultFor(req)
	if payload != nil {
		res.Append(payload)
	}
	m.r.Route(ctx, res)
}

// iq handles an IQ to the room or to an occupant.
func (rm *room) iq(ctx context.Context, ev *router.Event) {
	st := ev.El
	typ := stanza.Type(st)
	if typ != stanza.IQGet && typ != stanza.IQSet {
		if ev.To.Resource() != "" {
			rm.forwardedAnswer(ctx, ev)
		}
		return
	}
	if ev.To.Resource() != "" {
		rm.occupantIQ(ctx, ev)
		return
	}
	q := st.FirstChild()
	if q == nil {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.BadRequest, ""))
		return
	}
	if q.Name.Space == mam.NS && q.Name.Local == "query" && typ == stanza.IQSet {
		rm.queryArchive(ctx, ev, q)
		return
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.gone {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.ItemNotFound, "the room was destroyed"))
		return
	}
	var res *xmlstream.Element
	var err *stanza.Error
	switch {
	case typ == stanza.IQGet && q.Name.Space == stanza.NSDiscoInfo && q.Name.Local == "query" && q.Attribute("node") == nodeRoomUser:
		res = rm.reservedNickInfo(ev.From)
	case typ == stanza.IQGet && q.Name.Space == stanza.NSDiscoInfo && q.Name.Local == "query" &&
		(q.Attribute("node") == NodeDonHat || q.Attribute("node") == NodeDoffHat):
		res = hatCommandInfo(q.Attribute("node"))
	case typ == stanza.IQGet && q.Name.Space == stanza.NSDiscoInfo && q.Name.Local == "query" && q.Attribute("node") != "":
		err = stanza.NewError(stanza.ItemNotFound, "no such node")
	case typ == stanza.IQGet && q.Name.Space == stanza.NSDiscoInfo && q.Name.Local == "query":
		res = rm.discoInfo()
	case typ == stanza.IQGet && q.Name.Space == stanza.NSDiscoItems && q.Name.Local == "query" && q.Attribute("node") == NSCommands:
		res = rm.hatCommands(ev.From)
	case typ == stanza.IQGet && q.Name.Space == stanza.NSDiscoItems && q.Name.Local == "query":
		res = xmlstream.NewElement(stanza.NSDiscoItems, "query") // occupants stay private (§6.5)
	case typ == stanza.IQSet && q.Name.Space == NSCommands && q.Name.Local == "command":
		res, err = rm.hatCommand(ctx, ev, q)
	case q.Name.Space == NSOwner && q.Name.Local == "query":
		res, err = rm.owner(ctx, ev, typ, q)
	case q.Name.Space == NSAdmin && q.Name.Local == "query":
		res, err = rm.admin(ctx, ev, typ, q)
	case typ == stanza.IQSet && isModerateRequest(q):
		res, err = rm.moderate(ctx, ev, q)
	case q.Name.Space == NSRegister && q.Name.Local == "query":
		res, err = rm.register(ctx, ev, typ, q)
	case q.Name.Space == NSVCard && q.Name.Local == "vCard":
		res, err = rm.vcard(ctx, ev, typ, q)
	default:
		err = stanza.NewError(stanza.ServiceUnavailable, "")
	}
	if err != nil {
		rm.mod().r.Bounce(ctx, st, err)
		return
	}
	rm.mod().reply(ctx, st, res)
}

// occupantIQ answers an IQ to room/nick. A ping from the occupant itself
// is a self-ping (XEP-0410 §4): answered by the service, result if the
// client is still in the room under that nick, not-acceptable if not.
// Other IQs from occupants are forwarded to the occupant (§7.9).
func (rm *room) occupantIQ(ctx context.Context, ev *router.Event) {
	st := ev.El
	rm.mu.Lock()
	o := rm.byJID[ev.From.String()]
	target := rm.byNick[ev.To.Resource()]
	rm.mu.Unlock()
	if q := st.FirstChild(); q != nil && q.Name.Space == stanza.NSPing && q.Name.Local == "ping" && stanza.Type(st) == stanza.IQGet {
		switch {
		case o != nil && o == target:
			rm.mod().reply(ctx, st, nil)
		case o == nil:
			rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.NotAcceptable, "you are not in the room"))
		case target == nil:
			rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.ItemNotFound, "no such occupant"))
		default:
			rm.forward(ctx, ev, o, target) // a ping of another occupant goes to it
		}
		return
	}
	if o == nil {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.NotAcceptable, "only occupants may query occupants"))
		return
	}
	if target == nil {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.ItemNotFound, "no such occupant"))
		return
	}
	rm.forward(ctx, ev, o, target)
}

// maxForwarded bounds the IQs a room has forwarded to occupants and not
// yet seen answered; forwardTimeout is how long one waits.
const (
	maxForwarded   = 1000
	forwardTimeout = 60 * time.Second
)

// forwarded is an IQ the room passed to an occupant (§7.9: vCards,
// versions), with what its answer needs to go back.
type forwarded struct {
	requester  jid.JID // the asking client
	id         string  // its id
	fromNick   string  // the asker's nick, the forwarded IQ's 'from'
	target     jid.JID // the occupant's client that was asked
	targetNick string
	sent       time.Time
}

// forward passes an IQ from occupant o to target's latest client, from
// room/o's nick, under a new id (§7.9); the answer comes back to
// forwardedAnswer. rm.mu is not held.
func (rm *room) forward(ctx context.Context, ev *router.Event, o, target *occupant) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	now := rm.mod().now()
	for id, f := range rm.pending {
		if now.Sub(f.sent) > forwardTimeout {
			delete(rm.pending, id)
		}
	}
	if len(rm.pending) >= maxForwarded {
		rm.mod().r.Bounce(ctx, ev.El, stanza.NewError(stanza.ResourceConstraint, "too many queries to occupants"))
		return
	}
	to := target.latest().full
	id := "muc-" + newToken()
	if rm.pending == nil {
		rm.pending = make(map[string]forwarded)
	}
	rm.pending[id] = forwarded{requester: ev.From, id: stanza.ID(ev.El), fromNick: o.nick, target: to, targetNick: target.nick, sent: now}
	out := addressed(ev.El, to.String())
	out.SetAttr("from", rm.nickJID(o.nick))
	out.SetAttr("id", id)
	rm.route(ctx, out)
}

// forwardedAnswer passes the answer to a forwarded IQ back to the asker,
// from room/nick of the occupant that answered.
func (rm *room) forwardedAnswer(ctx context.Context, ev *router.Event) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	id := stanza.ID(ev.El)
	f, ok := rm.pending[id]
	if !ok || !f.target.Equal(ev.From) || ev.To.Resource() != f.fromNick {
		return
	}
	delete(rm.pending, id)
	out := addressed(ev.El, f.requester.String())
	out.SetAttr("from", rm.nickJID(f.targetNick))
	out.SetAttr("id", f.id)
	rm.route(ctx, out)
}

// queryArchive answers a XEP-0313 query on the room's archive, outside
// the room's lock (it reads the store).
func (rm *room) queryArchive(ctx context.Context, ev *router.Event, q *xmlstream.Element) {
	st := ev.El
	rm.mu.Lock()
	archiving, gone := rm.archiving(), rm.gone
	aff := rm.affiliation(ev.From.Bare())
	occupant := rm.byJID[ev.From.String()] != nil
	open := rm.cfg.public && !rm.cfg.membersOnly
	rm.mu.Unlock()
	switch {
	case gone:
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.ItemNotFound, "the room was destroyed"))
		return
	case !archiving:
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, "the room keeps no archive"))
		return
	case aff == affOutcast, !open && !occupant && rank(aff) < rank(affMember):
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.Forbidden, "the archive is for the room's members"))
		return
	}
	if err := rm.mod().w.Sync(ctx); err != nil {
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.InternalServerError, ""))
		return
	}
	fetch := func(ctx context.Context, aq storage.ArchiveQuery) (storage.ArchivePage, error) {
		return rm.mod().deps.Store.QueryRoomArchive(ctx, rm.jid.String(), aq)
	}
	deliver := func(res *xmlstream.Element) error { rm.mod().r.Route(ctx, res); return nil }
	fin, err := mam.AnswerQuery(ctx, q, rm.jid, ev.From, fetch, deliver, rm.mod().deps.Log)
	if err != nil {
		var se *stanza.Error
		if !errors.As(err, &se) {
			rm.mod().deps.Log.Error("muc: archive query", "room", rm.jid.String(), "err", err)
			se = stanza.NewError(stanza.InternalServerError, "")
		}
		rm.mod().r.Bounce(ctx, st, se)
		return
	}
	rm.mod().reply(ctx, st, fin)
}

// discoInfo is the room's disco#info (§6.4) with muc#roominfo.
func (rm *room) discoInfo() *xmlstream.Element {
	name := rm.cfg.name
	if name == "" {
		name = rm.jid.Local()
	}
	q := xmlstream.NewElement(stanza.NSDiscoInfo, "query").Append(
		xmlstream.NewElement(stanza.NSDiscoInfo, "identity").SetAttr("category", "conference").
			SetAttr("type", "text").SetAttr("name", name))
	feats := []string{NS, stanza.NSDiscoInfo, stanza.NSDiscoItems, NSOccupantID, NSSelfPing, NSRegister, NSVCard, NSHats, NSCommands}
	pick := func(on bool, yes, no string) {
		if on {
			feats = append(feats, yes)
		} else {
			feats = append(feats, no)
		}
	}
	pick(rm.cfg.public, "muc_public", "muc_hidden")
	pick(rm.cfg.membersOnly, "muc_membersonly", "muc_open")
	pick(rm.cfg.persistent, "muc_persistent", "muc_temporary")
	pick(rm.cfg.moderated, "muc_moderated", "muc_unmoderated")
	pick(rm.cfg.whoisAnyone, "muc_nonanonymous", "muc_semianonymous")
	pick(rm.cfg.password != "", "muc_passwordprotected", "muc_unsecured")
	if rm.archiving() {
		feats = append(feats, mam.NS, mam.NSExtended, NSStanzaID, NSModerate, NSModerate0)
	}
	for _, f := range feats {
		q.Append(xmlstream.NewElement(stanza.NSDiscoInfo, "feature").SetAttr("var", f))
	}
	form := dataform.New(dataform.TypeResult, NSRoomInfo)
	form.Add("muc#roominfo_description", "text-single", "", rm.cfg.desc)
	form.Add("muc#roominfo_occupants", "text-single", "", strconv.Itoa(len(rm.occupants)))
	subject := ""
	if rm.subject != nil {
		subject = childText(rm.subject, rm.subject.Name.Space, "subject")
	}
	form.Add("muc#roominfo_subject", "text-single", "", subject)
	form.Add("muc#roominfo_subjectmod", "boolean", "", dataform.Bool(rm.cfg.changeSubject))
	if rm.avatarHash != "" {
		form.Add("muc#roominfo_avatarhash", "text-multi", "", rm.avatarHash) // XEP-0486 §3
	}
	q.Append(form.Element())
	return q
}

// owner handles muc#owner: the configuration form and destroy (§10).
func (rm *room) owner(ctx context.Context, ev *router.Event, typ string, q *xmlstream.Element) (*xmlstream.Element, *stanza.Error) {
	if rm.affiliation(ev.From.Bare()) != affOwner {
		return nil, stanza.NewError(stanza.Forbidden, "only owners may configure the room")
	}
	if typ == stanza.IQGet {
		return xmlstream.NewElement(NSOwner, "query").Append(rm.configForm()), nil
	}
	if d := q.Child(NSOwner, "destroy"); d != nil {
		rm.destroy(ctx, d)
		return nil, nil
	}
	x := q.Child(NSData, "x")
	if x == nil {
		return nil, stanza.NewError(stanza.BadRequest, "submit a muc#roomconfig form")
	}
	switch x.Attribute("type") {
	case "cancel":
		if rm.locked {
			// §10.1.2: cancelling the configuration of a new room
			// destroys it.
			rm.destroy(ctx, nil)
		}
		return nil, nil
	case "submit":
	default:
		return nil, stanza.NewError(stanza.BadRequest, "the form must be submitted or cancelled")
	}
	cfg, err := rm.applyForm(x)
	if err != nil {
		return nil, err
	}
	old := rm.cfg
	rm.cfg = cfg
	wasLocked := rm.locked
	rm.locked = false
	switch {
	case cfg.persistent && !old.persistent:
		rm.persistAll(ctx)
	case cfg.persistent:
		rm.persist(ctx)
	case old.persistent:
		rm.unpersist(ctx)
	}
	if !wasLocked {
		codes := []int{statusConfigChange}
		switch {
		case cfg.whoisAnyone && !old.whoisAnyone:
			codes = append(codes, statusNowNonAnon)
		case !cfg.whoisAnyone && old.whoisAnyone:
			codes = append(codes, statusNowSemiAnon)
		}
		ux := xmlstream.NewElement(NSUser, "x")
		for _, c := range codes {
			ux.Append(xmlstream.NewElement(NSUser, "status").SetAttr("code", strconv.Itoa(c)))
		}
		rm.broadcast(ctx, xmlstream.NewElement(stanza.NSClient, "message").SetAttr("from", rm.jid.String()).
			SetAttr("type", stanza.MessageGroupchat).Append(ux))
		// Roles whose presence is now broadcast, or no longer.
		for _, o := range slices.Clone(rm.occupants) {
			if rm.cfg.shows(o.role) != o.seen {
				rm.broadcastPresence(ctx, o, nil)
			}
		}
	}
	if cfg.membersOnly && !old.membersOnly {
		// §9.3: occupants without an affiliation leave a room that
		// becomes members-only.
		for _, o := range slices.Clone(rm.occupants) {
			if rm.affiliation(o.bare) == affNone {
				rm.removeLocked(ctx, o, nil, []int{statusMembersOnly})
			}
		}
	}
	if len(rm.occupants) == 0 && !rm.cfg.persistent && !rm.gone {
		rm.gone = true
		rm.mod().gone(rm)
	}
	return nil, nil
}

// destroy ends the room (§10.9): every occupant leaves with the destroy
// element (an alternate venue and reason).
func (rm *room) destroy(ctx context.Context, d *xmlstream.Element) {
	for _, o := range rm.occupants {
		for _, s := range o.sessions {
			p := stanza.NewPresence(stanza.NSClient, stanza.PresenceUnavailable, s.full.String(), rm.nickJID(o.nick), "")
			ux := xmlstream.NewElement(NSUser, "x").Append(
				xmlstream.NewElement(NSUser, "item").SetAttr("affiliation", affNone).SetAttr("role", roleNone))
			fwd := xmlstream.NewElement(NSUser, "destroy")
			if d != nil {
				if alt := d.Attribute("jid"); alt != "" {
					fwd.SetAttr("jid", alt)
				}
				if r := childText(d, NSOwner, "reason"); r != "" {
					fwd.Append(xmlstream.NewElement(NSUser, "reason").AppendText(r))
				}
			}
			ux.Append(fwd, xmlstream.NewElement(NSUser, "status").SetAttr("code", strconv.Itoa(statusSelf)))
			p.Append(ux)
			rm.route(ctx, p)
		}
	}
	rm.occupants, rm.byNick, rm.byJID = nil, map[string]*occupant{}, map[string]*occupant{}
	rm.gone = true
	rm.mod().gone(rm)
	if rm.cfg.persistent {
		rm.unpersist(ctx)
	}
}

// admin handles muc#admin: roles and affiliations, and their lists.
func (rm *room) admin(ctx context.Context, ev *router.Event, typ string, q *xmlstream.Element) (*xmlstream.Element, *stanza.Error) {
	actor := rm.byJID[ev.From.String()]
	actorAff := rm.affiliation(ev.From.Bare())
	items := q.ChildrenNS(NSAdmin)
	if len(items) == 0 {
		return nil, stanza.NewError(stanza.BadRequest, "no item")
	}
	if typ == stanza.IQGet {
		return rm.adminList(ev, actor, actorAff, items[0])
	}
	type change struct {
		o         *occupant
		bare      jid.JID
		role, aff string
		reason    string
	}
	var changes []change
	for _, it := range items {
		if it.Name.Local != "item" {
			continue
		}
		reason := childText(it, NSAdmin, "reason")
		switch {
		case it.Attribute("role") != "":
			role := it.Attribute("role")
			o := rm.byNick[it.Attribute("nick")]
			if o == nil {
				return nil, stanza.NewError(stanza.ItemNotFound, "no occupant with that nick")
			}
			if err := rm.mayChangeRole(actor, actorAff, o, role); err != nil {
				return nil, err
			}
			changes = append(changes, change{o: o, role: role, reason: reason})
		case it.Attribute("affiliation") != "":
			aff := it.Attribute("affiliation")
			target, err := jid.Parse(it.Attribute("jid"))
			if err != nil {
				return nil, stanza.NewError(stanza.JIDMalformed, "affiliations are of bare JIDs")
			}
			if err := rm.mayChangeAffiliation(actorAff, ev.From.Bare(), target.Bare(), aff); err != nil {
				return nil, err
			}
			changes = append(changes, change{bare: target.Bare(), aff: aff, reason: reason})
		default:
			return nil, stanza.NewError(stanza.BadRequest, "an item changes a role or an affiliation")
		}
	}
	actorNick := ""
	if actor != nil {
		actorNick = actor.nick
	}
	for _, c := range changes {
		if c.o != nil {
			if c.role == roleNone {
				rm.removeLocked(ctx, c.o, reasonEdit(c.reason, actorNick), []int{statusKicked})
				continue
			}
			c.o.role = c.role
			rm.broadcastPresence(ctx, c.o, nil)
			continue
		}
		if c.aff == affNone {
			delete(rm.affs, c.bare.String())
		} else {
			rm.affs[c.bare.String()] = c.aff
		}
		rm.persistAffiliation(ctx, c.bare.String(), c.aff)
		for _, o := range slices.Clone(rm.occupants) {
			if !o.bare.Equal(c.bare) {
				continue
			}
			switch {
			case c.aff == affOutcast:
				rm.removeLocked(ctx, o, reasonEdit(c.reason, actorNick), []int{statusBanned})
			case c.aff == affNone && rm.cfg.membersOnly:
				rm.removeLocked(ctx, o, reasonEdit(c.reason, actorNick), []int{statusAffChange})
			default:
				o.role = rm.defaultRole(c.aff)
				rm.broadcastPresence(ctx, o, nil)
			}
		}
	}
	return nil, nil
}

// mayChangeRole applies §8.2-§8.6 and §9.6: moderators kick and give or
// take voice from those of lower affiliation; admins and owners grant and
// revoke moderator.
func (rm *room) mayChangeRole(actor *occupant, actorAff string, o *occupant, role string) *stanza.Error {
	switch role {
	case roleNone, roleVisitor, roleParticipant, roleModerator:
	default:
		return stanza.NewError(stanza.BadRequest, "no such role")
	}
	if actor == nil || actor.role != roleModerator {
		return stanza.NewError(stanza.Forbidden, "only moderators change roles")
	}
	targetAff := rm.affiliation(o.bare)
	if role == roleModerator || o.role == roleModerator && role != roleModerator {
		if actorAff != affOwner && actorAff != affAdmin {
			return stanza.NewError(stanza.Forbidden, "only admins and owners grant or revoke moderation")
		}
	}
	if !lower(targetAff, actorAff) && o != actor && (role == roleNone || role == roleVisitor) {
		return stanza.NewError(stanza.NotAllowed, "not against an occupant of your affiliation or higher")
	}
	return nil
}

// mayChangeAffiliation applies §9 and §10: admins manage members and
// outcasts below admin; owners manage everything, and a room keeps at
// least one owner.
func (rm *room) mayChangeAffiliation(actorAff string, actor, target jid.JID, aff string) *stanza.Error {
	switch aff {
	case affOwner, affAdmin, affMember, affOutcast, affNone:
	default:
		return stanza.NewError(stanza.BadRequest, "no such affiliation")
	}
	cur := rm.affiliation(target)
	switch actorAff {
	case affOwner:
	case affAdmin:
		if rank(cur) >= rank(affAdmin) || rank(aff) >= rank(affAdmin) {
			return stanza.NewError(stanza.NotAllowed, "admins manage members and outcasts")
		}
	default:
		return stanza.NewError(stanza.Forbidden, "only admins and owners change affiliations")
	}
	if cur == affOwner && aff != affOwner {
		owners := 0
		for _, a := range rm.affs {
			if a == affOwner {
				owners++
			}
		}
		if owners <= 1 {
			return stanza.NewError(stanza.Conflict, "the room needs an owner")
		}
	}
	return nil
}

// adminList answers a muc#admin get: the occupants of a role, or the
// JIDs of an affiliation.
func (rm *room) adminList(ev *router.Event, actor *occupant, actorAff string, it *xmlstream.Element) (*xmlstream.Element, *stanza.Error) {
	res := xmlstream.NewElement(NSAdmin, "query")
	if role := it.Attribute("role"); role != "" {
		if actor == nil || actor.role != roleModerator {
			return nil, stanza.NewError(stanza.Forbidden, "only moderators list roles")
		}
		for _, o := range rm.occupants {
			if o.role == role {
				res.Append(xmlstream.NewElement(NSAdmin, "item").SetAttr("nick", o.nick).SetAttr("role", o.role).
					SetAttr("affiliation", rm.affiliation(o.bare)).SetAttr("jid", o.latest().full.String()))
			}
		}
		return res, nil
	}
	aff := it.Attribute("affiliation")
	switch aff {
	case affOwner, affAdmin, affMember, affOutcast:
	default:
		return nil, stanza.NewError(stanza.BadRequest, "list which affiliation?")
	}
	if actorAff != affOwner && actorAff != affAdmin && !(aff == affMember && actorAff == affMember) {
		return nil, stanza.NewError(stanza.Forbidden, "only admins and owners list affiliations")
	}
	var jids []string
	for j, a := range rm.affs {
		if a == aff {
			jids = append(jids, j)
		}
	}
	slices.Sort(jids)
	for _, j := range jids {
		res.Append(xmlstream.NewElement(NSAdmin, "item").SetAttr("affiliation", aff).SetAttr("jid", j))
	}
	return res, nil
}

func newToken() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
