package xmlstream

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// NSStream is the namespace of the stream header and of stream-level
// elements such as <stream:features/> and <stream:error/> (RFC 6120 §4.8.1).
const NSStream = "http://etherx.jabber.org/streams"

// ErrStreamEnd is returned by Reader.Next when the peer closed the stream
// with its end tag (</stream:stream>).
var ErrStreamEnd = errors.New("xmlstream: end of stream")

// Condition is the stream error condition (RFC 6120 §4.9.3) that a parse
// error calls for; its value is the condition's element name.
type Condition string

// The conditions a Reader reports.
const (
	// CondNotWellFormed: the input is not well-formed XML or not
	// namespace-well-formed: syntax errors, invalid UTF-8, characters
	// outside the XML Char production, bad character references,
	// mismatched end tags, duplicate attributes, "]]>" in text,
	// undeclaring a prefix (xmlns:p=”) and rebinding xml or xmlns.
	CondNotWellFormed Condition = "not-well-formed"
	// CondRestrictedXML: XML that RFC 6120 §11.1 forbids: comments,
	// processing instructions (other than the XML declaration at the start
	// of a byte stream), document type declarations and references to
	// entities other than the five predefined ones.
	CondRestrictedXML Condition = "restricted-xml"
	// CondInvalidNamespace: the stream header is not in NSStream.
	CondInvalidNamespace Condition = "invalid-namespace"
	// CondBadNamespacePrefix: an element or attribute uses an undeclared
	// namespace prefix.
	CondBadNamespacePrefix Condition = "bad-namespace-prefix"
	// CondBadFormat: well-formed XML the stream cannot carry: character
	// data at the top level of the stream, a stream header whose local name
	// is not "stream", an XML declaration with a version other than 1.0.
	CondBadFormat Condition = "bad-format"
	// CondPolicyViolation: a Limits bound or the stream header size bound
	// was exceeded.
	CondPolicyViolation Condition = "policy-violation"
	// CondUnsupportedEncoding: UTF-16 or UTF-32 input (by byte order mark
	// or NUL bytes at the start) or an XML declaration naming an encoding
	// other than UTF-8.
	CondUnsupportedEncoding Condition = "unsupported-encoding"
	// CondInvalidXML: content that is well-formed but invalid for its
	// namespace. The Reader never reports it (it does not validate
	// schemas); it is here for callers that check payloads.
	CondInvalidXML Condition = "invalid-xml"
)

// Error is a parse error of the XML stream: Cond is the stream error to
// send, Msg a description for logs and Offset the position in the current
// byte stream (see Reader.InputOffset) where the problem was found.
type Error struct {
	Cond   Condition
	Msg    string
	Offset int64
}

// Error returns e as "xmlstream: <condition> at offset <n>: <message>".
func (e *Error) Error() string {
	return "xmlstream: " + string(e.Cond) + " at offset " + strconv.FormatInt(e.Offset, 10) + ": " + e.Msg
}

// Is reports whether target is an *Error with the same condition, so that
// errors.Is(err, &xmlstream.Error{Cond: xmlstream.CondRestrictedXML})
// works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Cond == e.Cond
}

// Limits bounds what a Reader accepts. A zero field takes its default.
type Limits struct {
	// MaxElementBytes bounds the size in bytes of each top-level element
	// of the stream, from its '<' to the '>' of its end tag. Default
	// 256 KiB; values above 1 GiB are lowered to 1 GiB.
	MaxElementBytes int
	// MaxDepth bounds the nesting of elements inside the stream; a
	// top-level element has depth 1 (the stream header is not counted).
	// Default 64.
	MaxDepth int
	// MaxAttrs bounds the attributes of one element, namespace
	// declarations included. Default 64.
	MaxAttrs int
}

const (
	defaultMaxElementBytes = 256 << 10
	maxMaxElementBytes     = 1 << 30
	defaultMaxDepth        = 64
	defaultMaxAttrs        = 64

	// maxHeaderBytes bounds the stream header open tag.
	maxHeaderBytes = 8 << 10
	// maxDeclBytes bounds the XML declaration.
	maxDeclBytes = 1 << 10
	// maxEndTagBytes bounds the stream end tag.
	maxEndTagBytes = 1 << 10

	// readChunk is the size of the pooled read buffer.
	readChunk = 4 << 10
	// idleBufSize is the size of the per-Reader buffer used whenever
	// nothing is buffered, which keeps idle connections small.
	idleBufSize = 512
)

