// Package listen holds the accept loop shared by the server's listeners
// (c2s and s2s), modelled on net/http.Server.Serve: a failed Accept that
// is not the listener closing — EMFILE, ENFILE, ECONNABORTED, ENOBUFS —
// is retried after a pause instead of ending the listener.
package listen

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// Backoff bounds: the first retry waits MinDelay, each consecutive failure
// doubles the wait up to MaxDelay, and an accepted connection resets it.
const (
	MinDelay = 5 * time.Millisecond
	MaxDelay = time.Second
)

// Accept calls handle with every connection ln accepts until ln is closed,
// then returns nil. closing (may be nil) reports that the owner is shutting
// down: an Accept error while it is true also ends the loop with nil. Any
// other Accept error is logged at Warn on log (which should carry the
// component) with the pause before the next attempt, "retry_in", and
// retried; Accept never returns a non-nil error.
//
// handle runs on the accepting goroutine: it must not block, and starts
// the connection's own goroutine. Shutting down during a pause is noticed
// when the pause ends, at most MaxDelay later.
func Accept(ln net.Listener, log *slog.Logger, closing func() bool, handle func(net.Conn)) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || (closing != nil && closing()) {
				return nil
			}
			delay = next(delay)
			log.Warn("accept failed", "addr", ln.Addr().String(), "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		handle(nc)
	}
}

// next returns the pause after one more consecutive failure.
func next(delay time.Duration) time.Duration {
	return min(max(2*delay, MinDelay), MaxDelay)
}
