package xmpptest_test

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stream"
)

func TestRawLoginBind(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "alice", "wonderland")

	r := srv.DialRaw(t)
	if f := r.Open(); !f.StartTLS || !f.StartTLSRequired {
		t.Fatalf("features before TLS: %+v, want STARTTLS required", f)
	}
	// StartTLS on an open stream, AuthPlain after it.
	f := r.StartTLS()
	if len(f.Mechanisms) == 0 {
		t.Fatalf("features after TLS: %+v, want SASL mechanisms", f)
	}
	if _, ok := r.Conn().(*tls.Conn); !ok {
		t.Fatalf("Conn() is %T after StartTLS, want *tls.Conn", r.Conn())
	}
	if f := r.AuthPlain("alice", "wonderland"); !f.Bind {
		t.Fatalf("features after auth: %+v, want bind", f)
	}
	if j := r.Bind("phone"); j.String() != "alice@"+srv.Domain+"/phone" {
		t.Fatalf("Bind(phone) = %s", j)
	}
	r.Close()

	// Login from a fresh connection, and a resource the server chooses.
	r2 := srv.DialRaw(t)
	if f := r2.Login("alice", "wonderland"); !f.Bind {
		t.Fatalf("Login features: %+v, want bind", f)
	}
	if j := r2.Bind(""); j.Resource() == "" || j.Bare().String() != "alice@"+srv.Domain {
		t.Fatalf("Bind(\"\") = %s", j)
	}
}

func TestRawFailedAuth(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "alice", "wonderland")
	r := srv.DialRaw(t)
	r.StartTLS()
	r.SendPlain("alice", "looking-glass")
	if c := r.ExpectSASLFailure(); c != "not-authorized" {
		t.Fatalf("failure: %s, want not-authorized", c)
	}
	r.SendPlain("alice", "wonderland")
	r.Expect(stream.NSSASL, "success")
}

// TestRawDrop: the server ends the session of a client that vanished.
func TestRawDrop(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "alice", "wonderland")
	r := srv.DialRaw(t)
	r.Login("alice", "wonderland")
	full := r.Bind("phone")
	if srv.Router().Session(full) == nil {
		t.Fatalf("%s not bound after Bind", full)
	}
	r.Drop()
	xmpptest.WaitFor(t, 10*time.Second, "the dropped session to end", func() bool { return srv.Router().Session(full) == nil })
}

func TestRawStreamError(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	r := srv.DialRaw(t)
	r.Open()
	r.Send("<message><body>unclosed</message>")
	if se := r.ExpectStreamError(stream.NotWellFormed); se.Condition != stream.NotWellFormed {
		t.Fatalf("stream error %v", se)
	}
	if _, err := r.NextErr(); err == nil {
		t.Fatal("NextErr after the stream end: no error")
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	xmpptest.WaitFor(t, 10*time.Second, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}