func (l Limits) withDefaults() Limits {
	if l.MaxElementBytes <= 0 {
		l.MaxElementBytes = defaultMaxElementBytes
	}
	if l.MaxElementBytes > maxMaxElementBytes {
		l.MaxElementBytes = maxMaxElementBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultMaxDepth
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = defaultMaxAttrs
	}
	return l
}

// Reader reads an XMPP stream (RFC 6120 §4): the optional XML declaration,
// the stream header, then the top-level elements one at a time, each
// returned as a complete tree. It enforces the restricted XML of RFC 6120
// §11 and resolves namespaces.
//
// Elements returned by Next share one backing string per element for all
// their names, attribute values and text, and one allocation each for
// their nodes, attributes and children, so keeping any part of a tree
// keeps the whole element's memory alive (at most MaxElementBytes-ish).
//
// The Reader reads its source in chunks but never waits for more input
// once it holds a complete element. It is not safe for concurrent use.
type Reader struct {
	src io.Reader
	lim Limits

	buf   []byte  // buffered input; unconsumed bytes are buf[pos:end]
	pos   int     // start of the unconsumed bytes
	end   int     // end of the buffered bytes
	base  int64   // offset in the current source of buf[0]
	rerr  error   // read error held back while buffered bytes remain
	small []byte  // idle buffer, used whenever nothing is buffered
	chunk *[]byte // pooled buffer in use as buf, if any

	err     error // sticky parse error
	atStart bool  // at the start of a byte stream: BOM and XML declaration allowed
	bomDone bool  // the byte order mark check was done
	started bool  // a stream header was read
	ended   bool  // the stream end tag was read
	defNS   string
	hdrNS   []hdrBinding // prefixes declared on the stream header
	hdrName string       // qualified name of the header, for its end tag

	p     *scratch // the header or top-level element being parsed, nil between elements
	spare *scratch // parse state kept between elements while input is buffered
}

// hdrBinding is a namespace prefix declared on the stream header.
type hdrBinding struct {
	prefix string
	uri    string
}

// errNeedMore means the parser needs more input to go on.
var errNeedMore = errors.New("xmlstream: need more input")

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, readChunk)
	return &b
}}

// NewReader returns a Reader reading a new byte stream from src with the
// given limits (zero fields take their defaults). Call ReadStart first.
func NewReader(src io.Reader, lim Limits) *Reader {
	return &Reader{src: src, lim: lim.withDefaults(), atStart: true}
}

// Reset discards all buffered input and parse state and makes r read a new
// byte stream from src, as after NewReader: ReadStart comes next and may
// see an XML declaration. Use it when the stream restarts after SASL and
// when the transport changes after the TLS handshake.
func (r *Reader) Reset(src io.Reader) {
	r.releaseScratch()
	r.dropSpare()
	r.releaseBuf()
	r.src = src
	r.pos, r.end, r.base = 0, 0, 0
	r.rerr, r.err = nil, nil
	r.atStart, r.bomDone = true, false
	r.resetStream()
}

// resetStream forgets the stream header.
func (r *Reader) resetStream() {
	r.started, r.ended = false, false
	r.defNS, r.hdrName = "", ""
	r.hdrNS = r.hdrNS[:0]
}

// Buffered returns how many bytes were read from the source but not
// consumed yet, including those of an element only partly received. After
// Next returned an element that the peer must wait for an answer to (such
// as <starttls/>), it is 0 unless the peer pipelined more data (whitespace
// already received after an element is consumed with it).
func (r *Reader) Buffered() int { return r.end - r.pos }

// InputOffset returns how many bytes of the current byte stream (since
// NewReader or Reset) were consumed: everything up to the end of the last
// element, header or whitespace returned or skipped.
func (r *Reader) InputOffset() int64 { return r.base + int64(r.pos) }

// DefaultNS returns the default namespace declared on the stream header
// (such as "jabber:client"), or "" if it declared none.
func (r *Reader) DefaultNS() string { return r.defNS }

// ReadStart reads the stream header: at the start of a byte stream (after
// NewReader or Reset) an optional UTF-8 byte order mark and XML
// declaration, then optional whitespace and the header's open tag, which
// must be {NSStream}stream. It returns the header as an element with its
// attributes (to, from, id, version, and xml:lang as {NSXML}lang;
// namespace declarations are not attributes, see DefaultNS) and no
// children. The prefixes declared on the header stay in scope for the
// elements of the stream. Calling ReadStart again without Reset reads a
// new header from the same byte stream.
//
// Parse errors are *Error values (with the conditions documented on
// Condition) and are final until Reset; I/O errors are returned as they
// are (io.EOF when the source ends before any byte of the header,
// io.ErrUnexpectedEOF within it), wrapped with context, and the call may
// be repeated.
func (r *Reader) ReadStart() (*Element, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.p != nil && !r.p.header {
		return nil, errors.New("xmlstream: ReadStart called while an element is partly read")
	}
	if r.p == nil {
		r.resetStream()
	}
	for {
		el, err := r.readStart()
		if err == nil {
			return el, nil
		}
		if err != errNeedMore {
			return nil, r.fail(err)
		}
		if err := r.fill(); err != nil {
			return nil, r.readFailed(err, "stream header")
		}
	}
}

