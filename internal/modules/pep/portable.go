package pep

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/ode-xmpp/ode/internal/dataform"
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
	f := dataform.New(dataform.TypeSubmit, NSNodeConfig)
	maxItems := "max"
	if c.MaxItems > 0 {
		maxItems = strconv.Itoa(c.MaxItems)
	}
	f.Add("pubsub#title", "text-single", "", c.Title)
	f.Add("pubsub#description", "text-single", "", c.Description)
	f.Add("pubsub#type", "text-single", "", c.Type)
	f.Add("pubsub#max_items", "text-single", "", maxItems)
	f.Add("pubsub#persist_items", "boolean", "", dataform.Bool(c.PersistItems))
	f.Add("pubsub#access_model", "list-single", "", c.AccessModel)
	f.Add("pubsub#roster_groups_allowed", "list-multi", "", c.RosterGroupsAllowed...)
	f.Add("pubsub#publish_model", "list-single", "", c.PublishModel)
	f.Add("pubsub#deliver_notifications", "boolean", "", dataform.Bool(c.DeliverNotifications))
	f.Add("pubsub#deliver_payloads", "boolean", "", dataform.Bool(c.DeliverPayloads))
	f.Add("pubsub#notify_retract", "boolean", "", dataform.Bool(c.NotifyRetract))
	f.Add("pubsub#notify_delete", "boolean", "", dataform.Bool(c.NotifyDelete))
	f.Add("pubsub#notify_config", "boolean", "", dataform.Bool(c.NotifyConfig))
	f.Add("pubsub#send_last_published_item", "list-single", "", c.SendLastPublishedItem)
	f.Add("pubsub#notification_type", "list-single", "", c.NotificationType)
	if len(c.Members) > 0 {
		f.Add(fieldMembers, "list-multi", "", c.Members...)
	}
	return f.Element(), nil
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
		if f.Var == fieldMembers {
			c.Members = slices.Clone(f.Values)
			continue
		}
		probe := c
		if se := probe.apply(f, maxItems); se != nil {
			skipped = append(skipped, fmt.Sprintf("%s=%q", f.Var, f.Values))
			continue
		}
		c = probe
	}
	return c.encode(), skipped, nil
}
