package muc

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/router"
	queue "github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces and form types of registration, voice requests and room
// avatars.
const (
	// NSRegister is XEP-0077's namespace, which XEP-0045 §7.10 uses to
	// register with a room.
	NSRegister = "jabber:iq:register"
	// FormRegister is the FORM_TYPE of a room registration (§15.5.2).
	FormRegister = "http://jabber.org/protocol/muc#register"
	// FormRequest is the FORM_TYPE of voice requests and their approval
	// (§7.13, §8.6).
	FormRequest = "http://jabber.org/protocol/muc#request"
	// NSVCard is vcard-temp (XEP-0054): a room's vCard holds its avatar
	// (XEP-0486).
	NSVCard = "vcard-temp"
	// NSVCardUpdate carries the avatar's hash in the room's presence
	// (XEP-0153, XEP-0486).
	NSVCardUpdate = "vcard-temp:x:update"
	// nodeRoomUser is the disco#info node of reserved-nick discovery
	// (§7.12).
	nodeRoomUser = "x-roomuser-item"
)

// Limits of registrations and room vCards.
const (
	maxNickBytes     = 1023        // a resourcepart's limit (RFC 7622)
	maxVCardBytes    = 128 << 10   // a room's vCard, avatar included
	voiceRequestWait = time.Minute // between two voice requests of one occupant
)

// reservedBy returns the bare JID that reserved nick in the room, or "".
func (rm *room) reservedBy(nick string) string {
	for bare, n := range rm.nicks {
		if n == nick {
			return bare
		}
	}
	return ""
}

// register answers jabber:iq:register to the room (§7.10): a get returns
// the registration form, or the registered nick; a set submits the form
// (the user becomes a member with that nick reserved), cancels, or
// removes the registration; rm.mu is held.
func (rm *room) register(ctx context.Context, ev *router.Event, typ string, q *xmlstream.Element) (*xmlstream.Element, *stanza.Error) {
	bare := ev.From.Bare()
	aff := rm.affiliation(bare)
	if aff == affOutcast {
		return nil, stanza.NewError(stanza.Forbidden, "you are banned from this room")
	}
	res := xmlstream.NewElement(NSRegister, "query")
	if typ == stanza.IQGet {
		if nick, ok := rm.nicks[bare.String()]; ok {
			res.Append(xmlstream.NewElement(NSRegister, "registered"),
				xmlstream.NewElement(NSRegister, "username").AppendText(nick))
			return res, nil
		}
		if rm.cfg.membersOnly && aff == affNone {
			return nil, stanza.NewError(stanza.RegistrationRequired, "only members may register with this room")
		}
		res.Append(xmlstream.NewElement(NSRegister, "instructions").AppendText(
			"Choose the nickname reserved for you in this room."))
		f := dataform.New(dataform.TypeForm, FormRegister)
		f.Title = "Registration with " + rm.jid.String()
		f.Add("muc#register_roomnick", "text-single", "Nickname", "").Required = true
		res.Append(f.Element())
		return res, nil
	}
	if q.Child(NSRegister, "remove") != nil {
		if _, ok := rm.nicks[bare.String()]; !ok {
			return nil, stanza.NewError(stanza.ItemNotFound, "you are not registered with this room")
		}
		delete(rm.nicks, bare.String())
		if aff == affMember {
			rm.setAffiliation(ctx, bare, affNone)
		}
		rm.persist(ctx)
		return nil, nil
	}
	x := q.Child(NSData, "x")
	if x == nil {
		return nil, stanza.NewError(stanza.BadRequest, "submit the muc#register form")
	}
	if x.Attribute("type") == "cancel" {
		return nil, nil
	}
	if x.Attribute("type") != "submit" || dataform.FormType(x) != FormRegister {
		return nil, stanza.NewError(stanza.BadRequest, "submit the muc#register form")
	}
	if rm.cfg.membersOnly && aff == affNone {
		return nil, stanza.NewError(stanza.RegistrationRequired, "only members may register with this room")
	}
	nick := strings.TrimSpace(formValue(x, "muc#register_roomnick"))
	if nick == "" || len(nick) > maxNickBytes {
		return nil, stanza.NewError(stanza.NotAcceptable, "a nickname is required")
	}
	if _, err := jid.New(rm.jid.Local(), rm.jid.DomainString(), nick); err != nil {
		return nil, stanza.NewError(stanza.JIDMalformed, "that nickname cannot be a room occupant's")
	}
	if by := rm.reservedBy(nick); by != "" && by != bare.String() {
		return nil, stanza.NewError(stanza.Conflict, "the nickname is reserved by someone else")
	}
	if o := rm.byNick[nick]; o != nil && !o.bare.Equal(bare) {
		return nil, stanza.NewError(stanza.Conflict, "the nickname is in use by someone else")
	}
	if len(rm.nicks) >= rm.mod().cfg.MaxOccupants*10 {
		return nil, stanza.NewError(stanza.ResourceConstraint, "this room has too many registrations")
	}
	rm.nicks[bare.String()] = nick
	if aff == affNone {
		rm.setAffiliation(ctx, bare, affMember)
	}
	rm.persist(ctx)
	return nil, nil
}

