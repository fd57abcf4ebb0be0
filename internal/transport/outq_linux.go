package transport

import (
	"net"
	"syscall"
	"unsafe"
)

// sendQueueEmpty reports whether nothing written to c is still in its
// send queue, unsent or unacknowledged (ioctl SIOCOUTQ, tcp(7)). It
// reports false when it cannot tell.
func sendQueueEmpty(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	queued := -1
	if err := rc.Control(func(fd uintptr) {
		var n int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n))); errno == 0 {
			queued = int(n)
		}
	}); err != nil {
		return false
	}
	return queued == 0
}
