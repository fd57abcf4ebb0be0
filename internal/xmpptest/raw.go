package xmpptest

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// RawTimeout bounds a Raw connection: every read and write must be done
// this long after DialRaw.
const RawTimeout = 20 * time.Second

// Raw is a hand-driven XMPP client stream over a real socket, for tests:
// it sends whatever text it is given, also what a well-behaved client
// never produces, and reads the server's answers as parsed elements.
// Every method fails the test (t.Fatal) on an error, except NextErr.
// It is not safe for concurrent use.
type Raw struct {
	t    testing.TB
	srv  *Server
	tcp  net.Conn // the socket
	conn net.Conn // tcp, or the TLS connection over it
	r    *xmlstream.Reader
	open bool // the server's stream header was read on the current stream
	ids  int  // for the ids of IQs that Raw sends
}

// DialRaw opens a plain TCP connection to the STARTTLS listener (s.Addr),
// with a deadline RawTimeout away; the connection is closed when the test
// ends. Nothing is sent yet.
func (s *Server) DialRaw(t testing.TB) *Raw {
	t.Helper()
	c := s.Raw(t)
	_ = c.SetDeadline(time.Now().Add(RawTimeout))
	return &Raw{t: t, srv: s, tcp: c, conn: c, r: xmlstream.NewReader(c, xmlstream.Limits{MaxElementBytes: 1 << 20})}
}

// Conn returns the current connection: the TLS one after StartTLS, else
// the TCP socket.
func (r *Raw) Conn() net.Conn { return r.conn }

// Send writes text as it is.
func (r *Raw) Send(xml string) {
	r.t.Helper()
	if _, err := r.conn.Write([]byte(xml)); err != nil {
		r.t.Fatalf("xmpptest: write %q: %v", xml, err)
	}
}

