package stanza

import (
	"errors"

	"github.com/ode-xmpp/ode/xmlstream"
)

// ErrorType is the 'type' of a stanza error (RFC 6120 §8.3.2).
type ErrorType string

// The stanza error types.
const (
	Auth     ErrorType = "auth"
	Cancel   ErrorType = "cancel"
	Continue ErrorType = "continue"
	Modify   ErrorType = "modify"
	Wait     ErrorType = "wait"
)

// Condition is a stanza error condition (RFC 6120 §8.3.3); its value is
// the element name.
type Condition string

// The defined stanza error conditions.
const (
	BadRequest            Condition = "bad-request"
	Conflict              Condition = "conflict"
	FeatureNotImplemented Condition = "feature-not-implemented"
	Forbidden             Condition = "forbidden"
	Gone                  Condition = "gone"
	InternalServerError   Condition = "internal-server-error"
	ItemNotFound          Condition = "item-not-found"
	JIDMalformed          Condition = "jid-malformed"
	NotAcceptable         Condition = "not-acceptable"
	NotAllowed            Condition = "not-allowed"
	NotAuthorized         Condition = "not-authorized"
	PolicyViolation       Condition = "policy-violation"
	RecipientUnavailable  Condition = "recipient-unavailable"
	Redirect              Condition = "redirect"
	RegistrationRequired  Condition = "registration-required"
	RemoteServerNotFound  Condition = "remote-server-not-found"
	RemoteServerTimeout   Condition = "remote-server-timeout"
	ResourceConstraint    Condition = "resource-constraint"
	ServiceUnavailable    Condition = "service-unavailable"
	SubscriptionRequired  Condition = "subscription-required"
	UndefinedCondition    Condition = "undefined-condition"
	UnexpectedRequest     Condition = "unexpected-request"
)

// defaultTypes holds the type each condition's RFC 6120 §8.3.3 example
// uses.
var defaultTypes = map[Condition]ErrorType{
	BadRequest:            Modify,
	Conflict:              Cancel,
	FeatureNotImplemented: Cancel,
	Forbidden:             Auth,
	Gone:                  Cancel,
	InternalServerError:   Cancel,
	ItemNotFound:          Cancel,
	JIDMalformed:          Modify,
	NotAcceptable:         Modify,
	NotAllowed:            Cancel,
	NotAuthorized:         Auth,
	PolicyViolation:       Modify,
	RecipientUnavailable:  Wait,
	Redirect:              Modify,
	RegistrationRequired:  Auth,
	RemoteServerNotFound:  Cancel,
	RemoteServerTimeout:   Wait,
	ResourceConstraint:    Wait,
	ServiceUnavailable:    Cancel,
	SubscriptionRequired:  Auth,
	UndefinedCondition:    Cancel,
	UnexpectedRequest:     Wait,
}

// DefaultType returns the error type RFC 6120 §8.3.3 gives for c, and
// cancel for a condition it does not define.
func (c Condition) DefaultType() ErrorType {
	if t, ok := defaultTypes[c]; ok {
		return t
	}
	return Cancel
}

// Defined reports whether c is one of the RFC 6120 conditions.
func (c Condition) Defined() bool {
	_, ok := defaultTypes[c]
	return ok
}

// Error is a stanza error (RFC 6120 §8.3). It implements error; use
// errors.Is with another *Error to compare conditions.
type Error struct {
	Type      ErrorType
	Condition Condition
	// Text is an optional description, in language Lang.
	Text string
	Lang string
	// By is the entity that generated the error, if set.
	By string
	// URI is the character data of <gone/> and <redirect/>.
	URI string
	// App is an optional application-specific condition.
	App *xmlstream.Element
}

// NewError returns an error with cond's default type and optional text.
func NewError(cond Condition, text string) *Error {
	return &Error{Type: cond.DefaultType(), Condition: cond, Text: text}
}

// Error returns a description for logs.
func (e *Error) Error() string {
	s := "stanza error: " + string(e.Type) + " " + string(e.Condition)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Is reports whether target is a *Error with the same condition.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Condition == e.Condition
}

// Element returns the <error/> element in namespace ns (the stanza's).
func (e *Error) Element(ns string) *xmlstream.Element {
	el := xmlstream.NewElement(ns, "error")
	typ := e.Type
	if typ == "" {
		typ = e.Condition.DefaultType()
	}
	el.SetAttr("type", string(typ))
	if e.By != "" {
		el.SetAttr("by", e.By)
	}
	cond := e.Condition
	if cond == "" {
		cond = UndefinedCondition
	}
	c := xmlstream.NewElement(NSStanzas, string(cond))
	if e.URI != "" && (cond == Gone || cond == Redirect) {
		c.AppendText(e.URI)
	}
	el.Append(c)
	if e.Text != "" {
		t := xmlstream.NewElement(NSStanzas, "text").AppendText(e.Text)
		if e.Lang != "" {
			t.SetAttrNS(xmlstream.NSXML, "lang", e.Lang)
		}
		el.Append(t)
	}
	if e.App != nil {
		el.Append(e.App)
	}
	return el
}

// ParseError returns the error carried by a stanza of type error, with ok
// false when st is not one or has no <error/> child.
func ParseError(st *xmlstream.Element) (*Error, bool) {
	if st == nil || Type(st) != "error" {
		return nil, false
	}
	el := st.Child(st.Name.Space, "error")
	if el == nil {
		return nil, false
	}
	e := &Error{Type: ErrorType(el.Attribute("type")), By: el.Attribute("by")}
	for _, c := range el.Children {
		ch := c.Elem
		if ch == nil {
			continue
		}
		switch {
		case ch.Name.Space == NSStanzas && ch.Name.Local == "text":
			e.Text = ch.Text()
			e.Lang, _ = ch.LookupAttr(xmlstream.NSXML, "lang")
		case ch.Name.Space == NSStanzas && e.Condition == "":
			e.Condition = Condition(ch.Name.Local)
			e.URI = ch.Text()
		case ch.Name.Space != NSStanzas && e.App == nil:
			e.App = ch
		}
	}
	if e.Condition == "" {
		e.Condition = UndefinedCondition
	}
	return e, true
}

// ErrorReply builds the error response to st (RFC 6120 §8.3.1): same kind,
// namespace and id, 'to' and 'from' swapped, type error, the original
// children kept (only the payload for an iq), and the error element.
// It returns nil when st is itself an error or an iq result: those are
// never answered with an error.
func ErrorReply(st *xmlstream.Element, e *Error) *xmlstream.Element {
	typ := Type(st)
	if typ == "error" || (st.Name.Local == "iq" && typ == IQResult) {
		return nil
	}
	r := newStanza(st.Name.Space, st.Name.Local, "error", From(st), To(st), ID(st))
	if lang, ok := st.LookupAttr(xmlstream.NSXML, "lang"); ok {
		r.SetAttrNS(xmlstream.NSXML, "lang", lang)
	}
	if st.Name.Local != "iq" {
		for _, c := range st.Children {
			if c.Elem != nil {
				r.Append(c.Elem)
			} else if c.Text != "" {
				r.AppendText(c.Text)
			}
		}
	} else if p := Payload(st); p != nil {
		r.Append(p)
	}
	return r.Append(e.Element(st.Name.Space))
}
