package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/bench"
	"github.com/ode-xmpp/ode/jid"
)

// TestRelay runs ode bench chat against the relay on loopback, writing
// from the reader and from a writer per burst: every message sent is
// delivered to the user it was sent to.
func TestRelay(t *testing.T) {
	cert, err := selfSigned("relay.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, writers := range []bool{false, true} {
		t.Run(fmt.Sprintf("writers=%v", writers), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			r := &Relay{Domain: "relay.test", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, Writers: writers}
			done := make(chan error, 1)
			go func() { done <- r.Serve(ln) }()
			defer func() {
				ln.Close()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			var accounts []bench.Account
			for i := range 8 {
				accounts = append(accounts, bench.Account{JID: jid.MustParse(fmt.Sprintf("u%d@relay.test", i)), Password: "pw"})
			}
			res, err := bench.Chat(t.Context(), bench.Target{Addr: ln.Addr().String(), TLS: &tls.Config{InsecureSkipVerify: true}, PID: -1},
				accounts, bench.ChatOptions{Users: 8, Rates: []float64{200}, Duration: time.Second, Drain: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			st := res.Steps[0]
			if st.Sent < 50 || st.Delivered != st.Sent || st.Lost != 0 {
				t.Fatalf("sent %d, delivered %d, lost %d", st.Sent, st.Delivered, st.Lost)
			}
		})
	}
}
