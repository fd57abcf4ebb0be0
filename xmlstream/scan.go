package xmlstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The parser works on one top-level element (or the stream header) at a
// time, kept whole in the Reader's buffer from its '<' at r.pos: every
// offset below is relative to r.pos. It goes token by token (text, start
// tag, end tag, CDATA section); a token that is not complete yet is
// retried once more input arrives, after a cheap scan for its end so that
// input trickling in byte by byte costs linear time. Tokens append events
// to a scratch list and their unescaped text, attribute values and names
// to one byte buffer; when the element is complete, build turns them into
// a tree with one string and three slices.

// errIncomplete means the token at hand runs past the available input.
var errIncomplete = errors.New("xmlstream: incomplete token")

// sref is a string under construction: the bytes [off, end) of
// scratch.str, or when off < 0 the string number -off-1 of the stream (see
// Reader.ext). It holds no pointer, so the parser's tables are cheap to
// write.
type sref struct{ off, end int32 }

// Strings of the stream that srefs refer to.
const (
	extDefNS = iota // Reader.defNS
	extXML          // NSXML
	extHdr          // Reader.hdrNS[i-extHdr].uri
)

func extRef(i int) sref { return sref{off: int32(-1 - i)} }

// ext returns the stream string that x (with x.off < 0) refers to.
func (r *Reader) ext(x sref) string {
	switch i := int(-1 - x.off); i {
	case extDefNS:
		return r.defNS
	case extXML:
		return NSXML
	default:
		return r.hdrNS[i-extHdr].uri
	}
}

// span is a range of raw input bytes, relative to r.pos.
type span struct{ off, end int32 }

const (
	evStart = iota + 1
	evEmpty // an element without children: start and end at once
	evEnd
	evText
)

// event is one step of the element: an element start or an empty element
// (a is the namespace, b the local name, its attributes
// attrs[attr:attr+nattr], nchild its child count), an element end, or
// character data (a).
type event struct {
	a, b   sref
	attr   int32
	nattr  int32
	nchild int32
	kind   uint8
}

// pattr is a parsed attribute.
type pattr struct{ space, local, val sref }

// rawAttr is an attribute of the start tag being parsed.
type rawAttr struct {
	name  span
	colon int32 // position of the prefix colon, -1 if none
	val   sref
	decl  bool // a namespace declaration
}

// binding maps a namespace prefix to a namespace within the element.
type binding struct {
	prefix span
	uri    sref
}

// frame is an open element.
type frame struct {
	name   span // qualified name, for the end tag
	ev     int32
	nbind  int32
	nchild int32
	def    sref // default namespace in scope
}

// Kinds of pending token whose end is searched before it is parsed again.
const (
	pendNone = iota
	pendShort
	pendText
	pendTag
	pendEndTag
	pendCDATA
)

