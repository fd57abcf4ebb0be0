package bosh

// Internal tests: the body parser and the output splitter are unexported.

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/transport"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Seeds: the examples of XEP-0124 and XEP-0206 (bodies only).
var bodySeeds = []string{
	// XEP-0124 §7.1, XEP-0206 §4: session creation requests.
	`<body content='text/xml; charset=utf-8' from='user@example.com' hold='1' rid='1573741820' to='example.com' route='xmpp:example.com:9999' secure='true' ver='1.6' wait='60' ack='1' xml:lang='en' xmlns='http://jabber.org/protocol/httpbind'/>`,
	`<body content='text/xml; charset=utf-8' from='user@example.com' hold='1' rid='1573741820' to='example.com' route='xmpp:example.com:9999' ver='1.6' wait='60' ack='1' xml:lang='en' xmpp:version='1.0' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>`,
	// XEP-0206 §6: SASL over BOSH.
	`<body rid='1573741821' sid='SomeSID' xmlns='http://jabber.org/protocol/httpbind'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1qdWxpZXQscj1vTXNUQUF3QUFBQU1BQUFBTlAwVEFBQUFBQUJQVTBBQQ==</auth></body>`,
	// XEP-0206 §5: restart.
	`<body rid='1573741822' sid='SomeSID' to='example.com' xml:lang='en' xmpp:restart='true' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>`,
	// XEP-0124 §8: payloads.
	`<body rid='1249243562' sid='SomeSID' xmlns='http://jabber.org/protocol/httpbind'><message to='contact@example.com' xmlns='urn:ietf:params:xml:ns:xmpp-core'><body>Good morning!</body></message><message to='friend@example.com' xmlns='urn:ietf:params:xml:ns:xmpp-core'><body>Hey, what&apos;s up?</body></message></body>`,
	// XEP-0124 §9: acknowledgements; §10: pause; §13: terminate.
	`<body rid='1249243566' sid='SomeSID' ack='1249243564' xmlns='http://jabber.org/protocol/httpbind'/>`,
	`<body rid='1249243564' sid='SomeSID' pause='60' xmlns='http://jabber.org/protocol/httpbind'/>`,
	`<body rid='1249243565' sid='SomeSID' type='terminate' xmlns='http://jabber.org/protocol/httpbind'><presence type='unavailable' xmlns='jabber:client'/></body>`,
	// §15: keys.
	`<body rid='1573741822' sid='SomeSID' key='6f825e81f4532b2c5fa2d12457d8a1f22e8f838e' newkey='113f58a37245ec9637266cf2fb6e48bfeaf7964e' xmlns='http://jabber.org/protocol/httpbind'><message to='contact@example.com' xmlns='jabber:client'><body>I said "Hi!"</body></message></body>`,
	// Hostile or odd.
	"<?xml version='1.0' encoding='utf-8'?>\n<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq></body>",
	"\xef\xbb\xbf<body rid='1' xmlns='http://jabber.org/protocol/httpbind'/>",
	`<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><stream:features xmlns:stream='http://etherx.jabber.org/streams'/></body>`,
	`<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>` + strings.Repeat("<a>", 70) + strings.Repeat("</a>", 70) + `</body>`,
	`<body rid='18446744073709551615' xmlns='http://jabber.org/protocol/httpbind'/>`,
	`<body rid='1' wait='-1' xmlns='http://jabber.org/protocol/httpbind'/>`,
	`<!DOCTYPE body [<!ENTITY x "xx">]><body rid='1' xmlns='http://jabber.org/protocol/httpbind'>&x;</body>`,
	`<body rid='1' xmlns='http://jabber.org/protocol/httpbind'/><body rid='2' xmlns='http://jabber.org/protocol/httpbind'/>`,
}

// FuzzParseBody checks that the parser never panics, that what it accepts
// is well-formed (rid in range, payload out of the httpbind namespace),
// and that the payload survives a round trip through a body of our own.
func FuzzParseBody(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseBody(b)
		if err != nil {
			return
		}
		if r.rid == 0 || r.rid > maxRID {
			t.Fatalf("rid %d accepted", r.rid)
		}
		var payload []byte
		for _, e := range r.payload {
			if e.Name.Space == NS || e.Name.Space == stream.NS {
				t.Fatalf("payload element %s kept in %s", e.Name.Local, e.Name.Space)
			}
			payload = e.AppendXML(payload, stanza.NSClient)
		}
		again := fmt.Sprintf("<body rid='%d' xmlns='%s'>%s</body>", r.rid, NS, splitAll(t, payload))
		r2, err := parseBody([]byte(again))
		if err != nil {
			t.Fatalf("round trip of %q: %v", again, err)
		}
		if len(r2.payload) != len(r.payload) {
			t.Fatalf("round trip: %d elements, want %d", len(r2.payload), len(r.payload))
		}
		for i := range r.payload {
			if a, b := r.payload[i].String(), r2.payload[i].String(); a != b {
				t.Fatalf("round trip: %s, want %s", b, a)
			}
		}
	})
}

// splitAll runs the output path over p: each element gets its namespace.
func splitAll(t testing.TB, p []byte) []byte {
	t.Helper()
	var out []byte
	for {
		kind, piece, rest, err := transport.NextPiece(p)
		if err != nil {
			t.Fatalf("split %q: %v", p, err)
		}
		if piece == nil {
			return out
		}
		if kind == transport.PieceElement {
			out = transport.AppendClientElement(out, piece)
		}
		p = rest
	}
}

func TestParseBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"creation", bodySeeds[1], true},
		{"sasl", bodySeeds[2], true},
		{"restart", bodySeeds[3], true},
		{"terminate", bodySeeds[7], true},
		{"declaration", bodySeeds[9], true},
		{"bom", bodySeeds[10], true},
		{"stream element", bodySeeds[11], false},
		{"too deep", bodySeeds[12], false},
		{"rid overflow", bodySeeds[13], false},
		{"negative wait", bodySeeds[14], false},
		{"entity", bodySeeds[15], false},
		{"two bodies", bodySeeds[16], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseBody([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
		})
	}
	r, err := parseBody([]byte(bodySeeds[1]))
	if err != nil {
		t.Fatal(err)
	}
	if r.rid != 1573741820 || r.to != "example.com" || r.wait != 60 || r.hold != 1 || r.lang != "en" || r.xmppVersion != "1.0" || r.ver != "1.6" || r.pause != -1 {
		t.Errorf("creation request: %+v", r)
	}
	r, err = parseBody([]byte(bodySeeds[9]))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.payload) != 1 || r.payload[0].Name.Space != stanza.NSClient || r.payload[0].Child("jabber:iq:roster", "query") == nil {
		t.Errorf("iq without xmlns: %v", r.payload)
	}
}

// write is what c2s writes over a stream's life, as TCP carries it.
func write() []byte {
	var b []byte
	b = stream.Header{From: "localhost", ID: "abc", Version: "1.0", Lang: "en"}.AppendXML(b, stanza.NSClient)
	b = append(b, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"...)
	m := xmlstream.NewElement(stanza.NSClient, "message").SetAttr("to", "a@b/c").SetAttr("from", "d@e/f").SetAttr("id", "x'\"<>")
	m.Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText("1 < 2 > 0 & 'q' \"r\""))
	m.Append(xmlstream.NewElement("urn:xmpp:chat-markers:0", "markable"))
	b = m.AppendXML(b, stanza.NSClient)
	b = append(b, "<r xmlns='urn:xmpp:sm:3'/>"...)
	b = (&stream.Error{Condition: stream.Conflict, Text: "replaced"}).AppendXML(b)
	return append(b, "</stream:stream>"...)
}

func TestSplit(t *testing.T) {
	p := write()
	var kinds []transport.PieceKind
	var els []string
	for {
		kind, piece, rest, err := transport.NextPiece(p)
		if err != nil {
			t.Fatalf("at %q: %v", p, err)
		}
		if piece == nil {
			break
		}
		kinds = append(kinds, kind)
		if kind == transport.PieceElement {
			els = append(els, string(transport.AppendClientElement(nil, piece)))
		}
		p = rest
	}
	want := []transport.PieceKind{transport.PieceDecl, transport.PieceOpen, transport.PieceElement, transport.PieceElement, transport.PieceElement, transport.PieceElement, transport.PieceClose}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	// Each element, in a body declaring only the stream prefix, parses
	// to what was written.
	body := "<body xmlns='" + NS + "' xmlns:stream='" + stream.NS + "'>" + strings.Join(els, "") + "</body>"
	el, err := xmlstream.ParseElement([]byte(body), "")
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	got := el.ChildrenNS("")
	if len(got) != 4 || got[0].Name != (xmlstream.Name{Space: stream.NS, Local: "features"}) ||
		got[1].Name != (xmlstream.Name{Space: stanza.NSClient, Local: "message"}) || got[1].Attribute("id") != "x'\"<>" ||
		got[1].Child(stanza.NSClient, "body").Text() != "1 < 2 > 0 & 'q' \"r\"" || got[3].Name.Local != "error" {
		t.Fatalf("parsed %s", el)
	}
	if cond, payload := errorCondition([]byte(els[3])); cond != "remote-stream-error" || !bytes.Contains(payload, []byte("conflict")) {
		t.Errorf("conflict: %q %q", cond, payload)
	}
	if cond, _ := errorCondition((&stream.Error{Condition: stream.SystemShutdown}).AppendXML(nil)); cond != "system-shutdown" {
		t.Errorf("system-shutdown: %q", cond)
	}
	for _, bad := range []string{"text", "<a>", "<a", "<!-- x -->", "<a><b></a"} {
		if _, _, _, err := transport.NextPiece([]byte(bad)); err == nil {
			t.Errorf("%q split", bad)
		}
	}
}

// BenchmarkSplit compares the byte splitter with parsing and
// re-serialising each element (what the splitter saves).
func BenchmarkSplit(b *testing.B) {
	var p []byte
	for i := range 20 {
		m := xmlstream.NewElement(stanza.NSClient, "message").SetAttr("to", "alice@localhost/web").SetAttr("from", "bob@localhost/phone").SetAttr("id", fmt.Sprint(i)).SetAttr("type", "chat")
		m.Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(strings.Repeat("hello world ", 10)))
		p = m.AppendXML(p, stanza.NSClient)
	}
	b.Run("splitter", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(p)))
		out := make([]byte, 0, 2*len(p))
		for b.Loop() {
			out = out[:0]
			q := p
			for {
				_, piece, rest, err := transport.NextPiece(q)
				if err != nil || piece == nil {
					break
				}
				out = transport.AppendClientElement(out, piece)
				q = rest
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(p)))
		out := make([]byte, 0, 2*len(p))
		for b.Loop() {
			out = out[:0]
			r := xmlstream.NewReader(bytes.NewReader(append([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"), p...)), xmlstream.Limits{})
			if _, err := r.ReadStart(); err != nil {
				b.Fatal(err)
			}
			for {
				e, err := r.Next()
				if err != nil {
					break
				}
				out = e.AppendXML(out, NS)
			}
		}
	})
}
