package ping_test

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// raw speaks the protocol by hand over a real socket, for a client that
// does not answer (adapted from internal/c2s/raw_test.go).
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

func (r *raw) next() *xmlstream.Element {
	r.t.Helper()
	e, err := r.r.Next()
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return e
}

// open sends a stream header and reads the server's header and features.
func (r *raw) open() stream.Features {
	r.t.Helper()
	r.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` + r.srv.Domain + `' version='1.0'>`)
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

// login runs STARTTLS and PLAIN, reopens the stream and binds resource;
// it returns the full JID.
func (r *raw) login(user, password, resource string) string {
	r.t.Helper()
	r.open()
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
	r.open()
	r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)) + `</auth>`)
	if e := r.next(); e.Name.Local != "success" {
		r.t.Fatalf("auth: %s", e)
	}
	r.r.Reset(r.conn)
	r.open()
	r.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>` + resource + `</resource></bind></iq>`)
	e := r.next()
	b := e.Child(stream.NSBind, "bind")
	if e.Attribute("type") != "result" || b == nil || b.Child(stream.NSBind, "jid") == nil {
		r.t.Fatalf("bind: %s", e)
	}
	return b.Child(stream.NSBind, "jid").Text()
}

// untilStreamError reads until a stream error, passing every stanza before
// it to seen, and checks the condition and that the server then closes the
// stream.
func (r *raw) untilStreamError(cond stream.Condition, seen func(*xmlstream.Element)) {
	r.t.Helper()
	for {
		e := r.next()
		if e.Name.Space == stream.NS && e.Name.Local == "error" {
			se, _ := stream.ParseError(e)
			if se == nil || se.Condition != cond {
				r.t.Fatalf("got stream error %s, want %s", e, cond)
			}
			break
		}
		seen(e)
	}
	if _, err := r.r.Next(); !errors.Is(err, xmlstream.ErrStreamEnd) {
		r.t.Fatalf("after the stream error: got %v, want the stream close", err)
	}
}
