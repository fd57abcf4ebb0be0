// Package version implements XEP-0092 Software Version for the server
// itself: an IQ get with <query xmlns='jabber:iq:version'/> to a hosted
// domain (or with no 'to') is answered with the name "ode" and the version
// of the running build (§2). The operating system, optional in §2, is left
// out so as not to tell strangers what to attack.
package version

import (
	"context"
	"runtime/debug"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Module is the version module.
type Module struct {
	r       *router.Router
	version string
}

var _ module.Module = (*Module)(nil)

// Info describes the module to the server.
var Info = module.Info{
	Name: "version",
	XEPs: []string{"XEP-0092"},
	New:  module.Plain(New),
}

// New returns the version module.
func New(module.Deps) (*Module, error) {
	return &Module{version: buildVersion()}, nil
}

// buildVersion returns the main module's version from the build
// information, or "devel" for a build outside a released module.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// Name implements module.Module.
func (m *Module) Name() string { return "version" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	m.r = r
	r.AddFeature(stanza.NSVersion)
	r.HandleIQ(stanza.IQGet, router.ClassLocal, stanza.NSVersion, "query", m.get)
}

func (m *Module) get(_ context.Context, ev *router.Event) (*xmlstream.Element, error) {
	iq := ev.El
	if ev.Class != router.ClassServer && stanza.To(iq) != "" {
		// An account's bare JID: the server does not answer for
		// the account's clients.
		return nil, stanza.NewError(stanza.ServiceUnavailable, "")
	}
	return xmlstream.NewElement(stanza.NSVersion, "query").Append(
		xmlstream.NewElement(stanza.NSVersion, "name").AppendText("ode"),
		xmlstream.NewElement(stanza.NSVersion, "version").AppendText(m.version),
	), nil
}
