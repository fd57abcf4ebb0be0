package bench_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/register"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// TestProfile profiles the server under ode bench chat when
// ODE_BENCH_PROFILE names a directory: the server runs in the test
// process, ode bench in a child process (so the profiles are the
// server's), and cpu.pprof, block.pprof and mutex.pprof are written
// there. ODE_BENCH_USERS (1000), ODE_BENCH_RATE (10000) and
// ODE_BENCH_DURATION (15s) set the load, ODE_BENCH_MAM=1 keeps the
// archive on; ODE_BENCH_SCENARIO=login
// profiles ODE_BENCH_LOGINS (3000) logins with ODE_BENCH_MECHANISM
// (SCRAM-SHA-1) instead, and ODE_BENCH_SCENARIO=muc the users in
// ODE_BENCH_ROOMS (1) rooms with groupchat at ODE_BENCH_RATE (here 50);
// ODE_BENCH_ARGS adds options to the scenario's (for logins "-fast" or
// "-sasl1", "-tls-resume"). docs/performance.md reports what it found.
func TestProfile(t *testing.T) {
	dir := os.Getenv("ODE_BENCH_PROFILE")
	if dir == "" {
		t.Skip("set ODE_BENCH_PROFILE=DIR to profile the server under ode bench chat")
	}
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	users, rate, duration := env("ODE_BENCH_USERS", "1000"), env("ODE_BENCH_RATE", "10000"), env("ODE_BENCH_DURATION", "15s")
	var srv *xmpptest.Server
	if env("ODE_BENCH_MAM", "") == "1" {
		srv = xmpptest.Start(t, func(c *config.Config) { // every module, the archive included
			c.Modules.Settings["register"] = &register.Config{Enabled: true, PerIPPerHour: 1000}
		})
	} else {
		srv = start(t)
	}
	bin := filepath.Join(t.TempDir(), "ode")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ode-xmpp/ode/cmd/ode").CombinedOutput(); err != nil {
		t.Fatalf("build ode: %v\n%s", err, out)
	}
	common := []string{"-addr", srv.Addr, "-domain", srv.Domain, "-ca", srv.CAFile, "-users", users, "-concurrency", "16", "-pid", strconv.Itoa(os.Getpid())}
	child := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, append(append([]string{"bench"}, args...), common...)...)
		out, err := cmd.CombinedOutput()
		t.Logf("ode bench %v:\n%s", args, out)
		if err != nil {
			t.Fatal(err)
		}
	}
	child("login", "-register", "-n", "1")

	f, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runtime.SetBlockProfileRate(100_000) // one sample per 100 µs blocked
	runtime.SetMutexProfileFraction(100)
	defer runtime.SetBlockProfileRate(0)
	defer runtime.SetMutexProfileFraction(0)
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	extra := strings.Fields(os.Getenv("ODE_BENCH_ARGS"))
	switch env("ODE_BENCH_SCENARIO", "chat") {
	case "login":
		child(append([]string{"login", "-n", env("ODE_BENCH_LOGINS", "3000"), "-mechanism", env("ODE_BENCH_MECHANISM", "SCRAM-SHA-1")}, extra...)...)
	case "muc":
		child(append([]string{"muc", "-rooms", env("ODE_BENCH_ROOMS", "1"), "-rate", env("ODE_BENCH_RATE", "50"), "-duration", duration}, extra...)...)
	default:
		child(append([]string{"chat", "-rate", rate, "-duration", duration}, extra...)...)
	}
	pprof.StopCPUProfile()
	for _, name := range []string{"block", "mutex"} {
		pf, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.Lookup(name).WriteTo(pf, 0); err != nil {
			t.Fatal(err)
		}
		pf.Close()
	}
}
