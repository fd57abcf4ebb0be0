// Package carbons implements XEP-0280 Message Carbons (urn:xmpp:carbons:2,
// version 1.0.1): a user's clients that enable carbons see the messages
// their other clients send and receive.
//
//   - Enabling and disabling (§4, §5): <enable/> and <disable/> IQ sets
//     from a local session to its own account (no 'to', its bare JID, or
//     its server) switch carbons on or off for that session; repeating one
//     is not an error (§10.1). Addressed to another account, or from a
//     remote entity, they get not-allowed. The state is the session's
//     (session.Key): it lasts as long as the session, stream-management
//     resumptions included.
//   - Received copies (§7): after an eligible message to a local account
//     was queued to some of its resources (to the full JID, or to the
//     highest-priority ones for the bare JID), each other resource that
//     enabled carbons gets
//     <message from='user@domain' to='its full JID' type='(the original's)'>
//     <received xmlns='urn:xmpp:carbons:2'><forwarded
//     xmlns='urn:xmpp:forward:0'>(the original)</forwarded></received>
//     </message>. This holds for messages from other servers too.
//   - Sent copies (§8): an eligible message a local session sends to
//     another address gets the same wrapping with <sent/> to each other
//     resource of the sender that enabled carbons, whether or not the
//     sender did; never to the sender itself. A message to the sender's
//     own account gets only received copies, so that each resource sees it
//     once.
//   - Eligibility (§6.1): type chat; type normal (or none) with a <body/>
//     or an IM payload (chat states, receipts, chat markers, XEP-0249 and
//     mediated invitations); type error when it carries such content (the
//     bounce of an eligible message, whose original children RFC 6120
//     §8.3.1 lets it repeat) or comes from a bare JID. Never groupchat or
//     headline messages, messages with <private xmlns='urn:xmpp:carbons:2'/>
//     (§9, left in place as 1.0 requires) or <no-copy xmlns='urn:xmpp:hints'/>
//     (XEP-0334), private messages received from a MUC occupant (the
//     room already sends them to every joined client), MAM results, and
//     messages that already carry <received/> or <sent/>: no carbon of a
//     carbon, and a carbon forged by another entity (whose 'from' is not
//     the user's bare JID, which clients must check, §11) is delivered as
//     it is but never copied.
//
// Copies are queued with Session.Deliver like any stanza: counted and
// resent by stream management; under client state indication they go out
// at once (the queue sees a message that is neither a presence nor a bare
// chat state). A copy a stream-managed session ended without acknowledging
// comes back to the account (c2s): it is not stored offline.
//
// The server does not advertise urn:xmpp:carbons:rules:0: the error rule
// is a heuristic, and MUC private messages are copied to every
// carbons-enabled resource, not only those sharing the nickname.
package carbons

