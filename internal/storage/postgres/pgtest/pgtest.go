// Package pgtest starts a throwaway PostgreSQL server for tests: Debian's
// postgresql binaries (initdb, pg_ctl) run a new cluster in a temporary
// directory, listening on a loopback port only, with trust authentication
// on 127.0.0.1 and no system service involved.
//
// A package's TestMain starts one cluster for all its tests with Main, and
// each test gets its own empty schema with Schema (a DSN whose search_path
// names it), dropped when the test ends. When the process runs as root the
// server runs as the unprivileged user nobody, since PostgreSQL refuses to
// run as root.
//
// Without the binaries the tests fail with a message naming the install
// script; they are skipped only when ODE_SKIP_POSTGRES=1 is set, which CI
// (CI=true) refuses.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// SkipEnv is the environment variable that, set to 1, skips the tests
// that need PostgreSQL instead of failing them when it is missing. CI must
// not set it.
const SkipEnv = "ODE_SKIP_POSTGRES"

// Install is what to run to get the binaries.
const Install = "bash test/interop/install-peers.sh"

// BinGlob is where Debian installs the server binaries.
const BinGlob = "/usr/lib/postgresql/*/bin"

// runAs is the unprivileged user the server runs as when the tests run as root.
const runAs = "nobody"

// dirPrefix names the temporary directories of clusters, so that those
// left behind by a killed test process can be found and stopped.
const dirPrefix = "ode-pgtest-"

// Options are the settings of a cluster.
type Options struct {
	// Durable keeps PostgreSQL's defaults of fsync and synchronous_commit
	// on, for benchmarks; tests turn both off, as nothing has to survive
	// a crash of the machine.
	Durable bool
}

// Cluster is a running PostgreSQL server.
type Cluster struct {
	bin, dir, data string
	port           int
	sudo           []string // prefix that runs a command as the server's user
	admin          string   // the superuser's DSN, database postgres
	next           atomic.Int64
}

// Bin returns the directory of the newest installed PostgreSQL binaries,
// or an error saying how to install them.
func Bin() (string, error) {
	dirs, _ := filepath.Glob(BinGlob)
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("pgtest: no PostgreSQL server binaries (initdb, pg_ctl) under %s: run `%s` (Debian's postgresql package), or set %s=1 to skip these tests", BinGlob, Install, SkipEnv)
}

// version returns the major version in a path such as
// /usr/lib/postgresql/15/bin.
func version(bin string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return n
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Start initialises and starts a new cluster. Stop it with Stop.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := Bin()
	if err != nil {
		return nil, err
	}
	reapStale()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{bin: bin, dir: dir, data: filepath.Join(dir, "data")}
	if err := c.start(ctx, opts); err != nil {
		c.remove()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, opts Options) error {
	if err := os.WriteFile(filepath.Join(c.dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(runAs)
		if err != nil {
			return fmt.Errorf("pgtest: running as root, and no user %s to run PostgreSQL as: %w", runAs, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if err := os.Chmod(c.dir, 0o755); err != nil { // the owner.pid stays root's, readable
			return fmt.Errorf("pgtest: %w", err)
		}
		c.sudo = []string{"runuser", "-u", runAs, "--"}
	}
	if out, err := c.run(ctx, "initdb", "-D", c.data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	// The settings go in a file of their own, included by postgresql.conf.
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString("\ninclude 'ode.conf'\n")
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	settings := []string{
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = '" + c.dir + "'",
		"max_connections = 200",
		"shared_buffers = '128MB'",
		"log_min_messages = warning",
	}
	if !opts.Durable {
		settings = append(settings, "fsync = off", "synchronous_commit = off", "full_page_writes = off")
	}
	var lastErr error
	for range 5 { // a port found free may be taken before the server binds it
		port, err := freePort()
		if err != nil {
			return err
		}
		conf := strings.Join(append(settings, fmt.Sprintf("port = %d", port)), "\n") + "\n"
		if err := os.WriteFile(filepath.Join(c.data, "ode.conf"), []byte(conf), 0o644); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if out, err := c.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", c.data, "-l", filepath.Join(c.dir, "log")); err != nil {
			log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
			lastErr = fmt.Errorf("pgtest: pg_ctl start on port %d: %w\n%s\n%s", port, err, out, lastLines(log, 20))
			continue
		}
		c.port = port
		c.admin = c.DSN("postgres")
		return nil
	}
	return lastErr
}

// run runs a PostgreSQL binary as the server's user.
func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	argv := append(append(slices.Clone(c.sudo), filepath.Join(c.bin, name)), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.dir
	// The server's output goes to its log file (pg_ctl -l), so it does not
	// hold these pipes open.
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	err := cmd.Run()
	return out.Bytes(), err
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Stop stops the server (fast shutdown: sessions are ended) and removes
// its directory.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := c.run(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", c.data)
	if err != nil {
		err = fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	return errors.Join(err, c.remove())
}

// Restart stops the server (fast shutdown: sessions are ended) and starts
// it again on the same port, as an operator's restart or a failover does.
func (c *Cluster) Restart(ctx context.Context) error {
	if out, err := c.run(ctx, "pg_ctl", "restart", "-w", "-t", "60", "-m", "fast", "-D", c.data, "-l", filepath.Join(c.dir, "log")); err != nil {
		return fmt.Errorf("pgtest: pg_ctl restart: %w\n%s", err, out)
	}
	return nil
}

func (c *Cluster) remove() error {
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// reapStale stops the clusters that test processes which no longer exist
// left behind (killed before their TestMain could stop them).
func reapStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid == os.Getpid() || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue // its owner still runs (or cannot be told)
		}
		bin, err := Bin()
		if err != nil {
			return
		}
		c := &Cluster{bin: bin, dir: dir, data: filepath.Join(dir, "data")}
		if os.Geteuid() == 0 {
			c.sudo = []string{"runuser", "-u", runAs, "--"}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c.run(ctx, "pg_ctl", "stop", "-w", "-m", "immediate", "-D", c.data)
		cancel()
		c.remove()
	}
}

// DSN returns the URL of database db as the superuser postgres.
func (c *Cluster) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)), Path: "/" + db}
	u.RawQuery = url.Values{"sslmode": {"disable"}}.Encode()
	return u.String()
}

