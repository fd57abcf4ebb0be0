package config

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines returns the line (1-based) where each key of the TOML document src
// is first defined, indexed by toml.Key.String(). A table named in a header
// maps to the header's line; the tables implied by a dotted key or header
// (a and a.b for a.b.c = 1) map to the first line that implies them.
//
// BurntSushi/toml v1.6 records key positions but does not export them, so this
// is a small scanner of its own. It is only run on documents the toml package
// has already parsed, and it stops quietly at anything it does not expect: a
// key it misses is reported without a line, never with a wrong one.
func keyLines(src string) map[string]int {
	s := keyScanner{src: src, lines: make(map[string]int), curLine: 1}
	s.document()
	return s.lines
}

// maxNesting bounds the recursion into arrays and inline tables.
const maxNesting = 128

type keyScanner struct {
	src   string
	pos   int
	lines map[string]int
	depth int

	cur, curLine int // line number of src[cur], for lineNo
}

func (s *keyScanner) document() {
	var table []string
	for {
		s.skipTrivia()
		if s.pos >= len(s.src) {
			return
		}
		line := s.lineNo()
		if s.src[s.pos] == '[' {
			end := "]"
			s.pos++
			if s.at(s.pos) == '[' {
				end = "]]"
				s.pos++
			}
			k, ok := s.key()
			if !ok || !strings.HasPrefix(s.src[s.pos:], end) {
				return
			}
			s.pos += len(end)
			table = k
			s.record(nil, k, line)
			continue
		}
		k, ok := s.key()
		if !ok {
			return
		}
		s.record(table, k, line)
		if !s.value(join(table, k)) {
			return
		}
	}
}

// record notes line for base+k[:1], base+k[:2], … unless already known.
func (s *keyScanner) record(base, k []string, line int) {
	for i := 1; i <= len(k); i++ {
		name := toml.Key(join(base, k[:i])).String()
		if _, ok := s.lines[name]; !ok {
			s.lines[name] = line
		}
	}
}

// value skips "= value" after a key, recording the keys of inline tables
// under path.
func (s *keyScanner) value(path []string) bool {
	s.skipSpace()
	if s.at(s.pos) != '=' {
		return false
	}
	s.pos++
	s.skipSpace()
	return s.val(path)
}

func (s *keyScanner) val(path []string) bool {
	if s.depth >= maxNesting {
		return false
	}
	s.depth++
	defer func() { s.depth-- }()
	switch s.at(s.pos) {
	case '"', '\'':
		return s.str()
	case '[':
		return s.array(path)
	case '{':
		return s.inlineTable(path)
	case 0:
		return false
	}
	return s.scalar()
}

func (s *keyScanner) array(path []string) bool {
	s.pos++ // [
	for {
		s.skipTrivia()
		if s.at(s.pos) == ']' {
			s.pos++
			return true
		}
		if !s.val(path) {
			return false
		}
		s.skipTrivia()
		switch s.at(s.pos) {
		case ',':
			s.pos++
		case ']':
		default:
			return false
		}
	}
}

func (s *keyScanner) inlineTable(path []string) bool {
	s.pos++ // {
	for {
		s.skipTrivia()
		if s.at(s.pos) == '}' {
			s.pos++
			return true
		}
		line := s.lineNo()
		k, ok := s.key()
		if !ok {
			return false
		}
		s.record(path, k, line)
		if !s.value(join(path, k)) {
			return false
		}
		s.skipTrivia()
		switch s.at(s.pos) {
		case ',':
			s.pos++
		case '}':
		default:
			return false
		}
	}
}

// scalar skips a number, boolean or date-time.
func (s *keyScanner) scalar() bool {
	start := s.pos
	s.skipToken()
	// A date and a time may be separated by a space: 1979-05-27 07:32:00Z.
	if isDate(s.src[start:s.pos]) && s.at(s.pos) == ' ' && isDigit(s.at(s.pos+1)) {
		s.pos++
		s.skipToken()
	}
	return s.pos > start
}

