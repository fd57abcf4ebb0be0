package xmlstream

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriterParsedBack(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, "jabber:client")
	header := el(NSStream, "stream", "from", "im.example.com", "id", "a'b\"c<&", "version", "1.0", NSXML+"|lang", "en", "urn:x|y", "z")
	features := el(NSStream, "features").Append(
		el("urn:ietf:params:xml:ns:xmpp-tls", "starttls").Append(el("urn:ietf:params:xml:ns:xmpp-tls", "required")),
		el("jabber:client", "x"),
		el("", "y"))
	msg := el("jabber:client", "message", "to", "romeo@example.net", "type", "chat").Append(
		el("jabber:client", "body").AppendText("a < b & c > d ]]> \"'\r\n\t ü 🌹"),
		el("urn:xmpp:receipts", "request"),
	)
	msg.SetAttrNS("urn:a", "x", "1").SetAttrNS("urn:b", "x", "2").SetAttrNS("urn:a", "y", "3\t\n\r")
	errEl := el(NSStream, "error").Append(el("urn:ietf:params:xml:ns:xmpp-streams", "conflict"))
	if err := w.WriteStart(header); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Element{features, msg, errEl} {
		if err := w.WriteElement(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteEnd(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" from="im.example.com"`) ||
		!strings.Contains(out, "<stream:features>") || !strings.Contains(out, "</stream:error></stream:stream>") {
		t.Errorf("unexpected output: %s", out)
	}
	for _, rd := range readers {
		res := readStream(rd.wrap(strings.NewReader(out)), Limits{})
		if res.err != ErrStreamEnd {
			t.Fatalf("%s: reading %s: %v", rd.name, out, res.err)
		}
		if d := cmp.Diff(header, res.header); d != "" {
			t.Errorf("%s: header (-want +got):\n%s", rd.name, d)
		}
		if d := cmp.Diff([]*Element{features, msg, errEl}, res.elems); d != "" {
			t.Errorf("%s: elements (-want +got):\n%s\nfrom %s", rd.name, d, out)
		}
	}
}

func TestWriterNoDefaultNS(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, "")
	_ = w.WriteStart(nil)
	_ = w.WriteElement(el("urn:a", "a"))
	_ = w.WriteElement(el("", "b"))
	_ = w.WriteEnd()
	res := readStream(strings.NewReader(buf.String()), Limits{})
	if res.err != ErrStreamEnd || len(res.elems) != 2 || res.elems[0].Name.Space != "urn:a" || res.elems[1].Name.Space != "" {
		t.Errorf("%s: %v %v", buf.String(), res.elems, res.err)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("broken pipe")
	}
	f.n--
	return len(p), nil
}

func TestWriterErrorsAreSticky(t *testing.T) {
	w := NewWriter(&failWriter{n: 1}, "jabber:client")
	if err := w.WriteStart(nil); err != nil {
		t.Fatal(err)
	}
	err := w.WriteElement(el("jabber:client", "presence"))
	if err == nil || !strings.Contains(err.Error(), "<presence>") || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("got %v", err)
	}
	if err2 := w.WriteEnd(); err2 != err {
		t.Errorf("later error %v, want %v", err2, err)
	}
}

func TestAppendEscapedQuotes(t *testing.T) {
	got := string(AppendEscaped(nil, `a'b"c<d>e&f`+"\t\n\r", true))
	if want := `a&apos;b&quot;c&lt;d&gt;e&amp;f&#x9;&#xA;&#xD;`; got != want {
		t.Errorf("attribute: %s, want %s", got, want)
	}
	got = string(AppendEscaped(nil, `a'b"c<d>e&f`+"\t\n\r", false))
	if want := `a'b"c&lt;d&gt;e&amp;f` + "\t\n&#xD;"; got != want {
		t.Errorf("text: %s, want %s", got, want)
	}
}

// TestSkipFunctions checks the word-at-a-time scanners against the
// byte-by-byte definition.
func TestSkipFunctions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("abc <&]'\"\t\n\r\x00\x1f\x7f\x80\xff=")
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = byte('a' + rng.IntN(26))
			}
		}
		j := 0
		if len(b) > 0 {
			j = rng.IntN(len(b))
		}
		naive := func(tab *[256]uint8) int {
			k := j
			for k < len(b) && tab[b[k]] == 0 {
				k++
			}
			return k
		}
		if got, want := skipText(b, j), naive(&textClass); got != want {
			t.Fatalf("skipText(%q, %d) = %d, want %d", b, j, got, want)
		}
		if got, want := skipAttr(b, j), naive(&attrClass); got != want {
			t.Fatalf("skipAttr(%q, %d) = %d, want %d", b, j, got, want)
		}
	}
}

func TestIdleBuffer(t *testing.T) {
	big := `<iq type='result'><query xmlns='jabber:iq:roster'>` + strings.Repeat(`<item jid='a@b'><group>G</group></item>`, 500) + `</query></iq>`
	src := &stepReader{t: t, parts: []string{testHeader, big, "<a/>"}, allowed: 1 << 20}
	r := NewReader(src, Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if len(r.buf) < len(big) {
		t.Fatalf("buffer %d for an element of %d", len(r.buf), len(big))
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if len(r.buf) != idleBufSize {
		t.Errorf("buffer of %d bytes kept after the large element", len(r.buf))
	}
}
