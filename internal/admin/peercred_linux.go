package admin

import (
	"fmt"
	"syscall"
)

// peerUID returns the user id of the process at the other end of a Unix
// socket (SO_PEERCRED, Linux).
func peerUID(c rawConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("admin: peer credentials: %w", err)
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("admin: peer credentials: %w", err)
	}
	if cerr != nil {
		return 0, fmt.Errorf("admin: peer credentials: %w", cerr)
	}
	return int(cred.Uid), nil
}
