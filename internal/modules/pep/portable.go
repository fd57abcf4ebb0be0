package pep

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/ode-xmpp/ode/xmlstream"
)

// The node configuration in a XEP-0227 export (§4.10: a node_config
// form per node), for ode export and ode import (internal/xep227).

// fieldMembers carries the whitelist, which the node_config form does
// not: the JIDs the owner made members (XEP-0060 §8.8).
const fieldMembers = "ode#members"

// PortableForm returns a stored node configuration as a submitted
// node_config form with every setting ode keeps, in a fixed order, and
// the whitelist as the list-multi field ode#members.
func PortableForm(config []byte) (*xmlstream.Element, error) {
	c, err := decodeConfig(config)
	if err != nil {
		return nil, err
	}
	f := newForm("submit", NSNodeConfig)
	one := func(v string) []string { return []string{v} }
	maxItems := "max"
	if c.MaxItems > 0 {
		maxItems = strconv.Itoa(c.MaxItems)
	}
	f.field("pubsub#title", "text-single", "", one(c.Title))
	f.field("pubsub#description", "text-single", "", one(c.Description))
	f.field("pubsub#type", "text-single", "", one(c.Type))
	f.field("pubsub#max_items", "text-single", "", one(maxItems))
	f.field("pubsub#persist_items", "boolean", "", one(boolValue(c.PersistItems)))
	f.field("pubsub#access_model", "list-single", "", one(c.AccessModel))
	f.field("pubsub#roster_groups_allowed", "list-multi", "", c.RosterGroupsAllowed)
	f.field("pubsub#publish_model", "list-single", "", one(c.PublishModel))
	f.field("pubsub#deliver_notifications", "boolean", "", one(boolValue(c.DeliverNotifications)))
	f.field("pubsub#deliver_payloads", "boolean", "", one(boolValue(c.DeliverPayloads)))
	f.field("pubsub#notify_retract", "boolean", "", one(boolValue(c.NotifyRetract)))
	f.field("pubsub#notify_delete", "boolean", "", one(boolValue(c.NotifyDelete)))
	f.field("pubsub#notify_config", "boolean", "", one(boolValue(c.NotifyConfig)))
	f.field("pubsub#send_last_published_item", "list-single", "", one(c.SendLastPublishedItem))
	f.field("pubsub#notification_type", "list-single", "", one(c.NotificationType))
	if len(c.Members) > 0 {
		f.field(fieldMembers, "list-multi", "", c.Members)
	}
	return f.x, nil
}

// PortableConfig reads a node_config form, as PortableForm writes it or
// another server exports it, into a stored configuration: the defaults
// of an auto-created node with the form's fields applied. Fields ode does
// not know, and values it does not offer (such as the authorize access
// model, or max_items above maxItems, the server's cap), leave the
// default and are named in skipped.
func PortableConfig(x *xmlstream.Element, maxItems int) (config []byte, skipped []string, err error) {
	ft, fields, err := formFields(x)
	if err != nil {
		return nil, nil, fmt.Errorf("pep: node configuration: %w", err)
	}
	if ft != NSNodeConfig {
		return nil, nil, fmt.Errorf("pep: node configuration: the form's FORM_TYPE is %q, not %s", ft, NSNodeConfig)
	}
	c := DefaultConfig()
	for _, f := range fields {
		if f.name == fieldMembers {
			c.Members = slices.Clone(f.values)
			continue
		}
		probe := c
		if se := probe.apply(f, maxItems); se != nil {
			skipped = append(skipped, fmt.Sprintf("%s=%q", f.name, f.values))
			continue
		}
		c = probe
	}
	return c.encode(), skipped, nil
}
