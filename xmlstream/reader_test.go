package xmlstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

const testHeader = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`

// readers are the ways tests feed input: whole, one byte per Read, and
// mixed with errors.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"onebyte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"dataerr", iotest.DataErrReader},
	{"chunk7", func(r io.Reader) io.Reader { return &chunkReader{r: r, n: 7} }},
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// result is everything a Reader returned for one stream.
type result struct {
	header *Element
	elems  []*Element
	err    error
}

// readStream reads a whole stream: the header, then elements until an
// error (ErrStreamEnd at a clean end).
func readStream(src io.Reader, lim Limits) result {
	r := NewReader(src, lim)
	var res result
	res.header, res.err = r.ReadStart()
	if res.err != nil {
		return res
	}
	for {
		e, err := r.Next()
		if err != nil {
			res.err = err
			return res
		}
		res.elems = append(res.elems, e)
	}
}

// condOf returns the condition of a parse error, "" for other errors.
func condOf(err error) Condition {
	var e *Error
	if errors.As(err, &e) {
		return e.Cond
	}
	return ""
}

func el(space, local string, attrs ...string) *Element {
	e := NewElement(space, local)
	for i := 0; i+1 < len(attrs); i += 2 {
		sp, l, ok := strings.Cut(attrs[i], "|")
		if !ok {
			sp, l = "", attrs[i]
		}
		e.Attr = append(e.Attr, Attr{Name: Name{Space: sp, Local: l}, Value: attrs[i+1]})
	}
	return e
}

func TestReadStart(t *testing.T) {
	tests := []struct {
		name, in string
		want     *Element
		defNS    string
	}{
		{"rfc", `<?xml version='1.0'?>` + testHeader,
			el(NSStream, "stream", "to", "example.com", "version", "1.0"), "jabber:client"},
		{"bom+decl", "\uFEFF<?xml version=\"1.0\" encoding=\"utf-8\" standalone='yes' ?>\n" + testHeader,
			el(NSStream, "stream", "to", "example.com", "version", "1.0"), "jabber:client"},
		{"whitespace", "\r\n  " + testHeader, el(NSStream, "stream", "to", "example.com", "version", "1.0"), "jabber:client"},
		{"other prefix", `<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server' from='a.example' id='x&amp;y' xml:lang='de'>`,
			el(NSStream, "stream", "from", "a.example", "id", "x&y", NSXML+"|lang", "de"), "jabber:server"},
		{"default is stream ns", `<stream xmlns='http://etherx.jabber.org/streams'>`, el(NSStream, "stream"), NSStream},
		{"no default", `<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`, el(NSStream, "stream", "version", "1.0"), ""},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				r := NewReader(rd.wrap(strings.NewReader(tt.in)), Limits{})
				h, err := r.ReadStart()
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(tt.want, h); d != "" {
					t.Errorf("header (-want +got):\n%s", d)
				}
				if r.DefaultNS() != tt.defNS {
					t.Errorf("DefaultNS = %q, want %q", r.DefaultNS(), tt.defNS)
				}
				if r.InputOffset() != int64(len(tt.in)) || r.Buffered() != 0 {
					t.Errorf("InputOffset %d Buffered %d, want %d, 0", r.InputOffset(), r.Buffered(), len(tt.in))
				}
			})
		}
	}
}

