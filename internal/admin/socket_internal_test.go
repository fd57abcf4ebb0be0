package admin

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPeerCredentials: the control socket is 0600, answers its owner, and
// closes connections from another user at once (the listener here
// pretends the server runs as another user, since the test cannot).
func TestPeerCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ode.sock")
	ln, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi, err)
	}
	if _, err := Listen(path, nil); !errors.Is(err, ErrSocketInUse) {
		t.Fatalf("second Listen on a socket in use: %v", err)
	}
	accept := func(l net.Listener) <-chan net.Conn {
		ch := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err == nil {
				ch <- c
			}
			close(ch)
		}()
		return ch
	}
	// The owner is accepted.
	got := accept(ln)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if sc := <-got; sc == nil {
		t.Fatal("the owner's connection was not accepted")
	} else {
		sc.Close()
	}
	c.Close()

	// Another user is refused: its connection is closed unread.
	pl := ln.(*peerListener)
	pl.uid, pl.root = os.Geteuid()+1, false
	got = accept(ln)
	c, err = net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("another user's connection: read %v, want EOF", err)
	}
	c.Close()
	ln.Close()
	if sc := <-got; sc != nil {
		t.Fatal("another user's connection was accepted")
	}
	// Closing removes the socket; a stale file is replaced.
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln2, err := Listen(path, nil)
	if err != nil {
		t.Fatalf("Listen over a stale file: %v", err)
	}
	ln2.Close()
}

// TestBackupPath keeps HTTPS backups inside the backup directory.
func TestBackupPath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remote bool
		want   string // "" for an error
	}{
		{"x.db", false, "/data/backups/x.db"},
		{"/etc/passwd", false, ""},
		{"../x.db", false, ""},
		{"..", false, ""},
		{"", false, ""},
		{"/srv/b.db", true, "/srv/b.db"},
		{"x.db", true, "/data/backups/x.db"},
	} {
		got, err := backupPath(tc.name, Options{RemotePaths: tc.remote, BackupDir: "/data/backups"})
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("backupPath(%q, remote %v) = %q, %v; want %q", tc.name, tc.remote, got, err, tc.want)
		}
	}
}
