package listen_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ode-xmpp/ode/internal/listen"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeListener hands out, one per Accept, what the test puts in accepts,
// and net.ErrClosed once closed.
type fakeListener struct {
	accepts chan accepted
	closed  chan struct{}
	once    sync.Once
}

type accepted struct {
	c   net.Conn
	err error
}

func newFake() *fakeListener {
	return &fakeListener{accepts: make(chan accepted), closed: make(chan struct{})}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case a := <-l.accepts:
		return a.c, a.err
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
	}
}

func (l *fakeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5222} }

// emfile is what Accept returns when the process is out of descriptors.
var emfile = &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}

// warnings records the retry_in of each Warn record.
type warnings struct {
	mu    sync.Mutex
	delay []time.Duration
}

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *warnings) WithGroup(string) slog.Handler            { return w }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level != slog.LevelWarn {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "retry_in" {
			w.delay = append(w.delay, a.Value.Duration())
		}
		return true
	})
	return nil
}

func (w *warnings) delays() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.delay...)
}

// serve runs listen.Accept on ln in a goroutine; the channel yields its
// result.
func serve(ln net.Listener, w *warnings, closing func() bool, handle func(net.Conn)) <-chan error {
	done := make(chan error, 1)
	go func() { done <- listen.Accept(ln, slog.New(w), closing, handle) }()
	return done
}

func wait(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Accept returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return after the listener closed")
	}
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSurvivesEMFILE: a listener out of descriptors fails a few times, then
// accepts; the loop logs each failure with a growing pause, handles the
// connection, and starts again from the shortest pause after it.
func TestSurvivesEMFILE(t *testing.T) {
	ln := newFake()
	w := &warnings{}
	handled := make(chan net.Conn, 2)
	done := serve(ln, w, nil, func(c net.Conn) { handled <- c })

	give := func(c net.Conn, err error) {
		t.Helper()
		select {
		case ln.accepts <- accepted{c, err}:
		case err := <-done:
			t.Fatalf("Accept returned %v after a temporary error", err)
		case <-time.After(10 * time.Second):
			t.Fatal("Accept not called again")
		}
	}
	for range 3 {
		give(nil, emfile)
	}
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	give(c1, nil)
	select {
	case c := <-handled:
		if c != c1 {
			t.Fatalf("handled %v, want the accepted connection", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("connection not handled after EMFILE")
	}
	give(nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)})
	give(c2, nil)
	<-handled

	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 5 * time.Millisecond}
	if got := w.delays(); !equal(got, want) {
		t.Errorf("retry_in = %v, want %v", got, want)
	}
	ln.Close()
	wait(t, done)
}

// TestBackoffCap: consecutive failures double the pause up to one second.
// The clock is synctest's, so the pauses take no time.
func TestBackoffCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := newFake()
		w := &warnings{}
		done := serve(ln, w, nil, func(c net.Conn) { c.Close() })
		for range 10 {
			ln.accepts <- accepted{nil, emfile}
		}
		synctest.Wait()
		ln.Close()
		if err := <-done; err != nil {
			t.Fatalf("Accept = %v", err)
		}
		ms := time.Millisecond
		want := []time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second, time.Second}
		if got := w.delays(); !equal(got, want) {
			t.Errorf("retry_in = %v, want %v", got, want)
		}
	})
}

// TestEnds: the loop ends with nil, and without a warning, when the
// listener is closed or its owner is closing.
func TestEnds(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		closing bool
	}{
		{"closed listener", &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}, false},
		{"bare ErrClosed", net.ErrClosed, false},
		{"any error while closing", emfile, true},
		{"other error while closing", errors.New("boom"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := newFake()
			defer ln.Close()
			w := &warnings{}
			done := serve(ln, w, func() bool { return tt.closing }, func(c net.Conn) { t.Error("handle called") })
			ln.accepts <- accepted{nil, tt.err}
			wait(t, done)
			if d := w.delays(); len(d) > 0 {
				t.Errorf("warned with retry_in %v", d)
			}
		})
	}
}

// TestRealListener: connections on a loopback listener are handled, and
// closing the listener ends the loop.
func TestRealListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan net.Conn, 1)
	done := serve(ln, &warnings{}, nil, func(c net.Conn) { handled <- c })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case sc := <-handled:
		sc.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("connection not handled")
	}
	ln.Close()
	wait(t, done)
}
