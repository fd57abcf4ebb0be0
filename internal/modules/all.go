// Package modules is the one table of the server's feature modules: their
// names, in the order they register, and their constructors.
package modules

import (
	"fmt"
	"slices"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules/blocking"
	"github.com/ode-xmpp/ode/internal/modules/disco"
	"github.com/ode-xmpp/ode/internal/modules/last"
	"github.com/ode-xmpp/ode/internal/modules/offline"
	"github.com/ode-xmpp/ode/internal/modules/ping"
	"github.com/ode-xmpp/ode/internal/modules/private"
	"github.com/ode-xmpp/ode/internal/modules/register"
	"github.com/ode-xmpp/ode/internal/modules/roster"
	entitytime "github.com/ode-xmpp/ode/internal/modules/time"
	"github.com/ode-xmpp/ode/internal/modules/vcard"
	"github.com/ode-xmpp/ode/internal/modules/version"
)

// Entry is one row of the table.
type Entry struct {
	// Name is the module's name in config (modules.disabled).
	Name string
	// New builds the module.
	New func(deps module.Deps, cfg config.Config) (module.Module, error)
}

// All lists every module. Registration follows this order, so where two
// modules hook the same stanzas at the same priority, the earlier runs
// first.
var All = []Entry{
	{"roster", func(d module.Deps, c config.Config) (module.Module, error) { return roster.New(d, c) }},
	{"offline", func(d module.Deps, c config.Config) (module.Module, error) { return offline.New(d, c) }},
	{"register", func(d module.Deps, c config.Config) (module.Module, error) { return register.New(d, c) }},
	{"ping", func(d module.Deps, c config.Config) (module.Module, error) { return ping.New(d, c) }},
	{"version", func(d module.Deps, c config.Config) (module.Module, error) { return version.New(d, c) }},
	{"time", func(d module.Deps, c config.Config) (module.Module, error) { return entitytime.New(d, c) }},
	{"last", func(d module.Deps, c config.Config) (module.Module, error) { return last.New(d, c) }},
	{"vcard", func(d module.Deps, c config.Config) (module.Module, error) { return vcard.New(d, c) }},
	{"private", func(d module.Deps, c config.Config) (module.Module, error) { return private.New(d, c) }},
	{"blocking", func(d module.Deps, c config.Config) (module.Module, error) { return blocking.New(d, c) }},
	// disco hashes every identity and feature declared before it: keep it last.
	{"disco", func(d module.Deps, c config.Config) (module.Module, error) { return disco.New(d, c) }},
}

// Start builds and registers every module that cfg does not disable.
func Start(deps module.Deps, cfg config.Config) ([]module.Module, error) {
	var out []module.Module
	for _, e := range All {
		if slices.Contains(cfg.Modules.Disabled, e.Name) {
			continue
		}
		d := deps
		d.Log = deps.Log.With("component", e.Name)
		m, err := e.New(d, cfg)
		if err != nil {
			Stop(out)
			return nil, fmt.Errorf("modules: %s: %w", e.Name, err)
		}
		m.Register(deps.Router)
		out = append(out, m)
		if err := deps.Router.Err(); err != nil {
			Stop(out)
			return nil, fmt.Errorf("modules: %s: %w", e.Name, err)
		}
	}
	return out, nil
}

// Stop stops the modules that run goroutines, in reverse order.
func Stop(ms []module.Module) {
	for i := len(ms) - 1; i >= 0; i-- {
		if s, ok := ms[i].(module.Stopper); ok {
			s.Stop()
		}
	}
}
