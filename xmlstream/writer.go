package xmlstream

import (
	"fmt"
	"io"
)

// Writer writes an XMPP stream: the stream header, top-level elements and
// the stream end tag. Each call makes one Write to the underlying writer.
// The first error is kept and returned by every later call. It is not safe
// for concurrent use.
type Writer struct {
	w     io.Writer
	defNS string
	buf   []byte
	err   error
}

// NewWriter returns a Writer writing to w a stream whose default namespace
// (the content namespace, such as "jabber:client") is defaultNS.
func NewWriter(w io.Writer, defaultNS string) *Writer {
	return &Writer{w: w, defNS: defaultNS}
}

// WriteStart writes the stream header open tag,
// <stream:stream xmlns="defaultNS" xmlns:stream="http://etherx.jabber.org/streams" ...>,
// with the attributes of header (its name and children are ignored; header
// may be nil). No XML declaration is written.
func (w *Writer) WriteStart(header *Element) error {
	b := append(w.buf[:0], "<stream:stream"...)
	if w.defNS != "" {
		b = append(b, ` xmlns="`...)
		b = appendEscaped(b, w.defNS, true)
		b = append(b, '"')
	}
	b = append(b, ` xmlns:stream="`+NSStream+`"`...)
	if header != nil {
		b = appendAttrs(b, header.Attr)
	}
	b = append(b, '>')
	return w.flush(b, "stream header")
}

// WriteElement writes e as a top-level element of the stream (see
// Element.AppendXML; elements in NSStream, such as features and errors,
// are written with the stream prefix).
func (w *Writer) WriteElement(e *Element) error {
	var b []byte
	if e.Name.Space == NSStream {
		b = e.appendXML(w.buf[:0], w.defNS, "stream")
	} else {
		b = e.AppendXML(w.buf[:0], w.defNS)
	}
	return w.flush(b, e)
}

// WriteEnd writes the stream end tag, </stream:stream>.
func (w *Writer) WriteEnd() error {
	return w.flush(append(w.buf[:0], "</stream:stream>"...), "stream end tag")
}

// flush writes b; what (a string or the element) describes it in errors.
func (w *Writer) flush(b []byte, what any) error {
	if cap(b) <= 64<<10 {
		w.buf = b[:0]
	}
	if w.err != nil {
		return w.err
	}
	if _, err := w.w.Write(b); err != nil {
		if e, ok := what.(*Element); ok {
			what = "element <" + e.Name.Local + ">"
		}
		w.err = fmt.Errorf("xmlstream: writing %s: %w", what, err)
	}
	return w.err
}
