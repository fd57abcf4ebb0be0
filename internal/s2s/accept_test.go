package s2s_test

import (
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/s2s"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// exhausted is a listener whose first fails Accepts report EMFILE, as when
// the process is out of file descriptors.
type exhausted struct {
	net.Listener
	fails atomic.Int32
}

func (l *exhausted) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestServeSurvivesEMFILE: Serve retries after EMFILE instead of
// returning (which used to shut the whole server down), then serves the
// next peer, and returns nil at Shutdown.
func TestServeSurvivesEMFILE(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &exhausted{Listener: inner}
	ln.fails.Store(3)
	m := s2s.New(s2s.Config{Router: router.New([]string{"b.test"}, slog.New(slog.DiscardHandler))})
	done := make(chan error, 1)
	go func() { done <- m.Serve(ln, false) }()

	nc, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := nc.Write([]byte("<stream:stream xmlns='jabber:server' xmlns:stream='" + stream.NS + "' version='1.0' from='a.test' to='b.test'>")); err != nil {
		t.Fatal(err)
	}
	header := make(chan error, 1)
	go func() {
		_, err := xmlstream.NewReader(nc, xmlstream.Limits{}).ReadStart()
		header <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v after EMFILE", err)
	case err := <-header:
		if err != nil {
			t.Fatalf("no stream header after EMFILE: %v", err)
		}
	}
	if n := ln.fails.Load(); n >= 0 {
		t.Fatalf("%d EMFILE errors left unreturned", n+1)
	}

	ctx := ctxT(t)
	if err := m.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v after Shutdown, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return after Shutdown")
	}
}