// scratch holds the parse state of one element; it is pooled.
type scratch struct {
	ev     []event
	attrs  []pattr
	raw    []rawAttr
	binds  []binding
	stack  []frame
	str    []byte
	bstack []*Element

	nelem int
	nkids int
	limit int  // size bound of the element
	cur   int  // offset of the next token
	done  bool // the element is complete

	pending uint8 // kind of the incomplete token at cur
	quote   byte  // pendTag: open quote at scan
	scan    int   // where to resume looking for the pending token's end

	header   bool // parsing the stream header
	hdrDef   sref // default namespace declared on the header
	hdrName  span
	hdrEmpty bool // the header was an empty-element tag
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// begin starts parsing an element (or the header) at r.pos.
func (r *Reader) begin(header bool) {
	p := r.spare
	r.spare = nil
	if p == nil {
		p = scratchPool.Get().(*scratch)
	}
	p.header = header
	p.limit = r.lim.MaxElementBytes
	if header {
		p.limit = maxHeaderBytes
	}
	r.p = p
}

// releaseScratch ends the parse of the element in progress. Its state is
// kept for the next element while input is buffered, and goes back to the
// pool when the Reader goes idle (see dropSpare).
func (r *Reader) releaseScratch() {
	p := r.p
	if p == nil {
		return
	}
	r.p = nil
	clear(p.bstack[:cap(p.bstack)])
	// Field by field: rewriting the whole struct would store its slice
	// pointers again, with write barriers.
	p.ev = p.ev[:0]
	p.attrs = p.attrs[:0]
	p.raw = p.raw[:0]
	p.binds = p.binds[:0]
	p.stack = p.stack[:0]
	p.str = p.str[:0]
	p.bstack = p.bstack[:0]
	p.nelem, p.nkids, p.limit, p.cur, p.done = 0, 0, 0, 0, false
	p.pending, p.quote, p.scan = pendNone, 0, 0
	p.header, p.hdrDef, p.hdrName, p.hdrEmpty = false, sref{}, span{}, false
	// Do not keep the memory of an unusually large element.
	if cap(p.str) > 64<<10 {
		p.str = nil
	}
	if cap(p.ev) > 1024 {
		p.ev = nil
	}
	if cap(p.attrs) > 1024 {
		p.attrs = nil
	}
	if cap(p.stack) > 256 {
		p.stack, p.bstack = nil, nil
	}
	if cap(p.binds) > 256 {
		p.binds = nil
	}
	r.dropSpare()
	r.spare = p
}

// dropSpare returns the spare parse state to the pool.
func (r *Reader) dropSpare() {
	if r.spare != nil {
		scratchPool.Put(r.spare)
		r.spare = nil
	}
}

// parse goes on with the element in progress. It returns nil when the
// element is complete, errNeedMore when it needs more input, or a parse
// error.
func (r *Reader) parse() error {
	p := r.p
	b := r.buf[r.pos:r.end]
	lb := b
	if len(lb) > p.limit {
		lb = lb[:p.limit]
	}
	for !p.done {
		i := p.cur
		if p.pending != pendNone {
			if !p.findEnd(lb, i) {
				return r.stall(lb)
			}
			p.pending = pendNone
		}
		if i >= len(lb) {
			return r.stall(lb)
		}
		mark := len(p.str)
		next, err := r.token(lb, i)
		if err != nil {
			p.str = p.str[:mark]
			if err == errIncomplete {
				p.setPending(lb, i)
				return r.stall(lb)
			}
			return err
		}
		p.cur = next
	}
	return nil
}

// token parses the token at b[i].
func (r *Reader) token(b []byte, i int) (int, error) {
	if b[i] != '<' {
		return r.text(b, i)
	}
	if i+1 >= len(b) {
		return 0, errIncomplete
	}
	switch b[i+1] {
	case '/':
		return r.endTag(b, i)
	case '?':
		return 0, r.errAt(CondRestrictedXML, i, "processing instruction")
	case '!':
		if err := r.bang(b, i); err != nil {
			return 0, err
		}
		return r.cdata(b, i)
	}
	return r.startTag(b, i)
}

// stall is called when the token at p.cur needs more input than lb holds:
// it reports the element as too large if lb is already at the limit (or
// rather the first parse error before that point, so that the outcome
// does not depend on how the input was split), errNeedMore otherwise.
func (r *Reader) stall(lb []byte) error {
	p := r.p
	if len(lb) < p.limit {
		return errNeedMore
	}
	if err := r.probe(); err != nil {
		return err
	}
	if p.header {
		return r.errAt(CondPolicyViolation, len(lb), "stream header larger than "+strconv.Itoa(p.limit)+" bytes")
	}
	return r.errAt(CondPolicyViolation, len(lb), "element larger than "+strconv.Itoa(p.limit)+" bytes")
}

// probe parses the incomplete token at p.cur as far as the input goes and
// returns the parse error it finds, if any.
func (r *Reader) probe() error {
	p := r.p
	b := r.buf[r.pos:r.end]
	if len(b) > p.limit {
		b = b[:p.limit]
	}
	if p.cur >= len(b) {
		return nil
	}
	mark := len(p.str)
	_, err := r.token(b, p.cur)
	p.str = p.str[:mark]
	if err == errIncomplete || err == nil {
		return nil
	}
	return err
}

// setPending records what kind of token at b[i] is incomplete.
func (p *scratch) setPending(b []byte, i int) {
	p.scan = i + 1
	p.quote = 0
	switch {
	case b[i] != '<':
		p.pending = pendText
	case i+1 >= len(b):
		p.pending, p.scan = pendShort, len(b)
	case b[i+1] == '/':
		p.pending = pendEndTag
	case b[i+1] == '!':
		if len(b) >= i+9 && string(b[i:i+9]) == "<![CDATA[" {
			p.pending, p.scan = pendCDATA, i+9
		} else {
			p.pending, p.scan = pendShort, len(b)
		}
	default:
		p.pending = pendTag
	}
}

// findEnd reports whether b holds the end of the pending token at b[i],
// resuming the search where the last one stopped.
func (p *scratch) findEnd(b []byte, i int) bool {
	s := max(p.scan, i+1)
	switch p.pending {
	case pendShort:
		return len(b) > p.scan
	case pendText:
		if bytes.IndexByte(b[s:], '<') >= 0 {
			return true
		}
	case pendEndTag:
		if bytes.IndexByte(b[s:], '>') >= 0 {
			return true
		}
	case pendCDATA:
		if bytes.Index(b[s:], []byte("]]>")) >= 0 {
			return true
		}
		p.scan = max(s, len(b)-2)
		return false
	case pendTag:
		q := p.quote
		for k := s; k < len(b); k++ {
			c := b[k]
			switch {
			case q != 0:
				if c == q {
					q = 0
				}
			case c == '>':
				return true
			case c == '"' || c == '\'':
				q = c
			}
		}
		p.quote = q
	}
	p.scan = len(b)
	return false
}

// bang classifies the markup "<!" at b[i]: nil for a CDATA section, a
// restricted-xml error for a comment or DOCTYPE, errIncomplete if b is too
// short to tell, not-well-formed otherwise.
func (r *Reader) bang(b []byte, i int) error {
	rest := b[i:]
	for _, m := range [...]struct {
		lit, what string
	}{{"<!--", "comment"}, {"<!DOCTYPE", "document type declaration"}, {"<![CDATA[", ""}} {
		n := min(len(rest), len(m.lit))
		if string(rest[:n]) != m.lit[:n] {
			continue
		}
		if n < len(m.lit) {
			return errIncomplete
		}
		if m.what == "" {
			return nil
		}
		return r.errAt(CondRestrictedXML, i, m.what)
	}
	return r.errAt(CondNotWellFormed, i, "invalid markup after '<!'")
}

// Byte classes for the scanning loops: 0 is an ordinary byte.
var textClass, attrClass [256]uint8

// asciiName marks ASCII name characters: 1 may start a name, 2 may only
// follow. The colon is handled apart.
var asciiName [128]uint8

func init() {
	for c := 0; c < 0x20; c++ {
		textClass[c] = 1
		attrClass[c] = 1
	}
	for c := 0x80; c < 0x100; c++ {
		textClass[c] = 1
		attrClass[c] = 1
	}
	textClass['\t'], textClass['\n'] = 0, 0
	for _, c := range "<&]\r" {
		textClass[c] = 1
	}
	for _, c := range "<&'\"" {
		attrClass[c] = 1
	}
	for c := 'a'; c <= 'z'; c++ {
		asciiName[c] = 1
		asciiName[c-'a'+'A'] = 1
	}
	asciiName['_'] = 1
	for c := '0'; c <= '9'; c++ {
		asciiName[c] = 2
	}
	asciiName['-'], asciiName['.'] = 2, 2
}

// Word-at-a-time tests on 8 input bytes: lows has the high bit of each
// byte below 0x20 or at or above 0x80 set, eqs that of each byte equal to
// c. They give no false negatives, so a zero result means the 8 bytes
// need no attention.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

func lows(x uint64) uint64 { return ((x - ones*0x20) &^ x & highs) | x&highs }

func eqs(x uint64, c byte) uint64 {
	y := x ^ (ones * uint64(c))
	return (y - ones) &^ y & highs
}

// skipText returns the index of the first byte at or after j that text
// must look at (textClass), or len(b).
func skipText(b []byte, j int) int {
	for {
		for j+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[j:])
			if lows(x)|eqs(x, '<')|eqs(x, '&')|eqs(x, ']') != 0 {
				break
			}
			j += 8
		}
		for end := min(j+8, len(b)); j < end; j++ {
			if textClass[b[j]] != 0 {
				return j
			}
		}
		if j == len(b) {
			return j
		}
	}
}

