package sdnotify_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ode-xmpp/ode/internal/sdnotify"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// manager is the service manager's end: a real unixgram socket whose name
// is in NOTIFY_SOCKET for the test.
type manager struct {
	t    *testing.T
	conn *net.UnixConn
}

func listen(t *testing.T, name string) *manager {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %q: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv(sdnotify.SocketEnv, name)
	return &manager{t: t, conn: c}
}

// next returns the next datagram.
func (m *manager) next() string {
	m.t.Helper()
	buf := make([]byte, 8192)
	_ = m.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := m.conn.Read(buf)
	if err != nil {
		m.t.Fatalf("read notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyStates(t *testing.T) {
	m := listen(t, filepath.Join(t.TempDir(), "notify"))
	for _, tt := range []struct {
		name string
		send func() (bool, error)
		want string
	}{
		{"ready", sdnotify.Ready, "READY=1"},
		{"stopping", sdnotify.Stopping, "STOPPING=1"},
		{"watchdog", sdnotify.Watchdog, "WATCHDOG=1"},
		{"status", func() (bool, error) { return sdnotify.Status("3 sessions\nand more") }, "STATUS=3 sessions and more"},
		{"raw", func() (bool, error) { return sdnotify.Notify("READY=1\nSTATUS=up") }, "READY=1\nSTATUS=up"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sent, err := tt.send()
			if !sent || err != nil {
				t.Fatalf("= %v, %v; want true, nil", sent, err)
			}
			if got := m.next(); got != tt.want {
				t.Errorf("manager received %q, want %q", got, tt.want)
			}
		})
	}
}

// TestReloading checks RELOADING=1 with MONOTONIC_USEC (systemd.service(5),
// Type=notify-reload): a positive count of microseconds on CLOCK_MONOTONIC,
// which is never ahead of the time since boot in /proc/uptime
// (CLOCK_BOOTTIME, which also counts suspended time).
func TestReloading(t *testing.T) {
	m := listen(t, filepath.Join(t.TempDir(), "notify"))
	if sent, err := sdnotify.Reloading(); !sent || err != nil {
		t.Fatalf("Reloading() = %v, %v", sent, err)
	}
	got := m.next()
	lines := strings.Split(got, "\n")
	if lines[0] != "RELOADING=1" {
		t.Fatalf("first line %q, want RELOADING=1 (all: %q)", lines[0], got)
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("notification %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	usec, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec == 0 {
		t.Fatalf("MONOTONIC_USEC in %q is not a positive number", got)
	}
	// CLOCK_MONOTONIC counts from boot, without the time suspended:
	// at most /proc/uptime (CLOCK_BOOTTIME).
	if data, err := os.ReadFile("/proc/uptime"); err == nil {
		var up float64
		if _, err := fmt.Sscanf(string(data), "%f", &up); err == nil && float64(usec)/1e6 > up+1 {
			t.Errorf("MONOTONIC_USEC %d is after the uptime %.2f s: not CLOCK_MONOTONIC", usec, up)
		}
	}
}

func TestAbstractSocket(t *testing.T) {
	m := listen(t, fmt.Sprintf("@ode-sdnotify-test-%d", os.Getpid()))
	if sent, err := sdnotify.Ready(); !sent || err != nil {
		t.Fatalf("Ready() = %v, %v", sent, err)
	}
	if got := m.next(); got != "READY=1" {
		t.Errorf("manager received %q", got)
	}
}

func TestNoManager(t *testing.T) {
	t.Setenv(sdnotify.SocketEnv, "")
	if sent, err := sdnotify.Ready(); sent || err != nil {
		t.Errorf("Ready() without NOTIFY_SOCKET = %v, %v; want false, nil", sent, err)
	}
}

func TestNotifyErrors(t *testing.T) {
	for _, tt := range []struct {
		name, socket, want string
	}{
		{"gone", filepath.Join(t.TempDir(), "absent"), "no such file"},
		{"vsock", "vsock:2:1234", "only Unix socket paths"},
		{"relative", "notify", "only Unix socket paths"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(sdnotify.SocketEnv, tt.socket)
			sent, err := sdnotify.Ready()
			if sent || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Ready() = %v, %v; want an error containing %q", sent, err, tt.want)
			}
		})
	}
	t.Run("too long", func(t *testing.T) {
		listen(t, filepath.Join(t.TempDir(), "notify"))
		if sent, err := sdnotify.Notify("STATUS=" + strings.Repeat("x", 5000)); sent || err == nil {
			t.Errorf("Notify(5000 bytes) = %v, %v; want an error", sent, err)
		}
	})
}

func TestWatchdogInterval(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	for _, tt := range []struct {
		name, usec, pid string
		want            time.Duration
		wantErr         bool
	}{
		{name: "none"},
		{name: "ours", usec: "30000000", pid: pid, want: 30 * time.Second},
		{name: "no pid", usec: "500000", want: 500 * time.Millisecond},
		{name: "another process", usec: "30000000", pid: "1"},
		{name: "capped", usec: "999999999999999", want: 24 * time.Hour},
		{name: "zero", usec: "0", wantErr: true},
		{name: "garbage", usec: "30s", wantErr: true},
		{name: "bad pid", usec: "1000", pid: "x", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			got, err := sdnotify.WatchdogInterval()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("WatchdogInterval() = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestKeepAlive(t *testing.T) {
	m := listen(t, filepath.Join(t.TempDir(), "notify"))
	t.Setenv("WATCHDOG_USEC", "20000") // a ping every 10 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithCancel(t.Context())
	healthy := make(chan bool, 1)
	healthy <- true
	done := make(chan error, 1)
	go func() {
		done <- sdnotify.KeepAlive(ctx, func() bool {
			select {
			case h := <-healthy:
				return h
			default:
				return true
			}
		})
	}()
	for range 3 {
		if got := m.next(); got != "WATCHDOG=1" {
			t.Errorf("manager received %q, want WATCHDOG=1", got)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("KeepAlive = %v after the context ended", err)
	}
}

func TestKeepAliveSkipsWhenUnhealthy(t *testing.T) {
	m := listen(t, filepath.Join(t.TempDir(), "notify"))
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", "")
	ctx, cancel := context.WithCancel(t.Context())
	asked := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() {
		done <- sdnotify.KeepAlive(ctx, func() bool {
			asked <- struct{}{}
			return false
		})
	}()
	for range 3 {
		<-asked
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("KeepAlive = %v", err)
	}
	_ = m.conn.SetReadDeadline(time.Now())
	if n, err := m.conn.Read(make([]byte, 64)); err == nil {
		t.Errorf("an unhealthy server sent a watchdog ping (%d bytes)", n)
	}
}

func TestKeepAliveWithoutWatchdog(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	if err := sdnotify.KeepAlive(t.Context(), nil); err != nil {
		t.Errorf("KeepAlive without a watchdog = %v", err)
	}
}
