package pep

import "github.com/ode-xmpp/ode/jid"

// Interested returns the resources, other than the owner's, that the
// owner's notifications of node go to when the access model admits them.
func (m *Module) Interested(owner jid.JID, node string) []jid.JID {
	return m.pres.interested(owner, node)
}

// Resources returns the resources of contact whose capabilities owner
// knows.
func (m *Module) Resources(owner, contact jid.JID) []jid.JID {
	var out []jid.JID
	for _, e := range m.pres.resources(owner, contact) {
		out = append(out, e.jid)
	}
	return out
}
