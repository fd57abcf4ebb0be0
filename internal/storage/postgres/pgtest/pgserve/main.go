// Command pgserve runs a throwaway PostgreSQL server (pgtest) for a test
// run that spans packages: it prints the superuser's DSN on one line,
// then serves until its standard input closes or it gets SIGINT or
// SIGTERM, and removes the cluster. CI uses it for the integration tests
// on PostgreSQL (ODE_TEST_POSTGRES, see internal/xmpptest).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ode-xmpp/ode/internal/storage/postgres/pgtest"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := pgtest.Start(ctx, pgtest.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgserve:", err)
		os.Exit(1)
	}
	fmt.Println(c.DSN("postgres"))
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-done:
	case <-sig:
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgserve:", err)
		os.Exit(1)
	}
}
