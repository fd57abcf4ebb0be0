package xmpptest

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FreeAddr returns a loopback address whose port was free a moment ago, for
// a server that must be told another's address before that one starts (two
// federating servers, or a peer such as Prosody that cannot report the port
// it got). The port is picked below the kernel's ephemeral range, so that
// the outgoing connections and ":0" listeners of tests running meanwhile
// cannot take it before the server binds it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	low := ephemeralLow()
	const first = 10000
	for range 100 {
		port := first + rand.IntN(low-first)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	t.Fatalf("xmpptest: no free loopback port between %d and %d", first, low)
	return ""
}

// ephemeralLow returns the lowest port the kernel picks for ":0" and for
// outgoing connections (32768 when it cannot tell).
func ephemeralLow() int {
	const def = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return def
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return def
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 20000 {
		return def
	}
	return n
}