// skipAttr is skipText for attribute values (attrClass).
func skipAttr(b []byte, j int) int {
	for {
		for j+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[j:])
			if lows(x)|eqs(x, '<')|eqs(x, '&')|eqs(x, '\'')|eqs(x, '"') != 0 {
				break
			}
			j += 8
		}
		for end := min(j+8, len(b)); j < end; j++ {
			if attrClass[b[j]] != 0 {
				return j
			}
		}
		if j == len(b) {
			return j
		}
	}
}

// char checks the UTF-8 sequence at b[j] (a byte >= 0x80) and returns its
// length.
func (r *Reader) char(b []byte, j int) (int, error) {
	c, size := utf8.DecodeRune(b[j:])
	if c == utf8.RuneError && size <= 1 {
		if !utf8.FullRune(b[j:]) {
			return 0, errIncomplete
		}
		return 0, r.errAt(CondNotWellFormed, j, "invalid UTF-8")
	}
	if c == 0xFFFE || c == 0xFFFF {
		return 0, r.errAt(CondNotWellFormed, j, "character "+strconv.QuoteRune(c)+" not allowed in XML")
	}
	return size, nil
}

// text parses character data from b[i] up to the next '<'.
func (r *Reader) text(b []byte, i int) (int, error) {
	p := r.p
	start := len(p.str)
	j, run := i, i
	for {
		j = skipText(b, j)
		if j >= len(b) {
			return 0, errIncomplete
		}
		switch c := b[j]; {
		case c == '<':
			p.put(b[run:j])
			p.addText(start)
			return j, nil
		case c == '&':
			p.put(b[run:j])
			k, err := r.entity(b, j)
			if err != nil {
				return 0, err
			}
			j, run = k, k
		case c == '\r':
			p.put(b[run:j])
			p.putByte('\n')
			j++
			if j < len(b) && b[j] == '\n' {
				j++
			}
			run = j
		case c == ']':
			if j+1 < len(b) && b[j+1] != ']' {
				j++
				continue
			}
			if j+2 >= len(b) {
				return 0, errIncomplete // no '<' after it yet
			}
			if b[j+2] == '>' {
				return 0, r.errAt(CondNotWellFormed, j, "\"]]>\" in character data")
			}
			j++
		case c >= 0x80:
			n, err := r.char(b, j)
			if err != nil {
				return 0, err
			}
			j += n
		default:
			return 0, r.errAt(CondNotWellFormed, j, "control character "+strconv.QuoteRune(rune(c))+" not allowed in XML")
		}
	}
}

