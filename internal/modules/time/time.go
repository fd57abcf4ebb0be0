// Package time implements XEP-0202 Entity Time for the server itself: an
// IQ get with <time xmlns='urn:xmpp:time'/> to a hosted domain (or with no
// 'to') is answered with the server's time zone offset (tzo) and the time
// in UTC (utc), in the XEP-0082 formats (§3, §4).
package time

import (
	"context"
	"time"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NS is the XEP-0202 namespace.
const NS = "urn:xmpp:time"

// Module is the time module.
type Module struct {
	now func() time.Time
	r   *router.Router
}

var _ module.Module = (*Module)(nil)

// Info describes the module to the server.
var Info = module.Info{
	Name: "time",
	XEPs: []string{"XEP-0202"},
	New:  module.Plain(New),
}

// New returns the time module.
func New(deps module.Deps) (*Module, error) {
	return &Module{now: deps.Now}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "time" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	m.r = r
	r.AddFeature(NS)
	r.HandleIQ(stanza.IQGet, router.ClassLocal, NS, "time", m.get)
}

func (m *Module) get(_ context.Context, ev *router.Event) (*xmlstream.Element, error) {
	iq := ev.El
	if ev.Class != router.ClassServer && stanza.To(iq) != "" {
		// An account's bare JID: only its clients know their time.
		return nil, stanza.NewError(stanza.ServiceUnavailable, "")
	}
	return Element(m.now()), nil
}

// Element returns the <time/> payload for t: tzo is t's offset as
// "+hh:mm" or "-hh:mm", utc is t in UTC with millisecond precision.
func Element(t time.Time) *xmlstream.Element {
	return xmlstream.NewElement(NS, "time").Append(
		xmlstream.NewElement(NS, "tzo").AppendText(t.Format("-07:00")),
		xmlstream.NewElement(NS, "utc").AppendText(t.UTC().Format("2006-01-02T15:04:05.000Z")),
	)
}
