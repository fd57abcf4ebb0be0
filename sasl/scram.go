package sasl

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf8"
)

const (
	// maxMessage bounds every SASL message either side accepts.
	maxMessage = 16 << 10
	// maxAttributes bounds the attributes of one SCRAM message.
	maxAttributes = 32
	// nonceSize is the number of random bytes in a nonce.
	nonceSize = 24
	// minClientIterations and maxClientIterations bound the iteration
	// count a client accepts from a server: RFC 7677 §4 asks for at least
	// 4096, and a hostile server must not make the client spin for long.
	minClientIterations = 4096
	maxClientIterations = 10_000_000
)

// scramName returns the name of the SCRAM mechanism for h.
func scramName(h Hash, plus bool) string {
	if plus {
		return "SCRAM-" + string(h) + "-PLUS"
	}
	return "SCRAM-" + string(h)
}

// parseSCRAMName splits a SCRAM mechanism name into its hash and whether
// it is a -PLUS variant.
func parseSCRAMName(name string) (h Hash, plus, ok bool) {
	rest, ok := strings.CutPrefix(name, "SCRAM-")
	if !ok {
		return "", false, false
	}
	rest, plus = strings.CutSuffix(rest, "-PLUS")
	h = Hash(rest)
	if h.size() == 0 {
		return "", false, false
	}
	return h, plus, true
}

// attribute is one "k=value" attribute of a SCRAM message.
type attribute struct {
	key byte
	val string
}

var errSyntax = errors.New("sasl: malformed SCRAM message")

// checkText reports whether msg is valid UTF-8 without NUL, short enough
// to process.
func checkText(msg []byte) bool {
	return len(msg) <= maxMessage && utf8.Valid(msg) && bytes.IndexByte(msg, 0) < 0
}

// checkUTF8 reports whether msg is valid UTF-8, short enough to process.
func checkUTF8(msg []byte) bool {
	return len(msg) <= maxMessage && utf8.Valid(msg)
}

// parseAttributes splits msg into attributes (RFC 5802 §7: attr-val
// *("," attr-val), attr-val = ALPHA "=" 1*value-char). The caller checks
// the text with checkText first.
func parseAttributes(msg string) ([]attribute, error) {
	if msg == "" {
		return nil, errSyntax
	}
	n := strings.Count(msg, ",") + 1
	if n > maxAttributes {
		return nil, errSyntax
	}
	out := make([]attribute, 0, n)
	for part := range strings.SplitSeq(msg, ",") {
		if len(part) < 3 || part[1] != '=' || !isAlpha(part[0]) {
			return nil, errSyntax
		}
		out = append(out, attribute{part[0], part[2:]})
	}
	return out, nil
}

func isAlpha(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// printable reports whether s is a non-empty run of printable ASCII other
// than "," (RFC 5802 §7 "printable"), as nonces must be.
func printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// validCBName reports whether s is a cb-name: 1*(ALPHA / DIGIT / "." / "-").
func validCBName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !('0' <= c && c <= '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

var saslNameEscaper = strings.NewReplacer("=", "=3D", ",", "=2C")

// encodeSASLName escapes "=" and "," in s (RFC 5802 §5.1 saslname).
func encodeSASLName(s string) string { return saslNameEscaper.Replace(s) }

// decodeSASLName reverses encodeSASLName; it rejects an empty name, a
// raw ",", and any "=" not followed by "2C" or "3D".
func decodeSASLName(s string) (string, bool) {
	if s == "" || strings.IndexByte(s, ',') >= 0 {
		return "", false
	}
	if strings.IndexByte(s, '=') < 0 {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		if i+3 > len(s) {
			return "", false
		}
		switch s[i+1 : i+3] {
		case "2C":
			b.WriteByte(',')
		case "3D":
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// newNonce returns a fresh random nonce of printable characters.
func newNonce() string {
	var b [nonceSize]byte
	rand.Read(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:])
}

// xorInto sets dst[i] ^= src[i]; both have the same length.
func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
