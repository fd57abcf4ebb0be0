// Package stream implements the XMPP stream layer of RFC 6120 §4: the
// stream header and version negotiation, stream features, and stream
// errors.
package stream

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of the stream layer (RFC 6120 §4.8, §5, §6, §7, and RFC 3921
// for the session namespace).
const (
	// NS is the namespace of the stream element and its features.
	NS = "http://etherx.jabber.org/streams"
	// NSErrors is the namespace of stream error conditions.
	NSErrors = "urn:ietf:params:xml:ns:xmpp-streams"
	// NSTLS is the STARTTLS namespace.
	NSTLS = "urn:ietf:params:xml:ns:xmpp-tls"
	// NSSASL is the SASL negotiation namespace.
	NSSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
	// NSBind is the resource binding namespace.
	NSBind = "urn:ietf:params:xml:ns:xmpp-bind"
	// NSSession is the RFC 3921 session establishment namespace.
	NSSession = "urn:ietf:params:xml:ns:xmpp-session"
	// NSDialback is the Server Dialback namespace (XEP-0220), bound to
	// the "db" prefix.
	NSDialback = "jabber:server:dialback"
)

// Header holds the attributes of a stream header (RFC 6120 §4.7).
type Header struct {
	To      string
	From    string
	ID      string
	Version string
	Lang    string
	// Dialback declares the "db" prefix for jabber:server:dialback on
	// the stream element, as servers that support Server Dialback do
	// (XEP-0220 §2.1). ParseHeader does not set it.
	Dialback bool
}

// ParseHeader reads the attributes of the stream header start, as
// returned by xmlstream.Reader.ReadStart. A header whose element is not
// {NS}stream yields an invalid-namespace stream error.
func ParseHeader(start *xmlstream.Element) (Header, error) {
	if start == nil {
		return Header{}, &Error{Condition: BadFormat}
	}
	if start.Name.Space != NS || start.Name.Local != "stream" {
		return Header{}, &Error{Condition: InvalidNamespace, Text: "stream element must be {" + NS + "}stream"}
	}
	h := Header{
		To:      start.Attribute("to"),
		From:    start.Attribute("from"),
		ID:      start.Attribute("id"),
		Version: start.Attribute("version"),
	}
	h.Lang, _ = start.LookupAttr(xmlstream.NSXML, "lang")
	return h, nil
}

// AppendXML appends the stream header open tag to dst, declaring
// contentNS (jabber:client or jabber:server) as the default namespace and
// "stream" as the prefix of NS. Empty fields are omitted.
func (h Header) AppendXML(dst []byte, contentNS string) []byte {
	dst = append(dst, "<?xml version='1.0'?><stream:stream xmlns='"...)
	dst = xmlstream.AppendEscaped(dst, contentNS, true)
	dst = append(dst, "' xmlns:stream='"+NS+"'"...)
	if h.Dialback {
		dst = append(dst, " xmlns:db='"+NSDialback+"'"...)
	}
	attr := func(name, v string) {
		if v == "" {
			return
		}
		dst = append(dst, ' ')
		dst = append(dst, name...)
		dst = append(dst, "='"...)
		dst = xmlstream.AppendEscaped(dst, v, true)
		dst = append(dst, '\'')
	}
	attr("to", h.To)
	attr("from", h.From)
	attr("id", h.ID)
	attr("version", h.Version)
	attr("xml:lang", h.Lang)
	return append(dst, '>')
}

// NegotiateVersion applies RFC 6120 §4.7.5 to the version a peer sent and
// returns the version to answer with: "1.0" for a peer at 1.x or above
// with the same major version, "" for a peer that sent no version (a
// pre-RFC 3920 peer), and an unsupported-version stream error for a
// higher major version. A malformed version gets bad-format.
func NegotiateVersion(peer string) (string, error) {
	if peer == "" {
		return "", nil
	}
	major, minor, ok := strings.Cut(peer, ".")
	if !ok {
		return "", &Error{Condition: BadFormat, Text: "malformed version"}
	}
	mj, err1 := parseVersionPart(major)
	_, err2 := parseVersionPart(minor)
	if err1 != nil || err2 != nil {
		return "", &Error{Condition: BadFormat, Text: "malformed version"}
	}
	switch {
	case mj > 1:
		return "", &Error{Condition: UnsupportedVersion}
	case mj < 1:
		return "", nil
	}
	return "1.0", nil
}

// parseVersionPart parses one non-negative decimal part; leading zeros
// are ignored as §4.7.5 requires.
func parseVersionPart(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, errors.New("bad version part")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("bad version part")
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("version part: %w", err)
	}
	return n, nil
}