func (s *keyScanner) skipToken() {
	for s.pos < len(s.src) && !strings.ContainsRune(" \t\r\n,]}#", rune(s.src[s.pos])) {
		s.pos++
	}
}

func isDate(tok string) bool {
	if len(tok) != 10 || tok[4] != '-' || tok[7] != '-' {
		return false
	}
	for i := range len(tok) {
		if i != 4 && i != 7 && !isDigit(tok[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// str skips any of the four kinds of TOML string.
func (s *keyScanner) str() bool {
	q := s.src[s.pos]
	triple := strings.Repeat(string(q), 3)
	if strings.HasPrefix(s.src[s.pos:], triple) {
		s.pos += 3
		for s.pos < len(s.src) {
			switch {
			case q == '"' && s.src[s.pos] == '\\':
				s.pos += 2
			case strings.HasPrefix(s.src[s.pos:], triple):
				s.pos += 3
				// Up to two quotes may end the content: """a"""""
				for range 2 {
					if s.at(s.pos) == q {
						s.pos++
					}
				}
				return true
			default:
				s.pos++
			}
		}
		return false
	}
	_, ok := s.quoted()
	return ok
}

// quoted scans a one-line basic or literal string and returns its value.
func (s *keyScanner) quoted() (string, bool) {
	q := s.src[s.pos]
	start := s.pos
	s.pos++
	for s.pos < len(s.src) {
		switch c := s.src[s.pos]; {
		case c == '\n':
			return "", false
		case q == '"' && c == '\\':
			s.pos += 2
		case c == q:
			s.pos++
			raw := s.src[start:s.pos]
			if q == '\'' {
				return raw[1 : len(raw)-1], true
			}
			if v, err := strconv.Unquote(raw); err == nil {
				return v, true
			}
			return raw[1 : len(raw)-1], true
		default:
			s.pos++
		}
	}
	return "", false
}

// key scans a dotted key: parts separated by dots, each bare or quoted.
func (s *keyScanner) key() ([]string, bool) {
	var parts []string
	for {
		s.skipSpace()
		var part string
		switch c := s.at(s.pos); {
		case c == '"' || c == '\'':
			p, ok := s.quoted()
			if !ok {
				return nil, false
			}
			part = p
		default:
			start := s.pos
			for s.pos < len(s.src) && isBareKeyChar(s.src[s.pos]) {
				s.pos++
			}
			if s.pos == start {
				return nil, false
			}
			part = s.src[start:s.pos]
		}
		parts = append(parts, part)
		s.skipSpace()
		if s.at(s.pos) != '.' {
			return parts, true
		}
		s.pos++
	}
}

func isBareKeyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '_' || c == '-'
}

// skipSpace skips spaces and tabs.
func (s *keyScanner) skipSpace() {
	for s.pos < len(s.src) && (s.src[s.pos] == ' ' || s.src[s.pos] == '\t') {
		s.pos++
	}
}

// skipTrivia skips white space, newlines and comments.
func (s *keyScanner) skipTrivia() {
	for s.pos < len(s.src) {
		switch s.src[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		case '#':
			for s.pos < len(s.src) && s.src[s.pos] != '\n' {
				s.pos++
			}
		default:
			return
		}
	}
}

// at returns src[i], or 0 past the end.
func (s *keyScanner) at(i int) byte {
	if i < len(s.src) {
		return s.src[i]
	}
	return 0
}

// lineNo returns the line of s.pos; s.pos never moves backwards.
func (s *keyScanner) lineNo() int {
	for ; s.cur < s.pos && s.cur < len(s.src); s.cur++ {
		if s.src[s.cur] == '\n' {
			s.curLine++
		}
	}
	return s.curLine
}

// join returns a new slice holding a followed by b.
func join(a, b []string) []string {
	return append(append(make([]string, 0, len(a)+len(b)), a...), b...)
}
