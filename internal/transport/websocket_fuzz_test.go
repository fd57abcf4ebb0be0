package transport

import (
	"testing"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// FuzzWebSocketFraming checks the splitting of a queue's bytes into one
// WebSocket message per element (RFC 7395 §3.3.3): whatever element the
// server serialises inside a jabber:client stream, two in a row come out
// as two messages that parse on their own, with no default namespace
// inherited, to the same elements.
func FuzzWebSocketFraming(f *testing.F) {
	for _, seed := range []string{
		`<message to='juliet@example.com' type='chat'><body>Wherefore art thou, Romeo?</body></message>`,
		`<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`,
		`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
		`<a xmlns='urn:xmpp:sm:3' h='4294967295'/>`,
		`<iq type='result' id='a&apos;b&gt;'><query xmlns='jabber:iq:roster' ver='1'><item jid='x@y' name='a &lt;b&gt; &quot;c&quot;'/></query></iq>`,
		`<presence from='a@b/c'><status> xmlns='x' </status><x xmlns='vcard-temp:x:update'><photo/></x></presence>`,
		`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.com' id='1' version='1.0'/>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := xmlstream.ParseElement(data, stanza.NSClient)
		if err != nil {
			return
		}
		one := e.AppendXML(nil, stanza.NSClient)
		p := append(append([]byte(" \n"), one...), one...)
		for i := range 2 {
			_, el, rest, err := NextPiece(p)
			if err != nil {
				t.Fatalf("element %d of %q: %v", i, p, err)
			}
			p = rest
			msg := appendMessage(nil, el)
			got, err := xmlstream.ParseElement(msg, "")
			if err != nil {
				t.Fatalf("message %q does not parse alone: %v", msg, err)
			}
			if got.String() != e.String() {
				t.Fatalf("message %q is %s, want %s", msg, got, e)
			}
		}
		if _, el, _, err := NextPiece(p); err != nil || el != nil {
			t.Fatalf("after two elements: %q %v", el, err)
		}
	})
}
