package modules

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
)

// Set is the modules a server runs, each with the settings it was built
// with and what it declared on the router and the HTTP listener, so that
// a reload (Reload) keeps the modules whose settings did not change and
// builds the others again.
type Set struct {
	entries []entry
	http    module.HTTP // where the modules' handlers are
}

type entry struct {
	info     module.Info
	settings any // what New got
	m        module.Module
	regs     router.Registrations
	handlers []handler // on the HTTP listener
	uses     []string  // the modules it asked for (Deps.Module) when built
}

type handler struct {
	pattern string
	h       http.Handler
}

// StartSet is Start, returning the Set.
func StartSet(deps module.Deps, cfg config.Config) (*Set, error) {
	s := &Set{http: deps.HTTP}
	for _, info := range All {
		if slices.Contains(cfg.Modules.Disabled, info.Name) {
			continue
		}
		e, err := start(deps, deps.Router, info, cfg.Modules.Settings, s)
		if err == nil {
			err = deps.Router.Err()
		}
		if e.m != nil {
			s.entries = append(s.entries, e)
		}
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("modules: %s: %w", info.Name, err)
		}
	}
	return s, nil
}

// start builds one module and records its registration on r.
// Deps.Module finds the modules built before it in next.
func start(deps module.Deps, r *router.Router, info module.Info, settings map[string]any, next *Set) (entry, error) {
	e := entry{info: info, settings: settingsOf(info, settings)}
	deps.Module = func(name string) module.Module {
		e.uses = append(e.uses, name)
		for _, x := range next.entries {
			if x.info.Name == name {
				return x.m
			}
		}
		return nil
	}
	rec := &httpRecorder{}
	if deps.HTTP != nil {
		rec.HTTP = deps.HTTP
		deps.HTTP = rec
	}
	deps.Router = r
	m, err := build(deps, info, settings)
	if err != nil {
		return e, err
	}
	e.m = m
	e.regs = r.Record(m.Register)
	e.handlers = rec.handlers
	return e, nil
}

// settingsOf returns the settings build gives the module.
func settingsOf(info module.Info, settings map[string]any) any {
	if s, ok := settings[info.Name]; ok {
		return s
	}
	return info.Config
}

// httpRecorder notes the patterns a module handles.
type httpRecorder struct {
	module.HTTP
	handlers []handler
}

func (h *httpRecorder) Handle(pattern string, hd http.Handler) {
	h.handlers = append(h.handlers, handler{pattern, hd})
	h.HTTP.Handle(pattern, hd)
}

// Modules returns the running modules in registration order.
func (s *Set) Modules() []module.Module {
	out := make([]module.Module, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.m
	}
	return out
}

// Stop stops the modules that run goroutines, in reverse order.
func (s *Set) Stop() { Stop(s.Modules()) }

// Change says what a reload did with each module, by name.
type Change struct {
	// Kept run on with the same settings; Rebuilt were built again (new
	// settings, new domains, or they hash what the others declare);
	// Added were turned on and Removed turned off.
	Kept, Rebuilt, Added, Removed []string
}

