package pep

import "github.com/ode-xmpp/ode/jid"

// Interested returns the resources, other than the owner's, that the
// owner's notifications of node go to when the access model admits them.
func (m *Module) Interested(owner jid.JID, node string) []jid.JID {
	return m.pres.interested(owner, node)
}
