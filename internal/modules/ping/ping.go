// Package ping implements XEP-0199 XMPP Ping: the server answers pings
// addressed to it (§4.2 client-to-server pings, answered with an empty
// result).
package ping

import (
	"context"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Module is the ping module.
type Module struct {
	deps module.Deps
}

var _ module.Module = (*Module)(nil)

// New returns the ping module.
func New(deps module.Deps, _ config.Config) (*Module, error) {
	return &Module{deps: deps}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "ping" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	r.AddFeature(stanza.NSPing)
	r.HandleIQ(stanza.IQGet, stanza.NSPing, "ping", func(context.Context, *xmlstream.Element) (*xmlstream.Element, error) {
		return nil, nil
	})
}