func TestElements(t *testing.T) {
	tests := []struct {
		name, in string
		want     *Element
	}{
		{"default ns inherited",
			`<message to='a@b' type='chat'><body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
			el("jabber:client", "message", "to", "a@b", "type", "chat").Append(
				el("jabber:client", "body").AppendText("hi"),
				el("http://jabber.org/protocol/chatstates", "active"))},
		{"stream prefix from header",
			`<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`,
			el(NSStream, "features").Append(el("urn:ietf:params:xml:ns:xmpp-tls", "starttls").Append(el("urn:ietf:params:xml:ns:xmpp-tls", "required")))},
		{"prefixes in stanza",
			`<iq type='get' xmlns:p='urn:p'><p:query p:a='1' b='2'><p:x xmlns:p='urn:q'/><y/></p:query></iq>`,
			el("jabber:client", "iq", "type", "get").Append(
				el("urn:p", "query", "urn:p|a", "1", "b", "2").Append(el("urn:q", "x"), el("jabber:client", "y")))},
		{"undeclared default",
			`<a><b xmlns=''><c/></b><d/></a>`,
			el("jabber:client", "a").Append(el("", "b").Append(el("", "c")), el("jabber:client", "d"))},
		{"xml prefix",
			`<m xml:lang='en' xmlns:xml='http://www.w3.org/XML/1998/namespace'><body xml:lang='fr'>x</body></m>`,
			el("jabber:client", "m", NSXML+"|lang", "en").Append(el("jabber:client", "body", NSXML+"|lang", "fr").AppendText("x"))},
		{"same local different ns attrs",
			`<a xmlns:p='urn:p' xmlns:q='urn:q' p:x='1' q:x='2' x='3'/>`,
			el("jabber:client", "a", "urn:p|x", "1", "urn:q|x", "2", "x", "3")},
		{"entities and refs",
			`<body a='&lt;&gt;&amp;&apos;&quot;&#65;&#x42;'>&lt;&gt;&amp;&apos;&quot;&#65;&#x1F339;&#x9;</body>`,
			el("jabber:client", "body", "a", `<>&'"AB`).AppendText("<>&'\"A\U0001F339\t")},
		{"text merged",
			`<body>a&amp;b<![CDATA[<c>&amp;]]>d</body>`,
			el("jabber:client", "body").AppendText("a&b<c>&amp;d")},
		{"whitespace kept inside",
			"<a>\n <b/>\n</a>",
			el("jabber:client", "a").AppendText("\n ").Append(el("jabber:client", "b")).AppendText("\n")},
		{"line ends",
			"<a v='x\r\ny\tz\nw\rv&#10;&#13;'>1\r\n2\r3\n4&#13;</a>",
			el("jabber:client", "a", "v", "x y z w v\n\r").AppendText("1\n2\n3\n4\r")},
		{"gt in text and attr",
			`<a v='>'>x > y ]] ]></a>`,
			el("jabber:client", "a", "v", ">").AppendText("x > y ]] ]>")},
		{"non-ascii names and text",
			`<données xmlns='urn:ü' é·1='ö'>Σ 愛 🌹</données>`,
			el("urn:ü", "données", "é·1", "ö").AppendText("Σ 愛 🌹")},
		{"whitespace in tags",
			"<a \n x = \"1\"\t/>",
			el("jabber:client", "a", "x", "1")},
		{"end tag with space",
			"<a><b></b ></a\n>",
			el("jabber:client", "a").Append(el("jabber:client", "b"))},
		{"empty CDATA",
			"<a>x<![CDATA[]]>y</a>",
			el("jabber:client", "a").AppendText("xy")},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				res := readStream(rd.wrap(strings.NewReader(testHeader+tt.in+" </stream:stream>")), Limits{})
				if !errors.Is(res.err, ErrStreamEnd) {
					t.Fatalf("error %v", res.err)
				}
				if len(res.elems) != 1 {
					t.Fatalf("%d elements", len(res.elems))
				}
				if d := cmp.Diff(tt.want, res.elems[0]); d != "" {
					t.Errorf("(-want +got):\n%s", d)
				}
			})
		}
	}
}

