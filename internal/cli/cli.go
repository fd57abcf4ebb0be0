// Package cli implements the ode command's subcommands, so that they run
// in tests exactly as from a shell.
package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/ode-xmpp/ode/internal/admin"
	"github.com/ode-xmpp/ode/internal/bench"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/logging"
	"github.com/ode-xmpp/ode/internal/modules"
	"github.com/ode-xmpp/ode/internal/sdnotify"
	"github.com/ode-xmpp/ode/internal/server"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
)

// Version is the ode version, set at link time with -ldflags "-X".
var Version = "0.1.0-dev"

const usage = `ode is an XMPP server.

Usage:
  ode serve [-c FILE] [-log-format text|json]   run the server (embedded defaults without -c)
  ode user add JID [-c FILE] (--password P | --password-stdin)
  ode user passwd JID [-c FILE] (--password P | --password-stdin)
  ode user del JID [-c FILE]              delete the account (and end its sessions)
  ode user kick JID [-c FILE]             end the account's sessions
  ode user logout JID [-c FILE]           log out everywhere: end the sessions, invalidate FAST tokens
  ode user list [DOMAIN] [-c FILE]
  ode user import [-c FILE] < FILE      lines of "jid password"
  ode session list [JID] [-c FILE]        sessions: JID, transport, address, client, since
  ode session kick FULLJID [-c FILE]
  ode room list [-c FILE]
  ode room destroy ROOMJID [-reason TEXT] [-c FILE]
  ode announce [-subject S] [-domain D] [-c FILE] TEXT   a headline to every online user
  ode stats [-c FILE]                     sessions, users, rooms, uptime, memory
  ode reload [-c FILE]                    re-read the configuration (as SIGHUP does)
  ode backup PATH [-c FILE]               a consistent copy of the SQLite database
  ode check [-c FILE] [-dns ADDR] [-roots FILE] [-skip LIST]
                                         check the configuration, certificates, DNS, ports
                                         and host-meta (docs/operating.md)
  ode migrate --from sqlite:PATH|postgres:DSN --to sqlite:PATH|postgres:DSN
                                         copy a store to the other backend (docs/operating.md)
  ode export [-c FILE] [-o FILE] [-domain DOMAIN]...
                                         accounts and rooms as a XEP-0227 document (docs/operating.md)
  ode import [-c FILE] FILE...           XEP-0227 documents: ode's, ejabberd's, Prosody's
  ode bench login|chat|idle [options]    load-test an XMPP server (docs/bench.md)
  ode version
  ode help

Run "ode COMMAND -h" for a command's options.
`

// env is what a command reads and writes.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func (e env) errorf(format string, a ...any) int {
	fmt.Fprintf(e.stderr, "ode: "+format+"\n", a...)
	return 1
}

// Main runs the ode command with args (without the program name) and
// returns the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{stdin, stdout, stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return e.serve(args[1:])
	case "user":
		return e.user(args[1:])
	case "session", "room", "announce", "stats", "reload", "backup":
		return e.control(args[0], args[1:])
	case "check":
		return e.check(args[1:])
	case "migrate":
		return e.migrateCmd(args[1:])
	case "export":
		return e.exportCmd(args[1:])
	case "import":
		return e.importCmd(args[1:])
	case "bench":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return bench.Command(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "ode", version())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ode: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}

// newFlags returns a flag set that prints its usage to stderr.
func (e env) newFlags(name, synopsis string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cfgPath := fs.String("c", "", "config file (TOML); embedded defaults when empty")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: %s\n\nOptions:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs, cfgPath
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// loadConfig reads the configuration file at path, with the settings of
// every module the server has.
func loadConfig(path string) (config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path, modules.Schemas()...)
}

