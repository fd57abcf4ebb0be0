package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ode-xmpp/ode/internal/admin"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/server"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
)

// dialControl returns a client of the running server's control socket,
// or nil when the server does not run (no socket, or nothing answers).
func dialControl(ctx context.Context, cfg config.Config) (*admin.Client, error) {
	path := cfg.SocketPath()
	if path == "" {
		return nil, nil
	}
	c, err := admin.NewClient(ctx, path)
	if admin.IsNotRunning(err) {
		return nil, nil
	}
	return c, err
}

// userSynopsis are the user subcommands' usages.
var userSynopsis = map[string]string{
	"add":    "ode user add JID [-c FILE] (--password P | --password-stdin)",
	"passwd": "ode user passwd JID [-c FILE] (--password P | --password-stdin)",
	"del":    "ode user del JID [-c FILE]",
	"kick":   "ode user kick JID [-c FILE]",
	"logout": "ode user logout JID [-c FILE]",
	"list":   "ode user list [DOMAIN] [-c FILE]",
	"import": "ode user import [-c FILE] < FILE   (lines: jid password)",
}

// user runs the account subcommands: through the control socket while
// the server runs (so that deleting an account or logging it out ends
// its live sessions), on the database when it does not. import always
// writes the database (in one transaction; SQLite admits the server and
// the command at once).
func (e env) user(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "--help" {
		fmt.Fprint(e.stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	synopsis := userSynopsis[sub]
	if synopsis == "" {
		return e.errorf("unknown user command %q (want add, passwd, del, kick, logout, list or import)", sub)
	}
	fs, cfgPath := e.newFlags("user "+sub, synopsis)
	var password string
	var passwordStdin bool
	if sub == "add" || sub == "passwd" {
		fs.StringVar(&password, "password", "", "the password")
		fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	}
	pos, err := parse(fs, args[1:])
	if err != nil {
		return flagStatus(err)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return e.errorf("%v", err)
	}
	ctx := context.Background()
	want := 1
	if sub == "list" && len(pos) == 0 || sub == "import" {
		want = len(pos) // none
	}
	if len(pos) != want || sub == "import" && len(pos) != 0 {
		return e.errorf("usage: %s", synopsis)
	}
	if sub == "add" || sub == "passwd" {
		if password, err = e.password(password, passwordStdin); err != nil {
			return e.errorf("%v", err)
		}
	}
	var c *admin.Client
	if sub != "import" {
		if c, err = dialControl(ctx, cfg); err != nil {
			return e.errorf("%v", err)
		}
	}
	if c != nil {
		return e.userRemote(ctx, c, cfg, sub, pos, password)
	}
	return e.userLocal(ctx, cfg, sub, pos, password)
}

// password returns the password given by flag or on standard input.
func (e env) password(password string, stdin bool) (string, error) {
	if stdin {
		if password != "" {
			return "", errors.New("give --password or --password-stdin, not both")
		}
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("read password from standard input: %v", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if password == "" {
		return "", errors.New("a password is required: --password P or --password-stdin")
	}
	return password, nil
}

// userRemote runs a user subcommand on the running server.
func (e env) userRemote(ctx context.Context, c *admin.Client, cfg config.Config, sub string, pos []string, password string) int {
	if sub == "list" {
		q := url.Values{}
		if len(pos) == 1 {
			q.Set("domain", pos[0])
		}
		var res struct{ Users []string }
		if err := c.Get(ctx, "/admin/users", q, &res); err != nil {
			return e.errorf("%v", err)
		}
		for _, u := range res.Users {
			fmt.Fprintln(e.stdout, u)
		}
		return 0
	}
	u, err := accountJID(cfg, pos[0])
	if err != nil {
		return e.errorf("%v", err)
	}
	req := admin.Request{JID: u.String(), Password: password}
	var res struct{ Sessions, Tokens int }
	path := map[string]string{"add": "/admin/users/add", "passwd": "/admin/users/passwd", "del": "/admin/users/delete",
		"kick": "/admin/users/kick", "logout": "/admin/users/logout"}[sub]
	if err := c.Post(ctx, path, req, &res); err != nil {
		return e.errorf("%s", accountError(u, err))
	}
	switch sub {
	case "add":
		fmt.Fprintf(e.stdout, "created %s\n", u)
	case "passwd":
		fmt.Fprintf(e.stdout, "password changed for %s (its FAST tokens are invalidated)\n", u)
	case "del":
		fmt.Fprintf(e.stdout, "deleted %s\n", u)
	case "kick":
		fmt.Fprintf(e.stdout, "ended %d sessions of %s\n", res.Sessions, u)
	case "logout":
		fmt.Fprintf(e.stdout, "logged out %s: %d sessions ended, %d FAST tokens invalidated\n", u, res.Sessions, res.Tokens)
	}
	return 0
}

// accountError words an account command's failure.
func accountError(u jid.JID, err error) string {
	switch {
	case errors.Is(err, admin.ErrNotFound):
		return "no account " + u.String()
	case errors.Is(err, admin.ErrExists):
		return "account " + u.String() + " already exists"
	}
	return err.Error()
}

// userLocal runs a user subcommand on the database (the server does not
// run).
func (e env) userLocal(ctx context.Context, cfg config.Config, sub string, pos []string, password string) int {
	if sub == "kick" {
		return e.errorf("the server is not running (no control socket at %s): no session to end", cfg.SocketPath())
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return e.errorf("%v", err)
	}
	defer store.Close()
	a := admin.Accounts{Store: store, Domains: cfg.Server.Domains}
	switch sub {
	case "import":
		return e.importUsers(ctx, cfg, store)
	case "list":
		domain := ""
		if len(pos) == 1 {
			d, err := jid.Parse(pos[0])
			if err != nil || !d.IsDomain() {
				return e.errorf("invalid domain %q", pos[0])
			}
			if !hosted(cfg, d.DomainString()) {
				return e.errorf("domain %s is not served by this server (see server.domains)", d.DomainString())
			}
			domain = d.DomainString()
		}
		users, err := a.List(ctx, domain)
		if err != nil {
			return e.errorf("%v", err)
		}
		for _, u := range users {
			fmt.Fprintln(e.stdout, u)
		}
		return 0
	}
	u, err := accountJID(cfg, pos[0])
	if err != nil {
		return e.errorf("%v", err)
	}
	switch sub {
	case "add":
		err = a.Add(ctx, u, password)
	case "passwd":
		err = a.SetPassword(ctx, u, password)
	case "del":
		err = a.Delete(ctx, u)
	case "logout":
		var n int
		if _, n, err = a.Logout(ctx, u); err == nil {
			fmt.Fprintf(e.stdout, "logged out %s: %d FAST tokens invalidated (the server is not running: no session to end)\n", u, n)
			return 0
		}
	}
	if err != nil {
		return e.errorf("%s", accountError(u, err))
	}
	fmt.Fprintf(e.stdout, map[string]string{"add": "created %s\n", "passwd": "password changed for %s\n", "del": "deleted %s\n"}[sub], u)
	return 0
}

// openStore opens the configured store for a command run without the
// server.
func openStore(ctx context.Context, cfg config.Config) (storage.Store, error) {
	if err := os.MkdirAll(cfg.Server.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %v", err)
	}
	return server.OpenStore(ctx, cfg)
}

// controlSynopsis are the usages of the commands that need the running
// server (or, for some, work on the database without it).
var controlSynopsis = map[string]string{
	"session":  "ode session list [JID] [-c FILE] | ode session kick FULLJID [-reason TEXT] [-c FILE]",
	"room":     "ode room list [-c FILE] | ode room destroy ROOMJID [-reason TEXT] [-c FILE]",
	"announce": "ode announce [-subject S] [-domain D] [-c FILE] TEXT",
	"stats":    "ode stats [-c FILE]",
	"reload":   "ode reload [-c FILE]",
	"backup":   "ode backup PATH [-c FILE]",
}

// control runs the commands of the control socket: session, room,
// announce, stats, reload, backup.
func (e env) control(cmd string, args []string) int {
	synopsis := controlSynopsis[cmd]
	fs, cfgPath := e.newFlags(cmd, synopsis)
	var reason, subject, domain string
	switch cmd {
	case "session", "room":
		fs.StringVar(&reason, "reason", "", "the reason given to the users")
	case "announce":
		fs.StringVar(&subject, "subject", "", "the announcement's subject")
		fs.StringVar(&domain, "domain", "", "only the users of this domain")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return flagStatus(err)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		if cmd == "reload" {
			return e.errorf("the configuration is invalid, so the server was not asked to reload; its running configuration stays:\n%v", err)
		}
		return e.errorf("%v", err)
	}
	ctx, cancel := signalContext()
	defer cancel()
	c, err := dialControl(ctx, cfg)
	if err != nil {
		return e.errorf("%v", err)
	}
	usage := func() int { return e.errorf("usage: %s", synopsis) }
	if c == nil {
		if cmd == "backup" && len(pos) == 1 {
			return e.backupLocal(ctx, cfg, pos[0])
		}
		if cfg.SocketPath() == "" {
			return e.errorf("the control socket is off (admin.socket = \"off\"): %s needs it", cmd)
		}
		return e.errorf("the server is not running (no control socket at %s): %s needs it", cfg.SocketPath(), cmd)
	}
	switch cmd {
	case "session":
		return e.session(ctx, c, pos, reason, usage)
	case "room":
		return e.room(ctx, c, pos, reason, usage)
	case "announce":
		if len(pos) == 0 {
			return usage()
		}
		var res struct{ Sent int }
		if err := c.Post(ctx, "/admin/announce", admin.Request{Body: strings.Join(pos, " "), Subject: subject, Domain: domain}, &res); err != nil {
			return e.errorf("%v", err)
		}
		fmt.Fprintf(e.stdout, "sent to %d sessions\n", res.Sent)
	case "stats":
		if len(pos) != 0 {
			return usage()
		}
		return e.stats(ctx, c)
	case "reload":
		if len(pos) != 0 {
			return usage()
		}
		var res admin.ReloadResult
		if err := c.Post(ctx, "/admin/reload", admin.Request{}, &res); err != nil {
			return e.errorf("reload: %v", err)
		}
		for _, a := range res.Applied {
			fmt.Fprintln(e.stdout, "applied:", a)
		}
		for _, n := range res.NotLive {
			fmt.Fprintln(e.stdout, "not applied:", n)
		}
		fmt.Fprintln(e.stdout, "configuration reloaded")
	case "backup":
		if len(pos) != 1 {
			return usage()
		}
		path, err := filepath.Abs(pos[0])
		if err != nil {
			return e.errorf("backup: %v", err)
		}
		if err := c.Post(ctx, "/admin/backup", admin.Request{Path: path}, nil); err != nil {
			return e.errorf("backup: %v", err)
		}
		fmt.Fprintf(e.stdout, "backed up to %s\n", path)
	}
	return 0
}

func (e env) session(ctx context.Context, c *admin.Client, pos []string, reason string, usage func() int) int {
	if len(pos) == 0 {
		return usage()
	}
	switch pos[0] {
	case "list":
		if len(pos) > 2 {
			return usage()
		}
		q := url.Values{}
		if len(pos) == 2 {
			q.Set("jid", pos[1])
		}
		var res struct{ Sessions []admin.Session }
		if err := c.Get(ctx, "/admin/sessions", q, &res); err != nil {
			return e.errorf("%v", err)
		}
		w := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(w, "JID\tTRANSPORT\tADDRESS\tCLIENT\tSINCE\tSTATE")
		for _, s := range res.Sessions {
			state := "available"
			switch {
			case s.Detached:
				state = "detached"
			case !s.Available:
				state = "unavailable"
			}
			client := s.Client
			if client == "" {
				client = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.JID, s.Transport, s.Remote, client, s.Since.Local().Format(time.DateTime), state)
		}
		w.Flush()
	case "kick":
		if len(pos) != 2 {
			return usage()
		}
		if err := c.Post(ctx, "/admin/sessions/kick", admin.Request{JID: pos[1], Reason: reason}, nil); err != nil {
			if errors.Is(err, admin.ErrNotFound) {
				return e.errorf("no session %s (`ode session list` shows them)", pos[1])
			}
			return e.errorf("%v", err)
		}
		fmt.Fprintf(e.stdout, "ended %s\n", pos[1])
	default:
		return usage()
	}
	return 0
}

func (e env) room(ctx context.Context, c *admin.Client, pos []string, reason string, usage func() int) int {
	if len(pos) == 0 {
		return usage()
	}
	switch pos[0] {
	case "list":
		if len(pos) != 1 {
			return usage()
		}
		var res struct{ Rooms []admin.Room }
		if err := c.Get(ctx, "/admin/rooms", nil, &res); err != nil {
			return e.errorf("%v", err)
		}
		w := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(w, "ROOM\tOCCUPANTS\tPERSISTENT\tPUBLIC\tNAME")
		for _, r := range res.Rooms {
			fmt.Fprintf(w, "%s\t%d\t%v\t%v\t%s\n", r.JID, r.Occupants, r.Persistent, r.Public, r.Name)
		}
		w.Flush()
	case "destroy":
		if len(pos) != 2 {
			return usage()
		}
		if err := c.Post(ctx, "/admin/rooms/destroy", admin.Request{JID: pos[1], Reason: reason}, nil); err != nil {
			if errors.Is(err, admin.ErrNotFound) {
				return e.errorf("no room %s (`ode room list` shows them)", pos[1])
			}
			return e.errorf("%v", err)
		}
		fmt.Fprintf(e.stdout, "destroyed %s\n", pos[1])
	default:
		return usage()
	}
	return 0
}

func (e env) stats(ctx context.Context, c *admin.Client) int {
	var st admin.Stats
	if err := c.Get(ctx, "/admin/stats", nil, &st); err != nil {
		return e.errorf("%v", err)
	}
	w := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintf(w, "version\t%s\n", st.Version)
	fmt.Fprintf(w, "uptime\t%s\n", time.Duration(st.UptimeSeconds)*time.Second)
	fmt.Fprintf(w, "sessions\t%d\n", st.Sessions)
	for _, t := range []string{"tcp", "tls", "websocket", "bosh"} {
		if n := st.ByTransport[t]; n > 0 {
			fmt.Fprintf(w, "  %s\t%d\n", t, n)
		}
	}
	fmt.Fprintf(w, "online users\t%d\n", st.OnlineUsers)
	fmt.Fprintf(w, "registered users\t%d\n", st.Users)
	fmt.Fprintf(w, "rooms\t%d\n", st.Rooms)
	fmt.Fprintf(w, "heap\t%.1f MiB\n", float64(st.HeapBytes)/(1<<20))
	fmt.Fprintf(w, "memory from the system\t%.1f MiB\n", float64(st.SysBytes)/(1<<20))
	fmt.Fprintf(w, "goroutines\t%d\n", st.Goroutines)
	w.Flush()
	return 0
}

// backupLocal backs the SQLite database up while the server does not
// run.
func (e env) backupLocal(ctx context.Context, cfg config.Config, path string) int {
	store, err := openStore(ctx, cfg)
	if err != nil {
		return e.errorf("%v", err)
	}
	defer store.Close()
	abs, err := filepath.Abs(path)
	if err != nil {
		return e.errorf("backup: %v", err)
	}
	if err := server.Backup(ctx, store, abs); err != nil {
		return e.errorf("backup: %v", err)
	}
	fmt.Fprintf(e.stdout, "backed up to %s\n", abs)
	return 0
}
