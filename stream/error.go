package stream

import (
	"errors"
	"io"
	"net"
	"os"

	"github.com/ode-xmpp/ode/xmlstream"
)

// Condition is a stream error condition of RFC 6120 §4.9.3; its value is
// the element name.
type Condition string

// The defined stream error conditions (RFC 6120 §4.9.3).
const (
	BadFormat              Condition = "bad-format"
	BadNamespacePrefix     Condition = "bad-namespace-prefix"
	Conflict               Condition = "conflict"
	ConnectionTimeout      Condition = "connection-timeout"
	HostGone               Condition = "host-gone"
	HostUnknown            Condition = "host-unknown"
	ImproperAddressing     Condition = "improper-addressing"
	InternalServerError    Condition = "internal-server-error"
	InvalidFrom            Condition = "invalid-from"
	InvalidNamespace       Condition = "invalid-namespace"
	InvalidXML             Condition = "invalid-xml"
	NotAuthorized          Condition = "not-authorized"
	NotWellFormed          Condition = "not-well-formed"
	PolicyViolation        Condition = "policy-violation"
	RemoteConnectionFailed Condition = "remote-connection-failed"
	Reset                  Condition = "reset"
	ResourceConstraint     Condition = "resource-constraint"
	RestrictedXML          Condition = "restricted-xml"
	SeeOtherHost           Condition = "see-other-host"
	SystemShutdown         Condition = "system-shutdown"
	UndefinedCondition     Condition = "undefined-condition"
	UnsupportedEncoding    Condition = "unsupported-encoding"
	UnsupportedFeature     Condition = "unsupported-feature"
	UnsupportedStanzaType  Condition = "unsupported-stanza-type"
	UnsupportedVersion     Condition = "unsupported-version"
)

var conditions = map[Condition]bool{
	BadFormat: true, BadNamespacePrefix: true, Conflict: true, ConnectionTimeout: true,
	HostGone: true, HostUnknown: true, ImproperAddressing: true, InternalServerError: true,
	InvalidFrom: true, InvalidNamespace: true, InvalidXML: true, NotAuthorized: true,
	NotWellFormed: true, PolicyViolation: true, RemoteConnectionFailed: true, Reset: true,
	ResourceConstraint: true, RestrictedXML: true, SeeOtherHost: true, SystemShutdown: true,
	UndefinedCondition: true, UnsupportedEncoding: true, UnsupportedFeature: true,
	UnsupportedStanzaType: true, UnsupportedVersion: true,
}

// Defined reports whether c is one of the RFC 6120 conditions.
func (c Condition) Defined() bool { return conditions[c] }

// Error is a stream error (RFC 6120 §4.9). It is fatal: the stream is
// closed after it is sent.
type Error struct {
	Condition Condition
	// Text is an optional human-readable description.
	Text string
	// Lang is the xml:lang of Text, if any.
	Lang string
	// Host is the character data of <see-other-host/>.
	Host string
	// App is an optional application-specific condition element.
	App *xmlstream.Element
}

// Error returns a description for logs.
func (e *Error) Error() string {
	s := "stream error: " + string(e.Condition)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Is reports whether target is a *Error with the same condition, so that
// errors.Is(err, &stream.Error{Condition: stream.Conflict}) works.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Condition == e.Condition
}

// Element returns the <stream:error/> element.
func (e *Error) Element() *xmlstream.Element {
	el := xmlstream.NewElement(NS, "error")
	cond := xmlstream.NewElement(NSErrors, string(e.Condition))
	if e.Condition == SeeOtherHost && e.Host != "" {
		cond.AppendText(e.Host)
	}
	el.Append(cond)
	if e.Text != "" {
		t := xmlstream.NewElement(NSErrors, "text").AppendText(e.Text)
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

// AppendXML appends the error as <stream:error> for a stream whose header
// bound the "stream" prefix.
func (e *Error) AppendXML(dst []byte) []byte {
	dst = append(dst, "<stream:error>"...)
	for _, c := range e.Element().Children {
		dst = c.Elem.AppendXML(dst, NS)
	}
	return append(dst, "</stream:error>"...)
}

// ParseError reads a received {NS}error element. An unknown condition is
// kept as is; a missing one is reported as undefined-condition.
func ParseError(el *xmlstream.Element) (*Error, error) {
	if el == nil || el.Name.Space != NS || el.Name.Local != "error" {
		return nil, errors.New("stream: not a stream error element")
	}
	e := &Error{}
	for _, c := range el.Children {
		ch := c.Elem
		if ch == nil {
			continue
		}
		switch {
		case ch.Name.Space == NSErrors && ch.Name.Local == "text":
			e.Text = ch.Text()
			e.Lang, _ = ch.LookupAttr(xmlstream.NSXML, "lang")
		case ch.Name.Space == NSErrors && e.Condition == "":
			e.Condition = Condition(ch.Name.Local)
			if e.Condition == SeeOtherHost {
				e.Host = ch.Text()
			}
		case ch.Name.Space != NSErrors && e.App == nil:
			e.App = ch
		}
	}
	if e.Condition == "" {
		e.Condition = UndefinedCondition
	}
	return e, nil
}

// FromXMLError maps an xmlstream parse error to the stream error to send,
// or returns nil when err is not one (an I/O error, for instance).
func FromXMLError(err error) *Error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	var xe *xmlstream.Error
	if !errors.As(err, &xe) {
		return nil
	}
	c := Condition(xe.Cond)
	if !c.Defined() {
		c = NotWellFormed
	}
	return &Error{Condition: c}
}

// FromReadError returns the stream error a server sends after handling a
// stream failed with err: err's own stream error, connection-timeout for
// an expired read deadline, or the condition of an XML error (see
// FromXMLError). It returns nil when there is nothing to send: the
// connection is gone (EOF, closed) or err is not about the stream.
func FromReadError(err error) *Error {
	var se *Error
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &Error{Condition: ConnectionTimeout}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return nil
	}
	return FromXMLError(err)
}