// Next returns the next top-level element of the stream, skipping the
// whitespace between elements (keepalives). At the stream end tag it
// returns ErrStreamEnd, and keeps doing so. Non-whitespace character data
// at the top level is a CondBadFormat error. Errors are as for ReadStart;
// io.EOF means the source ended between elements without the stream end
// tag.
func (r *Reader) Next() (*Element, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.started {
		return nil, errors.New("xmlstream: Next called before ReadStart")
	}
	if r.ended {
		return nil, ErrStreamEnd
	}
	for {
		if r.p == nil {
			b := r.buf[r.pos:r.end]
			k := 0
			for k < len(b) && isSpace(b[k]) {
				k++
			}
			r.pos += k
			b = b[k:]
			switch {
			case len(b) == 0:
			case b[0] != '<':
				return nil, r.fail(r.errAt(CondBadFormat, 0, "character data at the top level of the stream"))
			case len(b) < 2:
			case b[1] == '/':
				err := r.streamEnd(b)
				if err == errNeedMore {
					break
				}
				if err != ErrStreamEnd {
					return nil, r.fail(err)
				}
				return nil, err
			default:
				r.begin(false)
			}
			if r.p == nil {
				if err := r.fill(); err != nil {
					return nil, r.readFailed(err, "stream")
				}
				continue
			}
		}
		err := r.parse()
		if err == nil {
			el, _ := r.build()
			r.pos += r.p.cur
			r.releaseScratch()
			// Whitespace already buffered after the element goes too (it
			// would be skipped anyway), so that Buffered only counts what
			// matters, as after "<starttls/>\n".
			for r.pos < r.end && isSpace(r.buf[r.pos]) {
				r.pos++
			}
			return el, nil
		}
		if err != errNeedMore {
			return nil, r.fail(err)
		}
		if err := r.fill(); err != nil {
			return nil, r.readFailed(err, "element")
		}
	}
}

// readStart parses as much of the header as the buffer holds.
func (r *Reader) readStart() (*Element, error) {
	for r.p == nil {
		if r.atStart {
			if err := r.prolog(); err != nil {
				return nil, err
			}
			continue
		}
		b := r.buf[r.pos:r.end]
		k := 0
		for k < len(b) && isSpace(b[k]) {
			k++
		}
		r.pos += k
		b = b[k:]
		if len(b) == 0 {
			return nil, errNeedMore
		}
		if b[0] != '<' {
			return nil, r.errAt(CondNotWellFormed, 0, "character data before the stream header")
		}
		if len(b) < 2 {
			return nil, errNeedMore
		}
		switch b[1] {
		case '?':
			return nil, r.errAt(CondRestrictedXML, 0, "processing instruction")
		case '/':
			return nil, r.errAt(CondNotWellFormed, 0, "end tag before the stream header")
		case '!':
			err := r.bang(b, 0)
			if err == errIncomplete {
				return nil, errNeedMore
			}
			if err == nil { // CDATA section
				err = r.errAt(CondNotWellFormed, 0, "CDATA section before the stream header")
			}
			return nil, err
		}
		r.begin(true)
	}
	if err := r.parse(); err != nil {
		return nil, err
	}
	p := r.p
	el, s := r.build()
	str := func(x sref) string {
		if x.off < 0 {
			return r.ext(x)
		}
		return s[x.off:x.end]
	}
	b := r.buf[r.pos:r.end]
	if el.Name.Space != NSStream {
		return nil, r.errAt(CondInvalidNamespace, 1, "stream header in namespace "+strconv.Quote(el.Name.Space)+", want "+NSStream)
	}
	if el.Name.Local != "stream" {
		return nil, r.errAt(CondBadFormat, 1, "stream header element is "+strconv.Quote(el.Name.Local)+", want \"stream\"")
	}
	for _, bd := range p.binds {
		r.hdrNS = append(r.hdrNS, hdrBinding{prefix: string(b[bd.prefix.off:bd.prefix.end]), uri: str(bd.uri)})
	}
	r.defNS = str(p.hdrDef)
	r.hdrName = string(b[p.hdrName.off:p.hdrName.end])
	r.started = true
	r.ended = p.hdrEmpty
	r.pos += p.cur
	r.releaseScratch()
	return el, nil
}

