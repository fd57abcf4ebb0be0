package pep

import (
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/xmlstream"
)

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

// OptionsMet parses a publish-options form, creates a node configuration
// from it and reports whether that configuration meets the same options
// (a node created from publish-options must accept them next time).
func OptionsMet(po *xmlstream.Element, cap int) (parsed bool, met error) {
	pre, err := parsePublishOptions(po, cap)
	if err != nil {
		return false, nil
	}
	return true, pre.check(pre.newNodeConfig(cap), cap)
}

// ConfigRoundTrip applies a submitted node_config form to the defaults,
// then submits the resulting configuration's own form again and returns
// both configurations.
func ConfigRoundTrip(x *xmlstream.Element, cap int) (first, second NodeConfig, err error) {
	first, err = parseConfigForm(x, DefaultConfig(), cap)
	if err != nil {
		return first, first, err
	}
	form := configForm(first, nil)
	form.SetAttr("type", "submit")
	second, err = parseConfigForm(form, DefaultConfig(), cap)
	return first, second, err
}
