package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

const adminToken = "0123456789abcdef0123456789abcdef-test"

// adminConfig is the configuration of the admin tests: the certificate
// files, the log level, the offline module's quota and extra lines.
func adminConfig(addr, direct, httpAddr, cert, key, level string, quota int, extra string) string {
	return fmt.Sprintf(`[server]
domains = ["localhost"]
data_dir = "data"
[log]
level = %q
[tls]
cert = %q
key = %q
[c2s]
listen = [%q]
direct_tls = [%q]
[s2s]
enabled = false
[http]
listen = [%q]
[admin]
token = %q
[modules.offline]
quota = %d
%s`, level, cert, key, addr, direct, httpAddr, adminToken, quota, extra)
}

// run runs an ode command and returns its exit status and output.
func run(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	out, err := ode(t, dir, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%v: %v", args, err)
	return 0, ""
}

func mustRun(t *testing.T, dir string, want string, args ...string) string {
	t.Helper()
	st, out := run(t, dir, args...)
	if st != 0 || !strings.Contains(out, want) {
		t.Fatalf("ode %s: status %d, output %q; want %q", strings.Join(args, " "), st, out, want)
	}
	return out
}

// dialCA logs in with the certificate of ca trusted, as software.
func dialCA(t *testing.T, addr, account, password, software string, pool *x509.CertPool) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{JID: jid.MustParse(account), Password: password, Addr: addr,
		Software: software, UserAgentID: "d2f1c6a0-0000-4000-8000-" + software[:1] + "00000000000",
		TLS: &tls.Config{RootCAs: pool, ServerName: "localhost"}})
	if err != nil {
		t.Fatalf("login %s: %v", account, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
		t.Fatal(err)
	}
	return c
}

// recvUntil reads c until match accepts an element, or fails.
func recvUntil(t *testing.T, c *client.Client, what string, match func(*xmlstream.Element) bool) *xmlstream.Element {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		e, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(e) {
			return e
		}
	}
}

// chat sends a message from a to b and waits for it.
func chat(t *testing.T, a, b *client.Client, text string) {
	t.Helper()
	m := stanza.NewMessage(stanza.NSClient, stanza.MessageChat, b.JID().String(), "", "").
		Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(text))
	if err := a.Send(m); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, b, "message "+text, func(e *xmlstream.Element) bool {
		body := e.Child(stanza.NSClient, "body")
		return e.Name.Local == "message" && body != nil && body.Text() == text
	})
}

