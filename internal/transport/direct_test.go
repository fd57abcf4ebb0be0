package transport_test

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/transport"
)

// TestTryWrite: TryWrite writes while the peer takes the bytes, declines
// what is too large, and declines without blocking once the peer stops
// reading and its window closes.
func TestTryWrite(t *testing.T) {
	tr, client := pair(t)
	ok, err := tr.TryWrite([]byte("<presence/>"))
	if !ok || err != nil {
		t.Fatalf("TryWrite on an idle connection: %v %v", ok, err)
	}
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(client, buf, len("<presence/>"))
	if err != nil || string(buf[:n]) != "<presence/>" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if ok, _ := tr.TryWrite(make([]byte, 64<<10)); ok {
		t.Error("TryWrite took 64 KiB")
	}
	// The client reads no more: the kernel buffers fill, the send queue
	// stays non-empty and TryWrite declines. Each true answer queued
	// 4000 bytes; loopback buffers hold a few MiB at most.
	chunk := []byte(strings.Repeat("x", 4000))
	for i := 0; ; i++ {
		if i == 100_000 {
			t.Fatal("TryWrite never declined")
		}
		ok, err := tr.TryWrite(chunk)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
	}
}

// TestWriteTimeout: a peer that does not read makes Write fail once the
// write timeout passes, however many writes went before.
func TestWriteTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	tr := transport.NewTCP(srv, transport.Options{WriteTimeout: 200 * time.Millisecond})
	defer tr.Kill()
	chunk := []byte(strings.Repeat("y", 64<<10))
	for i := 0; ; i++ {
		if i == 10_000 {
			t.Fatal("no write timed out")
		}
		if err := tr.Write(chunk); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write %d: %v", i, err)
			}
			return
		}
	}
}