import (
	"context"
	"strings"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of XEP-0280 and the payloads its eligibility rules name.
const (
	// NS is the XEP-0280 namespace (enable, disable, received, sent,
	// private).
	NS = "urn:xmpp:carbons:2"
	// NSForward is XEP-0297 Stanza Forwarding's namespace.
	NSForward = "urn:xmpp:forward:0"
	// NSHints is XEP-0334's namespace (<no-copy/>).
	NSHints = "urn:xmpp:hints"
	// NSMUCUser is XEP-0045's namespace of <x/> in room traffic.
	NSMUCUser = "http://jabber.org/protocol/muc#user"
	// NSStanzaID is XEP-0359's namespace.
	NSStanzaID = "urn:xmpp:sid:0"

	nsChatStates = "http://jabber.org/protocol/chatstates" // XEP-0085
	nsReceipts   = "urn:xmpp:receipts"                     // XEP-0184
	nsMarkers    = "urn:xmpp:chat-markers:0"               // XEP-0333
	nsConference = "jabber:x:conference"                   // XEP-0249
)

// HookPriority is the priority of the outbound hook: low, so that the
// hooks that stop a message (blocking) run first and a message they stop
// is not copied.
const HookPriority = -1000

// UndeliverablePriority is the priority of the undeliverable hook: above
// offline storage (0).
const UndeliverablePriority = 100

// enabled marks the sessions that enabled carbons: by an IQ here, or
// inline in XEP-0386 Bind2 (c2s), which sets the same key.
var enabled = session.Carbons

// Module is the carbons module.
type Module struct {
	r *router.Router
}

var _ module.Module = (*Module)(nil)

// Info describes the module to the server.
var Info = module.Info{
	Name: "carbons",
	XEPs: []string{"XEP-0280"},
	New:  module.Plain(New),
}

// New returns the carbons module.
func New(module.Deps) (*Module, error) { return &Module{}, nil }

// Name implements module.Module.
func (m *Module) Name() string { return "carbons" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	m.r = r
	r.AddFeature(NS)
	classes := router.ClassServer | router.ClassSelf | router.ClassBare
	r.HandleIQ(stanza.IQSet, classes, NS, "enable", m.toggle(true))
	r.HandleIQ(stanza.IQSet, classes, NS, "disable", m.toggle(false))
	r.HookOutbound(HookPriority, m.outbound)
	r.HookDelivered(0, m.delivered)
	r.HookUndeliverable(UndeliverablePriority, m.undeliverable)
}

// Enabled reports whether the session s enabled carbons.
func Enabled(s router.Session) bool {
	on, _ := enabled.Get(s.Values())
	return on
}

// toggle handles <enable/> (on) and <disable/>: only a local session may
// switch its own carbons, addressing its account or its server (§4.1:
// not-allowed for the others).
func (m *Module) toggle(on bool) router.IQHandler {
	return func(_ context.Context, ev *router.Event) (*xmlstream.Element, error) {
		s := ev.Origin
		own := ev.Class == router.ClassSelf ||
			(ev.Class == router.ClassServer && ev.To.DomainString() == ev.From.DomainString())
		if s == nil || !own {
			return nil, stanza.NewError(stanza.NotAllowed, "")
		}
		if on {
			enabled.Set(s.Values(), true)
		} else {
			enabled.Delete(s.Values())
		}
		return nil, nil
	}
}

// outbound sends <sent/> copies of an eligible message from a local
// session to the sender's other carbons-enabled resources. It never
// handles the message.
func (m *Module) outbound(_ context.Context, ev *router.Event) bool {
	st := ev.El
	if st.Name.Local != "message" || ev.Origin == nil {
		return false
	}
	if ev.Class == router.ClassServer || ev.To.Bare().Equal(ev.From.Bare()) {
		// To the server, or to the sender's own account (ClassSelf, or
		// another of its resources): the delivered phase copies the
		// latter (received) to the resources it did not reach.
		return false
	}
	user := ev.From.Bare()
	if m.r.SessionCount(user) < 2 || !Eligible(st, ev.From, false) {
		return false // no other resource to copy to
	}
	if id := ev.SenderArchiveID; id != "" {
		// XEP-0313 §3.5: the other devices learn the id under which the
		// sender's archive keeps the message. The recipient must not see
		// it: the copy is the carbon's own.
		st = st.Copy().Append(xmlstream.NewElement(NSStanzaID, "stanza-id").SetAttr("by", user.String()).SetAttr("id", id))
	}
	m.copyTo(user, "sent", st, func(s router.Session) bool { return s != ev.Origin })
	return false
}

// delivered sends <received/> copies of an eligible message the router
// queued to the sessions in to: to every other carbons-enabled resource
// of the recipient (and not back to the local session that sent it, when
// it went to its own account).
func (m *Module) delivered(_ context.Context, ev *router.Event, to []router.Session) {
	st := ev.El
	if ev.To.Local() == "" || m.r.SessionCount(ev.To) <= len(to) || !Eligible(st, ev.From, true) {
		return // no resource left without the message
	}
	m.copyTo(ev.To.Bare(), "received", st, func(s router.Session) bool {
		if s == ev.Origin {
			return false
		}
		for _, t := range to {
			if t == s {
				return false
			}
		}
		return true
	})
}

// undeliverable drops a carbon that no resource took: the copy a
// stream-managed session ended without acknowledging, which c2s hands
// back to the account (XEP-0198). The original went where it belonged;
// stored offline, the copy would show the message again at the next
// login.
func (m *Module) undeliverable(_ context.Context, ev *router.Event) bool {
	st := ev.El
	return st.Name.Local == "message" && ev.From.Local() != "" && ev.From.IsBare() &&
		ev.From.Equal(ev.To.Bare()) && (st.Child(NS, "received") != nil || st.Child(NS, "sent") != nil)
}

// copyTo queues a carbon of st wrapped in <kind/> to each of user's
// sessions that enabled carbons and that want accepts. A session that
// refuses it (closing, full queue) is skipped: a carbon's failure is never
// reported to the original sender (§10.3).
func (m *Module) copyTo(user jid.JID, kind string, st *xmlstream.Element, want func(router.Session) bool) {
	var c *xmlstream.Element
	for _, s := range m.r.Sessions(user) {
		if !Enabled(s) || !want(s) {
			continue
		}
		if c == nil {
			c = Wrap(kind, user, st)
		}
		// Deliver serialises the stanza (or copies it while holding it),
		// so the one element serves every session with its own 'to'.
		c.SetAttr("to", s.JID().String())
		_ = s.Deliver(c)
	}
}

// Wrap returns the carbon of the message st for the account user, with
// the wrapper kind ("received" or "sent"), the type of st and no 'to'
// (§7, §8). st becomes a child of the result: it is not copied.
func Wrap(kind string, user jid.JID, st *xmlstream.Element) *xmlstream.Element {
	fwd := xmlstream.NewElement(NSForward, "forwarded").Append(st)
	return stanza.NewMessage(stanza.NSClient, stanza.Type(st), "", user.Bare().String(), "").
		Append(xmlstream.NewElement(NS, kind).Append(fwd))
}

// Eligible reports whether the message st, from from, is copied (§6.1);
// received says whether it is being delivered to a local account rather
// than sent by one.
func Eligible(st *xmlstream.Element, from jid.JID, received bool) bool {
	im, mucUser, invite := false, false, false
	for _, c := range st.Children {
		e := c.Elem
		if e == nil {
			continue
		}
		switch {
		case e.Name.Space == NS:
			return false // <private/>, or already a carbon (or a forged one)
		case e.Name.Space == NSHints && e.Name.Local == "no-copy":
			return false
		case e.Name.Local == "result" && strings.HasPrefix(e.Name.Space, "urn:xmpp:mam:"):
			return false // an archive query's result
		case e.Name.Space == st.Name.Space && e.Name.Local == "body",
			e.Name.Space == nsChatStates, e.Name.Space == nsReceipts, e.Name.Space == nsMarkers,
			e.Name.Space == nsConference && e.Name.Local == "x":
			im = true
		case e.Name.Space == NSMUCUser && e.Name.Local == "x":
			mucUser = true
			if e.Child(NSMUCUser, "invite") != nil {
				invite = true
			}
		}
	}
	if received && mucUser && !invite && from.Resource() != "" {
		// A private message from a room occupant: the room delivers it
		// to each of the user's joined clients (§6.1).
		return false
	}
	switch stanza.Type(st) {
	case stanza.MessageChat:
		return true
	case "", stanza.MessageNormal:
		return im || invite
	case stanza.MessageError:
		return im || (received && from.Local() != "" && from.IsBare())
	}
	return false // groupchat, headline, unknown types
}
