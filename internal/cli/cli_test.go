package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/server"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// offline are the checks of ode check that need DNS or a running server,
// skipped by the tests of the others.
const offline = "dns,ports,hostmeta"

// run runs the ode command in-process.
func run(t *testing.T, stdin string, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	status = Main(args, strings.NewReader(stdin), &out, &errb)
	return status, out.String(), errb.String()
}

// testConfig writes a config file with its data in a temporary directory.
func testConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "ode.toml")
	cfg := fmt.Sprintf("[server]\ndomains = [\"example.org\", \"example.net\"]\ndata_dir = %q\n%s", filepath.Join(dir, "data"), extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersionAndHelp(t *testing.T) {
	if st, out, _ := run(t, "", "version"); st != 0 || !strings.HasPrefix(out, "ode ") {
		t.Errorf("version: %d %q", st, out)
	}
	if st, out, _ := run(t, "", "help"); st != 0 || !strings.Contains(out, "ode serve") {
		t.Errorf("help: %d %q", st, out)
	}
	if st, _, errs := run(t, "", "frobnicate"); st != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", st, errs)
	}
	for _, args := range [][]string{{"serve", "-h"}, {"check", "-h"}, {"user", "add", "-h"}, {"user", "import", "-h"}, {"user", "list", "-h"}} {
		if st, _, errs := run(t, "", args...); st != 0 || !strings.Contains(errs, "Usage: ode") {
			t.Errorf("%v: %d %q", args, st, errs)
		}
	}
	if st, _, _ := run(t, ""); st != 2 {
		t.Errorf("no arguments: status %d", st)
	}
}

func TestCheck(t *testing.T) {
	good := testConfig(t, "")
	if st, out, errs := run(t, "", "check", "-skip", offline, "-c", good); st != 0 || !strings.Contains(out, "ok") {
		t.Errorf("check: %d %q %q", st, out, errs)
	}
	bad := testConfig(t, "[c2s]\nmax_stanza_bytes = 5\nlisten_typo = []\n")
	st, _, errs := run(t, "", "check", "-skip", offline, "-c", bad)
	if st == 0 || !strings.Contains(errs, "ode.toml:") || !strings.Contains(errs, "listen_typo") {
		t.Errorf("bad config: %d %q", st, errs)
	}
	mods := testConfig(t, "[modules.roster]\nmax_items = 0\n[modules.ping]\ninterval = 5\n[register]\nenabled = true\n")
	st, _, errs = run(t, "", "check", "-skip", offline, "-c", mods)
	for _, want := range []string{
		"ode.toml:5: modules.roster.max_items: must be at least 1, got 0",
		"ode.toml:7: modules.ping.interval: invalid duration",
		"ode.toml:8: [register] moved to [modules.register]",
	} {
		if st == 0 || !strings.Contains(errs, want) {
			t.Errorf("module settings: %d %q, want %q", st, errs, want)
		}
	}
	good = testConfig(t, "[modules]\ndisabled = [\"vcard\"]\n[modules.register]\nenabled = true\n")
	if st, out, errs := run(t, "", "check", "-skip", offline, "-c", good); st != 0 || !strings.Contains(out, "ok") {
		t.Errorf("check with module settings: %d %q %q", st, out, errs)
	}
	if st, _, errs := run(t, "", "check", "-skip", offline, "-c", filepath.Join(t.TempDir(), "missing.toml")); st == 0 || errs == "" {
		t.Errorf("missing file: %d %q", st, errs)
	}
}

// TestCheckCertificate: ode check says which hosted domain or public
// URL host the configured certificate does not cover.
func TestCheckCertificate(t *testing.T) {
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caFile := writeCert(t, ca, 90*24*time.Hour, "example.org", "xmpp.example.org")
	tlsConf := fmt.Sprintf("[tls]\ncert = %q\nkey = %q\n", cert, key)
	st, out, errs := run(t, "", "check", "-skip", offline, "-roots", caFile, "-c", testConfig(t, tlsConf+"[http]\npublic_url = \"https://web.example.org\"\n"))
	for _, want := range []string{"does not cover example.net", "does not cover web.example.org", "does not cover conference.example.net"} {
		if st == 0 || !strings.Contains(out, want) {
			t.Errorf("certificate for example.org only: %d %q, want %q", st, out, want)
		}
	}
	if !strings.Contains(errs, "problems found") {
		t.Errorf("no count of the problems on stderr: %q", errs)
	}
	if strings.Contains(out, "cover example.org ") {
		t.Errorf("example.org is covered: %q", out)
	}
	cert, key, caFile = writeCert(t, ca, 90*24*time.Hour, "example.org", "*.example.org", "example.net", "*.example.net", "xmpp.example.org")
	tlsConf = fmt.Sprintf("[tls]\ncert = %q\nkey = %q\n[http]\npublic_url = \"https://xmpp.example.org\"\n", cert, key)
	if st, out, errs := run(t, "", "check", "-skip", offline, "-roots", caFile, "-c", testConfig(t, tlsConf)); st != 0 || !strings.Contains(out, "ok") {
		t.Errorf("certificate covering everything: %d %q %q", st, out, errs)
	}
}

