package c2s_test

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// raw speaks the protocol by hand over a real socket, for the cases a
// well-behaved client never produces.
type raw struct {
	t    testing.TB
	srv  *xmpptest.Server
	conn net.Conn
	r    *xmlstream.Reader
}

func dialRaw(t testing.TB, srv *xmpptest.Server) *raw {
	t.Helper()
	c := srv.Raw(t)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &raw{t: t, srv: srv, conn: c, r: xmlstream.NewReader(c, xmlstream.Limits{MaxElementBytes: 1 << 20})}
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := r.conn.Write([]byte(s)); err != nil {
		r.t.Fatalf("write %q: %v", s, err)
	}
}

// header sends a stream header to domain.
func (r *raw) header(to string) {
	r.t.Helper()
	r.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` + to + `' version='1.0'>`)
}

// open sends a header and reads the server's header and features.
func (r *raw) open() stream.Features {
	r.t.Helper()
	r.header(r.srv.Domain)
	if _, err := r.r.ReadStart(); err != nil {
		r.t.Fatalf("read stream header: %v", err)
	}
	e := r.next()
	f, err := stream.ParseFeatures(e)
	if err != nil {
		r.t.Fatalf("features: %v: %s", err, e)
	}
	return f
}

func (r *raw) next() *xmlstream.Element {
	r.t.Helper()
	e, err := r.r.Next()
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return e
}

// startTLS negotiates STARTTLS and reopens the stream.
func (r *raw) startTLS() stream.Features {
	r.t.Helper()
	r.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	if e := r.next(); e.Name.Local != "proceed" {
		r.t.Fatalf("starttls: got %s", e)
	}
	tc := tls.Client(r.conn, r.srv.TLSConfig())
	if err := tc.Handshake(); err != nil {
		r.t.Fatalf("handshake: %v", err)
	}
	r.conn = tc
	r.r.Reset(tc)
	return r.open()
}

// plain authenticates with PLAIN.
func (r *raw) plain(user, password string) *xmlstream.Element {
	r.t.Helper()
	r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)) + `</auth>`)
	return r.next()
}

// login runs STARTTLS, PLAIN and reopens the stream, ready to bind.
func (r *raw) login(user, password string) stream.Features {
	r.t.Helper()
	r.open()
	r.startTLS()
	if e := r.plain(user, password); e.Name.Local != "success" {
		r.t.Fatalf("auth: %s", e)
	}
	r.r.Reset(r.conn)
	return r.open()
}

// bind binds resource and returns the full JID.
func (r *raw) bind(resource string) string {
	r.t.Helper()
	res := ""
	if resource != "" {
		res = "<resource>" + resource + "</resource>"
	}
	r.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>` + res + `</bind></iq>`)
	e := r.next()
	j := e.Child(stream.NSBind, "bind")
	if e.Attribute("type") != "result" || j == nil || j.Child(stream.NSBind, "jid") == nil {
		r.t.Fatalf("bind: %s", e)
	}
	return j.Child(stream.NSBind, "jid").Text()
}

// expectStreamError reads until a stream error and checks its condition
// and that the server then closes the stream.
func (r *raw) expectStreamError(cond stream.Condition) {
	r.t.Helper()
	for {
		e, err := r.r.Next()
		if err != nil {
			var xe *xmlstream.Error
			if errors.As(err, &xe) {
				r.t.Fatalf("want stream error %s, got unparseable input: %v", cond, err)
			}
			r.t.Fatalf("want stream error %s, got %v", cond, err)
		}
		if e.Name.Space == stream.NS && e.Name.Local == "error" {
			se, _ := stream.ParseError(e)
			if se.Condition != cond {
				r.t.Fatalf("got stream error %s (%s), want %s", se.Condition, se.Text, cond)
			}
			break
		}
	}
	if _, err := r.r.Next(); !errors.Is(err, xmlstream.ErrStreamEnd) {
		r.t.Fatalf("after the stream error: got %v, want the stream close", err)
	}
}

// expectHeaderThenError is for errors sent in answer to a bad header: the
// server opens its stream first (RFC 6120 §4.9.1.3).
func (r *raw) expectHeaderThenError(cond stream.Condition) {
	r.t.Helper()
	if _, err := r.r.ReadStart(); err != nil {
		r.t.Fatalf("read header: %v", err)
	}
	r.expectStreamError(cond)
}

// saslFailure reads a SASL <failure/> and returns its condition.
func saslFailure(t *testing.T, e *xmlstream.Element) string {
	t.Helper()
	if e.Name.Space != stream.NSSASL || e.Name.Local != "failure" || e.FirstChild() == nil {
		t.Fatalf("want a SASL failure, got %s", e)
	}
	return e.FirstChild().Name.Local
}

func repeat(s string, n int) string { return strings.Repeat(s, n) }

var _ = fmt.Sprintf

func base64Encode(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
