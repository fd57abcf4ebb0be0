package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xep227"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// ejabberdVersion is the ejabberd the migration test drives:
// bookworm-backports' package.
const ejabberdVersion = "24.12"

func needEjabberd(t *testing.T) {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "ejabberd").Output()
	if err != nil || !strings.HasPrefix(string(out), ejabberdVersion+"-") {
		t.Fatalf("ejabberd %s is not installed (dpkg says %q, %v): run `make peers` (bash test/interop/install-peers.sh), which installs it from bookworm-backports",
			ejabberdVersion, out, err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("ejabberdctl runs only as root or as the ejabberd user; this test runs as uid %d", os.Geteuid())
	}
}

// ejabberd is an ejabberd node of its own, in a temporary directory, run
// as the ejabberd user. It listens on no XMPP port: the test only runs
// ejabberdctl commands, over Erlang distribution on a loopback port
// (ERL_DIST_PORT: no epmd daemon is started or left behind).
type ejabberd struct {
	dir string
}

// ejabberdConfig hosts ej.test, whose passwords ejabberd keeps as
// SCRAM-SHA-256 verifiers, and plain.test, whose passwords it keeps in
// plaintext: its export carries the verifiers of one and the passwords of
// the other.
const ejabberdConfig = `hosts: ["ej.test", "plain.test"]
loglevel: warning
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
host_config:
  plain.test:
    auth_password_format: plain
default_db: mnesia
listen: []
modules:
  mod_admin_extra: {}
  mod_roster: {}
  mod_offline: {}
  mod_private: {}
  mod_vcard: {}
  mod_privacy: {}
  mod_blocking: {}
`

// startEjabberd starts the node and stops it when the test ends.
func startEjabberd(t *testing.T) *ejabberd {
	t.Helper()
	needEjabberd(t)
	dir, err := os.MkdirTemp("", "ode-ejabberd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(xmpptest.FreeAddr(t), ":")
	ctl := fmt.Sprintf("ERL_OPTIONS=\"-env ERL_CRASH_DUMP_BYTES 0\"\nERLANG_NODE=ode%d@localhost\nERL_DIST_PORT=%s\nINET_DIST_INTERFACE=127.0.0.1\n", os.Getpid(), port)
	for name, content := range map[string]string{"ejabberdctl.cfg": ctl, "ejabberd.yml": ejabberdConfig} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"db", "log", "export"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "-R", "ejabberd:", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	e := &ejabberd{dir: dir}
	e.ctl(t, "start")
	t.Cleanup(func() {
		e.run(context.Background(), "stop")
		e.run(context.Background(), "stopped")
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "log", "ejabberd.log"))
			t.Logf("ejabberd.log:\n%s", log)
		}
	})
	e.ctl(t, "started")
	return e
}

// run runs ejabberdctl as the ejabberd user with the node's files.
func (e *ejabberd) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	all := append([]string{"--reuid=ejabberd", "--regid=ejabberd", "--init-groups", "ejabberdctl",
		"--ctl-config", filepath.Join(e.dir, "ejabberdctl.cfg"), "--config", filepath.Join(e.dir, "ejabberd.yml"),
		"--spool", filepath.Join(e.dir, "db"), "--logs", filepath.Join(e.dir, "log")}, args...)
	cmd := exec.CommandContext(ctx, "setpriv", all...)
	cmd.Env = append(os.Environ(), "HOME="+e.dir)
	return cmd.CombinedOutput()
}

