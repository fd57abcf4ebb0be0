// Package module is the contract between the server and its feature
// modules (roster, presence, disco, ping, …): what a module gets (Deps) and
// how it declares what it handles (Register on the router: IQ handlers,
// stanza hooks with priorities, disco and stream features).
//
// A module is a package under internal/modules with
//
//	func New(deps module.Deps, cfg config.Config) (*Module, error)
//
// and a Register method; internal/modules lists every module in one table.
package module

import (
	"log/slog"
	"time"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
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
