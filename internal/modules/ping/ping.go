// Package ping implements XEP-0199 XMPP Ping: the server answers pings
// addressed to it (§4.2 client-to-server pings, answered with an empty
// result), and pings clients that have been quiet for a while to find dead
// connections (§4.1 server-to-client pings, used as a liveness check).
//
// With an interval (Config) above 0, a session that sent nothing for that
// long gets an IQ get <ping/> from its domain. Any answer, a result or an
// error, shows the connection is alive; no answer within the timeout closes
// the stream with connection-timeout (RFC 6120 §4.9.3.4). A session is not
// pinged again while a ping to it is outstanding.
package ping

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Module is the ping module.
type Module struct {
	deps     module.Deps
	interval time.Duration
	timeout  time.Duration

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// outstanding marks a session with a ping in flight.
var outstanding = session.NewKey[*atomic.Bool]()

var (
	_ module.Module  = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)

// Config is the [modules.ping] table.
type Config struct {
	// Interval is how long a client may be quiet before it is pinged; 0
	// turns server pings off.
	Interval config.Duration `toml:"interval"`
	// Timeout is how long the server waits for the answer before it
	// closes the stream with connection-timeout.
	Timeout config.Duration `toml:"timeout"`
}

// Validate implements config.Validator.
func (c *Config) Validate() []config.Problem {
	var ps []config.Problem
	if c.Interval < 0 {
		ps = append(ps, config.Problem{Key: "interval", Msg: fmt.Sprintf("must not be negative, got %s", c.Interval)})
	}
	if c.Timeout <= 0 {
		ps = append(ps, config.Problem{Key: "timeout", Msg: fmt.Sprintf("must be positive, got %s", c.Timeout)})
	}
	return ps
}

// Info describes the module to the server.
var Info = module.Info{
	Name: "ping",
	XEPs: []string{"XEP-0199"},
	Config: &Config{
		Interval: config.Duration(5 * time.Minute),
		Timeout:  config.Duration(60 * time.Second),
	},
	New: module.Configured(New),
}

// New returns the ping module.
func New(deps module.Deps, cfg Config) (*Module, error) {
	return &Module{
		deps:     deps,
		interval: time.Duration(cfg.Interval),
		timeout:  time.Duration(cfg.Timeout),
	}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "ping" }

// Register implements module.Module. With a positive interval it starts
// the goroutine that pings quiet sessions; Stop ends it.
func (m *Module) Register(r *router.Router) {
	r.AddFeature(stanza.NSPing)
	r.HandleIQ(stanza.IQGet, router.ClassLocal, stanza.NSPing, "ping", func(context.Context, *router.Event) (*xmlstream.Element, error) {
		return nil, nil
	})
	if m.interval <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(1)
	go m.loop(ctx, r)
}

// Stop implements module.Stopper: it ends the pinging goroutine and waits
// for the pings in flight to be abandoned (without closing their sessions).
func (m *Module) Stop() {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
}

// loop looks for quiet sessions twice per interval, so that a session is
// pinged between one and one and a half intervals after it went quiet.
func (m *Module) loop(ctx context.Context, r *router.Router) {
	defer m.wg.Done()
	tick := time.NewTicker(m.interval / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			now := m.deps.Now()
			r.Each(func(s router.Session) {
				if now.Sub(s.LastActive()) >= m.interval {
					m.start(ctx, r, s)
				}
			})
		}
	}
}

// start pings s in its own goroutine unless a ping to it is outstanding.
func (m *Module) start(ctx context.Context, r *router.Router, s router.Session) {
	busy := outstanding.GetOrInit(s.Values(), func() *atomic.Bool { return new(atomic.Bool) })
	if !busy.CompareAndSwap(false, true) {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer busy.Store(false)
		m.ping(ctx, r, s)
	}()
}

// ping sends one ping to s and closes its stream if no answer comes in
// time. ctx is the module's lifetime: when it ends, the ping is abandoned.
func (m *Module) ping(ctx context.Context, r *router.Router, s router.Session) {
	full := s.JID()
	iq := stanza.NewIQ(stanza.NSClient, stanza.IQGet, full.String(), full.DomainString(), "").
		Append(xmlstream.NewElement(stanza.NSPing, "ping"))
	pctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	_, err := r.IQ(pctx, iq)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		// An answer, even an error, means the stream is alive.
		return
	}
	m.deps.Log.Info("no answer to ping, closing", "jid", full.String(), "timeout", m.timeout)
	s.Close(&stream.Error{Condition: stream.ConnectionTimeout, Text: "no answer to ping"})
}
