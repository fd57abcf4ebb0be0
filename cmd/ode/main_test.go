package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
	"go.uber.org/goleak"
)

// The test binary doubles as the ode command when ODE_TEST_MAIN is set,
// so the tests run the real program as a separate process.
func TestMain(m *testing.M) {
	if os.Getenv("ODE_TEST_MAIN") == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

func ode(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ODE_TEST_MAIN=1")
	return cmd
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running `ode serve`.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs strings.Builder
	done chan struct{} // closed when stderr is at EOF
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("ode serve did not exit after SIGTERM:\n%s", p.log())
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.log())
	}
}

// serve starts `ode serve` and waits until it listens on addr.
func serve(t *testing.T, dir string, addr string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: ode(t, dir, append([]string{"serve"}, args...)...), done: make(chan struct{})}
	pr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		signalled := false
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			l := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(l + "\n")
			p.mu.Unlock()
			if strings.Contains(l, "listening") && strings.Contains(l, addr) && !signalled {
				close(ready)
				signalled = true
			}
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
			_ = p.cmd.Wait()
		}
	})
	select {
	case <-ready:
		return p
	case <-p.done:
		t.Fatalf("ode serve exited:\n%s", p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("ode serve did not start:\n%s", p.log())
	}
	return nil
}

func selfSignedPool(t *testing.T, dataDir string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dataDir, "selfsigned.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in selfsigned.crt")
	}
	return pool
}

