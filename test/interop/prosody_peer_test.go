package interop_test

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// needProsody fails the test unless Debian's prosody and lua-unbound (the
// resolver library Prosody needs to ask the test's DNS server) are installed.
func needProsody(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"prosody", "prosodyctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (%v): run `make peers` (bash test/interop/install-peers.sh), which installs Debian's prosody and lua-unbound", bin, err)
		}
	}
	if out, err := exec.Command("lua5.4", "-e", `require "lunbound"`).CombinedOutput(); err != nil {
		t.Fatalf("lua-unbound is not installed for Prosody's lua5.4 (%v: %s): run `make peers` (bash test/interop/install-peers.sh), which installs Debian's lua-unbound", err, bytes.TrimSpace(out))
	}
}

// prosodyConfig is the Prosody configuration file, filled from a
// prosodyPeer. Prosody listens on loopback only; everything it writes stays
// in the test's directory. run_as_root lets it run as root (CI runs the
// tests as root), where it would otherwise refuse to start; it changes
// nothing for other users.
//
// Prosody finds remote servers through libunbound (lua-unbound), set to
// ask only the test's DNS server: no /etc/resolv.conf, no /etc/hosts. The
// local-zone option undoes one of unbound's defaults, which answers
// NXDOMAIN for anything under "test." (RFC 6761 §6.2) without asking.
const prosodyConfig = `-- Written by prosody_peer_test.go for one test run.
run_as_root = true
data_path = {{lua .DataDir}}
certificates = {{lua .Dir}}
log = { { levels = { min = "debug" }, to = "file", filename = {{lua .LogFile}} } }

interfaces = { "127.0.0.1" }
c2s_ports = { {{.C2SPort}} }
s2s_ports = { {{.S2SPort}} }

modules_enabled = { "roster", "saslauth", "tls", "disco", "ping"{{if .Dialback}}, "dialback"{{end}} }
authentication = "internal_hashed"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = {{.SecureAuth}}
ssl = { certificate = {{lua .CertFile}}, key = {{lua .KeyFile}}, cafile = {{lua .CAFile}} }

unbound = {
	resolvconf = false, hoststxt = false,
	forward = {{lua .Forward}},
	options = { ["local-zone:"] = "test. transparent" },
}

VirtualHost {{lua .Domain}}
{{- if .MUC}}

Component {{lua .MUC}} "muc"
	muc_room_locking = false
{{- end}}
`

var prosodyTemplate = template.Must(template.New("prosody.cfg.lua").
	Funcs(template.FuncMap{"lua": strconv.Quote}).Parse(prosodyConfig))

// prosodyPeer is a Prosody server for one domain on loopback ports.
type prosodyPeer struct {
	Domain           string
	C2SAddr, S2SAddr string
	// CAFile is the test CA that signed Prosody's certificate, which
	// Prosody trusts for its peers' certificates.
	CAFile string

	// Template fields.
	Dir, DataDir, LogFile, CertFile, KeyFile string
	C2SPort, S2SPort                         int
	Forward                                  string
	SecureAuth, Dialback                     bool
	// MUC is the domain of Prosody's MUC component, conference.<domain>,
	// or "" without one.
	MUC string

	config string
	cmd    *exec.Cmd
	exited chan struct{}
	output syncBuffer
}

// prosodyOptions are the choices a test makes about its Prosody.
type prosodyOptions struct {
	Domain string
	CA     *xmpptest.CA
	// DNS is the only DNS server Prosody asks.
	DNS netip.AddrPort
	// SecureAuth is s2s_secure_auth: peers must present a certificate the
	// CA verifies, and SASL EXTERNAL (XEP-0178) authenticates them.
	SecureAuth bool
	// Dialback loads mod_dialback (XEP-0220).
	Dialback bool
	// MUC adds Prosody's MUC component (XEP-0045) on conference.<domain>,
	// whose rooms are instant (muc_room_locking = false); the certificate
	// names it too.
	MUC bool
}