// addText records the character data appended to p.str since start,
// merging it with character data just before.
func (p *scratch) addText(start int) {
	end := len(p.str)
	if end == start {
		return
	}
	if n := len(p.ev); n > 0 && p.ev[n-1].kind == evText && p.ev[n-1].a.end == int32(start) {
		p.ev[n-1].a.end = int32(end)
		return
	}
	p.ev = append(p.ev, event{kind: evText, a: sref{off: int32(start), end: int32(end)}})
	p.stack[len(p.stack)-1].nchild++
	p.nkids++
}

// cdata parses the CDATA section at b[i] ("<![CDATA[" checked).
func (r *Reader) cdata(b []byte, i int) (int, error) {
	p := r.p
	if len(p.stack) == 0 {
		return 0, r.errAt(CondBadFormat, i, "character data at the top level of the stream")
	}
	s := i + 9
	k := bytes.Index(b[s:], []byte("]]>"))
	if k < 0 {
		return 0, errIncomplete
	}
	e := s + k
	start := len(p.str)
	j, run := s, s
	for j < e {
		c := b[j]
		switch {
		case c >= 0x20 && c < 0x80 || c == '\t' || c == '\n':
			j++
		case c == '\r':
			p.put(b[run:j])
			p.putByte('\n')
			j++
			if j < e && b[j] == '\n' {
				j++
			}
			run = j
		case c >= 0x80:
			n, err := r.char(b[:e], j)
			if err == errIncomplete {
				err = r.errAt(CondNotWellFormed, j, "invalid UTF-8")
			}
			if err != nil {
				return 0, err
			}
			j += n
		default:
			return 0, r.errAt(CondNotWellFormed, j, "control character "+strconv.QuoteRune(rune(c))+" not allowed in XML")
		}
	}
	p.put(b[run:e])
	p.addText(start)
	return e + 3, nil
}

// entity parses the entity or character reference at b[i] ('&') and
// appends its replacement text to p.str.
func (r *Reader) entity(b []byte, i int) (int, error) {
	p := r.p
	j := i + 1
	if j >= len(b) {
		return 0, errIncomplete
	}
	if b[j] == '#' {
		j++
		hex := j < len(b) && b[j] == 'x'
		if hex {
			j++
		}
		var v rune
		digits := 0
		for ; j < len(b); j++ {
			c := b[j]
			var d rune
			switch {
			case c >= '0' && c <= '9':
				d = rune(c - '0')
			case hex && c|0x20 >= 'a' && c|0x20 <= 'f':
				d = rune(c|0x20-'a') + 10
			default:
				goto end
			}
			digits++
			if v <= utf8.MaxRune {
				if hex {
					v = v*16 + d
				} else {
					v = v*10 + d
				}
			}
		}
		return 0, errIncomplete
	end:
		if digits == 0 || b[j] != ';' {
			return 0, r.errAt(CondNotWellFormed, i, "malformed character reference")
		}
		if !isXMLChar(v) {
			return 0, r.errAt(CondNotWellFormed, i, "character reference to a character not allowed in XML")
		}
		p.putRune(v)
		return j + 1, nil
	}
	k, err := r.name(b, j)
	if err != nil {
		return 0, err
	}
	if k == j || b[k] != ';' {
		return 0, r.errAt(CondNotWellFormed, i, "'&' not starting an entity or character reference")
	}
	var c byte
	switch string(b[j:k]) {
	case "amp":
		c = '&'
	case "lt":
		c = '<'
	case "gt":
		c = '>'
	case "apos":
		c = '\''
	case "quot":
		c = '"'
	default:
		return 0, r.errAt(CondRestrictedXML, i, "undefined entity &"+string(b[j:k])+";")
	}
	p.putByte(c)
	return k + 1, nil
}