// prolog handles what may only come first in a byte stream: a byte order
// mark and the XML declaration. It clears r.atStart when done.
func (r *Reader) prolog() error {
	b := r.buf[r.pos:r.end]
	if !r.bomDone {
		need := 1
		if len(b) > 0 {
			switch b[0] {
			case 0xEF:
				need = 3
			case 0xFE, 0xFF, '<':
				need = 2
			}
		}
		if len(b) < need {
			return errNeedMore
		}
		switch {
		case b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF:
			r.pos += 3
			b = b[3:]
		case b[0] == 0xFE && b[1] == 0xFF, b[0] == 0xFF && b[1] == 0xFE:
			return r.errAt(CondUnsupportedEncoding, 0, "UTF-16 byte order mark")
		case b[0] == 0 || b[0] == '<' && b[1] == 0:
			return r.errAt(CondUnsupportedEncoding, 0, "UTF-16 or UTF-32 input")
		}
		r.bomDone = true
	}
	const decl = "<?xml"
	n := min(len(b), len(decl))
	if string(b[:n]) != decl[:n] {
		r.atStart = false
		return nil
	}
	if len(b) <= len(decl) {
		return errNeedMore
	}
	if c := b[len(decl)]; !isSpace(c) && c != '?' {
		r.atStart = false // a processing instruction such as <?xml-stylesheet?>
		return nil
	}
	n, err := r.xmlDecl(b)
	if err != nil {
		return err
	}
	r.pos += n
	r.atStart = false
	return nil
}

// xmlDecl parses the XML declaration at the start of b and returns its
// length.
func (r *Reader) xmlDecl(b []byte) (int, error) {
	end := -1
	for k := 5; k+1 < len(b) && k < maxDeclBytes; k++ {
		if b[k] == '?' && b[k+1] == '>' {
			end = k
			break
		}
	}
	if end < 0 {
		if len(b) >= maxDeclBytes {
			return 0, r.errAt(CondNotWellFormed, 0, "XML declaration longer than "+strconv.Itoa(maxDeclBytes)+" bytes")
		}
		return 0, errNeedMore
	}
	s := b[:end]
	bad := func(j int, msg string) error { return r.errAt(CondNotWellFormed, j, "XML declaration: "+msg) }
	j := 5
	seen := 0 // 1 version, 2 encoding, 3 standalone
	for {
		k := j
		for k < len(s) && isSpace(s[k]) {
			k++
		}
		if k == len(s) {
			break
		}
		if k == j {
			return 0, bad(k, "missing whitespace")
		}
		j = k
		for k < len(s) && s[k] >= 'a' && s[k] <= 'z' {
			k++
		}
		name := string(s[j:k])
		for k < len(s) && isSpace(s[k]) {
			k++
		}
		if k == len(s) || s[k] != '=' {
			return 0, bad(k, "expected '='")
		}
		k++
		for k < len(s) && isSpace(s[k]) {
			k++
		}
		if k == len(s) || (s[k] != '"' && s[k] != '\'') {
			return 0, bad(k, "expected a quoted value")
		}
		q := s[k]
		k++
		vs := k
		for k < len(s) && s[k] != q {
			c := s[k]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return 0, bad(k, "invalid character in value")
			}
			k++
		}
		if k == len(s) {
			return 0, bad(k, "unterminated value")
		}
		val := string(s[vs:k])
		k++
		switch {
		case name == "version" && seen == 0:
			if !validVersion(val) {
				return 0, bad(vs, "malformed version "+strconv.Quote(val))
			}
			if val != "1.0" {
				return 0, r.errAt(CondBadFormat, vs, "unsupported XML version "+strconv.Quote(val))
			}
			seen = 1
		case name == "encoding" && seen == 1:
			if !equalFoldASCII(val, "UTF-8") {
				return 0, r.errAt(CondUnsupportedEncoding, vs, "encoding "+strconv.Quote(val))
			}
			seen = 2
		case name == "standalone" && (seen == 1 || seen == 2):
			if val != "yes" && val != "no" {
				return 0, bad(vs, "standalone must be yes or no")
			}
			seen = 3
		default:
			return 0, bad(j, "unexpected "+strconv.Quote(name))
		}
		j = k
	}
	if seen == 0 {
		return 0, bad(5, "missing version")
	}
	return end + 2, nil
}

