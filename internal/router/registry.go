package router

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// registry is what modules declared and the hosted domains: everything
// routing looks up besides the session table. A registry is built (by
// New, or on a handle from Stage) and then only read, so routing reads it
// without a lock; a reload replaces it as a whole (Commit).
type registry struct {
	domains  map[string]bool
	first    string
	iqs      map[iqKey]IQHandler
	hooks    hooks
	services map[string]Service
	regErr   error // the first registration error

	// active counts the routing calls using this registry (enter, exit),
	// so that Commit can wait until the replaced one is no longer used.
	active atomic.Int64
}

func newRegistry(domains []string) *registry {
	g := &registry{domains: make(map[string]bool), iqs: make(map[iqKey]IQHandler)}
	for _, d := range domains {
		g.domains[d] = true
	}
	if len(domains) > 0 {
		g.first = domains[0]
	}
	return g
}

// fail records the first registration error.
func (g *registry) fail(err error) {
	if g.regErr == nil {
		g.regErr = err
	}
}

// exit ends a use of g begun by Router.enter.
func (g *registry) exit() { g.active.Add(-1) }

// enter returns the live registry, counted as used until exit: a registry
// that Commit replaced is never entered afterwards.
func (r *Router) enter() *registry {
	for {
		g := r.live.Load()
		g.active.Add(1)
		if r.live.Load() == g {
			return g
		}
		g.active.Add(-1) // replaced meanwhile: use the new one
	}
}

// reg returns the registry that registrations on r write and read: the
// staged one of a handle from Stage until it is committed, else the live
// one.
func (r *Router) reg() *registry {
	if g := r.staged.Load(); g != nil {
		return g
	}
	return r.live.Load()
}

// readBack is reg for the read-backs of declarations (features,
// identities), which a module that hashes them depends on.
func (r *Router) readBack() *registry {
	if r.rec != nil {
		r.rec.readFeatures = true
	}
	return r.reg()
}

// declare applies a registration to r's registry, and records it while
// Record runs.
func (r *Router) declare(op func(g *registry)) {
	op(r.reg())
	if r.rec != nil {
		r.rec.ops = append(r.rec.ops, op)
	}
}

// recording is what Record collects.
type recording struct {
	ops                       []func(*registry)
	readDomains, readFeatures bool
}

// Registrations are what one module declared on a router (see Record), so
// that a reload that keeps the module declares the same again (Replay)
// without calling the module's Register.
type Registrations struct {
	ops []func(*registry)
	// ReadDomains is set when the module asked for the hosted domains
	// while it registered (it declared something per domain): a change
	// of the domains needs the module built again.
	ReadDomains bool
	// ReadFeatures is set when the module read what others declared
	// (features, identities) while it registered: any change of the
	// other modules needs it built again.
	ReadFeatures bool
}

// Record calls register(r) and returns what it declared on r. Record is
// not safe for concurrent use with other registrations on r.
func (r *Router) Record(register func(*Router)) Registrations {
	rec := &recording{}
	r.rec = rec
	defer func() { r.rec = nil }()
	register(r)
	return Registrations{ops: rec.ops, ReadDomains: rec.readDomains, ReadFeatures: rec.readFeatures}
}

// Replay declares regs on r again, as recorded.
func (r *Router) Replay(regs Registrations) {
	for _, op := range regs.ops {
		r.declare(op)
	}
}

// Stage returns a handle of r with a new, empty registry for the hosted
// domains, for a reload: registrations on the handle build the new
// registry (and read it back) while r goes on routing with the live one,
// until Commit publishes it. The handle shares r's session table and
// routes like r; modules may keep it.
func (r *Router) Stage(domains []string) *Router {
	h := &Router{core: r.core}
	h.staged.Store(newRegistry(domains))
	return h
}

// Commit makes the registry built on staged (a handle from r.Stage) the
// live one, unless a registration on it failed (the live one stays). It
// then waits, within ctx, until no routing call uses the replaced
// registry any more, so that the modules it alone referenced can be
// stopped. Sessions and stanzas in flight are not disturbed.
func (r *Router) Commit(ctx context.Context, staged *Router) error {
	g := staged.staged.Load()
	switch {
	case staged.core != r.core || g == nil:
		return errors.New("router: commit of a handle that is not staged on this router")
	case g.regErr != nil:
		return g.regErr
	}
	old := r.live.Swap(g)
	staged.staged.Store(nil)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for old.active.Load() != 0 {
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("router: committed, but calls still use the previous registry: %w", ctx.Err())
		}
	}
	return nil
}
