package interop_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/extdisco"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func needCoturn(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"turnserver", "turnutils_uclient"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (%v): run `make peers` (bash test/interop/install-peers.sh), which installs Debian's coturn", bin, err)
		}
	}
}

// TestCoturnCredentials checks that the TURN credentials ode hands out
// (XEP-0215, module extdisco) are accepted by Debian's coturn running with
// use-auth-secret and the same static-auth-secret: turnutils_uclient, the
// client shipped with coturn, allocates a relay with them over UDP and TCP,
// and coturn logs the allocation for that username. Credentials made with
// another secret, expired ones and ones whose username was changed are
// refused.
func TestCoturnCredentials(t *testing.T) {
	needCoturn(t)
	var b [16]byte
	rand.Read(b[:])
	secret := hex.EncodeToString(b[:])
	turn := startCoturn(t, secret)

	srv := xmpptest.Start(t, func(c *config.Config) {
		c.Modules.Settings["extdisco"] = &extdisco.Config{Services: []extdisco.Service{
			{Type: "stun", Host: "127.0.0.1", Port: turn.port},
			{Type: "turn", Host: "127.0.0.1", Port: turn.port, Transport: "udp", Restricted: true, Secret: secret},
			{Type: "turn", Host: "127.0.0.1", Port: turn.port, Transport: "tcp", Restricted: true, Secret: secret, TTL: config.Duration(time.Hour)},
		}}
	})
	juliet := srv.AddUser(t, "juliet", "balcony")
	c := srv.Dial(t, juliet, "balcony")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := c.IQ(ctx, stanza.NewIQ(stanza.NSClient, stanza.IQGet, srv.Domain, "", "").
		Append(xmlstream.NewElement(extdisco.NS, "services").SetAttr("type", "turn")))
	if err != nil {
		t.Fatal(err)
	}
	list := res.Child(extdisco.NS, "services").ChildrenNS(extdisco.NS)
	if len(list) != 2 {
		t.Fatalf("want two TURN services, got %s", res)
	}
	res, err = c.IQ(ctx, stanza.NewIQ(stanza.NSClient, stanza.IQGet, srv.Domain, "", "").
		Append(xmlstream.NewElement(extdisco.NS, "credentials").Append(
			xmlstream.NewElement(extdisco.NS, "service").SetAttr("host", "127.0.0.1").SetAttr("type", "turn"))))
	if err != nil {
		t.Fatal(err)
	}
	creds := res.Child(extdisco.NS, "credentials").ChildrenNS(extdisco.NS)
	if len(creds) != 2 {
		t.Fatalf("want credentials for two services, got %s", res)
	}

	t.Run("accepted", func(t *testing.T) {
		for i, s := range append(list, creds[0]) {
			t.Run(strconv.Itoa(i)+"-"+s.Attribute("transport"), func(t *testing.T) {
				t.Parallel()
				user, pass := s.Attribute("username"), s.Attribute("password")
				if !strings.HasSuffix(user, ":"+juliet.Bare().String()) || pass == "" {
					t.Fatalf("credentials %q/%q in %s", user, pass, s)
				}
				if out, err := turn.allocate(t, s.Attribute("transport"), user, pass); err != nil {
					t.Fatalf("turnutils_uclient -u %s: %v\n%s", user, err, out)
				}
				if log := turn.log.String(); !strings.Contains(log, "user <"+user+">: incoming packet ALLOCATE processed, success") {
					t.Errorf("coturn logged no allocation for %s", user)
				}
			})
		}
	})

	good := list[0]
	user := good.Attribute("username")
	expired, expiredPass := extdisco.Credentials(secret, juliet.Bare().String(), time.Now().Add(-time.Minute))
	otherUser, otherPass := extdisco.Credentials("not the secret", juliet.Bare().String(), time.Now().Add(time.Hour))
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", user, good.Attribute("password") + "x"},
		{"another secret", otherUser, otherPass},
		{"expired", expired, expiredPass},
		{"another user", strings.Replace(user, "juliet", "romeo", 1), good.Attribute("password")},
	} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			out, err := turn.allocate(t, "udp", tc.user, tc.pass)
			if err == nil {
				t.Fatalf("turnutils_uclient -u %s -w %s succeeded:\n%s", tc.user, tc.pass, out)
			}
			if !strings.Contains(out, "Cannot complete Allocation") {
				t.Errorf("turnutils_uclient failed for another reason: %v\n%s", err, out)
			}
		})
	}
}

// coturn is a running turnserver.
type coturn struct {
	port int
	log  syncBuffer
}

// startCoturn runs Debian's turnserver on a free loopback port, UDP and
// TCP, without TLS, with TURN REST API authentication by secret, until the
// test ends. Its log goes into the test's output if the test fails or
// ODE_TEST_LOG is set.
func startCoturn(t *testing.T, secret string) *coturn {
	t.Helper()
	dir := t.TempDir()
	c := &coturn{port: freeUDPTCPPort(t)}
	cmd := exec.Command("turnserver", "-n", "--verbose", "--no-cli",
		"--use-auth-secret", "--static-auth-secret="+secret, "--realm=ode.test",
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--listening-port="+strconv.Itoa(c.port),
		"--no-tls", "--no-dtls", "--allow-loopback-peers",
		"--log-file=stdout", "--simple-log",
		"--pidfile="+filepath.Join(dir, "turnserver.pid"), "--userdb="+filepath.Join(dir, "turndb"))
	cmd.Stdout, cmd.Stderr = &c.log, &c.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start turnserver: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Errorf("turnserver did not stop within 5s of SIGTERM; killing it")
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() || os.Getenv("ODE_TEST_LOG") != "" {
			t.Logf("turnserver's log:\n%s", c.log.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return c
		}
		select {
		case <-exited:
			t.Fatalf("turnserver exited at start: %v\n%s", waitErr, c.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("turnserver does not listen on %s: %v\n%s", addr, err, c.log.String())
		}
		time.Sleep(50 * time.Millisecond) // polling a port with a deadline
	}
}

// allocate runs turnutils_uclient with the long-term credentials user and
// pass: two clients that each allocate a relay over transport ("udp" or
// "tcp") and send one message to each other through them (-y). It fails
// unless every allocation succeeded.
func (c *coturn) allocate(t *testing.T, transport, user, pass string) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	args := []string{"-p", strconv.Itoa(c.port), "-u", user, "-w", pass, "-y", "-n", "1", "-m", "1"}
	if transport == "tcp" {
		args = append(args, "-t")
	}
	out, err := exec.CommandContext(ctx, "turnutils_uclient", append(args, "127.0.0.1")...).CombinedOutput()
	return string(out), err
}

// freeUDPTCPPort returns a loopback port that was free a moment ago for
// both UDP and TCP (see xmpptest.FreeAddr).
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		addr := xmpptest.FreeAddr(t)
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		pc.Close()
		_, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		return n
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return 0
}
