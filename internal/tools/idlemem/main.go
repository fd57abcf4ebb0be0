// Command idlemem measures the server's memory per idle authenticated TLS
// session: it runs the server in this process and N client sessions in a
// child process (itself, re-executed), so the figures are the server's
// alone.
//
//	go run ./internal/tools/idlemem -n 5000 [-sm] [-ws]
//
// With -sm every session enables XEP-0198 stream management with
// resumption after binding, as mobile clients do. With -ws the sessions
// connect over WebSocket (RFC 7395) to the HTTPS listener, with SASL
// PLAIN, instead of TCP.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/server"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
)

// enableSM and overWS are the -sm and -ws flags.
var enableSM, overWS bool

// memProfile is the -memprofile flag.
var memProfile string

func main() {
	n := flag.Int("n", 5000, "sessions")
	child := flag.String("child", "", "internal: run the clients against this address")
	caFile := flag.String("ca", "", "internal: the server certificate")
	flag.BoolVar(&enableSM, "sm", false, "enable stream management (XEP-0198) with resumption on every session")
	flag.BoolVar(&overWS, "ws", false, "connect over WebSocket instead of TCP")
	flag.StringVar(&memProfile, "memprofile", "", "write a heap profile of the idle server to this file")
	flag.Parse()
	if *child != "" {
		if err := clients(*child, *caFile, *n); err != nil {
			fmt.Fprintln(os.Stderr, "idlemem child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "idlemem:", err)
		os.Exit(1)
	}
}

func run(n int) error {
	dir, err := os.MkdirTemp("", "idlemem")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.Server.DataDir = dir
	cfg.C2S.Listen = []string{"127.0.0.1:0"}
	cfg.C2S.DirectTLS = nil
	cfg.HTTP.Listen = []string{"127.0.0.1:0"}
	cfg.S2S.Enabled = false
	ctx := context.Background()
	srv, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer srv.Shutdown(ctx)
	cs, err := sasl.NewCredentials("pw", 0)
	if err != nil {
		return err
	}
	creds := make([]storage.Credential, len(cs))
	for i, c := range cs {
		creds[i] = storage.Credential{Hash: string(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	}
	if err := srv.Store().CreateAccount(ctx, "load", "localhost", creds); err != nil {
		return err
	}
	st, _ := srv.Addrs()
	if overWS {
		hs, _ := srv.HTTPAddrs()
		st = hs
	}
	// One login first, so one-time allocations (TLS session state, SQL
	// statements) are in the baseline.
	if err := clientsInProcess(st[0].String(), dir+"/selfsigned.crt", 1); err != nil {
		return err
	}
	heap0, rss0 := measure()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-child", st[0].String(), "-ca", dir+"/selfsigned.crt", "-n", strconv.Itoa(n), "-sm="+strconv.FormatBool(enableSM), "-ws="+strconv.FormatBool(overWS))
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		return fmt.Errorf("child: %q %v", line, err)
	}
	elapsed := time.Since(start)
	time.Sleep(2 * time.Second)
	heap1, rss1 := measure()
	if memProfile != "" {
		if f, err := os.Create(memProfile); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	sessions := srv.Router().Count()
	goroutines := runtime.NumGoroutine()
	in.Close()
	_ = cmd.Wait()
	fmt.Printf("stream management: %v, websocket: %v\n", enableSM, overWS)
	fmt.Printf("sessions bound: %d (logins took %v, %.0f logins/s)\n", sessions, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	fmt.Printf("Go heap in use: %.1f MiB -> %.1f MiB: %.1f KiB/session\n", mib(heap0), mib(heap1), float64(heap1-heap0)/1024/float64(n))
	fmt.Printf("RSS:            %.1f MiB -> %.1f MiB: %.1f KiB/session\n", mib(rss0), mib(rss1), float64(rss1-rss0)/1024/float64(n))
	fmt.Printf("goroutines: %d (%.2f/session)\n", goroutines, float64(goroutines)/float64(n))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("goroutine stacks: %.1f MiB (%.1f KiB/session)\n", mib(ms.StackInuse), float64(ms.StackInuse)/1024/float64(n))
	return nil
}

// smEnable enables stream management with resumption on c.
func smEnable(ctx context.Context, c *client.Client) error {
	if err := c.SendRaw([]byte("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")); err != nil {
		return err
	}
	for {
		e, err := c.Recv(ctx)
		if err != nil {
			return fmt.Errorf("enable stream management: %w", err)
		}
		if e.Name.Space == "urn:xmpp:sm:3" && e.Name.Local == "enabled" {
			if e.Attribute("id") == "" {
				return fmt.Errorf("enabled without resumption: %s", e)
			}
			return nil
		}
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// measure returns the heap in use after a full GC and the process RSS.
func measure() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			rss = kb * 1024
		}
	}
	return ms.HeapInuse, rss
}

func clientsInProcess(addr, caFile string, n int) error {
	if overWS {
		cs, err := dialAllWS(addr, caFile, n)
		for _, c := range cs {
			if c != nil {
				c.CloseNow()
			}
		}
		return err
	}
	cs, err := dialAll(addr, caFile, n)
	for _, c := range cs {
		c.Close()
	}
	return err
}

// clients logs in n sessions, prints "ready" and holds them until stdin
// closes.
func clients(addr, caFile string, n int) error {
	if overWS {
		cs, err := dialAllWS(addr, caFile, n)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		for _, c := range cs {
			c.CloseNow()
		}
		return nil
	}
	cs, err := dialAll(addr, caFile, n)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range cs {
		c.Close()
	}
	return nil
}

func dialAll(addr, caFile string, n int) ([]*client.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	out := make([]*client.Client, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			j := jid.MustParse("load@localhost/r" + strconv.Itoa(i))
			out[i], errs[i] = client.Dial(ctx, client.Config{JID: j, Password: "pw", Addr: addr,
				TLS: &tls.Config{RootCAs: pool, ServerName: "localhost"}})
			if errs[i] == nil && enableSM {
				errs[i] = smEnable(ctx, out[i])
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return out, fmt.Errorf("session %d: %w", i, err)
		}
	}
	return out, nil
}