// name scans an XML Name (colons allowed) at b[i] and returns its end;
// an empty name returns i.
func (r *Reader) name(b []byte, i int) (int, error) {
	j := i
	for j < len(b) {
		c := b[j]
		if c < 0x80 {
			if k := asciiName[c]; k == 1 || c == ':' || k == 2 && j > i {
				j++
				continue
			}
			return j, nil
		}
		n, ok, err := r.nameRune(b, j, j == i)
		if err != nil {
			return 0, err
		}
		if !ok {
			return j, nil
		}
		j += n
	}
	return 0, errIncomplete
}

// nameRune decodes the non-ASCII character at b[j] and reports whether
// it may start (first) or continue a name.
func (r *Reader) nameRune(b []byte, j int, first bool) (int, bool, error) {
	c, size := utf8.DecodeRune(b[j:])
	if c == utf8.RuneError && size <= 1 {
		if !utf8.FullRune(b[j:]) {
			return 0, false, errIncomplete
		}
		return 0, false, r.errAt(CondNotWellFormed, j, "invalid UTF-8")
	}
	if first {
		return size, isNameStart(c), nil
	}
	return size, isNameStart(c) || isNameChar(c), nil
}

// isNameStart reports whether the non-ASCII rune c is a NameStartChar.
func isNameStart(c rune) bool {
	switch {
	case c >= 0xC0 && c <= 0xD6, c >= 0xD8 && c <= 0xF6, c >= 0xF8 && c <= 0x2FF,
		c >= 0x370 && c <= 0x37D, c >= 0x37F && c <= 0x1FFF, c >= 0x200C && c <= 0x200D,
		c >= 0x2070 && c <= 0x218F, c >= 0x2C00 && c <= 0x2FEF, c >= 0x3001 && c <= 0xD7FF,
		c >= 0xF900 && c <= 0xFDCF, c >= 0xFDF0 && c <= 0xFFFD, c >= 0x10000 && c <= 0xEFFFF:
		return true
	}
	return false
}

// isNameChar reports whether the non-ASCII rune c is a NameChar that is
// not a NameStartChar.
func isNameChar(c rune) bool {
	return c == 0xB7 || c >= 0x300 && c <= 0x36F || c >= 0x203F && c <= 0x2040
}

// qname scans a QName (NCName or NCName:NCName) at b[i]. It returns the
// position of the colon (-1 if none) and the end.
func (r *Reader) qname(b []byte, i int) (colon, end int, err error) {
	colon = -1
	j := i
	first := true // at the start of an NCName
	for j < len(b) {
		c := b[j]
		if c < 0x80 {
			switch k := asciiName[c]; {
			case k == 1 || k == 2 && !first:
				first = false
				j++
				continue
			case c == ':':
				if first || colon >= 0 {
					return 0, 0, r.errAt(CondNotWellFormed, j, "invalid qualified name")
				}
				colon = j
				first = true
				j++
				continue
			}
			if first {
				return 0, 0, r.errAt(CondNotWellFormed, j, "invalid name")
			}
			return colon, j, nil
		}
		n, ok, err := r.nameRune(b, j, first)
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			if first {
				return 0, 0, r.errAt(CondNotWellFormed, j, "invalid name")
			}
			return colon, j, nil
		}
		first = false
		j += n
	}
	return 0, 0, errIncomplete
}

