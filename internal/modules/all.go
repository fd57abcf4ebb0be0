// Package modules is the one table of the server's feature modules, in the
// order they register, and what the server does with it: the config schemas
// (Schemas) and building the enabled modules with their settings (Start).
package modules

import (
	"slices"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules/adhoc"
	"github.com/ode-xmpp/ode/internal/modules/avatar"
	"github.com/ode-xmpp/ode/internal/modules/blocking"
	"github.com/ode-xmpp/ode/internal/modules/bookmarks"
	"github.com/ode-xmpp/ode/internal/modules/carbons"
	"github.com/ode-xmpp/ode/internal/modules/disco"
	"github.com/ode-xmpp/ode/internal/modules/extdisco"
	"github.com/ode-xmpp/ode/internal/modules/last"
	"github.com/ode-xmpp/ode/internal/modules/mam"
	"github.com/ode-xmpp/ode/internal/modules/muc"
	"github.com/ode-xmpp/ode/internal/modules/offline"
	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/modules/ping"
	"github.com/ode-xmpp/ode/internal/modules/private"
	"github.com/ode-xmpp/ode/internal/modules/push"
	"github.com/ode-xmpp/ode/internal/modules/register"
	"github.com/ode-xmpp/ode/internal/modules/roster"
	entitytime "github.com/ode-xmpp/ode/internal/modules/time"
	"github.com/ode-xmpp/ode/internal/modules/upload"
	"github.com/ode-xmpp/ode/internal/modules/vcard"
	"github.com/ode-xmpp/ode/internal/modules/version"
)

// All lists every module. Registration follows this order, so where two
// modules hook the same stanzas at the same priority, the earlier runs
// first.
var All = []module.Info{
	roster.Info,
	offline.Info,
	register.Info,
	ping.Info,
	version.Info,
	entitytime.Info,
	last.Info,
	vcard.Info,
	private.Info,
	blocking.Info,
	carbons.Info,
	extdisco.Info,
	upload.Info,
	mam.Info,
	push.Info,
	pep.Info,
	bookmarks.Info, // on pep's Publish, after it
	avatar.Info,    // on pep's and vcard's
	muc.Info,
	adhoc.Info,
	// disco hashes every identity and feature declared before it: keep it last.
	disco.Info,
}

// Schemas returns the config schema of every module in All, for
// config.Load, config.Parse and Config.Validate.
func Schemas() []config.ModuleSchema {
	s := make([]config.ModuleSchema, len(All))
	for i, info := range All {
		s[i] = schema(info)
	}
	return s
}

func schema(info module.Info) config.ModuleSchema {
	return config.ModuleSchema{Name: info.Name, Defaults: info.Config}
}

// Start builds and registers every module that cfg does not disable, each
// with its settings from cfg.Modules.Settings, or its defaults when there
// are none there. Settings set in code are validated here as a file's are
// by config.Parse.
func Start(deps module.Deps, cfg config.Config) ([]module.Module, error) {
	set, err := StartSet(deps, cfg)
	if err != nil {
		return nil, err
	}
	return set.Modules(), nil
}

// ServiceDomains returns the domains of the services the enabled
// modules of cfg run (conference.<domain>, upload.<domain>), from their
// settings, without starting them: what certificates and DNS must cover.
func ServiceDomains(cfg config.Config) []string {
	var out []string
	for _, info := range All {
		if slices.Contains(cfg.Modules.Disabled, info.Name) {
			continue
		}
		s, ok := cfg.Modules.Settings[info.Name]
		if !ok {
			s = info.Config
		}
		svc, ok := s.(module.Service)
		if !ok {
			continue
		}
		label, on := svc.Service(cfg)
		if !on {
			continue
		}
		for _, d := range cfg.Server.Domains {
			out = append(out, label+"."+d)
		}
	}
	return out
}

// build checks one module's settings and builds it.
func build(deps module.Deps, info module.Info, settings map[string]any) (module.Module, error) {
	s, ok := settings[info.Name]
	if !ok {
		s = info.Config // New copies what it is given: the defaults stay as they are
	}
	if err := config.ValidateModule(schema(info), s); err != nil {
		return nil, err
	}
	d := deps
	d.Log = deps.Log.With("component", info.Name)
	return info.New(d, s)
}

// Stop stops the modules that run goroutines, in reverse order.
func Stop(ms []module.Module) {
	for i := len(ms) - 1; i >= 0; i-- {
		if s, ok := ms[i].(module.Stopper); ok {
			s.Stop()
		}
	}
}
