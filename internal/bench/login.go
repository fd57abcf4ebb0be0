package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/client"
)

// LoginOptions configures the login scenario.
type LoginOptions struct {
	// Logins is how many logins to make, cycling through the accounts.
	Logins int
	// Rate is the mean arrival rate of logins per second (Poisson); 0
	// logs in as fast as Concurrency allows.
	Rate float64
	// Concurrency bounds the logins in progress at once.
	Concurrency int
	// Presence sends initial presence and waits for it to come back
	// before a login counts as done.
	Presence bool
	// SASL1 logs in with RFC 6120 SASL, a stream restart and a bind IQ
	// even when the server offers XEP-0388 SASL2 and XEP-0386 Bind2
	// (which the client uses otherwise).
	SASL1 bool `json:",omitempty"`
	// FAST first gets a XEP-0484 token for each account with a password
	// login (not measured), then measures logins with the tokens (SASL2,
	// Bind2, an HT mechanism: no PBKDF2 on either side).
	FAST bool `json:",omitempty"`
	// TLSResume keeps a TLS session cache per account (client.Config.
	// TLSSessionCache), primed by one login per account that is not
	// measured (FAST's token login when FAST is set), so that the
	// measured logins resume TLS sessions: no certificate sent, signed
	// or verified, as a phone reconnecting does.
	TLSResume bool `json:",omitempty"`
}

// LoginResult is what the login scenario measured.
type LoginResult struct {
	Options LoginOptions `json:"options"`
	// OK and Failed count the logins; FirstError describes one failure.
	OK         int    `json:"ok"`
	Failed     int    `json:"failed"`
	FirstError string `json:"first_error,omitempty"`
	// Resumed counts the logins that resumed a TLS session.
	Resumed int `json:"tls_resumed"`
	// Elapsed is the wall time from the first login to the last close.
	Elapsed Duration `json:"elapsed_ms"`
	// PerSecond is OK / Elapsed.
	PerSecond float64 `json:"logins_per_s"`
	// Latency is from connecting to bound (and presence reflected).
	Latency Latency `json:"latency_ms"`
	// Usage is the CPU time of the server and of the generator.
	Usage Usage `json:"usage"`
	// ServerCPUPerLogin is the server's CPU time per successful login
	// (including the stream's close), when the server was measured.
	ServerCPUPerLogin Duration `json:"server_cpu_per_login_ms,omitempty"`
}