func TestErrors(t *testing.T) {
	big := strings.Repeat("x", 300<<10)
	deep := strings.Repeat("<a>", 65) + strings.Repeat("</a>", 65)
	var manyAttrs strings.Builder
	manyAttrs.WriteString("<a")
	for i := range 65 {
		fmt.Fprintf(&manyAttrs, " a%d='1'", i)
	}
	manyAttrs.WriteString("/>")
	laughs := `<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`

	tests := []struct {
		name string
		in   string // after testHeader unless full is set
		full bool
		cond Condition
	}{
		{"comment", `<message><!-- hi --></message>`, false, CondRestrictedXML},
		{"comment at top", `<!-- hi -->`, false, CondRestrictedXML},
		{"comment before header", `<?xml version='1.0'?><!-- x -->` + testHeader, true, CondRestrictedXML},
		{"PI", `<message><?foo bar?></message>`, false, CondRestrictedXML},
		{"PI at top", `<?foo?>`, false, CondRestrictedXML},
		{"PI before header", `<?xml-stylesheet href='x'?>` + testHeader, true, CondRestrictedXML},
		{"XML declaration mid-stream", `<?xml version='1.0'?>`, false, CondRestrictedXML},
		{"XML declaration after whitespace", " <?xml version='1.0'?>" + testHeader, true, CondRestrictedXML},
		{"DOCTYPE", `<!DOCTYPE stream>` + testHeader, true, CondRestrictedXML},
		{"internal subset", `<!DOCTYPE s [<!ENTITY x 'y'>]>` + testHeader, true, CondRestrictedXML},
		{"billion laughs", laughs, true, CondRestrictedXML},
		{"DOCTYPE in element", `<a><!DOCTYPE a></a>`, false, CondRestrictedXML},
		{"undefined entity", `<a>&nbsp;</a>`, false, CondRestrictedXML},
		{"undefined entity in attr", `<a b='&x;'/>`, false, CondRestrictedXML},
		{"bad char ref", `<a>&#0;</a>`, false, CondNotWellFormed},
		{"surrogate char ref", `<a>&#xD800;</a>`, false, CondNotWellFormed},
		{"huge char ref", `<a>&#x110000;</a>`, false, CondNotWellFormed},
		{"overflow char ref", `<a>&#99999999999999999999;</a>`, false, CondNotWellFormed},
		{"empty char ref", `<a>&#;</a>`, false, CondNotWellFormed},
		{"bad hex char ref", `<a>&#xG;</a>`, false, CondNotWellFormed},
		{"lone ampersand", `<a>a & b</a>`, false, CondNotWellFormed},
		{"entity without semicolon", `<a>&amp</a>`, false, CondNotWellFormed},
		{"invalid UTF-8 text", "<a>\xff</a>", false, CondNotWellFormed},
		{"invalid UTF-8 attr", "<a b='\xc3\x28'/>", false, CondNotWellFormed},
		{"invalid UTF-8 name", "<a\xc3/>", false, CondNotWellFormed},
		{"truncated UTF-8 before tag", "<a>\xe2\x82</a>", false, CondNotWellFormed},
		{"surrogate UTF-8", "<a>\xed\xa0\x80</a>", false, CondNotWellFormed},
		{"U+FFFE", "<a>\uFFFE</a>", false, CondNotWellFormed},
		{"control char", "<a>\x01</a>", false, CondNotWellFormed},
		{"control char in attr", "<a b='\x1f'/>", false, CondNotWellFormed},
		{"NUL in CDATA", "<a><![CDATA[\x00]]></a>", false, CondNotWellFormed},
		{"UTF-16 BOM", "\xfe\xff\x00<\x00s", true, CondUnsupportedEncoding},
		{"UTF-16LE BOM", "\xff\xfe<\x00s\x00", true, CondUnsupportedEncoding},
		{"UTF-16 without BOM", "\x00<\x00s\x00t", true, CondUnsupportedEncoding},
		{"ISO-8859-1", `<?xml version='1.0' encoding='ISO-8859-1'?>` + testHeader, true, CondUnsupportedEncoding},
		{"XML 1.1", `<?xml version='1.1'?>` + testHeader, true, CondBadFormat},
		{"declaration without version", `<?xml encoding='UTF-8'?>` + testHeader, true, CondNotWellFormed},
		{"declaration garbage", `<?xml version='1.0' foo='bar'?>` + testHeader, true, CondNotWellFormed},
		{"unbound prefix", `<foo:bar/>`, false, CondBadNamespacePrefix},
		{"unbound attr prefix", `<a foo:bar='1'/>`, false, CondBadNamespacePrefix},
		{"prefix out of scope", `<a><b xmlns:p='urn:p'/><p:c/></a>`, false, CondBadNamespacePrefix},
		{"unbound header prefix", `<stream:stream xmlns='jabber:client'>`, true, CondBadNamespacePrefix},
		{"wrong stream namespace", `<stream:stream xmlns:stream='http://etherx.jabber.org/streamz'>`, true, CondInvalidNamespace},
		{"no stream namespace", `<stream xmlns='jabber:client'>`, true, CondInvalidNamespace},
		{"header not stream", `<stream:foo xmlns:stream='http://etherx.jabber.org/streams'>`, true, CondBadFormat},
		{"text before header", `hello` + testHeader, true, CondNotWellFormed},
		{"mismatched tags", `<a><b></a></b>`, false, CondNotWellFormed},
		{"mismatched prefix", `<a xmlns:p='jabber:client'></p:a>`, false, CondNotWellFormed},
		{"end tag prefix of name", `<abc></ab>`, false, CondNotWellFormed},
		{"wrong stream end", `</stream:streamx>`, false, CondNotWellFormed},
		{"wrong stream end prefix", `</foo>`, false, CondNotWellFormed},
		{"duplicate attrs", `<a x='1' x='2'/>`, false, CondNotWellFormed},
		{"duplicate expanded attrs", `<a xmlns:p='urn:x' xmlns:q='urn:x' p:x='1' q:x='2'/>`, false, CondNotWellFormed},
		{"duplicate xmlns", `<a xmlns:p='urn:x' xmlns:p='urn:y'/>`, false, CondNotWellFormed},
		{"undeclare prefix", `<a xmlns:p=''/>`, false, CondNotWellFormed},
		{"rebind xml", `<a xmlns:xml='urn:x'/>`, false, CondNotWellFormed},
		{"bind xmlns", `<a xmlns:xmlns='urn:x'/>`, false, CondNotWellFormed},
		{"bind xml namespace", `<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>`, false, CondNotWellFormed},
		{"default xmlns namespace", `<a xmlns='http://www.w3.org/2000/xmlns/'/>`, false, CondNotWellFormed},
		{"xmlns element prefix", `<xmlns:a/>`, false, CondNotWellFormed},
		{"text at top", `hello`, false, CondBadFormat},
		{"entity at top", `&amp;`, false, CondBadFormat},
		{"CDATA at top", `<![CDATA[x]]>`, false, CondBadFormat},
		{"lt in attr", `<a b='<'/>`, false, CondNotWellFormed},
		{"unquoted attr", `<a b=c/>`, false, CondNotWellFormed},
		{"attr without value", `<a b/>`, false, CondNotWellFormed},
		{"attrs without space", `<a b='1'c='2'/>`, false, CondNotWellFormed},
		{"CDATA end in text", `<a>]]></a>`, false, CondNotWellFormed},
		{"two colons", `<a:b:c/>`, false, CondNotWellFormed},
		{"empty prefix", `<:a/>`, false, CondNotWellFormed},
		{"empty local", `<a: xmlns:a='urn:a'/>`, false, CondNotWellFormed},
		{"digit name", `<1a/>`, false, CondNotWellFormed},
		{"space after lt", `< a/>`, false, CondNotWellFormed},
		{"bad markup", `<a><!foo></a>`, false, CondNotWellFormed},
		{"slash without gt", `<a/ >`, false, CondNotWellFormed},
		{"oversize element", `<a>` + big + `</a>`, false, CondPolicyViolation},
		{"oversize tag", `<a b='` + big + `'/>`, false, CondPolicyViolation},
		{"too deep", deep, false, CondPolicyViolation},
		{"too many attrs", manyAttrs.String(), false, CondPolicyViolation},
		{"oversize header", `<stream:stream xmlns:stream='http://etherx.jabber.org/streams' x='` + strings.Repeat("y", 9000) + `'>`, true, CondPolicyViolation},
		{"syntax error before limit", `<a>` + big[:200<<10] + "\x01" + big + `</a>`, false, CondNotWellFormed},
	}
	for _, tt := range tests {
		in := tt.in
		if !tt.full {
			in = testHeader + in
		}
		for _, rd := range readers {
			if len(in) > 100<<10 && rd.name == "onebyte" && testing.Short() {
				continue
			}
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				res := readStream(rd.wrap(strings.NewReader(in)), Limits{})
				if rd.name == "whole" && testing.Verbose() {
					t.Logf("%v", res.err)
				}
				if got := condOf(res.err); got != tt.cond {
					t.Fatalf("got %v (condition %q), want %s", res.err, got, tt.cond)
				}
			})
		}
	}
}

