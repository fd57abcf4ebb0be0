package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// CommandUsage is the synopsis of the ode bench command.
const CommandUsage = `Usage: ode bench SCENARIO [options]

Scenarios:
  login   log in -n times (cycling through -users accounts) at -rate logins/s
          (0: as fast as -concurrency allows): logins/s, latency, CPU per login
  chat    -users online, 1:1 chat messages at -rate msgs/s (Poisson; a comma
          list runs one step per rate); -search finds the highest rate with p99
          under -max-p99 and nothing lost: delivered rate, loss, latency, CPU/msg
  idle    -users sessions held for -hold: the server's RSS per session
  muc     -users online, dealt into -rooms rooms of -service (instant rooms),
          groupchat messages from random occupants at -rate msgs/s into all
          rooms (a comma list runs one step per rate): join times, copies
          delivered per second, loss, latency per copy, CPU per copy, RSS per
          occupant

Accounts are -prefix1@-domain … with -password (created with -register by
in-band registration, XEP-0077), or the "jid password" lines of -accounts.
The server's CPU and memory come from /proc/<pid>: -pid, or the process
listening on -addr when it runs on this machine.

Options:
`

// Command runs "ode bench" with args (after "bench") and returns the
// exit status.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fs, _ := newFlagSet(stderr, "")
		fs.Usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	scenario := args[0]
	if scenario != "login" && scenario != "chat" && scenario != "idle" && scenario != "muc" {
		fmt.Fprintf(stderr, "ode bench: unknown scenario %q (want login, chat, idle or muc)\n", scenario)
		return 2
	}
	fs, f := newFlagSet(stderr, scenario)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ode bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if f.fast {
		// A phone reconnecting with its token resumes its TLS session
		// too, unless -tls-resume=false says otherwise.
		resume := true
		fs.Visit(func(fl *flag.Flag) {
			if fl.Name == "tls-resume" {
				resume = f.tlsResume
			}
		})
		f.tlsResume = resume
	}
	rep, err := f.run(ctx, scenario)
	if rep != nil {
		table := stdout
		if f.json == "-" {
			table = stderr // standard output carries the JSON alone
		}
		if werr := rep.WriteTable(table); werr != nil && err == nil {
			err = werr
		}
		if f.json != "" {
			if jerr := writeJSON(f.json, rep, stdout); jerr != nil && err == nil {
				err = jerr
			}
		}
	}
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "bench: ") {
			msg = "bench: " + msg
		}
		fmt.Fprintf(stderr, "ode %s\n", msg)
		return 1
	}
	return 0
}

// flags are the command's options.
type flags struct {
	addr, domain, ca, mechanism, accounts, prefix, password, json string
	cpuProfile                                                    string
	directTLS, insecure, register, presence, search, sasl1, fast  bool
	tlsResume                                                     bool
	pid, users, logins, concurrency, body, maxSteps, rooms        int
	rates, service                                                string
	loginRate, factor, maxRate                                    float64
	timeout, duration, drain, maxP99, hold                        time.Duration
}

