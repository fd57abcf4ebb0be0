// Package stanza provides helpers for XMPP's three stanza kinds (message,
// presence and iq, RFC 6120 §8) over xmlstream elements, and stanza
// errors (RFC 6120 §8.3).
package stanza

import (
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces used by stanzas and the core extensions.
const (
	// NSClient is the content namespace of client-to-server streams.
	NSClient = "jabber:client"
	// NSServer is the content namespace of server-to-server streams.
	NSServer = "jabber:server"
	// NSStanzas is the namespace of stanza error conditions.
	NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
	// NSPing is XEP-0199 XMPP Ping.
	NSPing = "urn:xmpp:ping"
	// NSDiscoInfo is XEP-0030 service discovery, info.
	NSDiscoInfo = "http://jabber.org/protocol/disco#info"
	// NSDiscoItems is XEP-0030 service discovery, items.
	NSDiscoItems = "http://jabber.org/protocol/disco#items"
	// NSRoster is the RFC 6121 roster namespace.
	NSRoster = "jabber:iq:roster"
	// NSDelay is XEP-0203 delayed delivery.
	NSDelay = "urn:xmpp:delay"
	// NSVersion is XEP-0092 software version.
	NSVersion = "jabber:iq:version"
)

// The values of the 'type' attribute of each stanza kind (RFC 6120 §8.2.3,
// RFC 6121 §4.7.1, §5.2.2).
const (
	IQGet    = "get"
	IQSet    = "set"
	IQResult = "result"
	IQError  = "error"

	MessageNormal    = "normal"
	MessageChat      = "chat"
	MessageGroupchat = "groupchat"
	MessageHeadline  = "headline"
	MessageError     = "error"

	PresenceUnavailable  = "unavailable"
	PresenceSubscribe    = "subscribe"
	PresenceSubscribed   = "subscribed"
	PresenceUnsubscribe  = "unsubscribe"
	PresenceUnsubscribed = "unsubscribed"
	PresenceProbe        = "probe"
	PresenceError        = "error"
)

// IsStanza reports whether e is a message, presence or iq element in
// either content namespace.
func IsStanza(e *xmlstream.Element) bool {
	if e == nil || (e.Name.Space != NSClient && e.Name.Space != NSServer) {
		return false
	}
	switch e.Name.Local {
	case "message", "presence", "iq":
		return true
	}
	return false
}

// To returns the 'to' attribute.
func To(e *xmlstream.Element) string { return e.Attribute("to") }

// From returns the 'from' attribute.
func From(e *xmlstream.Element) string { return e.Attribute("from") }

// ID returns the 'id' attribute.
func ID(e *xmlstream.Element) string { return e.Attribute("id") }

// Type returns the 'type' attribute as sent; an absent type is "" (which
// means "normal" for a message and "available" for a presence).
func Type(e *xmlstream.Element) string { return e.Attribute("type") }

func newStanza(ns, kind, typ, to, from, id string) *xmlstream.Element {
	e := xmlstream.NewElement(ns, kind)
	if typ != "" {
		e.SetAttr("type", typ)
	}
	if to != "" {
		e.SetAttr("to", to)
	}
	if from != "" {
		e.SetAttr("from", from)
	}
	if id != "" {
		e.SetAttr("id", id)
	}
	return e
}

// NewMessage builds a <message/> in namespace ns; empty arguments are
// left out.
func NewMessage(ns, typ, to, from, id string) *xmlstream.Element {
	return newStanza(ns, "message", typ, to, from, id)
}

// NewPresence builds a <presence/> in namespace ns; empty arguments are
// left out.
func NewPresence(ns, typ, to, from, id string) *xmlstream.Element {
	return newStanza(ns, "presence", typ, to, from, id)
}

// NewIQ builds an <iq/> in namespace ns; empty arguments are left out.
func NewIQ(ns, typ, to, from, id string) *xmlstream.Element {
	return newStanza(ns, "iq", typ, to, from, id)
}

// IQResultFor builds the empty result for the iq request req: same id and
// namespace, 'to' and 'from' swapped.
func IQResultFor(req *xmlstream.Element) *xmlstream.Element {
	return NewIQ(req.Name.Space, IQResult, From(req), To(req), ID(req))
}

// ValidateIQ checks the rules of RFC 6120 §8.2.3: an id is required, the
// type must be one of the four, a get or set carries exactly one child
// (the payload), a result at most one. It returns a *Error with
// bad-request when a rule is broken.
func ValidateIQ(iq *xmlstream.Element) error {
	if ID(iq) == "" {
		return NewError(BadRequest, "iq without id")
	}
	n := 0
	for _, c := range iq.Children {
		if c.Elem != nil {
			n++
		}
	}
	switch Type(iq) {
	case IQGet, IQSet:
		if n != 1 {
			return NewError(BadRequest, "iq get and set carry exactly one payload")
		}
	case IQResult:
		if n > 1 {
			return NewError(BadRequest, "iq result carries at most one payload")
		}
	case IQError:
	default:
		return NewError(BadRequest, "unknown iq type")
	}
	return nil
}

// Payload returns the first child element of an iq, or nil.
func Payload(iq *xmlstream.Element) *xmlstream.Element {
	for _, c := range iq.Children {
		if c.Elem != nil && !(c.Elem.Name.Local == "error" && c.Elem.Name.Space == iq.Name.Space) {
			return c.Elem
		}
	}
	return nil
}

// Translate returns st with every element in the content namespace from
// (jabber:client or jabber:server) moved to the namespace to, as a server
// does when it passes a stanza between a client stream and a server stream
// (RFC 6120 §4.8.3). st itself is returned when nothing needs to change;
// otherwise the result is a copy and st is left as it was.
func Translate(st *xmlstream.Element, from, to string) *xmlstream.Element {
	if !usesNS(st, from) {
		return st
	}
	c := st.Copy()
	translateInPlace(c, from, to)
	return c
}

// TranslateInPlace is Translate for an element the caller owns.
func TranslateInPlace(st *xmlstream.Element, from, to string) {
	translateInPlace(st, from, to)
}

func usesNS(e *xmlstream.Element, ns string) bool {
	if e.Name.Space == ns {
		return true
	}
	for _, c := range e.Children {
		if c.Elem != nil && usesNS(c.Elem, ns) {
			return true
		}
	}
	return false
}

func translateInPlace(e *xmlstream.Element, from, to string) {
	if e.Name.Space == from {
		e.Name.Space = to
	}
	for _, c := range e.Children {
		if c.Elem != nil {
			translateInPlace(c.Elem, from, to)
		}
	}
}
