package xmlstream

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

const benchHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' ` +
	`from='juliet@im.example.com' to='im.example.com' version='1.0' xml:lang='en'>`

// benchCorpus returns a realistic client-to-server stream and the number
// of top-level elements in it: chat messages with XEP-0085 chat states and
// XEP-0184 receipt requests, presences with XEP-0115 caps, a roster result
// with 50 items, and XEP-0313 archive results, some text with entities and
// non-ASCII characters, and whitespace keepalives between stanzas.
func benchCorpus() ([]byte, int) {
	var b strings.Builder
	b.WriteString(benchHeader)
	n := 0
	bodies := []string{
		"Art thou not Romeo, and a Montague?",
		"Neither, fair saint, if either thee dislike &amp; more &lt;3",
		"Wherefore art thou Romeo? — «Je t’aime», 愛してる, Σ ♥ 🌹",
		"ok",
		"My ear hath not yet drunk a hundred words of thy tongue's uttering, yet I know the sound.",
	}
	states := []string{"active", "composing", "paused"}
	for i := range 40 {
		fmt.Fprintf(&b, `<message to='romeo@example.net/orchard' id='m%03d' type='chat' xml:lang='en'>`+
			`<body>%s</body><%s xmlns='http://jabber.org/protocol/chatstates'/>`+
			`<request xmlns='urn:xmpp:receipts'/><origin-id xmlns='urn:xmpp:sid:0' id='d9a1b2c3-%04d'/></message>`,
			i, bodies[i%len(bodies)], states[i%len(states)], i)
		n++
		if i%4 == 0 {
			b.WriteString("\n ") // keepalive whitespace
		}
	}
	shows := []string{"away", "chat", "dnd", "xa"}
	for i := range 40 {
		fmt.Fprintf(&b, `<presence from='user%d@example.com/phone' to='juliet@im.example.com' id='p%03d'>`+
			`<show>%s</show><status>On the balcony — %d</status><priority>%d</priority>`+
			`<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>`+
			`</presence>`, i, i, shows[i%len(shows)], i, i%10)
		n++
	}
	b.WriteString(`<iq type='result' id='roster_1' to='juliet@im.example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver11'>`)
	for i := range 50 {
		fmt.Fprintf(&b, `<item jid='contact%d@example.org' name='Contact %d' subscription='both'><group>Friends</group><group>Group %d</group></item>`, i, i, i%7)
	}
	b.WriteString(`</query></iq>`)
	n++
	for i := range 20 {
		fmt.Fprintf(&b, `<message to='juliet@im.example.com/balcony' id='mam%d'><result xmlns='urn:xmpp:mam:2' queryid='f27' id='28482-98726-%d'>`+
			`<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25Z'/>`+
			`<message xmlns='jabber:client' from='witch@shakespeare.lit' to='macbeth@shakespeare.lit' type='chat' id='x%d'>`+
			`<body>Hail to thee &amp; thine, %d — ça va?</body></message></forwarded></result></message>`, i, i, i, i)
		n++
	}
	b.WriteString(`</stream:stream>`)
	return []byte(b.String()), n
}

// xmlTree reads the element that start opens with encoding/xml, building
// the same tree as Reader.Next: the baseline of BenchmarkEncodingXML.
func xmlTree(d *xml.Decoder, start xml.StartElement) (*Element, error) {
	newElem := func(t xml.StartElement) *Element {
		e := &Element{Name: Name{Space: t.Name.Space, Local: t.Name.Local}}
		for _, a := range t.Attr {
			if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
				continue
			}
			e.Attr = append(e.Attr, Attr{Name: Name{Space: a.Name.Space, Local: a.Name.Local}, Value: a.Value})
		}
		return e
	}
	stack := []*Element{newElem(start)}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			e := newElem(t)
			top.Children = append(top.Children, Child{Elem: e})
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return top, nil
			}
		case xml.CharData:
			if n := len(top.Children); n > 0 && top.Children[n-1].Elem == nil {
				top.Children[n-1].Text += string(t)
			} else {
				top.Children = append(top.Children, Child{Text: string(t)})
			}
		}
	}
}

// readAllXML reads a whole stream with encoding/xml and returns the
// number of top-level elements.
func readAllXML(src io.Reader) (int, error) {
	d := xml.NewDecoder(src)
	depth, n := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				depth = 1 // the stream header
				continue
			}
			if _, err := xmlTree(d, t); err != nil {
				return n, err
			}
			n++
		case xml.EndElement:
			return n, nil
		}
	}
}

// readAll reads a whole stream with r and returns the number of top-level
// elements.
func readAll(r *Reader) (int, error) {
	if _, err := r.ReadStart(); err != nil {
		return 0, err
	}
	n := 0
	for {
		_, err := r.Next()
		if errors.Is(err, ErrStreamEnd) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

// reportPerStanza adds an allocs/stanza metric measured around the loop.
func reportPerStanza(b *testing.B, stanzas int, loop func()) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	loop()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*stanzas), "allocs/stanza")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*stanzas), "ns/stanza")
}

func BenchmarkReaderNext(b *testing.B) {
	corpus, stanzas := benchCorpus()
	src := bytes.NewReader(corpus)
	r := NewReader(src, Limits{})
	b.SetBytes(int64(len(corpus)))
	b.ReportAllocs()
	reportPerStanza(b, stanzas, func() {
		for b.Loop() {
			src.Reset(corpus)
			r.Reset(src)
			n, err := readAll(r)
			if err != nil || n != stanzas {
				b.Fatalf("read %d stanzas, %v", n, err)
			}
		}
	})
}

func BenchmarkEncodingXML(b *testing.B) {
	corpus, stanzas := benchCorpus()
	src := bytes.NewReader(corpus)
	b.SetBytes(int64(len(corpus)))
	b.ReportAllocs()
	reportPerStanza(b, stanzas, func() {
		for b.Loop() {
			src.Reset(corpus)
			n, err := readAllXML(src)
			if err != nil || n != stanzas {
				b.Fatalf("read %d stanzas, %v", n, err)
			}
		}
	})
}

// BenchmarkWriter measures serialisation of the corpus's elements.
func BenchmarkWriter(b *testing.B) {
	corpus, stanzas := benchCorpus()
	r := NewReader(bytes.NewReader(corpus), Limits{})
	if _, err := r.ReadStart(); err != nil {
		b.Fatal(err)
	}
	var els []*Element
	for {
		e, err := r.Next()
		if err != nil {
			break
		}
		els = append(els, e)
	}
	w := NewWriter(io.Discard, "jabber:client")
	b.SetBytes(int64(len(corpus)))
	b.ReportAllocs()
	reportPerStanza(b, stanzas, func() {
		for b.Loop() {
			for _, e := range els {
				if err := w.WriteElement(e); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