func TestErrorsAreFinal(t *testing.T) {
	r := NewReader(strings.NewReader(testHeader+`<a><!-- x --></a><b/>`), Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	_, err1 := r.Next()
	_, err2 := r.Next()
	if condOf(err1) != CondRestrictedXML || err1 != err2 {
		t.Errorf("errors %v, %v", err1, err2)
	}
	if _, err := r.ReadStart(); err != err1 {
		t.Errorf("ReadStart after error: %v", err)
	}
}

func TestErrorValue(t *testing.T) {
	r := NewReader(strings.NewReader(testHeader+`<a><!-- x --></a>`), Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	want := fmt.Sprintf("xmlstream: restricted-xml at offset %d: comment", len(testHeader)+3)
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !errors.Is(err, &Error{Cond: CondRestrictedXML}) || errors.Is(err, &Error{Cond: CondNotWellFormed}) {
		t.Error("errors.Is does not compare conditions")
	}
}

func TestStreamEnd(t *testing.T) {
	for _, rd := range readers {
		r := NewReader(rd.wrap(strings.NewReader(testHeader+"<a/>\n</stream:stream >trailing")), Limits{})
		if _, err := r.ReadStart(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := r.Next(); err != ErrStreamEnd {
				t.Fatalf("%s: got %v, want ErrStreamEnd", rd.name, err)
			}
		}
		if got := r.InputOffset(); got != int64(len(testHeader)+len("<a/>\n</stream:stream >")) {
			t.Errorf("%s: InputOffset %d", rd.name, got)
		}
	}
	// An empty-element header is a stream that ends at once.
	r := NewReader(strings.NewReader(`<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>`), Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != ErrStreamEnd {
		t.Errorf("got %v, want ErrStreamEnd", err)
	}
}

func TestEOF(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", io.EOF},
		{"  ", io.EOF},
		{"<stream:str", io.ErrUnexpectedEOF},
		{testHeader, io.EOF},
		{testHeader + "<a/> \n", io.EOF},
		{testHeader + "<a>", io.ErrUnexpectedEOF},
		{testHeader + "<a>text", io.ErrUnexpectedEOF},
		{testHeader + "<a b='", io.ErrUnexpectedEOF},
		{testHeader + "</stream:str", io.ErrUnexpectedEOF},
		{testHeader + "<", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			res := readStream(rd.wrap(strings.NewReader(tt.in)), Limits{})
			if !errors.Is(res.err, tt.want) || (tt.want == io.EOF && res.err != io.EOF) {
				t.Errorf("%q/%s: got %v, want %v", tt.in, rd.name, res.err, tt.want)
			}
		}
	}
	// A parse error in the partial input wins over the EOF.
	res := readStream(strings.NewReader(testHeader+"<a>\x01 more text"), Limits{})
	if condOf(res.err) != CondNotWellFormed {
		t.Errorf("got %v, want not-well-formed", res.err)
	}
}

func TestNextBeforeReadStart(t *testing.T) {
	r := NewReader(strings.NewReader(testHeader), Limits{})
	if _, err := r.Next(); err == nil {
		t.Error("Next before ReadStart succeeded")
	}
}

// session is a client's side of a whole negotiation, in three byte
// streams: plaintext up to STARTTLS, then TLS up to SASL success, then the
// restarted stream on the same transport.
var session = []string{
	`<?xml version='1.0'?>` + testHeader + `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
	`<?xml version='1.0'?>` + testHeader + "\n" + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>`,
	`<?xml version='1.0'?>` + testHeader + `<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>` +
		" \t\r\n " + `<message to='romeo@example.net' type='chat'><body>Wherefore art thou, Romeo? — ü</body></message>` +
		`<presence/></stream:stream>`,
}

func TestSessionWithRestarts(t *testing.T) {
	want := []string{"starttls", "auth", "iq", "message", "presence"}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			var got []string
			r := NewReader(rd.wrap(strings.NewReader(session[0])), Limits{})
			for i, part := range session {
				if i > 0 {
					r.Reset(rd.wrap(strings.NewReader(part)))
				}
				h, err := r.ReadStart()
				if err != nil {
					t.Fatalf("stream %d: %v", i, err)
				}
				if h.Attribute("to") != "example.com" || r.DefaultNS() != "jabber:client" {
					t.Fatalf("stream %d: header %v", i, h)
				}
				for {
					e, err := r.Next()
					if err == ErrStreamEnd || err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("stream %d: %v", i, err)
					}
					got = append(got, e.Name.Local)
					if e.Name.Local == "starttls" && r.Buffered() != 0 {
						t.Errorf("Buffered after starttls = %d", r.Buffered())
					}
				}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("elements (-want +got):\n%s", d)
			}
		})
	}
}