func (e *ejabberd) ctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.run(t.Context(), args...)
	if err != nil {
		t.Fatalf("ejabberdctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type migratedResult struct {
	Version string `json:"version"`
	Mech    string `json:"mech"`
	Roster  map[string]struct {
		Name         string   `json:"name"`
		Subscription string   `json:"subscription"`
		Groups       []string `json:"groups"`
	} `json:"roster"`
	Messages []struct {
		From, Body string
		Delayed    bool
	} `json:"messages"`
	VCardFN string   `json:"vcard_fn"`
	Events  []string `json:"events"`
	Error   string   `json:"error"`
}

// TestMigrateFromEjabberd: a populated ejabberd (accounts on a host that
// keeps SCRAM-SHA-256 verifiers and on one that keeps plaintext
// passwords, a roster with groups, a vCard, private XML, an offline
// message) is exported with `ejabberdctl export_piefxis`, ode imports
// the files, and slixmpp clients log in to ode with their old passwords
// (with the mechanism whose verifier was carried, and with one derived
// on import from a plaintext password), find their roster and vCard, and
// are delivered the offline message.
func TestMigrateFromEjabberd(t *testing.T) {
	needSlixmpp(t)
	ej := startEjabberd(t)
	for _, c := range [][]string{
		{"register", "juliet", "ej.test", "Rom3o&me ☺"},
		{"register", "romeo", "ej.test", "s3cret"},
		{"register", "nurse", "plain.test", "n0rse"},
		{"add_rosteritem", "juliet", "ej.test", "romeo", "ej.test", "Romeo M", "Friends,Verona", "both"},
		{"add_rosteritem", "juliet", "ej.test", "nurse", "plain.test", "Nurse", "Family", "to"},
		{"add_rosteritem", "nurse", "plain.test", "juliet", "ej.test", "Juliet", "", "from"},
		{"set_vcard", "juliet", "ej.test", "FN", "Juliet Capulet"},
		{"private_set", "juliet", "ej.test", "<storage xmlns='storage:bookmarks'><conference jid='play@conference.ej.test' name='The Play'/></storage>"},
		{"send_message", "chat", "romeo@ej.test/orchard", "juliet@ej.test", "", "Wherefore art thou"},
	} {
		ej.ctl(t, c...)
	}
	exportDir := filepath.Join(ej.dir, "export")
	ej.ctl(t, "export_piefxis", exportDir)
	files, _ := filepath.Glob(filepath.Join(exportDir, "*.xml"))
	var main string
	for _, f := range files {
		if !strings.Contains(filepath.Base(f), "_") { // the main file; host files are <stamp>_<host>.xml
			main = f
		}
	}
	if main == "" || len(files) != 3 {
		t.Fatalf("export_piefxis wrote %q: want a main file and one per host", files)
	}

	srv := xmpptest.Start(t, func(c *config.Config) { c.Server.Domains = []string{"ej.test", "plain.test"} })
	var notices []string
	st, err := xep227.ImportFile(t.Context(), srv.Store(), main, xep227.ImportOptions{
		Domains: []string{"ej.test", "plain.test"}, Notice: func(m string) { notices = append(notices, m) }})
	if err != nil {
		t.Fatalf("import of ejabberd's export: %v\nnotices: %q", err, notices)
	}
	t.Logf("imported: %v; notices: %q", st, notices)
	if st.Users != 3 || st.Credentials != 2 || st.Passwords != 1 || st.RosterItems != 3 || st.VCards != 1 || st.PrivateXML != 1 || st.Offline != 1 {
		t.Errorf("import stats: %v", st)
	}
	if bm, err := srv.Store().GetXML(t.Context(), "juliet", "ej.test", "private:storage:bookmarks storage"); err != nil || !strings.Contains(string(bm), "The Play") {
		t.Errorf("juliet's bookmarks: %q, %v", bm, err)
	}

	juliet := migratedLogin(t, srv, "SCRAM-SHA-256", "juliet@ej.test", "Rom3o&me ☺", 1)
	if juliet.Mech != "SCRAM-SHA-256" {
		t.Errorf("juliet logged in with %q", juliet.Mech)
	}
	romeo, nurse := juliet.Roster["romeo@ej.test"], juliet.Roster["nurse@plain.test"]
	if len(juliet.Roster) != 2 || romeo.Name != "Romeo M" || romeo.Subscription != "both" || !slices.Equal(romeo.Groups, []string{"Friends", "Verona"}) ||
		nurse.Subscription != "to" || !slices.Equal(nurse.Groups, []string{"Family"}) {
		t.Errorf("juliet's roster: %+v", juliet.Roster)
	}
	if len(juliet.Messages) != 1 || juliet.Messages[0].Body != "Wherefore art thou" || juliet.Messages[0].From != "romeo@ej.test/orchard" || !juliet.Messages[0].Delayed {
		t.Errorf("juliet's offline messages: %+v", juliet.Messages)
	}
	if juliet.VCardFN != "Juliet Capulet" {
		t.Errorf("juliet's vCard FN = %q", juliet.VCardFN)
	}
	// ejabberd kept nurse's password in plaintext: ode hashed it on
	// import, for every SCRAM hash.
	for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-512"} {
		n := migratedLogin(t, srv, mech, "nurse@plain.test", "n0rse", 0)
		if j := n.Roster["juliet@ej.test"]; n.Mech != mech || j.Subscription != "from" || j.Name != "Juliet" {
			t.Errorf("nurse with %s: mechanism %q, roster %+v", mech, n.Mech, n.Roster)
		}
	}
}

// migratedLogin runs slixmpp_migrated.py, waiting for that many offline
// messages.
func migratedLogin(t *testing.T, srv *xmpptest.Server, mech, user, password string, messages int) migratedResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	host, port, _ := strings.Cut(srv.Addr, ":")
	cmd := exec.CommandContext(ctx, python, "slixmpp_migrated.py", host, port, srv.CAFile, mech, user, password, fmt.Sprint(messages))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var res migratedResult
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		t.Fatalf("slixmpp_migrated.py: %v / %v\nstdout: %s\nstderr: %s", err, jerr, out, stderr.String())
	}
	if err != nil || res.Error != "" {
		t.Fatalf("%s did not log in to ode with %s and the password it had on ejabberd: %v: %s\nevents: %q\nstderr: %s", user, mech, err, res.Error, res.Events, stderr.String())
	}
	return res
}
