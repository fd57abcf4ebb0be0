package carbons_test

import (
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/modules/carbons"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/xmlstream"
)

// parse reads one jabber:client stanza.
func parse(t testing.TB, s string) *xmlstream.Element {
	t.Helper()
	doc := "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" + s
	r := xmlstream.NewReader(strings.NewReader(doc), xmlstream.Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	e, err := r.Next()
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return e
}

// TestEligible: XEP-0280 §6.1 with XEP-0334's no-copy, both directions.
func TestEligible(t *testing.T) {
	const (
		full = "juliet@capulet.example/balcony"
		bare = "juliet@capulet.example"
		room = "chamber@conference.capulet.example/nurse"
	)
	for _, c := range []struct {
		name string
		from string
		msg  string
		want bool  // when the message is received
		sent *bool // when it is sent, if that differs
	}{
		{"chat", full, `<message type='chat'><body>hi</body></message>`, true, nil},
		{"chat without body", full, `<message type='chat'><thread>t</thread></message>`, true, nil},
		{"chat state", full, `<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`, true, nil},
		{"normal with body", full, `<message><body>hi</body></message>`, true, nil},
		{"type normal with body", full, `<message type='normal'><body>hi</body></message>`, true, nil},
		{"normal without body", full, `<message><x xmlns='jabber:x:oob'><url>http://x</url></x></message>`, false, nil},
		{"normal receipt", full, `<message><received xmlns='urn:xmpp:receipts' id='m1'/></message>`, true, nil},
		{"normal marker", full, `<message><displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>`, true, nil},
		{"direct invitation", full, `<message><x xmlns='jabber:x:conference' jid='room@conference.example'/></message>`, true, nil},
		{"mediated invitation", "room@conference.example", `<message><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b'/></x></message>`, true, nil},
		{"headline", full, `<message type='headline'><body>news</body></message>`, false, nil},
		{"groupchat", room, `<message type='groupchat'><body>hi all</body></message>`, false, nil},
		{"groupchat with muc x", room, `<message type='groupchat'><body>hi</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`, false, nil},
		{"MUC private message received", room, `<message type='chat'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`, false, ptr(true)},
		{"private", full, `<message type='chat'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/></message>`, false, nil},
		{"private alone", full, `<message type='chat'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/></message>`, false, nil},
		{"no-copy alone", full, `<message type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>`, false, nil},
		{"no-store is not no-copy", full, `<message type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>`, true, nil},
		{"a carbon", "romeo@montague.example", `<message type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message type='chat'><body>x</body></message></forwarded></received></message>`, false, nil},
		{"a forged sent carbon", full, `<message type='chat'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message type='chat'><body>x</body></message></forwarded></sent></message>`, false, nil},
		{"MAM result", "romeo@montague.example", `<message><result xmlns='urn:xmpp:mam:2' id='1'><forwarded xmlns='urn:xmpp:forward:0'><message type='chat'><body>x</body></message></forwarded></result></message>`, false, nil},
		{"error bounce with the body", full, `<message type='error'><body>hi</body><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, true, nil},
		{"error bounce from a bare JID", bare, `<message type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, true, ptr(false)},
		{"error without content from a full JID", full, `<message type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, false, nil},
		{"error of a private message", full, `<message type='error'><body>x</body><private xmlns='urn:xmpp:carbons:2'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, false, nil},
		{"unknown type", full, `<message type='bogus'><body>x</body></message>`, false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := parse(t, c.msg)
			from := jid.MustParse(c.from)
			if got := carbons.Eligible(st, from, true); got != c.want {
				t.Errorf("received: Eligible = %v, want %v", got, c.want)
			}
			want := c.want
			if c.sent != nil {
				want = *c.sent
			}
			if got := carbons.Eligible(st, from, false); got != want {
				t.Errorf("sent: Eligible = %v, want %v", got, want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
