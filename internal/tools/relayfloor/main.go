package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/ode-xmpp/ode/internal/certs"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5399", "client listener")
	domain := flag.String("domain", "relay.test", "the domain served")
	writers := flag.Bool("writers", false, "write from a goroutine started per burst, as ode does, not from the reader")
	flag.Parse()
	cert, err := selfSigned(*domain)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relayfloor:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relayfloor:", err)
		os.Exit(1)
	}
	fmt.Printf("relayfloor: %s on %s (pid %d)\n", *domain, ln.Addr(), os.Getpid())
	r := &Relay{Domain: *domain, TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Writers: *writers, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := r.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// selfSigned makes a certificate for domain as ode's generated default
// (ECDSA P-256).
func selfSigned(domain string) (tls.Certificate, error) {
	certPEM, keyPEM, err := certs.SelfSigned([]string{domain}, 24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