// Reload builds the modules of cfg on staged (a handle from
// Router.Stage for the new domains): a module that runs with the same
// settings and that depends on nothing that changed is kept, and its
// registrations are declared again as they were; the others are built
// anew. domainsChanged says whether the hosted domains differ from the
// running set's. The running modules go on serving until the caller
// commits staged; it then stops retired, the modules that the new set
// no longer holds. On error, the modules built for the new set are
// stopped and the running set is untouched.
func (s *Set) Reload(deps module.Deps, staged *router.Router, cfg config.Config, domainsChanged bool) (next *Set, retired []module.Module, ch Change, err error) {
	old := make(map[string]entry, len(s.entries))
	for _, e := range s.entries {
		old[e.info.Name] = e
	}
	// First the modules that are new or have new settings, then those
	// depending on what changed.
	changed := false
	keep := make(map[string]bool)
	for _, info := range All {
		if slices.Contains(cfg.Modules.Disabled, info.Name) {
			if _, ok := old[info.Name]; ok {
				ch.Removed = append(ch.Removed, info.Name)
				changed = true
			}
			continue
		}
		e, ok := old[info.Name]
		switch {
		case !ok:
			ch.Added = append(ch.Added, info.Name)
			changed = true
		case !reflect.DeepEqual(e.settings, settingsOf(info, cfg.Modules.Settings)),
			e.regs.ReadDomains && domainsChanged:
			changed = true
		default:
			keep[info.Name] = true
		}
	}
	// A module built on another's Go API is built again with it (the
	// table's order puts what a module uses before it).
	for _, info := range All {
		if !keep[info.Name] {
			continue
		}
		for _, u := range old[info.Name].uses {
			_, was := old[u]
			if !keep[u] && (was || !slices.Contains(cfg.Modules.Disabled, u)) {
				delete(keep, info.Name)
				changed = true
			}
		}
	}
	for name := range keep {
		if old[name].regs.ReadFeatures && changed {
			delete(keep, name)
		}
	}
	next = &Set{http: deps.HTTP}
	var built []module.Module
	fail := func(name string, err error) (*Set, []module.Module, Change, error) {
		Stop(built)
		s.restoreHandlers()
		return nil, nil, Change{}, fmt.Errorf("modules: %s: %w", name, err)
	}
	for _, info := range All {
		if slices.Contains(cfg.Modules.Disabled, info.Name) {
			continue
		}
		if keep[info.Name] {
			e := old[info.Name]
			staged.Replay(e.regs)
			next.entries = append(next.entries, e)
			ch.Kept = append(ch.Kept, info.Name)
		} else {
			e, err := start(deps, staged, info, cfg.Modules.Settings, next)
			if e.m != nil {
				built = append(built, e.m)
				next.entries = append(next.entries, e)
			}
			if err != nil {
				return fail(info.Name, err)
			}
			if _, ok := old[info.Name]; ok {
				ch.Rebuilt = append(ch.Rebuilt, info.Name)
			}
		}
		if err := staged.Err(); err != nil {
			return fail(info.Name, err)
		}
	}
	// Patterns the new set no longer handles answer 404.
	handled := make(map[string]bool)
	for _, e := range next.entries {
		for _, h := range e.handlers {
			handled[h.pattern] = true
		}
	}
	for _, e := range s.entries {
		if !keep[e.info.Name] {
			retired = append(retired, e.m)
		}
		for _, h := range e.handlers {
			if !handled[h.pattern] && deps.HTTP != nil {
				deps.HTTP.Handle(h.pattern, nil)
				handled[h.pattern] = true
			}
		}
	}
	return next, retired, ch, nil
}

// Discard stops the modules of s, a set that Reload returned and that is
// not used after all, that running (the set in use) does not hold.
func (s *Set) Discard(running *Set) {
	inUse := make(map[module.Module]bool)
	for _, e := range running.entries {
		inUse[e.m] = true
	}
	var built []module.Module
	for _, e := range s.entries {
		if !inUse[e.m] {
			built = append(built, e.m)
		}
	}
	Stop(built)
	running.restoreHandlers()
}

// restoreHandlers puts s's HTTP handlers back (over those of a set that
// is not used after all).
func (s *Set) restoreHandlers() {
	if s.http == nil {
		return
	}
	for _, e := range s.entries {
		for _, h := range e.handlers {
			s.http.Handle(h.pattern, h.h)
		}
	}
}

// HandOver runs after a reload is committed, before the retired modules
// stop: each retired module that next holds again under its name is
// offered to its successor (module.Successor); one that is not taken over
// and is a module.Drainer is drained, so that its users hear of its end
// (MUC's occupants get status 332) instead of being dropped silently.
func HandOver(ctx context.Context, retired []module.Module, next *Set) {
	byName := make(map[string]module.Module, len(next.entries))
	for _, e := range next.entries {
		byName[e.info.Name] = e.m
	}
	for _, old := range retired {
		if next := byName[old.Name()]; next != old {
			if s, ok := next.(module.Successor); ok && s.Succeed(ctx, old) {
				continue
			}
		}
		if d, ok := old.(module.Drainer); ok {
			d.Drain(ctx)
		}
	}
}
