package xep227

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ode-xmpp/ode/xmlstream"
)

// Limits bounds what Import accepts from a document. A zero field takes
// its default.
type Limits struct {
	// MaxElementBytes bounds one element read whole: a roster item, a
	// message, an archived message, a vCard, a private XML document, a
	// room's configuration. Default 8 MiB.
	MaxElementBytes int64
	// MaxDepth bounds the nesting of elements. Default 64.
	MaxDepth int
	// MaxIncludeDepth bounds the nesting of XInclude files. Default 4.
	MaxIncludeDepth int
	// MaxPending bounds the subscription requests of one user. Default
	// 10,000.
	MaxPending int
}

func (l Limits) withDefaults() Limits {
	if l.MaxElementBytes <= 0 {
		l.MaxElementBytes = 8 << 20
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 64
	}
	if l.MaxIncludeDepth <= 0 {
		l.MaxIncludeDepth = 4
	}
	if l.MaxPending <= 0 {
		l.MaxPending = 10000
	}
	return l
}

// errTooLarge is what the source returns when a token or an element
// passes MaxElementBytes; the decoder reports it with its position.
var errTooLarge = errors.New("element too large")

// source feeds the XML decoder byte by byte (it is an io.ByteReader, so
// the decoder adds no buffer of its own) and refuses to go more than
// limit bytes past mark: no token, and no element read whole, can grow
// past the limit, whatever the input.
type source struct {
	r     *bufio.Reader
	n     int64 // bytes read
	mark  int64
	limit int64
	err   error // a read error of r (not io.EOF)
}

func (s *source) ReadByte() (byte, error) {
	if s.n-s.mark > s.limit {
		return 0, errTooLarge
	}
	b, err := s.r.ReadByte()
	if err == nil {
		s.n++
	} else if !errors.Is(err, io.EOF) {
		s.err = err
	}
	return b, err
}

func (s *source) Read(p []byte) (int, error) {
	// The decoder only calls ReadByte; Read is here for io.Reader.
	if len(p) == 0 {
		return 0, nil
	}
	b, err := s.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

// decoder reads one file of a document as tokens, and elements whole
// when asked, reporting errors with the file name, line and column.
type decoder struct {
	name  string
	src   *source
	d     *xml.Decoder
	lim   Limits
	depth int // of the last token read, root = 1
}

func newDecoder(name string, r io.Reader, lim Limits) *decoder {
	src := &source{r: bufio.NewReaderSize(r, 64<<10), limit: lim.MaxElementBytes}
	d := xml.NewDecoder(src)
	d.Strict = true
	// Only UTF-8 (and its ASCII subset), as XMPP: no charset conversion.
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		if strings.EqualFold(label, "us-ascii") || strings.EqualFold(label, "ascii") {
			return r, nil
		}
		return nil, fmt.Errorf("encoding %q is not supported (UTF-8 only)", label)
	}
	return &decoder{name: name, src: src, d: d, lim: lim}
}

// errorf returns an ErrInput error at the decoder's position.
func (dec *decoder) errorf(format string, args ...any) error {
	line, col := dec.d.InputPos()
	return fmt.Errorf("%w: %s:%d:%d: %s", ErrInput, dec.name, line, col, fmt.Sprintf(format, args...))
}

// token returns the next token that matters: start and end elements,
// and character data (comments, processing instructions and the
// document type declaration are skipped; the decoder expands no entity
// other than XML's five). Each token may be at most MaxElementBytes.
func (dec *decoder) token() (xml.Token, error) {
	for {
		dec.src.mark = dec.src.n
		tok, err := dec.d.Token()
		if err != nil {
			return nil, dec.wrap(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			dec.depth++
			if dec.depth > dec.lim.MaxDepth {
				return nil, dec.errorf("elements nested deeper than %d", dec.lim.MaxDepth)
			}
			return t, nil
		case xml.EndElement:
			dec.depth--
			return t, nil
		case xml.CharData:
			return t, nil
		}
	}
}

// element reads the rest of the element whose start tag was start (just
// returned by token) into a tree; the whole element may be at most
// MaxElementBytes.
func (dec *decoder) element(start xml.StartElement) (*xmlstream.Element, error) {
	begin := dec.src.mark
	root := convert(start)
	stack := []*xmlstream.Element{root}
	for len(stack) > 0 {
		tok, err := dec.token()
		if err != nil {
			return nil, err
		}
		dec.src.mark = begin // the limit is on the whole element
		switch t := tok.(type) {
		case xml.StartElement:
			e := convert(t)
			top := stack[len(stack)-1]
			top.Children = append(top.Children, xmlstream.Child{Elem: e})
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			top := stack[len(stack)-1]
			top.Children = append(top.Children, xmlstream.Child{Text: string(t)})
		}
	}
	return root, nil
}

// skip reads past the rest of the element whose start tag was just
// returned.
func (dec *decoder) skip() error {
	for d := 1; d > 0; {
		tok, err := dec.token()
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			d++
		case xml.EndElement:
			d--
		}
	}
	return nil
}

// convert makes a tree node of a start tag: names resolved, namespace
// declarations dropped (the writer declares what it needs).
func convert(t xml.StartElement) *xmlstream.Element {
	e := &xmlstream.Element{Name: xmlstream.Name{Space: t.Name.Space, Local: t.Name.Local}}
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		e.Attr = append(e.Attr, xmlstream.Attr{Name: xmlstream.Name{Space: a.Name.Space, Local: a.Name.Local}, Value: a.Value})
	}
	return e
}

// attr returns the value of the unprefixed attribute local of t.
func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// wrap turns a decoder error into an ErrInput error with a position.
func (dec *decoder) wrap(err error) error {
	var se *xml.SyntaxError
	switch {
	case errors.Is(err, errTooLarge):
		return dec.errorf("an element or text is larger than %d bytes", dec.lim.MaxElementBytes)
	case errors.As(err, &se):
		return dec.errorf("%s", se.Msg)
	case errors.Is(err, io.EOF):
		return dec.errorf("unexpected end of file")
	case dec.src.err != nil:
		return fmt.Errorf("xep227: read %s: %w", dec.name, dec.src.err)
	}
	return dec.errorf("%v", err) // the decoder's own complaints: version, encoding
}