// writeCert writes a certificate from ca for names, valid for valid from
// an hour ago (negative: expired that long ago), its key and the CA's
// certificate into a temporary directory.
func writeCert(t *testing.T, ca *xmpptest.CA, valid time.Duration, names ...string) (cert, key, caFile string) {
	t.Helper()
	from, to := time.Now().Add(-time.Hour), time.Now().Add(valid)
	if valid < 0 {
		from = to.Add(-24 * time.Hour)
	}
	certPEM, keyPEM, err := ca.IssueValid(from, to, names...)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key, caFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.crt")
	for path, data := range map[string][]byte{cert: certPEM, key: keyPEM, caFile: ca.CertPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key, caFile
}

func TestUserLifecycle(t *testing.T) {
	cfg := testConfig(t, "")
	steps := []struct {
		stdin  string
		args   []string
		status int
		out    string // substring of stdout (status 0) or stderr
	}{
		{"", []string{"user", "add", "Juliet@Example.org", "-c", cfg, "--password", "s3cret"}, 0, "created juliet@example.org"},
		{"", []string{"user", "add", "juliet@example.org", "-c", cfg, "--password", "again"}, 1, "already exists"},
		{"pw from stdin\n", []string{"user", "add", "romeo@example.net", "-c", cfg, "--password-stdin"}, 0, "created romeo@example.net"},
		{"", []string{"user", "add", "nurse@example.com", "-c", cfg, "--password", "x"}, 1, "not served"},
		{"", []string{"user", "add", "bad@@example.org", "-c", cfg, "--password", "x"}, 1, "invalid JID"},
		{"", []string{"user", "add", "nopass@example.org", "-c", cfg}, 1, "password is required"},
		{"", []string{"user", "add", "x@example.org/res", "-c", cfg, "--password", "x"}, 1, ""},
		{"", []string{"user", "list", "-c", cfg}, 0, "romeo@example.net\njuliet@example.org\n"}, // by domain, then localpart
		{"", []string{"user", "list", "example.net", "-c", cfg}, 0, "romeo@example.net\n"},
		{"", []string{"user", "list", "example.com", "-c", cfg}, 1, "not served"},
		{"", []string{"user", "passwd", "juliet@example.org", "-c", cfg, "--password", "n3w"}, 0, "password changed"},
		{"", []string{"user", "passwd", "tybalt@example.org", "-c", cfg, "--password", "n3w"}, 1, "no account"},
		{"", []string{"user", "logout", "juliet@example.org", "-c", cfg}, 0, "logged out juliet@example.org: 0 FAST tokens"},
		{"", []string{"user", "logout", "tybalt@example.org", "-c", cfg}, 1, "no account"},
		{"", []string{"user", "del", "romeo@example.net", "-c", cfg}, 0, "deleted"},
		{"", []string{"user", "del", "romeo@example.net", "-c", cfg}, 1, "no account"},
		{"", []string{"user", "frob", "-c", cfg}, 1, "unknown user command"},
	}
	for _, s := range steps {
		st, out, errs := run(t, s.stdin, s.args...)
		got := out
		if s.status != 0 {
			got = errs
		}
		if st != s.status || !strings.Contains(got, s.out) {
			t.Errorf("%v: status %d, stdout %q, stderr %q; want %d and %q", s.args, st, out, errs, s.status, s.out)
		}
	}
	if _, out, _ := run(t, "", "user", "list", "-c", cfg); out != "juliet@example.org\n" {
		t.Errorf("final list %q", out)
	}
}

func TestImport(t *testing.T) {
	cfg := testConfig(t, "")
	var in strings.Builder
	in.WriteString("# a comment\n\n")
	for i := range 200 {
		fmt.Fprintf(&in, "user%d@example.org pass word %d\n", i, i)
	}
	st, out, errs := run(t, in.String(), "user", "import", "-c", cfg)
	if st != 0 || !strings.Contains(out, "imported 200 accounts") {
		t.Fatalf("import: %d %q %q", st, out, errs)
	}
	// Importing again skips what exists and reports it.
	st, out, errs = run(t, "user0@example.org x\nnew@example.org y\n", "user", "import", "-c", cfg)
	if st != 0 || !strings.Contains(out, "imported 1 accounts") || !strings.Contains(errs, "user0@example.org already exists") {
		t.Fatalf("re-import: %d %q %q", st, out, errs)
	}
	// One bad line imports nothing.
	st, _, errs = run(t, "ok@example.org pw\nbroken-line\nx@example.com pw\n", "user", "import", "-c", cfg)
	if st != 1 || !strings.Contains(errs, "line 2") || !strings.Contains(errs, "line 3") || !strings.Contains(errs, "nothing imported") {
		t.Fatalf("bad lines: %d %q", st, errs)
	}
	_, out, _ = run(t, "", "user", "list", "-c", cfg)
	if n := strings.Count(out, "\n"); n != 201 || strings.Contains(out, "ok@example.org") {
		t.Fatalf("%d accounts after imports", n)
	}
}

// TestUserLogout: ode user logout removes the account's FAST tokens, and
// only that account's.
func TestUserLogout(t *testing.T) {
	path := testConfig(t, "")
	for _, u := range []string{"juliet@example.org", "romeo@example.org"} {
		if st, _, errs := run(t, "", "user", "add", u, "-c", path, "--password", "pw"); st != 0 {
			t.Fatal(errs)
		}
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	store, err := server.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, local := range []string{"juliet", "juliet", "romeo"} {
		tok := storage.FASTToken{ClientID: fmt.Sprint("client-", i), Key: []byte{byte(i)}, Mechanism: "HT-SHA-256-NONE", Created: now, Expires: now.Add(time.Hour)}
		if err := store.PutFASTToken(t.Context(), local, "example.org", tok, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	if st, out, errs := run(t, "", "user", "logout", "juliet@example.org", "-c", path); st != 0 || !strings.Contains(out, "2 FAST tokens invalidated") {
		t.Fatalf("logout: %d %q %q", st, out, errs)
	}
	store, err = server.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if toks, err := store.FASTTokens(t.Context(), "romeo", "example.org", "client-2"); err != nil || len(toks) != 1 {
		t.Errorf("romeo's tokens: %v, %v", toks, err)
	}
}
