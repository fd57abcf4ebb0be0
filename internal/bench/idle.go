package bench

import (
	"context"
	"fmt"
	"time"
)

// IdleOptions configures the idle scenario.
type IdleOptions struct {
	// Sessions is how many sessions are held, one per account.
	Sessions int
	// Hold is how long they stay idle before the server is measured.
	Hold time.Duration
	// Presence sends initial presence from each session.
	Presence bool
	// Concurrency bounds the logins in progress at once.
	Concurrency int
}

// IdleResult is what the idle scenario measured.
type IdleResult struct {
	Options IdleOptions `json:"options"`
	// LoginElapsed is how long the sessions took to come online.
	LoginElapsed Duration `json:"login_elapsed_ms"`
	// Server says whether the server's memory was measured; RSSBefore is
	// its resident set before the first login, RSSAfter after Hold.
	Server    bool  `json:"server_measured"`
	RSSBefore int64 `json:"rss_before_bytes,omitempty"`
	RSSAfter  int64 `json:"rss_after_bytes,omitempty"`
	// KiBPerSession is (RSSAfter-RSSBefore)/Sessions in KiB.
	KiBPerSession float64 `json:"kib_per_session,omitempty"`
	// Usage is the CPU time from the first login to the measurement.
	Usage Usage `json:"usage"`
}

// Idle runs the idle scenario: Sessions accounts log in, stay idle for
// Hold, and the server's resident memory is compared with before.
func Idle(ctx context.Context, t Target, accounts []Account, o IdleOptions) (*IdleResult, error) {
	if o.Sessions < 1 || o.Sessions > len(accounts) {
		return nil, fmt.Errorf("bench: idle: %d sessions for %d accounts", o.Sessions, len(accounts))
	}
	o.Concurrency = max(1, o.Concurrency)
	res := &IdleResult{Options: o}
	before, measured := t.sample()
	meter := startUsage(t)
	start := time.Now()
	cs, err := online(ctx, t, accounts[:o.Sessions], o.Concurrency, o.Presence)
	if err != nil {
		return nil, fmt.Errorf("bench: idle: %w", err)
	}
	defer closeAll(cs)
	res.LoginElapsed = Duration(time.Since(start))
	wait(ctx, o.Hold)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bench: idle: %w", err)
	}
	for _, c := range cs {
		if c.Err() != nil {
			return nil, fmt.Errorf("bench: idle: %w: %v", errClosed, c.Err())
		}
	}
	res.Usage = meter.stop()
	if after, ok := t.sample(); ok && measured {
		res.Server = true
		res.RSSBefore, res.RSSAfter = before.RSS, after.RSS
		res.KiBPerSession = float64(after.RSS-before.RSS) / 1024 / float64(o.Sessions)
	}
	return res, nil
}