// setAffiliation gives bare the affiliation aff, stores it and tells
// the room about its occupants' new affiliation; rm.mu is held.
func (rm *room) setAffiliation(ctx context.Context, bare jid.JID, aff string) {
	if aff == affNone {
		delete(rm.affs, bare.String())
	} else {
		rm.affs[bare.String()] = aff
	}
	rm.persistAffiliation(ctx, bare.String(), aff)
	for _, o := range rm.occupants {
		if o.bare.Equal(bare) {
			if o.role != roleModerator {
				o.role = rm.defaultRole(aff)
			}
			rm.broadcastPresence(ctx, o, nil)
		}
	}
}

// reservedNickInfo answers disco#info with the x-roomuser-item node
// (§7.12): the requester's reserved nick as an identity, if any.
func (rm *room) reservedNickInfo(from jid.JID) *xmlstream.Element {
	q := xmlstream.NewElement(stanza.NSDiscoInfo, "query").SetAttr("node", nodeRoomUser)
	if nick, ok := rm.nicks[from.Bare().String()]; ok {
		q.Append(xmlstream.NewElement(stanza.NSDiscoInfo, "identity").SetAttr("category", "conference").
			SetAttr("type", "text").SetAttr("name", nick))
	}
	return q
}

// voice handles a data form sent to the room in a message: a visitor's
// voice request, which goes to the moderators, or a moderator's answer
// to one (§7.13, §8.6); rm.mu is held.
func (rm *room) voice(ctx context.Context, ev *router.Event, o *occupant, x *xmlstream.Element) {
	st := ev.El
	switch {
	case o == nil:
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.NotAcceptable, "only occupants may ask for voice"))
	case o.role == roleModerator:
		rm.voiceAnswer(ctx, ev, o, x)
	case !rm.cfg.moderated:
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.NotAllowed, "this room is not moderated: everyone has voice"))
	case o.role != roleVisitor:
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.BadRequest, "you have voice already"))
	case formValue(x, "muc#role") != roleParticipant:
		rm.mod().r.Bounce(ctx, st, stanza.NewError(stanza.BadRequest, "ask for the participant role"))
	case !o.lastVoiceRequest.IsZero() && rm.mod().now().Sub(o.lastVoiceRequest) < voiceRequestWait:
		rm.mod().r.Bounce(ctx, st, &stanza.Error{Type: stanza.Wait, Condition: stanza.ResourceConstraint,
			Text: "your last voice request is waiting for the moderators"})
	default:
		o.lastVoiceRequest = rm.mod().now()
		f := dataform.New(dataform.TypeForm, FormRequest)
		f.Title = "Voice request"
		f.Instructions = "To approve this request for voice, select the \"Grant voice to this person?\" checkbox and submit this form."
		f.Add("muc#role", "list-single", "Requested role", roleParticipant).Option(roleParticipant, "Participant")
		f.Add("muc#jid", "jid-single", "User ID", ev.From.String()) // moderators see real JIDs
		f.Add("muc#roomnick", "text-single", "Room Nickname", o.nick)
		f.Add("muc#request_allow", "boolean", "Grant voice to this person?", "0")
		msg := stanza.NewMessage(stanza.NSClient, "", "", rm.jid.String(), "").Append(f.Element())
		sh := queue.NewShared(msg)
		for _, mod := range rm.occupants {
			if mod.role != roleModerator {
				continue
			}
			for _, s := range mod.sessions {
				rm.mod().r.DeliverShared(ctx, sh, s.full)
			}
		}
	}
}