func dial(t *testing.T, addr, account, password string, pool *x509.CertPool) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{JID: jid.MustParse(account), Password: password, Addr: addr,
		TLS: &tls.Config{RootCAs: pool, ServerName: "localhost"}})
	if err != nil {
		t.Fatalf("login %s: %v", account, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestServeWithConfig runs the binary as an operator would: accounts made
// with `ode user` before and while the server runs, two clients chatting,
// and SIGTERM ending every stream with system-shutdown.
func TestServeWithConfig(t *testing.T) {
	dir := t.TempDir()
	addr, direct := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "ode.toml")
	conf := fmt.Sprintf("[server]\ndomains = [\"localhost\"]\ndata_dir = \"data\"\n[log]\nformat = \"json\"\n[c2s]\nlisten = [%q]\ndirect_tls = [%q]\n[http]\nlisten = [%q]\n", addr, direct, freePort(t))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := ode(t, dir, "user", "add", "alice@localhost", "-c", cfg, "--password", "alice pw").CombinedOutput(); err != nil {
		t.Fatalf("user add: %v: %s", err, out)
	}
	p := serve(t, dir, addr, "-c", cfg)
	pool := selfSignedPool(t, filepath.Join(dir, "data"))
	// Accounts can be added while the server runs.
	if out, err := ode(t, dir, "user", "add", "bob@localhost", "-c", cfg, "--password", "bob pw").CombinedOutput(); err != nil {
		t.Fatalf("user add while running: %v: %s", err, out)
	}
	alice := dial(t, addr, "alice@localhost", "alice pw", pool)
	bob := dial(t, addr, "bob@localhost", "bob pw", pool)
	msg := stanza.NewMessage(stanza.NSClient, stanza.MessageChat, bob.JID().String(), "", "").
		Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText("hello from a real process"))
	if err := alice.Send(msg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := bob.Recv(ctx)
	if err != nil || got.Child(stanza.NSClient, "body").Text() != "hello from a real process" {
		t.Fatalf("bob: %v %v", got, err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{alice, bob} {
		for {
			if _, err := c.Recv(ctx); err != nil {
				var se *stream.Error
				if !errors.As(err, &se) || se.Condition != stream.SystemShutdown {
					t.Errorf("%s: stream ended with %v, want system-shutdown", c.JID(), err)
				}
				break
			}
		}
	}
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.log())
	}
	logs := p.log()
	for _, want := range []string{`"msg":"authenticated"`, `"msg":"ode stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	for _, secret := range []string{"alice pw", "bob pw"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a password is in the log")
		}
	}
}

// TestServeDefaults runs the README's command: no config file, data in
// ./ode-data, c2s on 127.0.0.1:5222.
func TestServeDefaults(t *testing.T) {
	if ln, err := net.Listen("tcp", "127.0.0.1:5222"); err != nil {
		t.Fatalf("port 5222 is taken, so the defaults cannot be tested: %v", err)
	} else {
		ln.Close()
	}
	dir := t.TempDir()
	if out, err := ode(t, dir, "user", "add", "juliet@localhost", "--password", "pw").CombinedOutput(); err != nil {
		t.Fatalf("user add: %v: %s", err, out)
	}
	p := serve(t, dir, "127.0.0.1:5222")
	c := dial(t, "127.0.0.1:5222", "juliet@localhost", "pw", selfSignedPool(t, filepath.Join(dir, "ode-data")))
	if _, err := os.Stat(filepath.Join(dir, "ode-data", "ode.db")); err != nil {
		t.Error(err)
	}
	c.Close()
	p.stop(t)
	// The certificate is reused on the next start.
	before, _ := os.ReadFile(filepath.Join(dir, "ode-data", "selfsigned.crt"))
	p = serve(t, dir, "127.0.0.1:5222")
	after, _ := os.ReadFile(filepath.Join(dir, "ode-data", "selfsigned.crt"))
	if string(before) != string(after) {
		t.Error("the self-signed certificate was regenerated")
	}
	p.stop(t)
}

// TestOfflineMessagesSurviveKill: messages to an offline user, accepted by
// the server (the sender's next IQ was answered, and stanzas of one stream
// are processed in order), survive SIGKILL and are delivered once after a
// restart.
func TestOfflineMessagesSurviveKill(t *testing.T) {
	dir := t.TempDir()
	addr, direct := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "ode.toml")
	conf := fmt.Sprintf("[server]\ndomains = [\"localhost\"]\ndata_dir = \"data\"\n[c2s]\nlisten = [%q]\ndirect_tls = [%q]\n[http]\nlisten = [%q]\n", addr, direct, freePort(t))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice@localhost", "bob@localhost"} {
		if out, err := ode(t, dir, "user", "add", u, "-c", cfg, "--password", "pw").CombinedOutput(); err != nil {
			t.Fatalf("user add: %v: %s", err, out)
		}
	}
	p := serve(t, dir, addr, "-c", cfg)
	pool := selfSignedPool(t, filepath.Join(dir, "data"))
	alice := dial(t, addr, "alice@localhost", "pw", pool)
	const n = 50
	for i := range n {
		m := stanza.NewMessage(stanza.NSClient, stanza.MessageChat, "bob@localhost", "", "").
			Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(fmt.Sprint("offline ", i)))
		if err := alice.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ping := stanza.NewIQ(stanza.NSClient, stanza.IQGet, "", "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping"))
	if _, err := alice.IQ(ctx, ping); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	_ = p.cmd.Wait()

	serve(t, dir, addr, "-c", cfg)
	bob := dial(t, addr, "bob@localhost", "pw", pool)
	if err := bob.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		var m *xmlstream.Element
		for m == nil {
			e, err := bob.Recv(ctx)
			if err != nil {
				t.Fatalf("after %d messages: %v", i, err)
			}
			if e.Name.Local == "message" {
				m = e
			}
		}
		if b := m.Child(stanza.NSClient, "body"); b == nil || b.Text() != fmt.Sprint("offline ", i) {
			t.Fatalf("message %d: %s", i, m)
		}
	}
	// And only once: a second login gets none.
	if _, err := bob.IQ(ctx, ping); err != nil {
		t.Fatal(err)
	}
	bob.Close()
	bob2 := dial(t, addr, "bob@localhost", "pw", pool)
	if err := bob2.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := bob2.IQ(ctx, ping); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	for {
		e, err := bob2.Recv(short)
		if err != nil {
			break
		}
		if e.Name.Local == "message" {
			t.Fatalf("delivered twice: %s", e)
		}
	}
}

// TestAckedMessagesSurviveKill is the durability test of stream
// management with the archive on: alice sends a burst, half to bob (online,
// delivered live) and half to dave (offline), asking for acknowledgements
// as she goes, and the server is killed (SIGKILL) in the middle. After a
// restart every message the server acknowledged to alice is in alice's
// archive and in its recipient's (bob: received live or archived; dave:
// offline storage and archive), and no message is there twice.
func TestAckedMessagesSurviveKill(t *testing.T) {
	dir := t.TempDir()
	addr, direct := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "ode.toml")
	conf := fmt.Sprintf("[server]\ndomains = [\"localhost\"]\ndata_dir = \"data\"\n[c2s]\nlisten = [%q]\ndirect_tls = [%q]\n[http]\nlisten = [%q]\n[modules.offline]\nquota = 100000\n", addr, direct, freePort(t))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice@localhost", "bob@localhost", "dave@localhost"} {
		if out, err := ode(t, dir, "user", "add", u, "-c", cfg, "--password", "pw").CombinedOutput(); err != nil {
			t.Fatalf("user add: %v: %s", err, out)
		}
	}
	p := serve(t, dir, addr, "-c", cfg)
	pool := selfSignedPool(t, filepath.Join(dir, "data"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// bob is online and counts what he receives until the server dies.
	bob := dial(t, addr, "bob@localhost", "pw", pool)
	if err := bob.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
		t.Fatal(err)
	}
	live := map[string]int{}
	bobDone := make(chan struct{})
	go func() {
		defer close(bobDone)
		for {
			e, err := bob.Recv(ctx)
			if err != nil {
				return
			}
			if b := e.Child(stanza.NSClient, "body"); e.Name.Local == "message" && b != nil {
				live[b.Text()]++
			}
		}
	}()

	alice := dial(t, addr, "alice@localhost", "pw", pool)
	if err := alice.SendRaw([]byte(`<enable xmlns='urn:xmpp:sm:3'/>`)); err != nil {
		t.Fatal(err)
	}
	for {
		e, err := alice.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e.Name.Local == "enabled" {
			break
		}
	}
	var mu sync.Mutex
	acked := uint32(0)
	killAt := make(chan struct{})
	aliceDone := make(chan struct{})
	go func() {
		defer close(aliceDone)
		once := sync.Once{}
		for {
			e, err := alice.Recv(ctx)
			if err != nil {
				return
			}
			if e.Name.Local != "a" {
				continue
			}
			var h uint32
			if _, err := fmt.Sscan(e.Attribute("h"), &h); err != nil {
				continue
			}
			mu.Lock()
			acked = max(acked, h)
			mu.Unlock()
			if h >= 1500 {
				once.Do(func() { close(killAt) })
			}
		}
	}()
	go func() {
		select {
		case <-killAt:
			_ = p.cmd.Process.Kill()
		case <-ctx.Done():
		}
	}()
	sent := 0
	for ; sent < 200000; sent++ {
		to := "bob@localhost"
		if sent%2 == 1 {
			to = "dave@localhost"
		}
		m := stanza.NewMessage(stanza.NSClient, stanza.MessageChat, to, "", "").
			Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(fmt.Sprint("m-", sent)))
		if err := alice.Send(m); err != nil {
			break
		}
		if sent%25 == 24 {
			if err := alice.SendRaw([]byte(`<r xmlns='urn:xmpp:sm:3'/>`)); err != nil {
				break
			}
		}
	}
	<-p.done
	_ = p.cmd.Wait()
	<-aliceDone
	<-bobDone
	mu.Lock()
	h := int(acked)
	mu.Unlock()
	if h < 1500 || h >= sent {
		t.Fatalf("acknowledged %d of %d sent: the server was not killed during the burst", h, sent)
	}
	t.Logf("sent %d, acknowledged %d, bob received %d live before the kill", sent, h, len(live))

	serve(t, dir, addr, "-c", cfg)
	archive := func(account string) (map[string]int, map[string]int) {
		c := dial(t, addr, account, "pw", pool)
		if err := c.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
			t.Fatal(err)
		}
		offline := map[string]int{}
		_ = c.SendRaw([]byte(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`))
		for {
			e, err := c.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if e.Name.Local == "iq" && stanza.ID(e) == "p1" {
				break
			}
			if b := e.Child(stanza.NSClient, "body"); e.Name.Local == "message" && b != nil {
				offline[b.Text()]++
			}
		}
		archived := map[string]int{}
		after := ""
		for page := 0; ; page++ {
			rsm := "<max>250</max>"
			if after != "" {
				rsm += "<after>" + after + "</after>"
			}
			id := fmt.Sprint("q", page)
			_ = c.SendRaw([]byte(`<iq type='set' id='` + id + `'><query xmlns='urn:xmpp:mam:2' queryid='` + id + `'>` +
				`<set xmlns='http://jabber.org/protocol/rsm'>` + rsm + `</set></query></iq>`))
			var fin *xmlstream.Element
			for fin == nil {
				e, err := c.Recv(ctx)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case e.Name.Local == "iq" && stanza.ID(e) == id:
					if fin = e.Child("urn:xmpp:mam:2", "fin"); fin == nil {
						t.Fatalf("archive query: %s", e)
					}
				case e.Name.Local == "message":
					if r := e.Child("urn:xmpp:mam:2", "result"); r != nil {
						if f := r.Child("urn:xmpp:forward:0", "forwarded"); f != nil {
							if m := f.Child(stanza.NSClient, "message"); m != nil {
								if b := m.Child(stanza.NSClient, "body"); b != nil {
									archived[b.Text()]++
								}
							}
						}
					}
				}
			}
			if fin.Attribute("complete") == "true" {
				break
			}
			set := fin.Child("http://jabber.org/protocol/rsm", "set")
			if set == nil || set.Child("http://jabber.org/protocol/rsm", "last") == nil {
				t.Fatalf("incomplete page without <last/>: %s", fin)
			}
			after = set.Child("http://jabber.org/protocol/rsm", "last").Text()
		}
		c.Close()
		return offline, archived
	}
	_, aliceArchive := archive("alice@localhost")
	bobOffline, bobArchive := archive("bob@localhost")
	daveOffline, daveArchive := archive("dave@localhost")
	for name, m := range map[string]map[string]int{"bob live": live, "alice's archive": aliceArchive,
		"bob's archive": bobArchive, "bob's offline": bobOffline, "dave's archive": daveArchive, "dave's offline": daveOffline} {
		for body, n := range m {
			if n > 1 {
				t.Errorf("%s: %q %d times", name, body, n)
			}
		}
	}
	lost := 0
	for i := range h {
		body := fmt.Sprint("m-", i)
		ok := aliceArchive[body] == 1
		if i%2 == 0 {
			ok = ok && bobArchive[body] == 1
		} else {
			ok = ok && daveArchive[body] == 1 && daveOffline[body] == 1
		}
		if !ok {
			if lost < 10 {
				t.Errorf("%s acknowledged but lost: alice's archive %d, bob live %d, bob's archive %d, dave offline %d, dave's archive %d",
					body, aliceArchive[body], live[body], bobArchive[body], daveOffline[body], daveArchive[body])
			}
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged messages lost", lost, h)
	}
	t.Logf("after the restart: alice's archive %d, bob's %d (+%d offline), dave's %d, dave offline %d",
		len(aliceArchive), len(bobArchive), len(bobOffline), len(daveArchive), len(daveOffline))
}