func newFlagSet(stderr io.Writer, scenario string) (*flag.FlagSet, *flags) {
	f := &flags{}
	fs := flag.NewFlagSet("bench "+scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, CommandUsage)
		fs.PrintDefaults()
	}
	users := map[string]int{"login": 100, "chat": 1000, "idle": 1000}[scenario]
	if users == 0 {
		users = 1000
	}
	fs.StringVar(&f.addr, "addr", "127.0.0.1:5222", "the server's client `host:port`")
	fs.StringVar(&f.domain, "domain", "localhost", "the XMPP domain of the generated accounts")
	fs.BoolVar(&f.directTLS, "direct-tls", false, "direct TLS (XEP-0368) instead of STARTTLS")
	fs.StringVar(&f.ca, "ca", "", "PEM `file` of the CA that signed the server's certificate")
	fs.BoolVar(&f.insecure, "insecure", false, "do not verify the server's certificate (a self-signed default)")
	fs.StringVar(&f.mechanism, "mechanism", "", "SASL mechanism (PLAIN, SCRAM-SHA-1, SCRAM-SHA-256, …; default: the strongest offered)")
	fs.IntVar(&f.pid, "pid", 0, "the server's process id for CPU and memory (0: the process listening on -addr, -1: none)")
	fs.IntVar(&f.users, "users", users, "accounts online (chat), held (idle) or cycled through (login)")
	fs.StringVar(&f.accounts, "accounts", "", "`file` of \"jid password\" lines instead of generated accounts")
	fs.StringVar(&f.prefix, "prefix", "bench", "local part prefix of the generated accounts")
	fs.StringVar(&f.password, "password", "bench-password", "password of the generated accounts")
	fs.BoolVar(&f.register, "register", false, "create the accounts first by in-band registration (XEP-0077)")
	fs.IntVar(&f.concurrency, "concurrency", 32, "logins in progress at once")
	fs.DurationVar(&f.timeout, "timeout", 15*time.Minute, "bound on the whole run")
	fs.StringVar(&f.json, "json", "", "also write the results as JSON to `file` (-: to standard output, the table then to standard error)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write the generator's own CPU profile to `file` (go tool pprof)")
	switch scenario {
	case "login":
		fs.IntVar(&f.logins, "n", 1000, "number of logins")
		fs.Float64Var(&f.loginRate, "rate", 0, "login arrivals per second (Poisson; 0: as fast as -concurrency allows)")
		fs.BoolVar(&f.presence, "presence", false, "send initial presence and wait for it before a login counts")
		fs.BoolVar(&f.sasl1, "sasl1", false, "RFC 6120 SASL and a bind IQ even when the server offers SASL2 and Bind2")
		fs.BoolVar(&f.fast, "fast", false, "get a FAST token per account first (XEP-0484), then log in with the tokens")
		fs.BoolVar(&f.tlsResume, "tls-resume", false, "resume TLS sessions (a session cache per account, primed by a first login that is not measured), as a reconnecting phone does; on by default with -fast")
	case "chat":
		fs.StringVar(&f.rates, "rate", "1000", "aggregate `msgs/s`; a comma-separated list runs one step each")
		fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long each step sends")
		fs.DurationVar(&f.drain, "drain", 5*time.Second, "how long to wait for messages in flight after a step")
		fs.IntVar(&f.body, "body", 64, "message body bytes")
		fs.BoolVar(&f.search, "search", false, "capacity search: step the rate up by -factor, then bisect")
		fs.Float64Var(&f.factor, "factor", 2, "the search's step-up factor")
		fs.DurationVar(&f.maxP99, "max-p99", 100*time.Millisecond, "the search's p99 latency limit")
		fs.Float64Var(&f.maxRate, "max-rate", 200000, "the search's highest rate")
		fs.IntVar(&f.maxSteps, "max-steps", 12, "bound on the number of steps")
	case "muc":
		fs.IntVar(&f.rooms, "rooms", 1, "number of rooms the users are dealt into")
		fs.StringVar(&f.service, "service", "", "the MUC service's `domain` (default conference.<-domain>)")
		fs.StringVar(&f.rates, "rate", "50", "aggregate `msgs/s` into all rooms; a comma-separated list runs one step each")
		fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long each step sends")
		fs.DurationVar(&f.drain, "drain", 5*time.Second, "how long to wait for copies in flight after a step")
		fs.IntVar(&f.body, "body", 64, "message body bytes")
		fs.DurationVar(&f.maxP99, "max-p99", 100*time.Millisecond, "a step passes with p99 latency under this")
	case "idle":
		fs.DurationVar(&f.hold, "hold", 10*time.Second, "how long the sessions stay idle before the server is measured")
		fs.BoolVar(&f.presence, "presence", true, "send initial presence from each session")
	}
	return fs, f
}

// target builds the Target from the flags.
func (f *flags) target() (Target, error) {
	t := Target{Addr: f.addr, DirectTLS: f.directTLS, Mechanism: f.mechanism}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.insecure}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return t, fmt.Errorf("-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return t, fmt.Errorf("-ca: no certificate in %s", f.ca)
		}
		tc.RootCAs = pool
	}
	t.TLS = tc
	switch {
	case f.pid > 0:
		t.PID = f.pid
	case f.pid == 0:
		if pid, err := FindListener(f.addr); err == nil {
			t.PID = pid
		}
	}
	if t.PID != 0 {
		if _, err := ReadProc(t.PID); err != nil {
			return t, fmt.Errorf("-pid: %w", err)
		}
	}
	return t, nil
}