func TestRestartSameStream(t *testing.T) {
	// ReadStart without Reset reads a new header from the same bytes
	// (and then no XML declaration is allowed).
	in := testHeader + `<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>` + testHeader + `<iq/>`
	r := NewReader(strings.NewReader(in), Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	if e, err := r.Next(); err != nil || e.Name.Local != "success" {
		t.Fatal(e, err)
	}
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	if e, err := r.Next(); err != nil || e.Name.Local != "iq" {
		t.Fatal(e, err)
	}
	r = NewReader(strings.NewReader(testHeader+`<a/><?xml version='1.0'?>`+testHeader), Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadStart(); condOf(err) != CondRestrictedXML {
		t.Fatalf("got %v, want restricted-xml", err)
	}
}

func TestBuffered(t *testing.T) {
	extra := "\x16\x03\x01 pipelined TLS"
	in := testHeader + `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` + extra
	r := NewReader(strings.NewReader(in), Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != len(extra) {
		t.Errorf("Buffered = %d, want %d", r.Buffered(), len(extra))
	}
	if r.InputOffset() != int64(len(in)-len(extra)) {
		t.Errorf("InputOffset = %d, want %d", r.InputOffset(), len(in)-len(extra))
	}
	// Whitespace after the element does not count.
	r.Reset(strings.NewReader(testHeader + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\r\n "))
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != 0 {
		t.Errorf("Buffered = %d after trailing whitespace", r.Buffered())
	}
	r.Reset(strings.NewReader(""))
	if r.Buffered() != 0 || r.InputOffset() != 0 {
		t.Errorf("after Reset: Buffered %d InputOffset %d", r.Buffered(), r.InputOffset())
	}
}

// stepReader serves its parts one per Read and fails the test if read
// past the part that allowed.
type stepReader struct {
	t       *testing.T
	parts   []string
	allowed int
}

func (s *stepReader) Read(p []byte) (int, error) {
	if len(s.parts) == 0 || s.allowed == 0 {
		s.t.Fatal("Read would block: the reader asked for more than it needed")
	}
	s.allowed--
	n := copy(p, s.parts[0])
	s.parts[0] = s.parts[0][n:]
	if s.parts[0] == "" {
		s.parts = s.parts[1:]
	}
	return n, nil
}

func TestNoReadAhead(t *testing.T) {
	src := &stepReader{t: t, parts: []string{testHeader, "<message><body>hi", "</body></message>", "<proceed/>", " ", "<x/>"}, allowed: 1}
	r := NewReader(src, Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	src.allowed = 2
	if e, err := r.Next(); err != nil || e.Name.Local != "message" {
		t.Fatal(e, err)
	}
	src.allowed = 1
	if e, err := r.Next(); err != nil || e.Name.Local != "proceed" {
		t.Fatal(e, err)
	}
	if r.Buffered() != 0 {
		t.Errorf("Buffered = %d", r.Buffered())
	}
	src.allowed = 2
	if e, err := r.Next(); err != nil || e.Name.Local != "x" {
		t.Fatal(e, err)
	}
}

// flakyReader returns a timeout-like error once before each part.
type flakyReader struct {
	parts []string
	fail  bool
}

var errTimeout = errors.New("i/o timeout")

func (f *flakyReader) Read(p []byte) (int, error) {
	if len(f.parts) == 0 {
		return 0, io.EOF
	}
	f.fail = !f.fail
	if f.fail {
		return 0, errTimeout
	}
	n := copy(p, f.parts[0])
	f.parts[0] = f.parts[0][n:]
	if f.parts[0] == "" {
		f.parts = f.parts[1:]
	}
	return n, nil
}

func TestReadErrorsAreNotFinal(t *testing.T) {
	src := &flakyReader{parts: []string{testHeader[:20], testHeader[20:], "<a><b>te", "xt</b>", "</a>", "</stream:stream>"}}
	r := NewReader(src, Limits{})
	var got []*Element
	var err error
	for tries := 0; tries < 100; tries++ {
		if !r.started {
			_, err = r.ReadStart()
		} else {
			var e *Element
			e, err = r.Next()
			if e != nil {
				got = append(got, e)
			}
		}
		if err == ErrStreamEnd {
			break
		}
		if err != nil && !errors.Is(err, errTimeout) {
			t.Fatal(err)
		}
	}
	if err != ErrStreamEnd || len(got) != 1 || got[0].Child("", "b").Text() != "text" {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestLimits(t *testing.T) {
	stanza := `<message><body>0123456789</body></message>`
	lim := Limits{MaxElementBytes: len(stanza), MaxDepth: 2, MaxAttrs: 2}
	ok := []string{
		stanza,
		`<a><b/></a>`,
		`<a x='1' y='2'/>`,
		`<a xmlns:p='urn:p' p:x='1'/>`,
	}
	bad := []string{
		`<message><body>0123456789!</body></message>`,
		`<a><b><c/></b></a>`,
		`<a x='1' y='2' z='3'/>`,
		`<a xmlns:p='urn:p' xmlns:q='urn:q' p:x='1'/>`,
	}
	for _, rd := range readers {
		for _, in := range ok {
			res := readStream(rd.wrap(strings.NewReader(testHeader+in+"</stream:stream>")), lim)
			if res.err != ErrStreamEnd {
				t.Errorf("%s/%s: %v", in, rd.name, res.err)
			}
		}
		for _, in := range bad {
			res := readStream(rd.wrap(strings.NewReader(testHeader+stanza+" "+in+"</stream:stream>")), lim)
			if condOf(res.err) != CondPolicyViolation || len(res.elems) != 1 {
				t.Errorf("%s/%s: %d elements, %v", in, rd.name, len(res.elems), res.err)
			}
		}
	}
}

// genReader produces n bytes: prefix, then body repeated, then suffix,
// without holding them in memory.
type genReader struct {
	prefix, body, suffix string
	n                    int64 // bytes of body to produce
	stage                int
	off                  int
	read                 int64
}

func (g *genReader) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		var cur string
		switch g.stage {
		case 0:
			cur = g.prefix
		case 1:
			if g.n <= 0 {
				g.stage, g.off = 2, 0
				continue
			}
			cur = g.body
		case 2:
			cur = g.suffix
		default:
			if total == 0 {
				return 0, io.EOF
			}
			return total, nil
		}
		n := copy(p, cur[g.off:])
		p = p[n:]
		g.off += n
		total += n
		g.read += int64(n)
		if g.stage == 1 {
			g.n -= int64(n)
		}
		if g.off == len(cur) {
			g.off = 0
			if g.stage != 1 {
				g.stage++
			}
		}
	}
	return total, nil
}

func TestMemoryBounded(t *testing.T) {
	const size = 10 << 20
	lim := Limits{}.withDefaults()
	maxBuf := lim.MaxElementBytes + readChunk + maxHeaderBytes

	t.Run("huge element", func(t *testing.T) {
		for _, body := range []string{"x", "<b>x</b>", "<b a='1'/>", "&amp;"} {
			g := &genReader{prefix: testHeader + "<a>", body: body, n: size}
			r := NewReader(g, Limits{})
			res := readStreamWith(r)
			if condOf(res.err) != CondPolicyViolation {
				t.Fatalf("%s: got %v", body, res.err)
			}
			if g.read > int64(maxBuf) || len(r.buf) > maxBuf {
				t.Errorf("%s: read %d bytes, buffer %d, want at most %d", body, g.read, len(r.buf), maxBuf)
			}
		}
	})
	t.Run("huge attribute", func(t *testing.T) {
		g := &genReader{prefix: testHeader + "<a b='", body: "y", n: size}
		res := readStream(g, Limits{})
		if condOf(res.err) != CondPolicyViolation || g.read > int64(maxBuf) {
			t.Fatalf("got %v after %d bytes", res.err, g.read)
		}
	})
	t.Run("huge header", func(t *testing.T) {
		g := &genReader{prefix: "<stream:stream a='", body: "y", n: size}
		res := readStream(g, Limits{})
		if condOf(res.err) != CondPolicyViolation || g.read > maxHeaderBytes+2*readChunk {
			t.Fatalf("got %v after %d bytes", res.err, g.read)
		}
	})
	t.Run("many stanzas", func(t *testing.T) {
		g := &genReader{prefix: testHeader, body: "<message to='a@b'><body>hello there</body></message>\n", n: size, suffix: "</stream:stream>"}
		r := NewReader(g, Limits{})
		if _, err := r.ReadStart(); err != nil {
			t.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap0 := ms.HeapAlloc
		n := 0
		for {
			_, err := r.Next()
			if err == ErrStreamEnd {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.buf) > readChunk {
				t.Fatalf("buffer grew to %d", len(r.buf))
			}
			n++
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > heap0+1<<20 {
			t.Errorf("heap grew from %d to %d", heap0, ms.HeapAlloc)
		}
		if n < size/60 {
			t.Errorf("read %d stanzas", n)
		}
	})
	t.Run("whitespace", func(t *testing.T) {
		g := &genReader{prefix: testHeader, body: " \n\t\r", n: size, suffix: "<a/>"}
		r := NewReader(g, Limits{})
		if _, err := r.ReadStart(); err != nil {
			t.Fatal(err)
		}
		if e, err := r.Next(); err != nil || e.Name.Local != "a" {
			t.Fatal(e, err)
		}
		if len(r.buf) > readChunk {
			t.Errorf("buffer grew to %d", len(r.buf))
		}
	})
	t.Run("deep nesting", func(t *testing.T) {
		const depth = 100000
		g := &genReader{prefix: testHeader, body: "<a>", n: 3 * depth}
		res := readStream(g, Limits{})
		if condOf(res.err) != CondPolicyViolation || g.read > int64(len(testHeader)+2*readChunk) {
			t.Fatalf("got %v after %d bytes", res.err, g.read)
		}
		// With limits raised the same input parses, with memory
		// proportional to its size and no recursion.
		in := testHeader + strings.Repeat("<a>", depth) + strings.Repeat("</a>", depth)
		r := NewReader(strings.NewReader(in), Limits{MaxDepth: depth, MaxElementBytes: 1 << 20})
		if _, err := r.ReadStart(); err != nil {
			t.Fatal(err)
		}
		e, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		d := 0
		for ; e != nil; e = e.FirstChild() {
			d++
		}
		if d != depth {
			t.Errorf("depth %d", d)
		}
	})
}

func readStreamWith(r *Reader) result {
	var res result
	res.header, res.err = r.ReadStart()
	for res.err == nil {
		var e *Element
		e, res.err = r.Next()
		if e != nil {
			res.elems = append(res.elems, e)
		}
	}
	return res
}

func TestChunkingInvariance(t *testing.T) {
	corpus, n := benchCorpus()
	inputs := []string{string(corpus), session[2]}
	for _, in := range inputs {
		want := readStream(bytes.NewReader([]byte(in)), Limits{})
		if want.err != ErrStreamEnd {
			t.Fatal(want.err)
		}
		if in == string(corpus) && len(want.elems) != n {
			t.Fatalf("%d elements, want %d", len(want.elems), n)
		}
		for _, rd := range readers[1:] {
			got := readStream(rd.wrap(strings.NewReader(in)), Limits{})
			if got.err != ErrStreamEnd {
				t.Fatalf("%s: %v", rd.name, got.err)
			}
			if d := cmp.Diff(want.elems, got.elems); d != "" {
				t.Fatalf("%s: (-whole +split):\n%s", rd.name, d)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	corpus, _ := benchCorpus()
	for _, in := range []string{string(corpus), session[2], testHeader + `<a xmlns:p='urn:p' p:x='&#9;&#10;&#13;' xml:lang='en'><b xmlns=''>x&#13;y<c xmlns='urn:c' p:y='"'/></b>]]&gt;</a>`,
		// An element in the xml namespace (found by FuzzRoundTrip): it is
		// written with the xml prefix, which cannot be a default namespace.
		testHeader + `<message><xml:lat><x/></xml:lat></message>`} {
		res := readStream(strings.NewReader(in), Limits{})
		for _, e := range res.elems {
			checkRoundTrip(t, e)
		}
	}
}

// checkRoundTrip serialises e and parses it back in a stream with the
// same default namespace.
func checkRoundTrip(t *testing.T, e *Element) {
	t.Helper()
	out := e.AppendXML([]byte(testHeader), "jabber:client")
	r := NewReader(bytes.NewReader(out), Limits{MaxElementBytes: 4 * len(out), MaxDepth: 1 << 20, MaxAttrs: 1 << 20})
	if _, err := r.ReadStart(); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	got, err := r.Next()
	if err != nil {
		t.Fatalf("reparse of %s: %v", out, err)
	}
	if d := cmp.Diff(e, got); d != "" {
		t.Fatalf("round trip through %s (-orig +got):\n%s", out, d)
	}
}

func TestChildrenAppendSafe(t *testing.T) {
	res := readStream(strings.NewReader(testHeader+`<a x='1'><b y='2'/><c/></a>`), Limits{})
	a := res.elems[0]
	b := a.Child("", "b")
	b.SetAttr("z", "3")
	b.Append(NewElement("", "new"))
	if a.Attribute("x") != "1" || len(a.Children) != 2 || a.Children[1].Elem.Name.Local != "c" {
		t.Errorf("appending to a child clobbered its parent: %s", a)
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful with -race")
	}
	stanza := `<message to='romeo@example.net/orchard' id='m1' type='chat'><body>Art thou not Romeo &amp; a Montague?</body>` +
		`<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>`
	in := []byte(testHeader + strings.Repeat(stanza, 200))
	src := bytes.NewReader(in)
	r := NewReader(src, Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil { // warm the pools
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	// The string, the elements, the attributes, the children.
	if allocs > 4 {
		t.Errorf("%.1f allocations per stanza, want at most 4", allocs)
	}
}
