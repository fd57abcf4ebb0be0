package session

import (
	"bytes"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Shared is a stanza that a service sends to many recipients which differ
// only in its 'to' (a groupchat message or an occupant's presence to
// every occupant of a room): it is serialised once, and each recipient's
// queue copies the bytes with its own address spliced in, without
// serialising the element again.
//
// El and its children must not change once the Shared was made: every
// recipient, and the hooks that see it on the way, share them.
type Shared struct {
	// El is the stanza without a 'to'.
	El *xmlstream.Element

	head []byte // `<message to="`
	tail []byte // `" from="…" …>…</message>`
}

// NewShared serialises el (whose 'to', if any, is ignored) for many
// recipients.
func NewShared(el *xmlstream.Element) *Shared {
	sh := &Shared{El: el}
	b := sh.Addressed("").AppendXML(make([]byte, 0, 256), stanza.NSClient)
	// In the jabber:client scope the element starts with its name and
	// the (empty) 'to', written first.
	n := len("<") + len(el.Name.Local) + len(` to="`)
	if el.Name.Space == stanza.NSClient && len(b) > n && bytes.HasPrefix(b[1:], []byte(el.Name.Local+` to="`)) {
		sh.head, sh.tail = b[:n], b[n:]
	}
	return sh
}

// AppendTo appends the stanza addressed to to: the serialisation of
// Addressed(to).
func (sh *Shared) AppendTo(dst []byte, to string) []byte {
	if sh.head == nil {
		return sh.Addressed(to).AppendXML(dst, stanza.NSClient)
	}
	dst = append(dst, sh.head...)
	dst = xmlstream.AppendEscaped(dst, to, true)
	return append(dst, sh.tail...)
}

// Addressed returns a shallow copy of the stanza addressed to to, 'to'
// first: the children are shared, the attributes copied.
func (sh *Shared) Addressed(to string) *xmlstream.Element {
	c := *sh.El
	c.Attr = append(make([]xmlstream.Attr, 0, len(sh.El.Attr)+1), xmlstream.Attr{Name: xmlstream.Name{Local: "to"}, Value: to})
	for _, a := range sh.El.Attr {
		if a.Name.Space != "" || a.Name.Local != "to" {
			c.Attr = append(c.Attr, a)
		}
	}
	c.Children = sh.El.Children[:len(sh.El.Children):len(sh.El.Children)]
	return &c
}
