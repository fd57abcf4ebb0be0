package xmpptest

import (
	"crypto/tls"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSSASL2 is XEP-0388's namespace.
const NSSASL2 = "urn:xmpp:sasl:2"

// TLSState returns the state of the TLS connection after StartTLS, or nil.
func (r *Raw) TLSState() *tls.ConnectionState {
	if tc, ok := r.conn.(*tls.Conn); ok {
		st := tc.ConnectionState()
		return &st
	}
	return nil
}

// SASL2Feature returns the <authentication/> of XEP-0388 among the
// features f, or nil.
func SASL2Feature(f stream.Features) *xmlstream.Element {
	for _, o := range f.Other {
		if o.Name.Space == NSSASL2 && o.Name.Local == "authentication" {
			return o
		}
	}
	return nil
}

// SASL2 runs a XEP-0388 exchange on the current stream with c: it sends
// <authenticate/> with c's initial response and the raw XML extra among
// its children, answers the challenges, and returns the server's
// <success/> or <failure/>. The additional data of success goes through
// c.Next, which verifies the server for SCRAM and HT; a failed
// verification fails the test. The features after success are the
// caller's to read.
func (r *Raw) SASL2(c sasl.Client, extra string) *xmlstream.Element {
	r.t.Helper()
	first, err := c.Start()
	if err != nil {
		r.t.Fatalf("xmpptest: sasl2 %s: %v", c.Mechanism(), err)
	}
	ir := ""
	if first != nil {
		ir = "<initial-response>" + base64.StdEncoding.EncodeToString(first) + "</initial-response>"
	}
	r.Send(`<authenticate xmlns='` + NSSASL2 + `' mechanism='` + c.Mechanism() + `'>` + ir + extra + `</authenticate>`)
	for {
		e := r.Next()
		if e.Name.Space != NSSASL2 {
			r.t.Fatalf("xmpptest: sasl2: got %s", e)
		}
		switch e.Name.Local {
		case "challenge":
			data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Text()))
			if err != nil {
				r.t.Fatalf("xmpptest: sasl2 challenge: %v", err)
			}
			resp, err := c.Next(data)
			if err != nil {
				r.t.Fatalf("xmpptest: sasl2 %s: %v", c.Mechanism(), err)
			}
			r.Send(`<response xmlns='` + NSSASL2 + `'>` + base64.StdEncoding.EncodeToString(resp) + `</response>`)
		case "success":
			if ad := e.Child(NSSASL2, "additional-data"); ad != nil {
				data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ad.Text()))
				if err != nil {
					r.t.Fatalf("xmpptest: sasl2 additional data: %v", err)
				}
				if _, err := c.Next(data); err != nil {
					r.t.Fatalf("xmpptest: sasl2 %s: server not verified: %v", c.Mechanism(), err)
				}
			}
			return e
		case "failure":
			return e
		default:
			r.t.Fatalf("xmpptest: sasl2: got %s", e)
		}
	}
}

// SASL2Condition returns the condition of a SASL2 <failure/>, or "" for
// anything else.
func SASL2Condition(e *xmlstream.Element) string {
	if e.Name.Space != NSSASL2 || e.Name.Local != "failure" {
		return ""
	}
	for _, ch := range e.Children {
		if ch.Elem != nil && ch.Elem.Name.Space == stream.NSSASL {
			return ch.Elem.Name.Local
		}
	}
	return ""
}

// TLSHandshakeWith is TLSHandshake with cfg instead of s.TLSConfig(), to
// choose the TLS version.
func (r *Raw) TLSHandshakeWith(cfg *tls.Config) {
	r.t.Helper()
	tc := tls.Client(r.tcp, cfg)
	if err := tc.Handshake(); err != nil {
		r.t.Fatalf("xmpptest: TLS handshake: %v", err)
	}
	r.conn = tc
	r.Restart()
}

// DialRawDirect connects to the direct TLS listener (s.DirectAddr, XEP-0368)
// and runs the TLS handshake with cfg (ALPN xmpp-client unless cfg names
// protocols), with a deadline RawTimeout away; the connection is closed
// when the test ends. Nothing is sent yet.
func (s *Server) DialRawDirect(t testing.TB, cfg *tls.Config) *Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.DirectAddr, RawTimeout)
	if err != nil {
		t.Fatalf("xmpptest: dial %s: %v", s.DirectAddr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(RawTimeout))
	if len(cfg.NextProtos) == 0 {
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"xmpp-client"}
	}
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("xmpptest: TLS handshake: %v", err)
	}
	return &Raw{t: t, srv: s, tcp: c, conn: tc, r: xmlstream.NewReader(tc, xmlstream.Limits{MaxElementBytes: 1 << 20})}
}