// validVersion reports whether v matches '1.' [0-9]+.
func validVersion(v string) bool {
	if len(v) < 3 || v[0] != '1' || v[1] != '.' {
		return false
	}
	for i := 2; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// streamEnd parses the stream end tag at the start of b ("</...").
func (r *Reader) streamEnd(b []byte) error {
	name := r.hdrName
	j := 2
	n := min(len(b)-j, len(name))
	if string(b[j:j+n]) != name[:n] {
		return r.errAt(CondNotWellFormed, 0, "end tag does not match the stream header <"+name+">")
	}
	if n < len(name) {
		return errNeedMore
	}
	j += n
	for j < len(b) && isSpace(b[j]) {
		j++
	}
	if j >= maxEndTagBytes {
		return r.errAt(CondNotWellFormed, 0, "stream end tag longer than "+strconv.Itoa(maxEndTagBytes)+" bytes")
	}
	if j == len(b) {
		return errNeedMore
	}
	if b[j] != '>' {
		return r.errAt(CondNotWellFormed, 0, "end tag does not match the stream header <"+name+">")
	}
	r.pos += j + 1
	r.ended = true
	return ErrStreamEnd
}

// errAt returns a parse error at offset i of the unconsumed input.
func (r *Reader) errAt(c Condition, i int, msg string) *Error {
	return &Error{Cond: c, Msg: msg, Offset: r.base + int64(r.pos) + int64(i)}
}

// fail records a parse error as final and returns it.
func (r *Reader) fail(err error) error {
	var e *Error
	if errors.As(err, &e) {
		r.err = err
		r.releaseScratch()
	}
	return err
}

// readFailed turns a read error into what ReadStart or Next return: a
// parse error if the partial input already has one, io.EOF at a clean
// boundary, io.ErrUnexpectedEOF within a header or element.
func (r *Reader) readFailed(err error, what string) error {
	if err == io.EOF {
		if r.p != nil {
			if perr := r.probe(); perr != nil {
				return r.fail(perr)
			}
		}
		if r.end > r.pos {
			return fmt.Errorf("xmlstream: %s at offset %d: %w", what, r.InputOffset(), io.ErrUnexpectedEOF)
		}
		return io.EOF
	}
	return fmt.Errorf("xmlstream: reading %s: %w", what, err)
}

// fill reads more input into the buffer.
func (r *Reader) fill() error {
	if r.rerr != nil {
		err := r.rerr
		r.rerr = nil
		return err
	}
	switch {
	case r.pos == r.end:
		// Nothing buffered: go back to the small idle buffer, so that an
		// idle connection does not hold a large one, nor parse state.
		r.dropSpare()
		r.base += int64(r.pos)
		r.pos, r.end = 0, 0
		if r.small == nil {
			r.small = make([]byte, idleBufSize)
		}
		if len(r.buf) != idleBufSize {
			r.releaseBuf()
			r.buf = r.small
		}
	case len(r.buf) == idleBufSize:
		// Input is flowing: leave the idle buffer for a full-size one.
		r.grow()
	case r.end == len(r.buf):
		if r.pos > 0 {
			copy(r.buf, r.buf[r.pos:r.end])
			r.base += int64(r.pos)
			r.end -= r.pos
			r.pos = 0
		}
		if r.end == len(r.buf) {
			r.grow()
		}
	}
	for range 100 {
		n, err := r.src.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			return errors.New("xmlstream: source returned an invalid count")
		}
		r.end += n
		if err != nil {
			if n > 0 {
				r.rerr = err
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}

// grow moves the buffered input to a larger buffer: a pooled chunk, or
// twice the size of the current one.
func (r *Reader) grow() {
	var nb []byte
	var chunk *[]byte
	if len(r.buf) < readChunk {
		chunk = bufPool.Get().(*[]byte)
		nb = *chunk
	} else {
		// The parser only asks for more while the element in progress is
		// under its limit, so this stays below limit+readChunk.
		size := min(2*len(r.buf), max(r.lim.MaxElementBytes, maxHeaderBytes)+readChunk)
		if size <= len(r.buf) {
			size = len(r.buf) + readChunk
		}
		nb = make([]byte, size)
	}
	n := copy(nb, r.buf[r.pos:r.end])
	r.releaseBuf()
	r.base += int64(r.pos)
	r.buf, r.chunk = nb, chunk
	r.pos, r.end = 0, n
}

// releaseBuf drops the buffer, returning it to the pool if it came from
// there.
func (r *Reader) releaseBuf() {
	if r.chunk != nil {
		bufPool.Put(r.chunk)
		r.chunk = nil
	}
	r.buf = nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r'
}
