package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Listen opens the control socket at path: a Unix socket of mode 0600 in
// a directory that must exist, whose connections are accepted only from
// processes of the same user as the server or root (checked by peer
// credentials, SO_PEERCRED, where the system has them). A stale socket
// left by a server that died is replaced; one that a running server
// answers on is an error.
func Listen(path string, log *slog.Logger) (net.Listener, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Lstat(path); err == nil {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("admin: control socket %s: %w", path, ErrSocketInUse)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin: remove the stale control socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin: control socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin: control socket: %w", err)
	}
	return &peerListener{UnixListener: ln.(*net.UnixListener), uid: os.Geteuid(), root: true, log: log}, nil
}

// peerListener accepts only connections whose peer is the server's user
// or root.
type peerListener struct {
	*net.UnixListener
	uid  int
	root bool // root is accepted too
	log  *slog.Logger
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		switch {
		case errors.Is(err, errNoPeerCred):
			return c, nil // the socket's mode is the check
		case err != nil:
			l.log.Warn("control socket: peer credentials", "err", err)
		case uid == 0 && l.root || uid == l.uid:
			return c, nil
		default:
			l.log.Warn("control socket: connection refused", "uid", uid)
		}
		c.Close()
	}
}

var errNoPeerCred = errors.New("admin: no peer credentials on this system")

// rawConn is what peerUID reads the credentials through.
type rawConn interface {
	SyscallConn() (syscall.RawConn, error)
}

var _ rawConn = (*net.UnixConn)(nil)

// Dial connects to the control socket at path. It reports ErrNotRunning
// when no server listens there.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w (no control socket at %s)", ErrNotRunning, path)
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("control socket %s: permission denied: run the command as the server's user or root", path)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return c, nil
}

// ErrSocketInUse is returned by Listen when another server answers on
// the control socket's path (two servers on one data directory).
var ErrSocketInUse = errors.New("another ode server answers on it (same data directory? set [admin] socket)")

// ErrNotRunning is returned by Dial when the server does not run.
var ErrNotRunning = errors.New("the server is not running")

// SocketDir makes sure path's directory exists (mode 0750 when created).
func SocketDir(path string) error {
	return os.MkdirAll(filepath.Dir(path), 0o750)
}