// Login runs the login scenario: logins with STARTTLS or direct TLS,
// SASL and resource binding, each stream closed once it is bound.
func Login(ctx context.Context, t Target, accounts []Account, o LoginOptions) (*LoginResult, error) {
	if len(accounts) == 0 || o.Logins < 1 {
		return nil, errors.New("bench: login: no accounts or no logins")
	}
	o.Concurrency = max(1, o.Concurrency)
	res := &LoginResult{Options: o}
	var lat recorder
	var ok, failed, resumed atomic.Int64
	var errOnce sync.Once
	fail := func(err error) {
		failed.Add(1)
		errOnce.Do(func() { res.FirstError = err.Error() })
	}
	var caches []tls.ClientSessionCache
	if o.TLSResume {
		caches = make([]tls.ClientSessionCache, len(accounts))
		for i := range caches {
			caches[i] = tls.NewLRUClientSessionCache(1)
		}
	}
	var tokens []*client.FASTToken
	if o.FAST {
		var err error
		if tokens, err = fastTokens(ctx, t, accounts, caches, o.Concurrency); err != nil {
			return nil, err
		}
	} else if o.TLSResume {
		if err := primeSessions(ctx, t, accounts, caches, o); err != nil {
			return nil, err
		}
	}
	one := func(i int, scheduled time.Time) {
		a := accounts[i%len(accounts)]
		cfg := t.config(a)
		cfg.NoSASL2 = o.SASL1
		if caches != nil {
			cfg.TLSSessionCache = caches[i%len(accounts)]
		}
		if o.FAST {
			cfg.UserAgentID, cfg.FASTToken, cfg.Password = benchAgent(i%len(accounts)), tokens[i%len(accounts)], ""
		}
		c, err := loginWith(ctx, cfg, o.Presence)
		if err != nil {
			fail(err)
			return
		}
		lat.add(time.Since(scheduled))
		ok.Add(1)
		if c.TLSState().DidResume {
			resumed.Add(1)
		}
		_ = c.Close()
	}
	meter := startUsage(t)
	start := time.Now()
	if o.Rate <= 0 {
		each(o.Logins, o.Concurrency, func(i int) { one(i, time.Now()) })
	} else {
		// Open loop: arrivals at their scheduled times, the latency
		// counted from then (a login waiting for a free slot is late).
		slots := make(chan struct{}, o.Concurrency)
		var wg sync.WaitGroup
		next := start
		for i := 0; i < o.Logins && ctx.Err() == nil; i++ {
			next = next.Add(time.Duration(rand.ExpFloat64() / o.Rate * float64(time.Second)))
			if d := time.Until(next); d > 0 {
				wait(ctx, d)
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func(i int, at time.Time) {
				defer wg.Done()
				defer func() { <-slots }()
				one(i, at)
			}(i, next)
		}
		wg.Wait()
	}
	res.Elapsed = Duration(time.Since(start))
	res.Usage = meter.stop()
	res.OK, res.Failed, res.Resumed = int(ok.Load()), int(failed.Load()), int(resumed.Load())
	res.Latency = lat.summary()
	res.PerSecond = float64(res.OK) / time.Duration(res.Elapsed).Seconds()
	if res.Usage.Server && res.OK > 0 {
		res.ServerCPUPerLogin = res.Usage.ServerCPU / Duration(res.OK)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench: login: %w", err)
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("bench: login: %d of %d failed, the first: %s", res.Failed, res.Failed+res.OK, res.FirstError)
	}
	return res, nil
}

// benchAgent is the SASL2 user-agent id of account i's client.
func benchAgent(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// fastTokens logs in once with the password as each account, asking for a
// FAST token, and returns the tokens. With caches (one per account), the
// logins leave their TLS session tickets there.
func fastTokens(ctx context.Context, t Target, accounts []Account, caches []tls.ClientSessionCache, concurrency int) ([]*client.FASTToken, error) {
	tokens := make([]*client.FASTToken, len(accounts))
	errs := make([]error, len(accounts))
	each(len(accounts), concurrency, func(i int) {
		cfg := t.config(accounts[i])
		cfg.UserAgentID, cfg.RequestFASTToken = benchAgent(i), true
		if caches != nil {
			cfg.TLSSessionCache = caches[i]
		}
		c, err := loginWith(ctx, cfg, false)
		if err != nil {
			errs[i] = err
			return
		}
		if tokens[i] = c.FASTToken(); tokens[i] == nil {
			errs[i] = fmt.Errorf("bench: %s: the server issued no FAST token", accounts[i].JID)
		}
		_ = c.Close()
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bench: FAST tokens: %w", err)
	}
	return tokens, nil
}

// primeSessions logs in once as each account, as o's logins do, to leave
// a TLS session ticket in each account's cache.
func primeSessions(ctx context.Context, t Target, accounts []Account, caches []tls.ClientSessionCache, o LoginOptions) error {
	errs := make([]error, len(accounts))
	each(len(accounts), o.Concurrency, func(i int) {
		cfg := t.config(accounts[i])
		cfg.NoSASL2, cfg.TLSSessionCache = o.SASL1, caches[i]
		c, err := loginWith(ctx, cfg, false)
		if err != nil {
			errs[i] = err
			return
		}
		_ = c.Close()
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: TLS sessions: %w", err)
	}
	return nil
}

// wait pauses for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Usage is the CPU time the server and the generator used during a
// measurement.
type Usage struct {
	// Wall is the measurement's wall time.
	Wall Duration `json:"wall_ms"`
	// Server says whether the server's process was measured.
	Server bool `json:"server_measured"`
	// ServerCPU is the server's user+system time (10 ms resolution).
	ServerCPU Duration `json:"server_cpu_ms"`
	// BenchCPU is the load generator's own user+system time.
	BenchCPU Duration `json:"bench_cpu_ms"`
}

// meter measures Usage from startUsage to stop.
type meter struct {
	t      Target
	start  time.Time
	server ProcSample
	has    bool
	self   time.Duration
}

func startUsage(t Target) *meter {
	m := &meter{t: t, start: time.Now(), self: SelfCPU()}
	m.server, m.has = t.sample()
	return m
}

func (m *meter) stop() Usage {
	u := Usage{Wall: Duration(time.Since(m.start)), BenchCPU: Duration(SelfCPU() - m.self)}
	if s, ok := m.t.sample(); ok && m.has {
		u.Server = true
		u.ServerCPU = Duration(s.CPU - m.server.CPU)
	}
	return u
}
