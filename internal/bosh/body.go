package bosh

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NS is the namespace of the <body/> wrapper (XEP-0124 §6).
const NS = "http://jabber.org/protocol/httpbind"

// NSXBOSH is the namespace of XEP-0206's attributes (xmpp:version,
// xmpp:restart, xmpp:restartlogic).
const NSXBOSH = "urn:xmpp:xbosh"

// maxRID is the largest rid a client may use (XEP-0124 §14.1: 2^53-1).
const maxRID = 1<<53 - 1

// errBadRequest is a request the connection manager cannot take
// (XEP-0124 §17.2 bad-request).
var errBadRequest = errors.New("bosh: bad request")

// request is one parsed <body/> from a client.
type request struct {
	sid     string
	rid     uint64
	typ     string // "terminate" or ""
	to      string
	lang    string
	ver     string
	content string
	wait    int // seconds; -1 when absent
	hold    int // -1 when absent
	pause   int // seconds; -1 when absent
	restart bool
	// xmppVersion is the xmpp:version of a session creation request.
	xmppVersion string
	// payload holds the child elements, in jabber:client.
	payload []*xmlstream.Element
	size    int // bytes of the request body
}

// parseBody parses a request body: one <body xmlns='NS'/> element, after
// an optional byte order mark and XML declaration. Elements inside it in
// the httpbind namespace (a client that left out xmlns='jabber:client')
// are taken as jabber:client, as over TCP.
func parseBody(b []byte) (*request, error) {
	size := len(b)
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	b = bytes.TrimLeft(b, " \t\r\n")
	if bytes.HasPrefix(b, []byte("<?xml")) && len(b) > 5 && isSpace(b[5]) {
		end := bytes.Index(b, []byte("?>"))
		if end < 0 || end > 1024 {
			return nil, fmt.Errorf("%w: XML declaration", errBadRequest)
		}
		b = b[end+2:]
	}
	e, err := xmlstream.ParseElement(b, stanza.NSClient)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	if e.Name.Space != NS || e.Name.Local != "body" {
		return nil, fmt.Errorf("%w: the root is not {%s}body", errBadRequest, NS)
	}
	r := &request{
		sid:     e.Attribute("sid"),
		typ:     e.Attribute("type"),
		to:      e.Attribute("to"),
		ver:     e.Attribute("ver"),
		content: e.Attribute("content"),
		size:    size,
	}
	r.lang, _ = e.LookupAttr(xmlstream.NSXML, "lang")
	r.xmppVersion, _ = e.LookupAttr(NSXBOSH, "version")
	if v, _ := e.LookupAttr(NSXBOSH, "restart"); v == "true" || v == "1" {
		r.restart = true
	}
	if r.typ != "" && r.typ != "terminate" {
		return nil, fmt.Errorf("%w: type %q", errBadRequest, r.typ)
	}
	if r.rid, err = strconv.ParseUint(e.Attribute("rid"), 10, 64); err != nil || r.rid == 0 || r.rid > maxRID {
		return nil, fmt.Errorf("%w: rid %q", errBadRequest, e.Attribute("rid"))
	}
	for _, a := range []struct {
		name string
		v    *int
	}{{"wait", &r.wait}, {"hold", &r.hold}, {"pause", &r.pause}} {
		if *a.v, err = seconds(e.Attribute(a.name)); err != nil {
			return nil, fmt.Errorf("%w: %s", errBadRequest, a.name)
		}
	}
	for _, c := range e.Children {
		if c.Elem == nil {
			if len(bytes.TrimLeft([]byte(c.Text), " \t\r\n")) > 0 {
				return nil, fmt.Errorf("%w: text in the body", errBadRequest)
			}
			continue
		}
		if c.Elem.Name.Space == stream.NS {
			return nil, fmt.Errorf("%w: <stream:%s/> in the body", errBadRequest, c.Elem.Name.Local)
		}
		toClient(c.Elem)
		r.payload = append(r.payload, c.Elem)
	}
	if r.restart && len(r.payload) > 0 {
		// XEP-0206 §5: the restart request MUST be empty.
		return nil, fmt.Errorf("%w: payload in a restart request", errBadRequest)
	}
	return r, nil
}

// seconds parses a non-negative count ("" is -1).
func seconds(s string) (int, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// toClient moves e and its descendants out of the httpbind namespace
// into jabber:client: they inherited it from <body/>.
func toClient(e *xmlstream.Element) {
	if e.Name.Space != NS {
		return
	}
	e.Name.Space = stanza.NSClient
	for _, c := range e.Children {
		if c.Elem != nil {
			toClient(c.Elem)
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
