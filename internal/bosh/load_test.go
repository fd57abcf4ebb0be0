package bosh_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/bosh"
	"github.com/ode-xmpp/ode/internal/c2s"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage/sqlite"
)

// TestIdleSessions opens 10,000 BOSH sessions, each with one request held
// (an idle client), from a child process, and reports the server's
// memory and goroutines per session.
func TestIdleSessions(t *testing.T) {
	if addr := os.Getenv("ODE_BOSH_LOAD_ADDR"); addr != "" {
		loadClient(t, addr)
		return
	}
	if testing.Short() {
		t.Skip("10,000 sessions")
	}
	n := 10000
	if raceEnabled {
		n = 1000 // the race detector's shadow memory would dwarf the figures
	}
	if s := os.Getenv("ODE_BOSH_SESSIONS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ode.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	cs := c2s.NewServer(c2s.Config{Accounts: st, Router: router.New([]string{domain}, log), Log: log, AuthTimeout: 10 * time.Minute})
	h := bosh.New(bosh.Config{Serve: cs.ServeTransport, Log: log, MaxWait: 5 * time.Minute, MaxInactivity: time.Minute, MaxSessions: n})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()

	before := measure()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleSessions$", "-test.v")
	cmd.Env = append(os.Environ(), "ODE_BOSH_LOAD_ADDR="+ln.Addr().String(), "ODE_BOSH_SESSIONS="+strconv.Itoa(n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "LOAD READY") {
			ready = true
			break
		}
		t.Log(sc.Text())
	}
	if !ready {
		t.Fatal("the client process did not get ready")
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	waitFor(t, func() bool { return heldRequests() >= n })
	after := measure()
	per := float64(after.heap+after.stack-before.heap-before.stack) / float64(n)
	t.Logf("%d idle BOSH sessions (one request held each, not authenticated, plain HTTP): %.0f bytes per session (heap %.0f, goroutine stacks %.0f), %.2f goroutines per session: %d XMPP stream readers, %d held requests, %d net/http background reads; BOSH sessions %d, c2s streams %d",
		n, per, float64(after.heap-before.heap)/float64(n), float64(after.stack-before.stack)/float64(n),
		float64(after.goroutines-before.goroutines)/float64(n), countStacks("bosh.(*session).next"), heldRequests(),
		countStacks("net/http.(*connReader).backgroundRead"), h.Count(), cs.Count())
	if h.Count() != n || cs.Count() != n {
		t.Errorf("%d sessions, %d streams, want %d", h.Count(), cs.Count(), n)
	}
	// The XMPP stream's reader, and net/http's two for the held request
	// (the handler's, and the background read that notices a client
	// going away): no goroutine of the BOSH session's own.
	if g := float64(after.goroutines-before.goroutines) / float64(n); g > 3.05 {
		t.Errorf("%.2f goroutines per idle session, want 3", g)
	}
	if per > 64<<10 {
		t.Errorf("%.0f bytes per idle session", per)
	}

	stdin.Close()
	_ = cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if os.Getenv("ODE_BOSH_HEAP") != "" {
		f, _ := os.Create(os.Getenv("ODE_BOSH_HEAP"))
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
	if err := cs.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	if err := h.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	if err := hs.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}

type usage struct {
	heap, stack uint64
	goroutines  int
}

func measure() usage {
	for range 3 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{heap: ms.HeapInuse, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// heldRequests counts the HTTP requests waiting for a response.
func heldRequests() int { return countStacks("bosh.(*session).wait1") }

func countStacks(fn string) int {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), fn)
}

var sidRE = regexp.MustCompile(`sid='([0-9a-f]+)'`)

// loadClient is the child process: it opens the sessions on raw
// connections (no goroutine each), leaves one request held on each, says
// LOAD READY and waits for its stdin to close.
func loadClient(t *testing.T, addr string) {
	n, _ := strconv.Atoi(os.Getenv("ODE_BOSH_SESSIONS"))
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, err := openIdle(addr, uint64(1000+i))
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	fmt.Println("LOAD READY")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// openIdle creates a session on a new connection and sends the request the
// server holds.
func openIdle(addr string, rid uint64) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	post := func(body string) error {
		_, err := fmt.Fprintf(c, "POST /http-bind HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return err
	}
	if err := post(fmt.Sprintf("<body rid='%d' to='%s' wait='300' hold='1' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh' xmlns='%s'/>", rid, domain, bosh.NS)); err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	m := sidRE.FindSubmatch(b)
	if m == nil {
		return nil, fmt.Errorf("no sid in %s", b)
	}
	if err := post(fmt.Sprintf("<body rid='%d' sid='%s' xmlns='%s'/>", rid+1, m[1], bosh.NS)); err != nil {
		return nil, err
	}
	return c, nil
}
