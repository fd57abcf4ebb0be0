package muc

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// XEP-0317's ad-hoc commands (XEP-0050) on a room's JID: an owner or an
// admin gives a user a hat (don) or takes it back (doff).
const (
	// NSCommands is XEP-0050's namespace, also the disco node that lists
	// a room's commands.
	NSCommands = "http://jabber.org/protocol/commands"
	// NodeDonHat and NodeDoffHat are the commands' nodes (XEP-0317 §3.2,
	// §3.3); FormHats is their forms' FORM_TYPE.
	NodeDonHat  = "urn:xmpp:hats:commands:don"
	NodeDoffHat = "urn:xmpp:hats:commands:doff"
	FormHats    = "urn:xmpp:hats:commands"
)

// Bounds of a room's command sessions: how many may wait for their form
// at once, and for how long.
const (
	maxHatSessions = 16
	hatSessionTTL  = 10 * time.Minute
)

// hatCommandNames name the commands in disco.
var hatCommandNames = map[string]string{NodeDonHat: "Give a hat", NodeDoffHat: "Take a hat back"}

// hatSession is a command that sent its form and waits for it.
type hatSession struct {
	node, from string // the command, and the full JID that runs it
	expires    time.Time
}

// hatCommands lists the commands (disco#items of the commands node) for
// from: both to owners and admins, none to others; rm.mu is held.
func (rm *room) hatCommands(from jid.JID) *xmlstream.Element {
	q := xmlstream.NewElement(stanza.NSDiscoItems, "query").SetAttr("node", NSCommands)
	if rm.givesHats(from) {
		for _, node := range []string{NodeDonHat, NodeDoffHat} {
			q.Append(xmlstream.NewElement(stanza.NSDiscoItems, "item").SetAttr("jid", rm.jid.String()).
				SetAttr("node", node).SetAttr("name", hatCommandNames[node]))
		}
	}
	return q
}

// hatCommandInfo is the disco#info of a command's node (XEP-0050 §2.3).
func hatCommandInfo(node string) *xmlstream.Element {
	return xmlstream.NewElement(stanza.NSDiscoInfo, "query").SetAttr("node", node).Append(
		xmlstream.NewElement(stanza.NSDiscoInfo, "identity").SetAttr("category", "automation").
			SetAttr("type", "command-node").SetAttr("name", hatCommandNames[node]),
		xmlstream.NewElement(stanza.NSDiscoInfo, "feature").SetAttr("var", NSCommands),
		xmlstream.NewElement(stanza.NSDiscoInfo, "feature").SetAttr("var", dataform.NS))
}

func commandError(cond stanza.Condition, app string) *stanza.Error {
	e := stanza.NewError(cond, "")
	e.App = xmlstream.NewElement(NSCommands, app)
	return e
}

// hatCommand runs an iq set <command/> to the room (XEP-0050 §3, §4): a
// first execute gets the form, its submission does the work; an execute
// that carries the submitted form already (XEP-0317's doff example) runs
// at once. rm.mu is held.
func (rm *room) hatCommand(ctx context.Context, ev *router.Event, q *xmlstream.Element) (*xmlstream.Element, *stanza.Error) {
	node := q.Attribute("node")
	if node != NodeDonHat && node != NodeDoffHat {
		return nil, stanza.NewError(stanza.ItemNotFound, "no such command")
	}
	if !rm.givesHats(ev.From) {
		return nil, errNoHats()
	}
	now := rm.mod().now()
	for sid, s := range rm.hatSessions {
		if now.After(s.expires) {
			delete(rm.hatSessions, sid)
		}
	}
	sid, action := q.Attribute("sessionid"), q.Attribute("action")
	if sid != "" {
		s, ok := rm.hatSessions[sid]
		if !ok || s.node != node || s.from != ev.From.String() {
			return nil, commandError(stanza.BadRequest, "bad-sessionid")
		}
		delete(rm.hatSessions, sid)
	}
	reply := func(status string) *xmlstream.Element {
		return xmlstream.NewElement(NSCommands, "command").SetAttr("node", node).SetAttr("sessionid", sid).SetAttr("status", status)
	}
	switch action {
	case "cancel":
		return reply("canceled"), nil
	case "", "execute", "complete":
	default:
		return nil, commandError(stanza.BadRequest, "bad-action")
	}
	x := q.Child(dataform.NS, "x")
	if x == nil || x.Attribute("type") != dataform.TypeSubmit {
		if sid != "" {
			return nil, commandError(stanza.BadRequest, "bad-payload")
		}
		if len(rm.hatSessions) >= maxHatSessions {
			return nil, stanza.NewError(stanza.ResourceConstraint, "too many commands in progress in this room")
		}
		if rm.hatSessions == nil {
			rm.hatSessions = make(map[string]hatSession)
		}
		sid = rand.Text()
		rm.hatSessions[sid] = hatSession{node: node, from: ev.From.String(), expires: now.Add(hatSessionTTL)}
		res := reply("executing")
		res.Append(xmlstream.NewElement(NSCommands, "actions").SetAttr("execute", "complete").
			Append(xmlstream.NewElement(NSCommands, "complete")))
		return res.Append(rm.hatForm(node).Element()), nil
	}
	form, err := dataform.Parse(x)
	if err != nil || (form.FormType != "" && form.FormType != FormHats) {
		return nil, commandError(stanza.BadRequest, "bad-payload")
	}
	user, perr := jid.Parse(form.Value("accountjid"))
	uri := form.Value("hat")
	if perr != nil || uri == "" {
		return nil, commandError(stanza.BadRequest, "bad-payload")
	}
	change := func(hats []Hat) ([]Hat, error) {
		if node == NodeDoffHat {
			return takeHat(hats, uri)
		}
		hat := Hat{URI: uri, Title: form.Value("hat_title")}
		if hat.Title == "" {
			hat.Title = rm.hatTitle(uri)
		}
		return putHat(hats, hat)
	}
	if err := rm.changeHatsLocked(ctx, user, change); err != nil {
		var se *stanza.Error
		if !errors.As(err, &se) {
			se = stanza.NewError(stanza.InternalServerError, "")
		}
		return nil, se
	}
	res := reply("completed")
	return res.Append(xmlstream.NewElement(NSCommands, "note").SetAttr("type", "info").AppendText("Done.")), nil
}

// hatForm is the form of a command: the user and the hat's URI, and for
// don its title (XEP-0317's example offers a list of the service's hats;
// a room has no catalogue, so the URI is typed).
func (rm *room) hatForm(node string) *dataform.Form {
	f := dataform.New(dataform.TypeForm, FormHats)
	if node == NodeDonHat {
		f.Title, f.Instructions = "Assigning a hat", "Fill out this form to assign a hat."
	} else {
		f.Title, f.Instructions = "Removing a hat", "Fill out this form to remove a hat."
	}
	f.Add("accountjid", "jid-single", "User Address").Required = true
	hat := f.Add("hat", "text-single", "The hat's URI")
	hat.Required = true
	if node == NodeDonHat {
		f.Add("hat_title", "text-single", "The hat's title (the title it has in the room if empty)")
	}
	return f
}

// hatTitle is the title of the hat with the URI as someone in the room
// wears it, or the URI itself; rm.mu is held.
func (rm *room) hatTitle(uri string) string {
	for _, hats := range rm.hats {
		for _, h := range hats {
			if h.URI == uri {
				return h.Title
			}
		}
	}
	return uri
}