// startTag parses the start tag at b[i].
func (r *Reader) startTag(b []byte, i int) (int, error) {
	p := r.p
	if !p.header && len(p.stack) >= r.lim.MaxDepth {
		return 0, r.errAt(CondPolicyViolation, i, "elements nested deeper than "+strconv.Itoa(r.lim.MaxDepth))
	}
	colon, j, err := r.qname(b, i+1)
	if err != nil {
		return 0, err
	}
	name := span{int32(i + 1), int32(j)}
	p.raw = p.raw[:0]
	empty := false
	ndecl := 0
	for {
		if j >= len(b) {
			return 0, errIncomplete
		}
		c := b[j]
		if c == '>' {
			j++
			break
		}
		if c == '/' {
			if j+1 >= len(b) {
				return 0, errIncomplete
			}
			if b[j+1] != '>' {
				return 0, r.errAt(CondNotWellFormed, j, "expected '>' after '/' in tag")
			}
			j += 2
			empty = true
			break
		}
		if !isSpace(c) {
			return 0, r.errAt(CondNotWellFormed, j, "expected whitespace, '>' or '/>' in start tag")
		}
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j >= len(b) {
			return 0, errIncomplete
		}
		if c = b[j]; c == '>' || c == '/' {
			continue
		}
		maxAttrs := r.lim.MaxAttrs
		if p.header {
			maxAttrs = max(maxAttrs, defaultMaxAttrs) // the header is bounded apart
		}
		if len(p.raw) >= maxAttrs {
			return 0, r.errAt(CondPolicyViolation, j, "more than "+strconv.Itoa(maxAttrs)+" attributes")
		}
		as := j
		acolon, ae, err := r.qname(b, j)
		if err != nil {
			return 0, err
		}
		j = ae
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j >= len(b) {
			return 0, errIncomplete
		}
		if b[j] != '=' {
			return 0, r.errAt(CondNotWellFormed, j, "expected '=' after attribute name")
		}
		j++
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j >= len(b) {
			return 0, errIncomplete
		}
		if q := b[j]; q != '"' && q != '\'' {
			return 0, r.errAt(CondNotWellFormed, j, "attribute value not quoted")
		}
		val, k, err := r.attrValue(b, j+1, b[j])
		if err != nil {
			return 0, err
		}
		j = k
		// Namespace declarations: xmlns and xmlns:*.
		decl := (acolon < 0 && ae-as == 5 || acolon == as+5) && string(b[as:as+5]) == "xmlns"
		if decl {
			ndecl++
		}
		p.raw = append(p.raw, rawAttr{name: span{int32(as), int32(ae)}, colon: int32(acolon), val: val, decl: decl})
	}
	if err := r.open(b, name, colon, empty, ndecl > 0); err != nil {
		return 0, err
	}
	return j, nil
}

// attrValue parses an attribute value from b[i] up to the quote q,
// normalizing whitespace as XML 1.0 §3.3.3 requires for CDATA attributes.
func (r *Reader) attrValue(b []byte, i int, q byte) (sref, int, error) {
	p := r.p
	start := len(p.str)
	j, run := i, i
	for {
		j = skipAttr(b, j)
		if j >= len(b) {
			return sref{}, 0, errIncomplete
		}
		switch c := b[j]; {
		case c == q:
			p.put(b[run:j])
			return sref{off: int32(start), end: int32(len(p.str))}, j + 1, nil
		case c == '"' || c == '\'':
			j++
		case c == '<':
			return sref{}, 0, r.errAt(CondNotWellFormed, j, "'<' in attribute value")
		case c == '&':
			p.put(b[run:j])
			k, err := r.entity(b, j)
			if err != nil {
				return sref{}, 0, err
			}
			j, run = k, k
		case c == '\t' || c == '\n' || c == '\r':
			p.put(b[run:j])
			p.putByte(' ')
			j++
			if c == '\r' && j < len(b) && b[j] == '\n' {
				j++
			}
			run = j
		case c >= 0x80:
			n, err := r.char(b, j)
			if err != nil {
				return sref{}, 0, err
			}
			j += n
		default:
			return sref{}, 0, r.errAt(CondNotWellFormed, j, "control character "+strconv.QuoteRune(rune(c))+" not allowed in XML")
		}
	}
}

// eq reports whether two srefs hold the same string.
func (r *Reader) eq(a, b sref) bool {
	p := r.p
	switch {
	case a == b:
		return true
	case a.off >= 0 && b.off >= 0:
		return bytes.Equal(p.str[a.off:a.end], p.str[b.off:b.end])
	case a.off < 0 && b.off < 0:
		return r.ext(a) == r.ext(b)
	case a.off < 0:
		a, b = b, a
	}
	return string(p.str[a.off:a.end]) == r.ext(b)
}

// eqs reports whether a holds s.
func (r *Reader) eqs(a sref, s string) bool {
	if a.off < 0 {
		return r.ext(a) == s
	}
	return string(r.p.str[a.off:a.end]) == s
}

// add appends bs to p.str and returns it as an sref.
func (p *scratch) add(bs []byte) sref {
	off := len(p.str)
	p.put(bs)
	return sref{off: int32(off), end: int32(len(p.str))}
}

