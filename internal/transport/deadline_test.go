package transport_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/transport"
)

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
