//go:build !linux

package transport

import "net"

// sendQueueEmpty reports false: without SIOCOUTQ a write's blocking
// cannot be ruled out, so every write goes to the queue's writer.
func sendQueueEmpty(net.Conn) bool { return false }