// put appends bs to p.str. While the capacity suffices it only extends
// the length: an append would store the slice pointer again, which costs
// a write barrier whenever the garbage collector is marking.
func (p *scratch) put(bs []byte) {
	n := len(p.str)
	if cap(p.str)-n < len(bs) {
		p.str = append(p.str, bs...)
		return
	}
	p.str = p.str[:n+len(bs)]
	copy(p.str[n:], bs)
}

// putByte appends c to p.str (see put).
func (p *scratch) putByte(c byte) {
	n := len(p.str)
	if n == cap(p.str) {
		p.str = append(p.str, c)
		return
	}
	p.str = p.str[:n+1]
	p.str[n] = c
}

// putRune appends the UTF-8 encoding of c to p.str (see put).
func (p *scratch) putRune(c rune) {
	var b [utf8.UTFMax]byte
	p.put(utf8.AppendRune(b[:0], c))
}

// lookup resolves a namespace prefix.
func (r *Reader) lookup(b, prefix []byte) (sref, bool) {
	if string(prefix) == "xml" {
		return extRef(extXML), true
	}
	p := r.p
	for k := len(p.binds) - 1; k >= 0; k-- {
		bd := &p.binds[k]
		if bytes.Equal(b[bd.prefix.off:bd.prefix.end], prefix) {
			return bd.uri, true
		}
	}
	for k := len(r.hdrNS) - 1; k >= 0; k-- {
		if r.hdrNS[k].prefix == string(prefix) {
			return extRef(extHdr + k), true
		}
	}
	return sref{}, false
}

// open processes a parsed start tag: namespace declarations (if decls),
// names, duplicate attributes; then it records the element.
func (r *Reader) open(b []byte, name span, colon int, empty, decls bool) error {
	p := r.p
	raw := p.raw
	for x := 1; x < len(raw); x++ {
		nx := b[raw[x].name.off:raw[x].name.end]
		for y := 0; y < x; y++ {
			if bytes.Equal(nx, b[raw[y].name.off:raw[y].name.end]) {
				return r.errAt(CondNotWellFormed, int(raw[x].name.off), "duplicate attribute "+string(nx))
			}
		}
	}
	nbind := len(p.binds)
	var def sref
	if len(p.stack) > 0 {
		def = p.stack[len(p.stack)-1].def
	} else {
		def = extRef(extDefNS)
	}
	for x := 0; decls && x < len(raw); x++ {
		a := &raw[x]
		if !a.decl {
			continue
		}
		if a.colon < 0 {
			if r.eqs(a.val, NSXML) || r.eqs(a.val, NSXMLNS) {
				return r.errAt(CondNotWellFormed, int(a.name.off), "the xml and xmlns namespaces cannot be the default namespace")
			}
			def = a.val
			continue
		}
		prefix := b[a.colon+1 : a.name.end]
		switch {
		case string(prefix) == "xmlns":
			return r.errAt(CondNotWellFormed, int(a.name.off), "the xmlns prefix cannot be declared")
		case string(prefix) == "xml":
			if !r.eqs(a.val, NSXML) {
				return r.errAt(CondNotWellFormed, int(a.name.off), "the xml prefix cannot be bound to another namespace")
			}
			continue
		case a.val.off == a.val.end:
			return r.errAt(CondNotWellFormed, int(a.name.off), "namespace prefix "+string(prefix)+" undeclared (XML 1.0 does not allow it)")
		case r.eqs(a.val, NSXML) || r.eqs(a.val, NSXMLNS):
			return r.errAt(CondNotWellFormed, int(a.name.off), "the xml and xmlns namespaces cannot be bound to another prefix")
		}
		p.binds = append(p.binds, binding{prefix: span{a.colon + 1, a.name.end}, uri: a.val})
	}
	space := def
	local := name
	if colon >= 0 {
		prefix := b[name.off:colon]
		if string(prefix) == "xmlns" {
			return r.errAt(CondNotWellFormed, int(name.off), "element with the xmlns prefix")
		}
		var ok bool
		if space, ok = r.lookup(b, prefix); !ok {
			return r.errAt(CondBadNamespacePrefix, int(name.off), "undeclared namespace prefix "+strconv.Quote(string(prefix)))
		}
		local.off = int32(colon + 1)
	}
	lref := p.add(b[local.off:local.end])
	attr0 := len(p.attrs)
	for x := range raw {
		a := &raw[x]
		if a.decl {
			continue
		}
		var asp sref
		lb := b[a.name.off:a.name.end]
		if a.colon >= 0 {
			prefix := b[a.name.off:a.colon]
			var ok bool
			if asp, ok = r.lookup(b, prefix); !ok {
				return r.errAt(CondBadNamespacePrefix, int(a.name.off), "undeclared namespace prefix "+strconv.Quote(string(prefix)))
			}
			lb = b[a.colon+1 : a.name.end]
			for y := attr0; y < len(p.attrs); y++ {
				o := &p.attrs[y]
				if (o.space.off < 0 || o.space.end > o.space.off) && string(p.str[o.local.off:o.local.end]) == string(lb) && r.eq(o.space, asp) {
					return r.errAt(CondNotWellFormed, int(a.name.off), "duplicate attribute {"+string(b[a.name.off:a.colon])+"}"+string(lb))
				}
			}
		}
		p.attrs = append(p.attrs, pattr{space: asp, local: p.add(lb), val: a.val})
	}
	ev := len(p.ev)
	kind := uint8(evStart)
	if empty {
		kind = evEmpty
	}
	p.ev = append(p.ev, event{kind: kind, a: space, b: lref, attr: int32(attr0), nattr: int32(len(p.attrs) - attr0)})
	p.nelem++
	if n := len(p.stack); n > 0 {
		p.stack[n-1].nchild++
		p.nkids++
	}
	if p.header {
		p.hdrDef, p.hdrName, p.hdrEmpty = def, name, empty
		p.done = true
		return nil
	}
	if empty {
		p.binds = p.binds[:nbind]
		p.done = len(p.stack) == 0
		return nil
	}
	p.stack = append(p.stack, frame{name: name, ev: int32(ev), nbind: int32(nbind), def: def})
	return nil
}