// voiceAnswer applies a moderator's submitted voice request form: with
// muc#request_allow true the occupant gets voice.
func (rm *room) voiceAnswer(ctx context.Context, ev *router.Event, mod *occupant, x *xmlstream.Element) {
	if x.Attribute("type") != "submit" {
		rm.mod().r.Bounce(ctx, ev.El, stanza.NewError(stanza.BadRequest, "submit the voice request form"))
		return
	}
	f, err := dataform.Parse(x)
	if err != nil {
		return // not a valid form (a field twice): nothing granted
	}
	if v := f.Value("muc#request_allow"); v != "1" && v != "true" {
		return // denied: nothing to do
	}
	target := rm.byNick[f.Value("muc#roomnick")]
	if target == nil {
		if j, err := jid.Parse(f.Value("muc#jid")); err == nil {
			target = rm.byJID[j.String()]
		}
	}
	if target == nil {
		rm.mod().r.Bounce(ctx, ev.El, stanza.NewError(stanza.ItemNotFound, "that occupant is not in the room"))
		return
	}
	if target.role != roleVisitor {
		return // has voice already (another moderator was quicker)
	}
	if err := rm.mayChangeRole(mod, rm.affiliation(mod.bare), target, roleParticipant); err != nil {
		rm.mod().r.Bounce(ctx, ev.El, err)
		return
	}
	target.role = roleParticipant
	target.lastVoiceRequest = time.Time{}
	rm.broadcastPresence(ctx, target, nil)
}

// vcard answers vcard-temp to the room (XEP-0054 on a room, XEP-0486):
// anyone but outcasts reads it, owners set it; a new avatar is announced
// with status 104 and the room's presence carrying its hash; rm.mu is
// held.
func (rm *room) vcard(ctx context.Context, ev *router.Event, typ string, q *xmlstream.Element) (*xmlstream.Element, *stanza.Error) {
	aff := rm.affiliation(ev.From.Bare())
	if typ == stanza.IQGet {
		if aff == affOutcast {
			return nil, stanza.NewError(stanza.Forbidden, "you are banned from this room")
		}
		if rm.vcardXML == nil {
			return xmlstream.NewElement(NSVCard, "vCard"), nil
		}
		return rm.vcardXML, nil
	}
	if aff != affOwner {
		return nil, stanza.NewError(stanza.Forbidden, "only owners may change the room's vCard")
	}
	if n := len(q.AppendXML(nil, stanza.NSClient)); n > maxVCardBytes {
		return nil, stanza.NewError(stanza.NotAcceptable, "the vCard is too large (at most 128 KiB)")
	}
	if len(q.Children) == 0 {
		rm.vcardXML = nil
	} else {
		rm.vcardXML = q.Copy()
	}
	rm.avatarHash = avatarHash(rm.vcardXML)
	rm.persist(ctx)
	change := stanza.NewMessage(stanza.NSClient, stanza.MessageGroupchat, "", rm.jid.String(), "").Append(
		xmlstream.NewElement(NSUser, "x").Append(xmlstream.NewElement(NSUser, "status").SetAttr("code", "104")))
	sh, pres := queue.NewShared(change), queue.NewShared(rm.avatarPresence(""))
	for _, o := range rm.occupants {
		for _, s := range o.sessions {
			rm.mod().r.DeliverShared(ctx, pres, s.full)
			rm.mod().r.DeliverShared(ctx, sh, s.full)
		}
	}
	return nil, nil
}

// avatarPresence is the room's presence from its bare JID to to ("" for
// none) with its avatar's hash (empty when it has none), XEP-0486 §3.
func (rm *room) avatarPresence(to string) *xmlstream.Element {
	photo := xmlstream.NewElement(NSVCardUpdate, "photo")
	if rm.avatarHash != "" {
		photo.AppendText(rm.avatarHash)
	}
	return stanza.NewPresence(stanza.NSClient, "", to, rm.jid.String(), "").Append(
		xmlstream.NewElement(NSVCardUpdate, "x").Append(photo))
}

// avatarHash is the SHA-1 of the vCard's PHOTO, hex, or "" (XEP-0153).
func avatarHash(v *xmlstream.Element) string {
	if v == nil {
		return ""
	}
	photo := v.Child(NSVCard, "PHOTO")
	if photo == nil {
		return ""
	}
	bin := photo.Child(NSVCard, "BINVAL")
	if bin == nil {
		return ""
	}
	data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(bin.Text()), ""))
	if err != nil || len(data) == 0 {
		return ""
	}
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:])
}

// formValue returns the first value of the field name of the data form
// x, or "" (also for a form that is not valid: a field twice).
func formValue(x *xmlstream.Element, name string) string {
	f, err := dataform.Parse(x)
	if err != nil {
		return ""
	}
	return f.Value(name)
}
