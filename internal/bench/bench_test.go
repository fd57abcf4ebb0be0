package bench_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/bench"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/register"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// start starts a server with in-band registration open to the tests.
func start(t *testing.T) *xmpptest.Server {
	t.Helper()
	return xmpptest.Start(t, func(c *config.Config) {
		c.Modules.Settings["register"] = &register.Config{Enabled: true, PerIPPerHour: 1000}
		c.Modules.Disabled = append(c.Modules.Disabled, "mam")
	})
}

// runBench runs ode bench with args against srv and returns its report.
func runBench(t *testing.T, srv *xmpptest.Server, args ...string) (*bench.Report, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	args = append([]string{args[0], "-addr", srv.Addr, "-domain", srv.Domain, "-ca", srv.CAFile, "-json", out, "-timeout", "1m"}, args[1:]...)
	var stdout, stderr bytes.Buffer
	if st := bench.Command(t.Context(), args, &stdout, &stderr); st != 0 {
		t.Fatalf("ode bench %s: status %d\n%s%s", strings.Join(args, " "), st, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	t.Logf("%s", stdout.String())
	return &rep, stdout.String()
}

func TestScenarios(t *testing.T) {
	srv := start(t)
	// The server runs in this process, which ode bench finds listening
	// on the address: its CPU and memory are measured (with the
	// generator's, here).
	t.Run("login", func(t *testing.T) {
		rep, table := runBench(t, srv, "login", "-register", "-users", "4", "-n", "12", "-concurrency", "4", "-mechanism", "SCRAM-SHA-256")
		if rep.Register == nil || rep.Register.Created != 4 {
			t.Errorf("register: %+v", rep.Register)
		}
		l := rep.Login
		if l == nil || l.OK != 12 || l.Failed != 0 || l.Latency.Count != 12 || l.Latency.P50 <= 0 || l.PerSecond <= 0 {
			t.Fatalf("login: %+v", l)
		}
		if rep.PID != os.Getpid() || !l.Usage.Server || l.ServerCPUPerLogin <= 0 {
			t.Errorf("server not measured: pid %d, %+v", rep.PID, l.Usage)
		}
		if !strings.Contains(table, "logins/s") || !strings.Contains(table, "generator:") {
			t.Errorf("table:\n%s", table)
		}
	})
	t.Run("login at a rate with PLAIN and presence", func(t *testing.T) {
		// The accounts exist now: registering again finds them.
		rep, _ := runBench(t, srv, "login", "-register", "-users", "4", "-n", "6", "-rate", "50", "-presence", "-mechanism", "PLAIN")
		if rep.Register == nil || rep.Register.Existed != 4 || rep.Login.OK != 6 {
			t.Fatalf("register %+v, login %+v", rep.Register, rep.Login)
		}
	})
	t.Run("login with SASL1 and with FAST", func(t *testing.T) {
		for _, mode := range []string{"-sasl1", "-fast"} {
			rep, _ := runBench(t, srv, "login", "-register", "-users", "4", "-n", "8", "-concurrency", "2", mode, "-tls-resume=false")
			if l := rep.Login; l == nil || l.OK != 8 || l.Failed != 0 || l.Options.SASL1 != (mode == "-sasl1") || l.Options.FAST != (mode == "-fast") ||
				l.Options.TLSResume || l.Resumed != 0 {
				t.Fatalf("%s: %+v", mode, l)
			}
		}
	})
	t.Run("login with TLS resumption", func(t *testing.T) {
		// -fast resumes TLS sessions unless told not to, and so does
		// -tls-resume with a password login: every measured login
		// resumes (its account's cache was primed first).
		for _, args := range [][]string{{"-fast"}, {"-tls-resume", "-mechanism", "SCRAM-SHA-256"}, {"-tls-resume", "-sasl1"}} {
			rep, table := runBench(t, srv, append([]string{"login", "-users", "4", "-n", "8", "-concurrency", "2"}, args...)...)
			if l := rep.Login; l == nil || l.OK != 8 || !l.Options.TLSResume || l.Resumed != 8 {
				t.Fatalf("%v: %+v", args, l)
			}
			if !strings.Contains(table, "8 of 8 logins resumed their TLS session") {
				t.Errorf("%v: table:\n%s", args, table)
			}
		}
	})
	t.Run("chat", func(t *testing.T) {
		rep, table := runBench(t, srv, "chat", "-register", "-users", "6", "-rate", "100,200", "-duration", "1s", "-drain", "3s")
		c := rep.Chat
		if c == nil || len(c.Steps) != 2 {
			t.Fatalf("chat: %+v", c)
		}
		for _, s := range c.Steps {
			if s.Sent == 0 || s.Delivered != s.Sent || s.Lost != 0 || s.Latency.Count != s.Sent || s.Latency.Max <= 0 {
				t.Errorf("step %+v", s)
			}
		}
		if !strings.Contains(table, "delivered/s") {
			t.Errorf("table:\n%s", table)
		}
	})
	t.Run("chat capacity search", func(t *testing.T) {
		// A limit no step can meet: the search steps down by bisection
		// and stops at -max-steps.
		rep, table := runBench(t, srv, "chat", "-users", "4", "-rate", "100", "-search", "-max-p99", "1ns",
			"-max-steps", "3", "-duration", "300ms", "-drain", "2s")
		c := rep.Chat
		if len(c.Steps) != 3 || c.Capacity != 0 || c.Steps[0].Pass || c.Steps[1].Rate >= c.Steps[0].Rate {
			t.Fatalf("search: %+v", c.Steps)
		}
		if !strings.Contains(table, "capacity: 0 msgs/s") {
			t.Errorf("table:\n%s", table)
		}
		// A limit every step meets: the rate doubles each step.
		rep, _ = runBench(t, srv, "chat", "-users", "4", "-rate", "50", "-search", "-max-p99", "10s",
			"-max-steps", "2", "-duration", "300ms", "-drain", "2s")
		if c := rep.Chat; len(c.Steps) != 2 || !c.Steps[0].Pass || c.Steps[1].Rate != 100 || (c.Steps[1].Pass && c.Capacity != 100) {
			t.Fatalf("search: %+v", c.Steps)
		}
	})
	t.Run("idle", func(t *testing.T) {
		rep, table := runBench(t, srv, "idle", "-users", "6", "-hold", "200ms")
		i := rep.Idle
		if i == nil || !i.Server || i.RSSBefore <= 0 || i.RSSAfter <= 0 || i.Options.Sessions != 6 {
			t.Fatalf("idle: %+v", i)
		}
		if !strings.Contains(table, "KiB/session") {
			t.Errorf("table:\n%s", table)
		}
	})
	t.Run("muc", func(t *testing.T) {
		// 9 users in 2 rooms (5 and 4 occupants), two steps: every copy
		// of every message arrives, the sender's reflection included.
		rep, table := runBench(t, srv, "muc", "-register", "-users", "9", "-rooms", "2", "-rate", "20,40", "-duration", "1s", "-drain", "3s")
		m := rep.MUC
		if m == nil || len(m.Steps) != 2 || m.LastJoin <= 0 || m.JoinElapsed < m.LastJoin || m.Options.Service != "conference."+srv.Domain {
			t.Fatalf("muc: %+v", m)
		}
		for _, s := range m.Steps {
			if s.Sent == 0 || s.Copies < 4*s.Sent || s.Copies > 5*s.Sent || s.Delivered != s.Copies || s.Lost != 0 ||
				s.Latency.Count != s.Copies {
				t.Errorf("step %+v", s)
			}
		}
		if !strings.Contains(table, "copies/s") || !strings.Contains(table, "2 rooms") {
			t.Errorf("table:\n%s", table)
		}
		// A second run joins the rooms that exist now.
		rep, _ = runBench(t, srv, "muc", "-users", "9", "-rooms", "2", "-rate", "20", "-duration", "300ms", "-drain", "3s")
		if s := rep.MUC.Steps[0]; s.Delivered != s.Copies || s.Copies == 0 {
			t.Errorf("second run: %+v", s)
		}
	})
	t.Run("direct TLS", func(t *testing.T) {
		rep, _ := runBench(t, srv, "login", "-users", "2", "-n", "2", "-direct-tls", "-addr", srv.DirectAddr)
		if rep.TLS != "direct" || rep.Login.OK != 2 {
			t.Fatalf("%+v %+v", rep, rep.Login)
		}
	})
}

// TestJSONToStdout: with -json -, standard output is one JSON document.
func TestJSONToStdout(t *testing.T) {
	srv := start(t)
	var stdout, stderr bytes.Buffer
	args := []string{"idle", "-register", "-users", "2", "-hold", "1ms", "-addr", srv.Addr, "-domain", srv.Domain, "-ca", srv.CAFile, "-json", "-"}
	if st := bench.Command(t.Context(), args, &stdout, &stderr); st != 0 {
		t.Fatalf("status %d\n%s", st, stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Idle == nil || rep.Idle.Options.Sessions != 2 {
		t.Fatalf("%v %+v\n%s", err, rep, stdout.String())
	}
	if !strings.Contains(stderr.String(), "KiB/session") {
		t.Errorf("no table on standard error:\n%s", stderr.String())
	}
}

func TestErrors(t *testing.T) {
	srv := start(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown scenario", []string{"flood"}, "unknown scenario"},
		{"no such accounts", []string{"login", "-users", "1", "-n", "1", "-addr", srv.Addr, "-ca", srv.CAFile, "-pid", "-1"}, "not-authorized"},
		{"untrusted certificate", []string{"login", "-users", "1", "-n", "1", "-addr", srv.Addr, "-pid", "-1", "-register"}, "certificate"},
		{"one user", []string{"chat", "-users", "1", "-addr", srv.Addr}, "at least 2 users"},
		{"missing accounts file", []string{"chat", "-accounts", "/nonexistent", "-addr", srv.Addr}, "-accounts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			st := bench.Command(t.Context(), tc.args, &stdout, &stderr)
			if st == 0 || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
				t.Errorf("status %d, want an error with %q:\n%s%s", st, tc.want, stdout.String(), stderr.String())
			}
		})
	}
}

func TestReadAccounts(t *testing.T) {
	as, err := bench.ReadAccounts(strings.NewReader("# accounts\nalice@example.org secret\n\nbob@example.org/phone two words\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].JID.String() != "alice@example.org" || as[1].JID.String() != "bob@example.org" || as[1].Password != "two words" {
		t.Errorf("%+v", as)
	}
	for _, bad := range []string{"alice@example.org\n", "example.org secret\n", "@@ x\n"} {
		if _, err := bench.ReadAccounts(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestReadProc(t *testing.T) {
	s, err := bench.ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 {
		t.Errorf("RSS %d", s.RSS)
	}
	if s.CPU <= 0 || bench.SelfCPU() <= 0 {
		t.Errorf("CPU %v, self %v", s.CPU, bench.SelfCPU())
	}
	if _, err := bench.ReadProc(-5); err == nil {
		t.Error("no error for a missing process")
	}
}
