package xmlstream

import (
	"bytes"
	"errors"
	"io"
)

// ParseElement parses b, which holds exactly one element as a stream
// carries it (as Element.AppendXML writes it with the same defaultNS), and
// returns the element. It is for stanzas kept in storage.
func ParseElement(b []byte, defaultNS string) (*Element, error) {
	head := `<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='`
	src := make([]byte, 0, len(head)+len(defaultNS)+2+len(b))
	src = append(src, head...)
	src = AppendEscaped(src, defaultNS, true)
	src = append(src, "'>"...)
	src = append(src, b...)
	r := NewReader(bytes.NewReader(src), Limits{MaxElementBytes: len(b) + 1})
	if _, err := r.ReadStart(); err != nil {
		return nil, err
	}
	e, err := r.Next()
	if err != nil {
		return nil, err
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		return nil, errors.New("xmlstream: more than one element")
	}
	return e, nil
}
