package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeNotifiesSystemd runs `ode serve` as systemd runs a Type=notify
// unit with WatchdogSec=: READY=1 once the listeners accept, WATCHDOG=1
// while it runs, STOPPING=1 after SIGTERM, all on a real unixgram socket.
func TestServeNotifiesSystemd(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	mgr, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	addr := freePort(t)
	cfg := filepath.Join(dir, "ode.toml")
	conf := fmt.Sprintf("[server]\ndata_dir = \"data\"\n[c2s]\nlisten = [%q]\ndirect_tls = []\n[s2s]\nenabled = false\n[http]\nlisten = []\n", addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := ode(t, dir, "serve", "-c", cfg)
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = mgr.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := mgr.Read(buf)
		if err != nil {
			t.Fatalf("no notification from ode serve: %v", err)
		}
		return string(buf[:n])
	}
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	// Ready means accepting.
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("READY=1 was sent, but c2s does not accept: %v", err)
	}
	c.Close()
	if got := next(); got != "WATCHDOG=1" {
		t.Fatalf("notification %q, want WATCHDOG=1 (WATCHDOG_USEC is set)", got)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		got := next()
		if got == "STOPPING=1" {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("notification %q after SIGTERM, want STOPPING=1", got)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs.String())
	}
	if strings.Contains(logs.String(), "systemd") {
		t.Errorf("the notifications logged a problem:\n%s", logs.String())
	}
}
