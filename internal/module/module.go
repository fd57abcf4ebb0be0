// Package module is the contract between the server and its feature
// modules (roster, presence, disco, ping, …): what a module gets (Deps) and
// how it declares what it handles (Register on the router: IQ handlers,
// stanza hooks with priorities, disco and stream features).
//
// A module is a package under internal/modules with its settings, a
// constructor that takes them, and an Info value that describes it:
//
//	// Config is the [modules.ping] table.
//	type Config struct {
//		Interval config.Duration `toml:"interval"`
//	}
//
//	var Info = module.Info{
//		Name:   "ping",
//		XEPs:   []string{"XEP-0199"},
//		Config: &Config{Interval: config.Duration(5 * time.Minute)},
//		New:    module.Configured(New),
//	}
//
//	func New(deps module.Deps, cfg Config) (*Module, error)
//
// and a Register method; internal/modules lists every Info in one table.
package module

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
)

// Deps is what every module may use.
type Deps struct {
	// Store is the server's storage.
	Store storage.Store
	// Router routes stanzas and holds the registrations.
	Router *router.Router
	// Log is the module's logger (already carrying component=<name>).
	Log *slog.Logger
	// Now returns the current time; tests may fix it.
	Now func() time.Time
	// DataDir is the server's data directory ([server] data_dir), where a
	// module keeps files that are not in Store (uploaded files).
	DataDir string
	// HTTP is the server's HTTP listener, where modules add handlers
	// (upload slots, APIs); nil when no [http] listener is configured.
	HTTP HTTP
	// Module returns the running module named name if it was built
	// before this one (modules are built in the order of the module
	// table), else nil: disabled, or later in the table. It is for
	// modules that build on another's Go API (bookmarks and avatars on
	// pep's Publish); they type-assert the result. Nil outside
	// modules.Start.
	Module func(name string) Module
	// IsAdmin reports whether the bare JID is one of the server's
	// administrators ([server] admins, which a reload may change); nil
	// means none is.
	IsAdmin func(bare jid.JID) bool
}

// HTTP is what modules see of the server's HTTP(S) listener
// (internal/httpd). Handlers are added while modules register, before
// the listener starts.
type HTTP interface {
	// Handle adds h for pattern (a net/http.ServeMux pattern such as
	// "/upload/"). Handlers run behind the listener's limits, CORS and
	// logging.
	Handle(pattern string, h http.Handler)
	// BaseURL is the public URL clients reach the listener at, without
	// a trailing slash ("https://example.org:5443", or [http] public_url
	// behind a reverse proxy).
	BaseURL() string
}

// Module is a feature of the server.
type Module interface {
	// Name is the module's name in the modules table and in config.
	Name() string
	// Register declares the module's handlers, hooks and features on r.
	Register(r *router.Router)
}

// Stopper is implemented by modules that run goroutines: Stop ends them
// and returns when they are gone.
type Stopper interface {
	Stop()
}

// Drainer is implemented by modules that tell others the server is going
// away: at shutdown Drain runs before the client and server streams end,
// while stanzas are still delivered (MUC's status 332).
type Drainer interface {
	Drain(ctx context.Context)
}

// Successor is implemented by modules that keep live state a reload must
// not lose (MUC's rooms and their occupants). When a reload builds the
// module again (new settings, new domains), Succeed runs on the new
// instance once the reload is committed, with the instance it replaces,
// before that one is stopped: it takes over what it can and reports
// whether it did. A retired module that no successor took over, and that
// is a Drainer, is drained before it stops, so that nothing it served
// vanishes without a word.
type Successor interface {
	Succeed(ctx context.Context, prev Module) bool
}

// Service is implemented by the settings of modules that run a service on
// a sub-domain of each hosted domain (MUC's conference.<domain>): Service
// returns its label and whether cfg runs it. Certificates and ode check
// cover those names.
type Service interface {
	Service(cfg config.Config) (label string, on bool)
}

// Info describes a module to the server: its name, what it implements, its
// settings and how to build it. Each module package declares one as Info,
// and internal/modules lists them in registration order.
type Info struct {
	// Name is the module's name in config: its table [modules.<Name>]
	// and modules.disabled.
	Name string
	// XEPs are the specifications the module implements, such as
	// "XEP-0199" or "RFC 6121"; docs/xeps.md lists every XEP named here.
	XEPs []string
	// Config points to the module's settings struct holding its defaults,
	// or is nil when the module has none. The server decodes the file's
	// [modules.<Name>] table into a copy and checks it with the struct's
	// Validate() []config.Problem method when there is one; the value here
	// is never changed. It doubles as the documentation of the defaults.
	Config any
	// New builds the module. cfg is a pointer of Config's type holding the
	// settings (it may be Config itself: New must not change it), or nil
	// when Config is nil. Configured and Plain adapt a typed constructor.
	New func(deps Deps, cfg any) (Module, error)
}

// Configured adapts a module's constructor New(deps, cfg Config) to
// Info.New, which gets the settings as a *Config.
func Configured[C any, M Module](newModule func(Deps, C) (M, error)) func(Deps, any) (Module, error) {
	return func(deps Deps, cfg any) (Module, error) {
		c, ok := cfg.(*C)
		if !ok || c == nil {
			return nil, fmt.Errorf("module: settings are %T, want %T", cfg, c)
		}
		m, err := newModule(deps, *c)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}

// Plain adapts the constructor New(deps) of a module without settings to
// Info.New.
func Plain[M Module](newModule func(Deps) (M, error)) func(Deps, any) (Module, error) {
	return func(deps Deps, _ any) (Module, error) {
		m, err := newModule(deps)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}