func flagStatus(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func (e env) serve(args []string) int {
	fs, cfgPath := e.newFlags("serve", "ode serve [-c FILE] [-log-format text|json]")
	logFormat := fs.String("log-format", "", "log format: text or json (overrides the config)")
	if _, err := parse(fs, args); err != nil {
		return flagStatus(err)
	}
	load := func() (config.Config, error) {
		cfg, err := loadConfig(*cfgPath)
		if err == nil && *logFormat != "" {
			cfg.Log.Format = *logFormat
		}
		return cfg, err
	}
	cfg, err := load()
	if err != nil {
		return e.errorf("%v", err)
	}
	// The handler whose level and format a reload changes.
	logs, err := logging.New(e.stderr, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return e.errorf("%v", err)
	}
	log := slog.New(logs)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	server.Version = version()
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		return e.errorf("%v", err)
	}
	srv.SetConfigSource(load)
	// Type=notify: the listeners accept connections now.
	notify(log, sdnotify.Ready)
	wctx, stopWatchdog := context.WithCancel(context.Background())
	watchdog := make(chan struct{})
	go func() {
		defer close(watchdog)
		if err := sdnotify.KeepAlive(wctx, nil); err != nil {
			log.Warn("systemd watchdog", "err", err)
		}
	}()
	status := 0
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("signal received, shutting down")
			break wait
		case err := <-srv.Errors():
			log.Error("listener failed", "err", err)
			status = 1
			break wait
		case <-hup:
			// Type=notify-reload: RELOADING, then READY when done
			// (also when the configuration was refused: the server
			// runs on as it was). Reload logs its outcome.
			log.Info("SIGHUP received, reloading the configuration")
			notify(log, sdnotify.Reloading)
			_, _ = srv.ReloadFromSource(ctx)
			notify(log, sdnotify.Ready)
		}
	}
	notify(log, sdnotify.Stopping)
	stopWatchdog()
	<-watchdog
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		status = 1
	}
	return status
}

// notify sends a state to systemd (sd_notify), logging a failure: a
// service manager that cannot be told is no reason to stop serving.
func notify(log *slog.Logger, send func() (bool, error)) {
	if _, err := send(); err != nil {
		log.Warn("systemd notification", "err", err)
	}
}

func hosted(cfg config.Config, domain string) bool {
	for _, d := range cfg.Server.Domains {
		if d == domain {
			return true
		}
	}
	return false
}

// accountJID parses an account's bare JID and checks its domain is served.
func accountJID(cfg config.Config, s string) (jid.JID, error) {
	u, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("invalid JID %q: %v", s, err)
	}
	if u.Local() == "" || u.Resource() != "" {
		return jid.JID{}, fmt.Errorf("invalid account %q: want a bare JID like user@%s", s, cfg.Server.Domains[0])
	}
	if !hosted(cfg, u.DomainString()) {
		return jid.JID{}, fmt.Errorf("domain %s is not served by this server (server.domains = %v)", u.DomainString(), cfg.Server.Domains)
	}
	return u, nil
}

// newCredentials derives the stored SCRAM verifiers for a password.
func newCredentials(password string) ([]storage.Credential, error) {
	return admin.NewCredentials(password)
}

// importUsers reads "jid password" lines and creates the accounts in one
// transaction, deriving the SCRAM verifiers on every core.
func (e env) importUsers(ctx context.Context, cfg config.Config, store storage.Store) int {
	type line struct {
		n        int
		u        jid.JID
		password string
	}
	var lines []line
	sc := bufio.NewScanner(e.stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	bad := 0
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, password, ok := strings.Cut(text, " ")
		password = strings.TrimSpace(password)
		if !ok || password == "" {
			fmt.Fprintf(e.stderr, "ode: line %d: want \"jid password\"\n", n)
			bad++
			continue
		}
		u, err := accountJID(cfg, name)
		if err != nil {
			fmt.Fprintf(e.stderr, "ode: line %d: %v\n", n, err)
			bad++
			continue
		}
		lines = append(lines, line{n, u, password})
	}
	if err := sc.Err(); err != nil {
		return e.errorf("read standard input: %v", err)
	}
	if bad > 0 {
		return e.errorf("%d bad lines: nothing imported", bad)
	}
	accounts := make([]storage.NewAccount, len(lines))
	errs := make([]error, len(lines))
	parallel(len(lines), func(i int) {
		creds, err := newCredentials(lines[i].password)
		accounts[i] = storage.NewAccount{Local: lines[i].u.Local(), Domain: lines[i].u.DomainString(), Creds: creds}
		errs[i] = err
	})
	for i, err := range errs {
		if err != nil {
			return e.errorf("line %d: %v: nothing imported", lines[i].n, err)
		}
	}
	created, existed, err := createAccounts(ctx, store, accounts)
	if err != nil {
		return e.errorf("import: %v", err)
	}
	for _, x := range existed {
		fmt.Fprintf(e.stderr, "ode: %s already exists, skipped\n", x)
	}
	fmt.Fprintf(e.stdout, "imported %d accounts\n", created)
	return 0
}