// leafSerial is the serial number of the certificate the server shows a
// new direct TLS connection.
func leafSerial(t *testing.T, addr string, pool *x509.CertPool) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"xmpp-client"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestAdminCommandsAndReload runs the server as an operator would and
// drives it with the ode commands over the control socket: accounts and
// sessions (kick, logout), announce, stats, backup; a reload that changes
// the certificate, the log level and a module setting while two clients
// stay connected; a broken configuration refused by `ode reload` and
// SIGHUP with file:line while the server runs on; the HTTPS admin API
// with its token.
func TestAdminCommandsAndReload(t *testing.T) {
	dir := t.TempDir()
	addr, direct, httpAddr := freePort(t), freePort(t), freePort(t)
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caFile, err := ca.WriteFiles(dir, "localhost", "*.localhost")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	cfgPath := filepath.Join(dir, "ode.toml")
	write := func(conf string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(adminConfig(addr, direct, httpAddr, cert, key, "info", 100, ""))

	// Without a server: the database directly, and clear errors.
	mustRun(t, dir, "created alice@localhost", "user", "add", "alice@localhost", "-c", cfgPath, "--password", "alice pw")
	if st, out := run(t, dir, "session", "list", "-c", cfgPath); st != 1 || !strings.Contains(out, "the server is not running") {
		t.Fatalf("session list without a server: %d %q", st, out)
	}

	p := serve(t, dir, addr, "-c", cfgPath)
	sock := filepath.Join(dir, "data", "ode.sock")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.log(), "ode started") {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not finish starting:\n%s", p.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode %v, want a socket with 0600", fi.Mode())
	}

	// Accounts through the control socket.
	mustRun(t, dir, "created bob@localhost", "user", "add", "bob@localhost", "-c", cfgPath, "--password", "bob pw")
	mustRun(t, dir, "created carol@localhost", "user", "add", "carol@localhost", "-c", cfgPath, "--password", "carol pw")
	if st, out := run(t, dir, "user", "add", "bob@localhost", "-c", cfgPath, "--password", "x"); st != 1 || !strings.Contains(out, "already exists") {
		t.Fatalf("user add twice: %d %q", st, out)
	}
	mustRun(t, dir, "alice@localhost\nbob@localhost\ncarol@localhost\n", "user", "list", "-c", cfgPath)

	alice := dialCA(t, addr, "alice@localhost", "alice pw", "Alicent", pool)
	bob := dialCA(t, addr, "bob@localhost", "bob pw", "Bobclient", pool)
	carol := dialCA(t, addr, "carol@localhost", "carol pw", "Carolina", pool)
	chat(t, alice, bob, "before the reload")

	out := mustRun(t, dir, alice.JID().String(), "session", "list", "-c", cfgPath)
	for _, want := range []string{bob.JID().String(), "Alicent", "tcp", "127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("session list lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, dir, "sessions", "stats", "-c", cfgPath)
	if !strings.Contains(out, "registered users") || !strings.Contains(out, "3") {
		t.Errorf("stats:\n%s", out)
	}
	mustRun(t, dir, "sent to 3 sessions", "announce", "-subject", "Maintenance", "-c", cfgPath, "back", "in", "five")
	recvUntil(t, bob, "the announcement", func(e *xmlstream.Element) bool {
		b := e.Child(stanza.NSClient, "body")
		return stanza.Type(e) == stanza.MessageHeadline && b != nil && b.Text() == "back in five"
	})
	mustRun(t, dir, "ROOM", "room", "list", "-c", cfgPath)
	if st, out := run(t, dir, "room", "destroy", "nowhere@conference.localhost", "-c", cfgPath); st != 1 || !strings.Contains(out, "no room") {
		t.Errorf("room destroy of no room: %d %q", st, out)
	}

	if strings.Contains(p.log(), "level=DEBUG") {
		t.Error("a debug line logged at level info")
	}
	// A reload with a new certificate, another log level and a module
	// setting: the sessions stay, new connections see the new certificate.
	serialBefore := leafSerial(t, direct, pool)
	cert2, key2, _, err := ca.WriteFiles(t.TempDir(), "localhost", "*.localhost")
	if err != nil {
		t.Fatal(err)
	}
	write(adminConfig(addr, direct, httpAddr, cert2, key2, "debug", 7, ""))
	out = mustRun(t, dir, "configuration reloaded", "reload", "-c", cfgPath)
	for _, want := range []string{"certificates", "level debug", "modules rebuilt: offline"} {
		if !strings.Contains(out, want) {
			t.Errorf("reload answer lacks %q:\n%s", want, out)
		}
	}
	if leafSerial(t, direct, pool) == serialBefore {
		t.Error("a new connection still gets the old certificate after the reload")
	}
	chat(t, alice, bob, "after the reload")
	chat(t, bob, alice, "both ways")
	mustRun(t, dir, "JID", "session", "list", "-c", cfgPath) // logged at debug
	if !strings.Contains(p.log(), "level=DEBUG") {
		t.Error("no debug line logged after the reload to level debug")
	}

	// A listen address cannot change live: reported, the old one stays.
	write(adminConfig(freePort(t), direct, httpAddr, cert2, key2, "debug", 7, ""))
	out = mustRun(t, dir, "not applied: c2s.listen changed", "reload", "-c", cfgPath)
	chat(t, alice, bob, "still on the old address")

	// A broken configuration is refused with file:line; the server runs on.
	write(adminConfig(addr, direct, httpAddr, cert2, key2, "debug", 7, "[modules.roster]\nmax_items = 0\n"))
	st, out := run(t, dir, "reload", "-c", cfgPath)
	if st != 1 || !strings.Contains(out, "ode.toml:21:") || !strings.Contains(out, "max_items") || !strings.Contains(out, "running configuration stays") {
		t.Fatalf("reload of a broken config: %d %q", st, out)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for !strings.Contains(p.log(), "reload refused") {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP with a broken config: no refusal logged:\n%s", p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	chat(t, alice, bob, "after the refused reloads")

	// The HTTPS admin API: a token is required.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	api := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "https://"+httpAddr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, res.Status)
		buf := make([]byte, 64<<10)
		n, _ := res.Body.Read(buf)
		return res.StatusCode, string(buf[:n])
	}
	if code, _ := api("GET", "/admin/stats", "", ""); code != http.StatusUnauthorized {
		t.Errorf("stats without a token: %d", code)
	}
	if code, _ := api("GET", "/admin/stats", adminToken+"x", ""); code != http.StatusUnauthorized {
		t.Errorf("stats with a wrong token: %d", code)
	}
	code, body := api("GET", "/admin/stats", adminToken, "")
	var stats struct {
		Sessions int `json:"sessions"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &stats) != nil || stats.Sessions != 3 {
		t.Errorf("stats with the token: %d %s", code, body)
	}
	if code, body := api("POST", "/admin/backup", adminToken, `{"path":"/tmp/x.db"}`); code != http.StatusBadRequest {
		t.Errorf("backup to an absolute path over HTTPS: %d %s", code, body)
	}
	if code, body := api("POST", "/admin/users/add", adminToken, `{"jid":"dave@localhost","password":"dave pw"}`); code != http.StatusOK {
		t.Errorf("users/add over HTTPS: %d %s", code, body)
	}
	if code, _ := api("POST", "/admin/users/add", adminToken, `{"jid":"dave@localhost","password":"again"}`); code != http.StatusConflict {
		t.Errorf("users/add twice over HTTPS: %d", code)
	}
	if code, body := api("POST", "/admin/reload", adminToken, ""); code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "ode.toml:21:") || !strings.Contains(body, "running one stays") {
		t.Errorf("reload of the broken config over HTTPS: %d %s", code, body)
	}
	if code, _ := api("GET", "/admin/nonsense", adminToken, ""); code != http.StatusNotFound {
		t.Errorf("unknown command: %d", code)
	}

	write(adminConfig(addr, direct, httpAddr, cert2, key2, "debug", 7, ""))

	// Ending sessions: one by its full JID, all of an account, logout.
	mustRun(t, dir, "ended "+carol.JID().String(), "session", "kick", carol.JID().String(), "-c", cfgPath)
	expectStreamError(t, carol, stream.PolicyViolation)
	mustRun(t, dir, "ended 1 sessions of bob@localhost", "user", "kick", "bob@localhost", "-c", cfgPath)
	expectStreamError(t, bob, stream.PolicyViolation)
	mustRun(t, dir, "logged out alice@localhost: 1 sessions ended", "user", "logout", "alice@localhost", "-c", cfgPath)
	expectStreamError(t, alice, stream.PolicyViolation)
	mustRun(t, dir, "password changed", "user", "passwd", "bob@localhost", "-c", cfgPath, "--password", "new pw")
	dialCA(t, addr, "bob@localhost", "new pw", "Bobclient", pool)
	mustRun(t, dir, "deleted carol@localhost", "user", "del", "carol@localhost", "-c", cfgPath)

	// An import while the server runs is refused: the server is the only
	// writer of what it caches (block lists, rooms).
	if st, out := run(t, dir, "import", "-c", cfgPath, filepath.Join(dir, "none.xml")); st != 1 || !strings.Contains(out, "the server is running") {
		t.Errorf("import while the server runs: %d %q", st, out)
	}

	// A backup while the server runs.
	backup := filepath.Join(dir, "backup.db")
	mustRun(t, dir, "backed up to "+backup, "backup", backup, "-c", cfgPath)
	if fi, err := os.Stat(backup); err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if st, out := run(t, dir, "backup", backup, "-c", cfgPath); st != 1 || !strings.Contains(out, "exists") {
		t.Errorf("backup over an existing file: %d %q", st, out)
	}
	p.stop(t)
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the control socket outlived the server: %v", err)
	}
	// The backup is a database the server runs on.
	mustRun(t, dir, "bob@localhost", "user", "list", "-c", cfgPath)
}

// expectStreamError reads c until its stream ends with the condition.
func expectStreamError(t *testing.T, c *client.Client, cond stream.Condition) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, err := c.Recv(ctx)
		if err == nil {
			continue
		}
		var se *stream.Error
		if !errors.As(err, &se) || se.Condition != cond {
			t.Fatalf("%s: stream ended with %v, want %s", c.JID(), err, cond)
		}
		return
	}
}