// endTag parses the end tag at b[i] ("</").
func (r *Reader) endTag(b []byte, i int) (int, error) {
	p := r.p
	if len(p.stack) == 0 {
		return 0, r.errAt(CondNotWellFormed, i, "end tag without start tag")
	}
	f := &p.stack[len(p.stack)-1]
	name := b[f.name.off:f.name.end]
	j := i + 2
	n := min(len(b)-j, len(name))
	if !bytes.Equal(b[j:j+n], name[:n]) {
		return 0, r.errAt(CondNotWellFormed, i, "end tag does not match start tag <"+string(name)+">")
	}
	if n < len(name) {
		return 0, errIncomplete
	}
	j += n
	for j < len(b) && isSpace(b[j]) {
		j++
	}
	if j >= len(b) {
		return 0, errIncomplete
	}
	if b[j] != '>' {
		return 0, r.errAt(CondNotWellFormed, i, "end tag does not match start tag <"+string(name)+">")
	}
	p.ev[f.ev].nchild = f.nchild
	p.binds = p.binds[:f.nbind]
	p.ev = append(p.ev, event{kind: evEnd})
	p.stack = p.stack[:len(p.stack)-1]
	p.done = len(p.stack) == 0
	return j + 1, nil
}

// build turns the events into the element tree. It returns the root and
// the string that holds its text.
func (r *Reader) build() (*Element, string) {
	p := r.p
	elems := make([]Element, p.nelem)
	var attrs []Attr
	if len(p.attrs) > 0 {
		attrs = make([]Attr, len(p.attrs))
	}
	var kids []Child
	if p.nkids > 0 {
		kids = make([]Child, p.nkids)
	}
	s := string(p.str)
	str := func(x sref) string {
		if x.off < 0 {
			return r.ext(x)
		}
		return s[x.off:x.end]
	}
	for k := range p.attrs {
		a := &p.attrs[k]
		attrs[k] = Attr{Name: Name{Space: str(a.space), Local: str(a.local)}, Value: str(a.val)}
	}
	stack := p.bstack[:0]
	ei, ki := 0, 0
	for k := range p.ev {
		ev := &p.ev[k]
		switch ev.kind {
		case evStart, evEmpty:
			e := &elems[ei]
			ei++
			e.Name = Name{Space: str(ev.a), Local: str(ev.b)}
			if ev.nattr > 0 {
				e.Attr = attrs[ev.attr : ev.attr+ev.nattr : ev.attr+ev.nattr]
			}
			if n := int(ev.nchild); n > 0 {
				e.Children = kids[ki : ki : ki+n]
				ki += n
			}
			if len(stack) > 0 {
				par := stack[len(stack)-1]
				par.Children = append(par.Children, Child{Elem: e})
			}
			if ev.kind == evStart {
				stack = append(stack, e)
			}
		case evEnd:
			stack = stack[:len(stack)-1]
		case evText:
			par := stack[len(stack)-1]
			par.Children = append(par.Children, Child{Text: str(ev.a)})
		}
	}
	p.bstack = stack[:0]
	return &elems[0], s
}