// loadAccounts returns the accounts of -accounts or the generated ones.
func (f *flags) loadAccounts() ([]Account, error) {
	if f.users < 1 || f.users > 200000 {
		return nil, fmt.Errorf("-users %d: want 1 to 200000", f.users)
	}
	if f.accounts == "" {
		return Generate(f.domain, f.prefix, f.password, f.users)
	}
	file, err := os.Open(f.accounts)
	if err != nil {
		return nil, fmt.Errorf("-accounts: %w", err)
	}
	defer file.Close()
	as, err := ReadAccounts(file)
	if err != nil {
		return nil, err
	}
	if len(as) < f.users {
		return nil, fmt.Errorf("-accounts: %d accounts in %s, -users is %d", len(as), f.accounts, f.users)
	}
	return as[:f.users], nil
}

func (f *flags) run(ctx context.Context, scenario string) (*Report, error) {
	t, err := f.target()
	if err != nil {
		return nil, err
	}
	accounts, err := f.loadAccounts()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	rep := newReport(scenario, t)
	cpu0 := SelfCPU()
	defer func() {
		rep.BenchCPU = Duration(SelfCPU() - cpu0)
		rep.Wall = Duration(time.Since(rep.Started))
	}()
	fail := func(err error) (*Report, error) {
		rep.Error = err.Error()
		rep.BenchCPU = Duration(SelfCPU() - cpu0)
		rep.Wall = Duration(time.Since(rep.Started))
		return rep, err
	}
	if f.register {
		g, err := Register(ctx, t, accounts, f.concurrency)
		rep.Register = &g
		if err != nil {
			return fail(err)
		}
	}
	switch scenario {
	case "login":
		if f.logins < 1 || f.logins > 10_000_000 {
			return nil, fmt.Errorf("-n %d: want 1 to 10000000", f.logins)
		}
		if f.sasl1 && f.fast {
			return nil, errors.New("-sasl1 and -fast: FAST needs SASL2")
		}
		rep.Login, err = Login(ctx, t, accounts, LoginOptions{Logins: f.logins, Rate: f.loginRate, Concurrency: f.concurrency, Presence: f.presence,
			SASL1: f.sasl1, FAST: f.fast, TLSResume: f.tlsResume})
	case "chat":
		rates, perr := parseRates(f.rates)
		if perr != nil {
			return nil, perr
		}
		rep.Chat, err = Chat(ctx, t, accounts, ChatOptions{Users: len(accounts), Rates: rates, Duration: f.duration, Drain: f.drain,
			BodyBytes: f.body, Search: f.search, Factor: f.factor, MaxP99: f.maxP99, MaxRate: f.maxRate, MaxSteps: f.maxSteps,
			Concurrency: f.concurrency})
	case "muc":
		rates, perr := parseRates(f.rates)
		if perr != nil {
			return nil, perr
		}
		service := f.service
		if service == "" {
			service = "conference." + f.domain
		}
		rep.MUC, err = MUC(ctx, t, accounts, MUCOptions{Users: len(accounts), Rooms: f.rooms, Service: service, Rates: rates,
			Duration: f.duration, Drain: f.drain, BodyBytes: f.body, MaxP99: f.maxP99, Concurrency: f.concurrency})
	case "idle":
		rep.Idle, err = Idle(ctx, t, accounts, IdleOptions{Sessions: len(accounts), Hold: f.hold, Presence: f.presence, Concurrency: f.concurrency})
	}
	if err != nil {
		return fail(err)
	}
	return rep, nil
}

// parseRates reads -rate's comma-separated list.
func parseRates(list string) ([]float64, error) {
	var rates []float64
	for _, s := range strings.Split(list, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("-rate %q: %w", list, err)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

func writeJSON(path string, rep *Report, stdout io.Writer) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
	} else {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}