// newProsody writes the configuration, certificate and key of a Prosody
// server into a temporary directory; Start starts it.
func newProsody(t *testing.T, opt prosodyOptions) *prosodyPeer {
	t.Helper()
	needProsody(t)
	dir := t.TempDir()
	names := []string{opt.Domain}
	var muc string
	if opt.MUC {
		muc = "conference." + opt.Domain
		names = append(names, muc)
	}
	cert, key, caFile, err := opt.CA.WriteFiles(dir, names...)
	if err != nil {
		t.Fatal(err)
	}
	p := &prosodyPeer{
		Domain:     opt.Domain,
		CAFile:     caFile,
		Dir:        dir,
		DataDir:    filepath.Join(dir, "data"),
		LogFile:    filepath.Join(dir, "prosody.log"),
		CertFile:   cert,
		KeyFile:    key,
		C2SPort:    freePort(t),
		S2SPort:    freePort(t),
		Forward:    opt.DNS.Addr().String() + "@" + strconv.Itoa(int(opt.DNS.Port())),
		SecureAuth: opt.SecureAuth,
		Dialback:   opt.Dialback,
		MUC:        muc,
		config:     filepath.Join(dir, "prosody.cfg.lua"),
		exited:     make(chan struct{}),
	}
	p.C2SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.C2SPort))
	p.S2SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.S2SPort))
	if err := os.Mkdir(p.DataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	var cfg bytes.Buffer
	if err := prosodyTemplate.Execute(&cfg, p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.config, cfg.Bytes(), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

// AddUser creates the account local@domain with prosodyctl.
func (p *prosodyPeer) AddUser(t *testing.T, local, password string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "prosodyctl", "--config", p.config,
		"register", local, p.Domain, password).CombinedOutput()
	if err != nil {
		t.Fatalf("prosodyctl register %s %s: %v\n%s", local, p.Domain, err, out)
	}
	return local + "@" + p.Domain
}

// Start runs Prosody in the foreground until the test ends, and returns
// once its c2s and s2s ports accept connections. Prosody's log goes into
// the test's output if the test fails or ODE_TEST_LOG is set.
func (p *prosodyPeer) Start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command("prosody", "--config", p.config, "-F")
	p.cmd.Stdout, p.cmd.Stderr = &p.output, &p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start prosody: %v", err)
	}
	var waitErr error
	go func() {
		waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() || os.Getenv("ODE_TEST_LOG") != "" {
			p.dumpLog(t)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range []string{p.C2SAddr, p.S2SAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.exited:
				t.Fatalf("prosody exited at start: %v", waitErr)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("prosody does not listen on %s: %v", addr, err)
			}
			time.Sleep(50 * time.Millisecond) // polling a port with a deadline
		}
	}
}

// stop asks Prosody to shut down (SIGTERM) and kills it if it has not
// within five seconds.
func (p *prosodyPeer) stop(t *testing.T) {
	select {
	case <-p.exited:
		t.Errorf("prosody exited before the end of the test")
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Errorf("prosody did not stop within 5s of SIGTERM; killing it")
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *prosodyPeer) dumpLog(t *testing.T) {
	log, err := os.ReadFile(p.LogFile)
	if err != nil {
		t.Logf("prosody log: %v", err)
	}
	if out := p.output.String(); out != "" {
		t.Logf("prosody's output:\n%s", out)
	}
	t.Logf("prosody's log (%s):\n%s", p.LogFile, log)
}

// Log returns what Prosody has logged so far.
func (p *prosodyPeer) Log() string {
	b, _ := os.ReadFile(p.LogFile)
	return string(b)
}

// freePort returns a loopback TCP port that was free a moment ago, for a
// peer that cannot report the port the kernel chose for it (see
// xmpptest.FreeAddr).
func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(xmpptest.FreeAddr(t))
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// syncBuffer is a bytes.Buffer safe for a process's output and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Clone(b.buf.String())
}
