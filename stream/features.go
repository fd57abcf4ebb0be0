package stream

import (
	"errors"

	"github.com/ode-xmpp/ode/xmlstream"
)

// Features is a parsed <stream:features/> element (RFC 6120 §4.3.2).
type Features struct {
	// StartTLS is set when STARTTLS is offered; StartTLSRequired when
	// it carries <required/>.
	StartTLS         bool
	StartTLSRequired bool
	// Mechanisms lists the SASL mechanisms offered, in order.
	Mechanisms []string
	// Bind is set when resource binding is offered.
	Bind bool
	// Session is set when RFC 3921 session establishment is offered;
	// SessionOptional when it is marked <optional/>.
	Session         bool
	SessionOptional bool
	// Other holds every feature this type does not model.
	Other []*xmlstream.Element
}

// ParseFeatures reads a {NS}features element.
func ParseFeatures(el *xmlstream.Element) (Features, error) {
	var f Features
	if el == nil || el.Name.Space != NS || el.Name.Local != "features" {
		return f, errors.New("stream: not a stream features element")
	}
	for _, c := range el.Children {
		ch := c.Elem
		if ch == nil {
			continue
		}
		switch {
		case ch.Name.Space == NSTLS && ch.Name.Local == "starttls":
			f.StartTLS = true
			f.StartTLSRequired = ch.Child(NSTLS, "required") != nil
		case ch.Name.Space == NSSASL && ch.Name.Local == "mechanisms":
			for _, m := range ch.ChildrenNS(NSSASL) {
				if m.Name.Local == "mechanism" {
					f.Mechanisms = append(f.Mechanisms, m.Text())
				}
			}
		case ch.Name.Space == NSBind && ch.Name.Local == "bind":
			f.Bind = true
		case ch.Name.Space == NSSession && ch.Name.Local == "session":
			f.Session = true
			f.SessionOptional = ch.Child(NSSession, "optional") != nil
		default:
			f.Other = append(f.Other, ch)
		}
	}
	return f, nil
}

// Element builds the {NS}features element.
func (f Features) Element() *xmlstream.Element {
	el := xmlstream.NewElement(NS, "features")
	if f.StartTLS {
		st := xmlstream.NewElement(NSTLS, "starttls")
		if f.StartTLSRequired {
			st.Append(xmlstream.NewElement(NSTLS, "required"))
		}
		el.Append(st)
	}
	if len(f.Mechanisms) > 0 {
		ms := xmlstream.NewElement(NSSASL, "mechanisms")
		for _, m := range f.Mechanisms {
			ms.Append(xmlstream.NewElement(NSSASL, "mechanism").AppendText(m))
		}
		el.Append(ms)
	}
	if f.Bind {
		el.Append(xmlstream.NewElement(NSBind, "bind"))
	}
	if f.Session {
		s := xmlstream.NewElement(NSSession, "session")
		if f.SessionOptional {
			s.Append(xmlstream.NewElement(NSSession, "optional"))
		}
		el.Append(s)
	}
	el.Append(f.Other...)
	return el
}