// Port returns the port the server listens on, at 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// Exec runs SQL statements as the superuser in database postgres.
func (c *Cluster) Exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.admin)
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}

// Schema creates an empty schema for t, dropped when t ends, and returns
// a DSN of database postgres whose search_path is that schema: what a
// store opened with it creates goes there.
func (c *Cluster) Schema(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d", c.next.Add(1))
	if err := c.Exec(context.Background(), "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c.DSN("postgres") + "&search_path=" + name
}

// Database creates an empty database for t, dropped when t ends, and
// returns its DSN.
func (c *Cluster) Database(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("db%d", c.next.Add(1))
	if err := c.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c.DSN(name)
}

// shared is the cluster Main started.
var shared *Cluster

// Main runs a package's tests with one cluster for all of them, which
// Shared returns, and exits with their status. A package's TestMain calls
// it (after any goroutine-leak check is wrapped around m.Run by the
// caller through run; nil means m.Run).
//
// Without the binaries it prints how to install them and exits 1, unless
// SkipEnv is set outside CI: then the cluster is not started and Shared
// skips the tests that ask for it.
func Main(m *testing.M, opts Options, run func() int) {
	if run == nil {
		run = m.Run
	}
	if os.Getenv(SkipEnv) == "1" {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "pgtest: %s=1 is set in CI, where the PostgreSQL tests must run\n", SkipEnv)
			os.Exit(1)
		}
		os.Exit(run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = c
	code := run()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// Shared returns the cluster Main started; when SkipEnv skipped it, it
// skips t.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if shared == nil {
		if os.Getenv(SkipEnv) == "1" {
			t.Skipf("PostgreSQL tests skipped: %s=1", SkipEnv)
		}
		t.Fatal("pgtest: no cluster: call pgtest.Main from TestMain")
	}
	return shared
}

// CPU returns the CPU time (user and system) the cluster's processes have
// used so far: the postmaster's own and that of the children it reaped
// (the backends of closed connections), plus its living children's. Its
// resolution is the kernel's clock tick (10 ms); benchmarks report the
// server's side of a workload with it.
func (c *Cluster) CPU() (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("pgtest: cpu: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0, fmt.Errorf("pgtest: cpu: postmaster.pid: %w", err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("pgtest: cpu: %w", err)
	}
	var ticks int64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStat(pid)
		if err != nil {
			continue // gone since ReadDir
		}
		switch {
		case pid == postmaster:
			ticks += f.utime + f.stime + f.cutime + f.cstime
		case f.ppid == postmaster:
			ticks += f.utime + f.stime
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// statFields are the fields of /proc/<pid>/stat that CPU reads.
type statFields struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

func procStat(pid int) (statFields, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return statFields{}, err
	}
	// The command (field 2) is in parentheses and may hold spaces: the
	// fields from 3 on follow the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return statFields{}, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 { // state is field 3, cstime field 17
		return statFields{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var s statFields
	num := func(k int) int64 { // field k of stat(5)
		n, _ := strconv.ParseInt(f[k-3], 10, 64)
		return n
	}
	s.ppid = int(num(4))
	s.utime, s.stime, s.cutime, s.cstime = num(14), num(15), num(16), num(17)
	return s, nil
}
