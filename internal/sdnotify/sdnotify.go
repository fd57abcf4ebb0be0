// Package sdnotify tells the service manager (systemd) how the server is
// doing, with the sd_notify protocol (sd_notify(3)): datagrams of
// newline-separated VARIABLE=value assignments sent to the Unix datagram
// socket named by $NOTIFY_SOCKET. It needs neither cgo nor libsystemd.
//
// A unit with Type=notify waits for [Ready] before it counts the service
// as started (and starts the units ordered after it); [Stopping] says
// that a shutdown began, [Reloading] and then [Ready] frame a
// configuration reload, and [Watchdog] feeds WatchdogSec= (see
// [KeepAlive]). Outside systemd, with NOTIFY_SOCKET unset, every call does
// nothing.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// The states of sd_notify(3) that the server sends.
const (
	// StateReady says that start-up (or a reload) is finished.
	StateReady = "READY=1"
	// StateStopping says that the service began to shut down.
	StateStopping = "STOPPING=1"
	// StateReloading says that the service began to reload its
	// configuration; Reloading adds the MONOTONIC_USEC systemd 253's
	// Type=notify-reload wants with it.
	StateReloading = "RELOADING=1"
	// StateWatchdog keeps the service manager's watchdog from firing.
	StateWatchdog = "WATCHDOG=1"
)

// SocketEnv names the environment variable that holds the service
// manager's socket: a path, or "@name" for an abstract socket.
const SocketEnv = "NOTIFY_SOCKET"

// maxDatagram bounds what one notification may carry; systemd reads
// datagrams of up to a page or so, and ode's are a few dozen bytes.
const maxDatagram = 4096

// Notify sends state, one or more VARIABLE=value lines, to the service
// manager. It reports false (and no error) when there is none to tell:
// NOTIFY_SOCKET is unset. An error means the socket is there but the
// notification could not be sent.
func Notify(state string) (bool, error) {
	name := os.Getenv(SocketEnv)
	if name == "" {
		return false, nil
	}
	if len(state) > maxDatagram {
		return false, fmt.Errorf("sdnotify: notification of %d bytes is too long", len(state))
	}
	if name[0] != '/' && name[0] != '@' {
		// systemd 254 may also pass vsock: addresses (for virtual
		// machines); ode runs on the host, beside its manager.
		return false, fmt.Errorf("sdnotify: %s=%q: only Unix socket paths and abstract sockets (@name) are supported", SocketEnv, name)
	}
	// Go turns a leading '@' into Linux's abstract namespace.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: send %q: %w", firstLine(state), err)
	}
	return true, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Ready tells the service manager that the server is up: its listeners
// accept connections (or that a reload is finished).
func Ready() (bool, error) { return Notify(StateReady) }

// Stopping tells the service manager that the server is shutting down.
func Stopping() (bool, error) { return Notify(StateStopping) }

// Reloading tells the service manager that the server is reloading its
// configuration; call Ready when it is done, successfully or not. The
// notification carries the time on CLOCK_MONOTONIC as systemd.service(5)
// asks for with Type=notify-reload.
func Reloading() (bool, error) {
	state := StateReloading
	if usec, ok := monotonicUsec(); ok {
		state += "\nMONOTONIC_USEC=" + strconv.FormatUint(usec, 10)
	}
	return Notify(state)
}

// Status sends a one-line description of the server's state, which
// `systemctl status` shows.
func Status(text string) (bool, error) {
	return Notify("STATUS=" + strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, text))
}

// Watchdog tells the service manager that the server is alive.
func Watchdog() (bool, error) { return Notify(StateWatchdog) }

// WatchdogInterval returns the service manager's watchdog timeout
// (WatchdogSec=, passed as WATCHDOG_USEC), or 0 when there is none or it
// is meant for another process (WATCHDOG_PID).
func WatchdogInterval() (time.Duration, error) {
	v := os.Getenv("WATCHDOG_USEC")
	if v == "" {
		return 0, nil
	}
	usec, err := strconv.ParseUint(v, 10, 63)
	if err != nil || usec == 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q is not a positive number of microseconds", v)
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID=%q is not a process id", p)
		}
		if pid != os.Getpid() {
			return 0, nil
		}
	}
	if usec > uint64(maxWatchdog/time.Microsecond) {
		usec = uint64(maxWatchdog / time.Microsecond)
	}
	return time.Duration(usec) * time.Microsecond, nil
}

// maxWatchdog caps the interval (systemd allows hours; a ping every few
// hours is as good as none).
const maxWatchdog = 24 * time.Hour

// KeepAlive sends WATCHDOG=1 at half the watchdog interval, as
// sd_watchdog_enabled(3) advises, until ctx ends; alive, if not nil, is
// asked first each time, and a false answer skips that ping (so that the
// service manager restarts a server that stopped working). Without a
// watchdog it returns at once, nil.
func KeepAlive(ctx context.Context, alive func() bool) error {
	interval, err := WatchdogInterval()
	if err != nil || interval == 0 {
		return err
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		if alive == nil || alive() {
			if _, err := Watchdog(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
