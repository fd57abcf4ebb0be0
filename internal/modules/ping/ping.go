// Package ping implements XEP-0199 XMPP Ping: the server answers pings
// addressed to it (§4.2 client-to-server pings, answered with an empty
// result), and pings clients that have been quiet for a while to find dead
// connections (§4.1 server-to-client pings, used as a liveness check).
//
// With ping.interval > 0, a session that sent nothing for that long gets an
// IQ get <ping/> from its domain. Any answer, a result or an error, shows
// the connection is alive; no answer within ping.timeout closes the stream
// with connection-timeout (RFC 6120 §4.9.3.4). A session is not pinged
// again while a ping to it is outstanding.
package ping

import (
	"context"
	"errors"
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

// New returns the ping module.
func New(deps module.Deps, cfg config.Config) (*Module, error) {
	return &Module{
		deps:     deps,
		interval: time.Duration(cfg.Ping.Interval),
		timeout:  time.Duration(cfg.Ping.Timeout),
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