// Header sends a jabber:client stream header addressed to to, with an XML
// declaration and version 1.0.
func (r *Raw) Header(to string) {
	r.t.Helper()
	r.Send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='` + stream.NS + `' to='` + to + `' version='1.0'>`)
}

// ReadHeader reads the server's stream header and returns it (attributes
// only, see xmlstream.Reader.ReadStart).
func (r *Raw) ReadHeader() *xmlstream.Element {
	r.t.Helper()
	h, err := r.r.ReadStart()
	if err != nil {
		r.t.Fatalf("xmpptest: read stream header: %v", err)
	}
	r.open = true
	return h
}

// Open sends a stream header to the server's domain, reads the server's
// header and returns the stream features that follow.
func (r *Raw) Open() stream.Features {
	r.t.Helper()
	r.Header(r.srv.Domain)
	r.ReadHeader()
	return r.Features()
}

// Features reads a <stream:features/> element and returns it parsed.
func (r *Raw) Features() stream.Features {
	r.t.Helper()
	e := r.Expect(stream.NS, "features")
	f, err := stream.ParseFeatures(e)
	if err != nil {
		r.t.Fatalf("xmpptest: features: %v: %s", err, e)
	}
	return f
}

// Next returns the next top-level element the server sends.
func (r *Raw) Next() *xmlstream.Element {
	r.t.Helper()
	e, err := r.r.Next()
	if err != nil {
		r.t.Fatalf("xmpptest: read: %v", err)
	}
	return e
}

// NextErr is Next returning the error: xmlstream.ErrStreamEnd when the
// server closed its stream, io.EOF when it closed the connection without
// closing the stream, a timeout error past the deadline.
func (r *Raw) NextErr() (*xmlstream.Element, error) {
	return r.r.Next()
}

// Expect reads the next element and fails the test unless it is named
// {space}local.
func (r *Raw) Expect(space, local string) *xmlstream.Element {
	r.t.Helper()
	e := r.Next()
	if e.Name.Space != space || e.Name.Local != local {
		r.t.Fatalf("xmpptest: want {%s}%s, got %s", space, local, e)
	}
	return e
}

// Restart makes the next read start a new stream from the server (after
// SASL success, RFC 6120 §6.4.6); the client's side of the restart is its
// next Header.
func (r *Raw) Restart() {
	r.r.Reset(r.conn)
	r.open = false
}

// TLSHandshake runs the TLS handshake with s.TLSConfig() on the socket,
// after the server's <proceed/>, and restarts the stream (RFC 6120 §5.4.3.3).
func (r *Raw) TLSHandshake() {
	r.t.Helper()
	tc := tls.Client(r.tcp, r.srv.TLSConfig())
	if err := tc.Handshake(); err != nil {
		r.t.Fatalf("xmpptest: TLS handshake: %v", err)
	}
	r.conn = tc
	r.Restart()
}

// StartTLS negotiates STARTTLS (opening the stream first if needed),
// reopens the stream over TLS and returns the features offered then.
func (r *Raw) StartTLS() stream.Features {
	r.t.Helper()
	if !r.open {
		r.Open()
	}
	r.Send(`<starttls xmlns='` + stream.NSTLS + `'/>`)
	r.Expect(stream.NSTLS, "proceed")
	r.TLSHandshake()
	return r.Open()
}

// Plain returns the base64 initial response of SASL PLAIN (RFC 4616) for
// authentication identity user, with no authorization identity.
func Plain(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// SendPlain sends a SASL PLAIN <auth/> for user and password and reads
// nothing: the answer, <success/> or <failure/>, is the caller's to read.
func (r *Raw) SendPlain(user, password string) {
	r.t.Helper()
	r.Send(`<auth xmlns='` + stream.NSSASL + `' mechanism='PLAIN'>` + Plain(user, password) + `</auth>`)
}

// ExpectSASLFailure reads a SASL <failure/> and returns its condition,
// such as "not-authorized" (RFC 6120 §6.5).
func (r *Raw) ExpectSASLFailure() string {
	r.t.Helper()
	e := r.Expect(stream.NSSASL, "failure")
	c := e.FirstChild()
	if c == nil || c.Name.Space != stream.NSSASL {
		r.t.Fatalf("xmpptest: SASL failure without a condition: %s", e)
	}
	return c.Name.Local
}

// AuthPlain authenticates with SASL PLAIN, expects <success/>, restarts
// the stream and returns the features offered then.
func (r *Raw) AuthPlain(user, password string) stream.Features {
	r.t.Helper()
	r.SendPlain(user, password)
	r.Expect(stream.NSSASL, "success")
	r.Restart()
	return r.Open()
}

// Login runs StartTLS and AuthPlain and returns the features offered after
// authentication, ready to Bind.
func (r *Raw) Login(user, password string) stream.Features {
	r.t.Helper()
	r.StartTLS()
	return r.AuthPlain(user, password)
}

// Bind binds resource (or lets the server choose one when it is "") and
// returns the full JID bound.
func (r *Raw) Bind(resource string) jid.JID {
	r.t.Helper()
	res := ""
	if resource != "" {
		res = "<resource>" + resource + "</resource>"
	}
	r.ids++
	id := "bind" + strconv.Itoa(r.ids)
	r.Send(`<iq type='set' id='` + id + `'><bind xmlns='` + stream.NSBind + `'>` + res + `</bind></iq>`)
	e := r.Expect("jabber:client", "iq")
	b := e.Child(stream.NSBind, "bind")
	if e.Attribute("type") != "result" || e.Attribute("id") != id || b == nil || b.Child(stream.NSBind, "jid") == nil {
		r.t.Fatalf("xmpptest: bind %q: %s", resource, e)
	}
	j, err := jid.Parse(b.Child(stream.NSBind, "jid").Text())
	if err != nil || j.Resource() == "" {
		r.t.Fatalf("xmpptest: bind %q: bad JID: %s", resource, e)
	}
	return j
}

// ExpectStreamError reads until a stream error, skipping what comes
// before it, fails the test unless its condition is cond, and checks that
// the server then closes its stream.
func (r *Raw) ExpectStreamError(cond stream.Condition) *stream.Error {
	r.t.Helper()
	for {
		e, err := r.r.Next()
		if err != nil {
			r.t.Fatalf("xmpptest: want stream error %s, got %v", cond, err)
		}
		if e.Name.Space != stream.NS || e.Name.Local != "error" {
			continue
		}
		se, err := stream.ParseError(e)
		if err != nil || se.Condition != cond {
			r.t.Fatalf("xmpptest: got stream error %s, want %s", e, cond)
		}
		r.ExpectEnd()
		return se
	}
}

// ExpectEnd fails the test unless the server's next move is to close its
// stream (</stream:stream>).
func (r *Raw) ExpectEnd() {
	r.t.Helper()
	if e, err := r.r.Next(); !errors.Is(err, xmlstream.ErrStreamEnd) {
		r.t.Fatalf("xmpptest: want the stream's end, got %s", describe(e, err))
	}
}

// Close ends the stream properly: it sends </stream:stream>, waits for
// the server's, and closes the connection.
func (r *Raw) Close() {
	r.t.Helper()
	r.Send(`</stream:stream>`)
	for {
		_, err := r.r.Next()
		if errors.Is(err, xmlstream.ErrStreamEnd) {
			break
		}
		if err != nil {
			r.t.Fatalf("xmpptest: closing: want the stream's end, got %v", err)
		}
	}
	r.conn.Close()
}

// Drop closes the TCP socket abruptly, without </stream:stream> nor a TLS
// close_notify, as when a client loses its network.
func (r *Raw) Drop() {
	_ = r.tcp.Close()
}

func describe(e *xmlstream.Element, err error) string {
	if err != nil {
		return err.Error()
	}
	return e.String()
}

// WaitFor polls cond every few milliseconds until it holds, and fails the
// test with "timed out waiting for <what>" if it does not within timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
