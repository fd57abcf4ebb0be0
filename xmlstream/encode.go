package xmlstream

import (
	"strconv"
	"unicode/utf8"
)

// AppendXML appends the serialisation of e to dst and returns the extended
// buffer. parentNS is the default namespace in scope where e is written
// (for a stanza, the stream's content namespace such as "jabber:client"):
// e declares xmlns only when its namespace differs. Attributes in other
// namespaces than xml get generated prefixes declared on the element.
// Text and attribute values are escaped; characters not allowed in XML are
// replaced by U+FFFD.
func (e *Element) AppendXML(dst []byte, parentNS string) []byte {
	return e.appendXML(dst, parentNS, "")
}

// appendXML is AppendXML with an optional prefix for e's own name: when
// prefix is not empty the caller has bound it to e.Name.Space, e is written
// as prefix:local without a default namespace declaration, and its children
// still see parentNS as the default namespace.
func (e *Element) appendXML(dst []byte, parentNS, prefix string) []byte {
	if prefix == "" && e.Name.Space == NSXML {
		// The xml namespace cannot be declared as a default namespace;
		// its prefix is bound everywhere.
		prefix = "xml"
	}
	dst = append(dst, '<')
	if prefix != "" {
		dst = append(dst, prefix...)
		dst = append(dst, ':')
	}
	dst = append(dst, e.Name.Local...)
	defNS := parentNS
	if prefix == "" && e.Name.Space != parentNS {
		dst = append(dst, ` xmlns="`...)
		dst = appendEscaped(dst, e.Name.Space, true)
		dst = append(dst, '"')
		defNS = e.Name.Space
	}
	dst = appendAttrs(dst, e.Attr)
	if len(e.Children) == 0 {
		return append(dst, "/>"...)
	}
	dst = append(dst, '>')
	for _, c := range e.Children {
		if c.Elem != nil {
			dst = c.Elem.appendXML(dst, defNS, "")
		} else {
			dst = appendEscaped(dst, c.Text, false)
		}
	}
	dst = append(dst, "</"...)
	if prefix != "" {
		dst = append(dst, prefix...)
		dst = append(dst, ':')
	}
	dst = append(dst, e.Name.Local...)
	return append(dst, '>')
}

// appendAttrs appends attrs, each preceded by a space. Attributes in
// namespaces other than xml get generated prefixes (ns1, ns2, ...) declared
// just before their first use.
func appendAttrs(dst []byte, attrs []Attr) []byte {
	var prefixes []string // attribute namespaces declared here, index+1 is the prefix number
	for i := range attrs {
		a := &attrs[i]
		dst = append(dst, ' ')
		switch a.Name.Space {
		case "":
		case NSXML:
			dst = append(dst, "xml:"...)
		default:
			n := -1
			for j, p := range prefixes {
				if p == a.Name.Space {
					n = j
					break
				}
			}
			if n < 0 {
				prefixes = append(prefixes, a.Name.Space)
				n = len(prefixes) - 1
				dst = append(dst, "xmlns:ns"...)
				dst = strconv.AppendInt(dst, int64(n+1), 10)
				dst = append(dst, `="`...)
				dst = appendEscaped(dst, a.Name.Space, true)
				dst = append(dst, `" `...)
			}
			dst = append(dst, "ns"...)
			dst = strconv.AppendInt(dst, int64(n+1), 10)
			dst = append(dst, ':')
		}
		dst = append(dst, a.Name.Local...)
		dst = append(dst, `="`...)
		dst = appendEscaped(dst, a.Value, true)
		dst = append(dst, '"')
	}
	return dst
}

// AppendEscaped appends s to dst escaped for use as character data, or as
// an attribute value when attr is true (both quote characters are escaped,
// so the value may be written in single or double quotes).
func AppendEscaped(dst []byte, s string, attr bool) []byte {
	return appendEscaped(dst, s, attr)
}

func appendEscaped(dst []byte, s string, attr bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x80 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if (r == utf8.RuneError && size == 1) || !isXMLChar(r) {
				dst = append(dst, s[last:i]...)
				dst = append(dst, "\uFFFD"...)
				i += size
				last = i
				continue
			}
			i += size
			continue
		}
		var esc string
		switch c {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			if attr {
				esc = "&quot;"
			}
		case '\'':
			if attr {
				esc = "&apos;"
			}
		case '\r':
			esc = "&#xD;"
		case '\n':
			if attr {
				esc = "&#xA;"
			}
		case '\t':
			if attr {
				esc = "&#x9;"
			}
		default:
			if c < 0x20 {
				esc = "\uFFFD"
			}
		}
		if esc != "" {
			dst = append(dst, s[last:i]...)
			dst = append(dst, esc...)
			last = i + 1
		}
		i++
	}
	return append(dst, s[last:]...)
}

// isXMLChar reports whether r is allowed by the XML 1.0 Char production.
func isXMLChar(r rune) bool {
	switch {
	case r == 0x09 || r == 0x0A || r == 0x0D:
		return true
	case r >= 0x20 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}
