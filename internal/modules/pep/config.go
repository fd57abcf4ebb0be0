package pep

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Access models (XEP-0060 §4.5). Authorize is not supported: configuring
// it is an error (unsupported-access-model).
const (
	AccessOpen      = "open"
	AccessPresence  = "presence"
	AccessRoster    = "roster"
	AccessWhitelist = "whitelist"
	accessAuthorize = "authorize"
)

// Values of pubsub#send_last_published_item.
const (
	SendNever              = "never"
	SendOnSub              = "on_sub"
	SendOnSubAndPresence   = "on_sub_and_presence"
	publishersModel        = "publishers"
	subscribersModel       = "subscribers"
	openModel              = "open"
	notificationHeadline   = "headline"
	notificationNormal     = "normal"
	maxTextField           = 1024 // bytes of a title, description or type
	maxRosterGroupsAllowed = 100
)

// NodeConfig is a node's configuration (the pubsub#node_config form,
// XEP-0060 §16.4.4). It is stored as JSON.
type NodeConfig struct {
	// AccessModel is who may retrieve items and receive notifications:
	// AccessOpen, AccessPresence, AccessRoster or AccessWhitelist.
	AccessModel string `json:"access_model"`
	// MaxItems is how many items the node keeps; 0 is "max", the
	// server's limit.
	MaxItems int `json:"max_items"`
	// PersistItems keeps published items (always true on PEP: items
	// are what clients fetch).
	PersistItems bool `json:"persist_items"`
	// DeliverNotifications sends event notifications at all.
	DeliverNotifications bool `json:"deliver_notifications"`
	// DeliverPayloads puts the item's payload in notifications.
	DeliverPayloads bool `json:"deliver_payloads"`
	// NotifyRetract notifies retractions (and purges).
	NotifyRetract bool `json:"notify_retract"`
	// NotifyDelete notifies the node's deletion.
	NotifyDelete bool `json:"notify_delete"`
	// NotifyConfig notifies configuration changes.
	NotifyConfig bool `json:"notify_config"`
	// SendLastPublishedItem is when the last item is sent to a new
	// subscriber: SendNever, SendOnSub or SendOnSubAndPresence.
	SendLastPublishedItem string `json:"send_last_published_item"`
	// PublishModel is who may publish: "publishers" (the owner),
	// "subscribers" (the owner and entities the access model admits)
	// or "open" (anyone).
	PublishModel string `json:"publish_model"`
	// NotificationType is the type of notification messages:
	// "headline" or "normal".
	NotificationType string `json:"notification_type"`
	// Title, Description and Type (the payload's namespace) describe the
	// node.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Type        string `json:"type,omitempty"`
	// RosterGroupsAllowed are the owner's roster groups whose members
	// the roster access model admits.
	RosterGroupsAllowed []string `json:"roster_groups_allowed,omitempty"`
	// Members are the bare JIDs the owner affiliated as members (or
	// publishers): the whitelist.
	Members []string `json:"members,omitempty"`
	// Subscribers are the JIDs (bare or full) with an explicit
	// subscription (XEP-0060 §6.1), sorted.
	Subscribers []string `json:"subscribers,omitempty"`
}

// DefaultConfig returns the configuration of an auto-created node
// (XEP-0163 §4.1: access model presence; XEP-0060 defaults otherwise,
// max_items 1 as PEP nodes hold the current state).
func DefaultConfig() NodeConfig {
	return NodeConfig{
		AccessModel:           AccessPresence,
		MaxItems:              1,
		PersistItems:          true,
		DeliverNotifications:  true,
		DeliverPayloads:       true,
		NotifyRetract:         true,
		NotifyDelete:          true,
		SendLastPublishedItem: SendOnSubAndPresence,
		PublishModel:          publishersModel,
		NotificationType:      notificationHeadline,
	}
}

func decodeConfig(b []byte) (NodeConfig, error) {
	c := DefaultConfig()
	if len(b) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("pep: node configuration: %w", err)
	}
	return c, nil
}

func (c NodeConfig) encode() []byte {
	b, _ := json.Marshal(c) // strings, ints, bools: cannot fail
	return b
}

// itemLimit is the number of items the node keeps under the server's cap.
func (c NodeConfig) itemLimit(cap int) int {
	if c.MaxItems <= 0 || c.MaxItems > cap {
		return cap
	}
	return c.MaxItems
}

func parseBool(s string) (bool, bool) {
	switch strings.TrimSpace(s) {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

// configForm returns the node_config form with c's values (XEP-0060
// §8.2.1); groups are the owner's roster groups, offered for
// roster_groups_allowed.
func configForm(c NodeConfig, groups []string) *xmlstream.Element {
	f := dataform.New(dataform.TypeForm, NSNodeConfig)
	f.Add("pubsub#title", "text-single", "A friendly name for the node", c.Title)
	f.Add("pubsub#description", "text-single", "A description of the node", c.Description)
	f.Add("pubsub#type", "text-single", "The type of node data (the payload's namespace)", c.Type)
	maxItems := "max"
	if c.MaxItems > 0 {
		maxItems = strconv.Itoa(c.MaxItems)
	}
	f.Add("pubsub#max_items", "text-single", "Max # of items to persist ('max' for the server's limit)", maxItems)
	f.Add("pubsub#persist_items", "boolean", "Persist items to storage", dataform.Bool(c.PersistItems))
	f.Add("pubsub#access_model", "list-single", "Who may subscribe and retrieve items", c.AccessModel).Choices(
		AccessOpen, "Anyone",
		AccessPresence, "Contacts with a presence subscription",
		AccessRoster, "Contacts in the allowed roster groups",
		AccessWhitelist, "Members only",
	)
	var opts []string
	for _, g := range groups {
		opts = append(opts, g, "")
	}
	f.Add("pubsub#roster_groups_allowed", "list-multi", "Roster groups allowed to subscribe", c.RosterGroupsAllowed...).Choices(opts...)
	f.Add("pubsub#publish_model", "list-single", "Who may publish", c.PublishModel).Choices(
		publishersModel, "The owner",
		subscribersModel, "Those the access model admits",
		openModel, "Anyone",
	)
	f.Add("pubsub#deliver_notifications", "boolean", "Deliver event notifications", dataform.Bool(c.DeliverNotifications))
	f.Add("pubsub#deliver_payloads", "boolean", "Deliver payloads with event notifications", dataform.Bool(c.DeliverPayloads))
	f.Add("pubsub#notify_retract", "boolean", "Notify subscribers when items are removed", dataform.Bool(c.NotifyRetract))
	f.Add("pubsub#notify_delete", "boolean", "Notify subscribers when the node is deleted", dataform.Bool(c.NotifyDelete))
	f.Add("pubsub#notify_config", "boolean", "Notify subscribers when the configuration changes", dataform.Bool(c.NotifyConfig))
	f.Add("pubsub#send_last_published_item", "list-single", "When to send the last published item", c.SendLastPublishedItem).Choices(
		SendNever, "Never",
		SendOnSub, "When a new subscription is processed",
		SendOnSubAndPresence, "On subscription and when the contact comes online",
	)
	f.Add("pubsub#notification_type", "list-single", "The type of notification messages", c.NotificationType).Choices(
		notificationHeadline, "Headline",
		notificationNormal, "Normal",
	)
	return f.Element()
}

// formFields returns the fields of a submitted form with their values,
// in order, without FORM_TYPE (and fixed fields), and the form's
// FORM_TYPE. A field given twice, or without a var, is an error.
func formFields(x *xmlstream.Element) (formType string, fields []dataform.Field, err error) {
	f, err := dataform.Parse(x)
	if err != nil {
		return "", nil, err
	}
	for _, fd := range f.Fields {
		if fd.Var != "" {
			fields = append(fields, fd)
		}
	}
	return f.FormType, fields, nil
}

// apply sets the field on c; cap is the server's limit of max_items. It
// returns the stanza error for an unknown field or a value not allowed
// (XEP-0060 §8.2.5: not-acceptable; an access model the server does not
// offer: unsupported-access-model).
func (c *NodeConfig) apply(f dataform.Field, cap int) *stanza.Error {
	bad := func() *stanza.Error {
		return stanza.NewError(stanza.NotAcceptable, fmt.Sprintf("%s: value %q not allowed", f.Var, f.Value()))
	}
	boolean := func(dst *bool) *stanza.Error {
		b, ok := parseBool(f.Value())
		if !ok {
			return bad()
		}
		*dst = b
		return nil
	}
	text := func(dst *string) *stanza.Error {
		if len(f.Value()) > maxTextField {
			return bad()
		}
		*dst = f.Value()
		return nil
	}
	oneOf := func(dst *string, allowed ...string) *stanza.Error {
		v := strings.TrimSpace(f.Value())
		if !slices.Contains(allowed, v) {
			return bad()
		}
		*dst = v
		return nil
	}
	switch f.Var {
	case "pubsub#title":
		return text(&c.Title)
	case "pubsub#description":
		return text(&c.Description)
	case "pubsub#type":
		return text(&c.Type)
	case "pubsub#max_items":
		n, ok := parseMaxItems(f.Value(), cap)
		if !ok {
			return bad()
		}
		c.MaxItems = n
	case "pubsub#persist_items":
		var b bool
		if err := boolean(&b); err != nil {
			return err
		}
		if !b {
			// PEP keeps the items clients fetch: transient nodes are not
			// offered.
			return stanza.NewError(stanza.NotAcceptable, "pubsub#persist_items: only persistent nodes are offered")
		}
		c.PersistItems = true
	case "pubsub#access_model":
		v := strings.TrimSpace(f.Value())
		if v == accessAuthorize {
			e := stanza.NewError(stanza.NotAcceptable, "the authorize access model is not offered")
			e.App = xmlstream.NewElement(NSErrors, "unsupported-access-model")
			return e
		}
		return oneOf(&c.AccessModel, AccessOpen, AccessPresence, AccessRoster, AccessWhitelist)
	case "pubsub#roster_groups_allowed":
		if len(f.Values) > maxRosterGroupsAllowed {
			return bad()
		}
		c.RosterGroupsAllowed = slices.Clone(f.Values)
	case "pubsub#publish_model":
		return oneOf(&c.PublishModel, publishersModel, subscribersModel, openModel)
	case "pubsub#deliver_notifications":
		return boolean(&c.DeliverNotifications)
	case "pubsub#deliver_payloads":
		return boolean(&c.DeliverPayloads)
	case "pubsub#notify_retract":
		return boolean(&c.NotifyRetract)
	case "pubsub#notify_delete":
		return boolean(&c.NotifyDelete)
	case "pubsub#notify_config":
		return boolean(&c.NotifyConfig)
	case "pubsub#send_last_published_item":
		return oneOf(&c.SendLastPublishedItem, SendNever, SendOnSub, SendOnSubAndPresence)
	case "pubsub#notification_type":
		return oneOf(&c.NotificationType, notificationHeadline, notificationNormal)
	default:
		return stanza.NewError(stanza.NotAcceptable, "unknown field "+f.Var)
	}
	return nil
}

// parseMaxItems parses a max_items value: "max" (0, the server's limit)
// or a number from 1 to cap.
func parseMaxItems(s string, cap int) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > cap {
		return 0, false
	}
	if n == cap {
		return 0, true
	}
	return n, true
}

// parseConfigForm applies a submitted node_config form to c (XEP-0060
// §8.2.4). A form of another FORM_TYPE is bad-request.
func parseConfigForm(x *xmlstream.Element, c NodeConfig, cap int) (NodeConfig, error) {
	ft, fields, err := formFields(x)
	if err != nil {
		return c, stanza.NewError(stanza.BadRequest, err.Error())
	}
	if ft != NSNodeConfig {
		return c, stanza.NewError(stanza.BadRequest, "the form's FORM_TYPE is not "+NSNodeConfig)
	}
	for _, f := range fields {
		if se := c.apply(f, cap); se != nil {
			return c, se
		}
	}
	return c, nil
}

// preconditions are publish-options (XEP-0060 §7.1.5): node_config
// fields a publish requires of the node.
type preconditions []dataform.Field

// parsePublishOptions reads <publish-options/>; nil without one. Its
// form must be of FORM_TYPE publish-options (bad-request otherwise), and
// each field a node_config field with a value the server allows: an
// unknown field or a value the server does not offer is a precondition
// that cannot be met.
func parsePublishOptions(po *xmlstream.Element, cap int) (preconditions, error) {
	if po == nil {
		return nil, nil
	}
	x := po.Child(NSData, "x")
	if x == nil {
		return nil, nil // <publish-options/> without a form: nothing required
	}
	ft, fields, err := formFields(x)
	if err != nil {
		return nil, stanza.NewError(stanza.BadRequest, err.Error())
	}
	if ft != NSPublishOptions {
		return nil, stanza.NewError(stanza.BadRequest, "the publish-options form's FORM_TYPE is not "+NSPublishOptions)
	}
	probe := DefaultConfig()
	for _, f := range fields {
		if se := probe.apply(f, cap); se != nil {
			return nil, preconditionNotMet(f.Var + ": " + se.Text)
		}
	}
	return preconditions(fields), nil
}

func preconditionNotMet(text string) *stanza.Error {
	e := stanza.NewError(stanza.Conflict, text)
	e.App = xmlstream.NewElement(NSErrors, "precondition-not-met")
	return e
}

// newNodeConfig is the configuration of a node created with the
// preconditions: the defaults with their values (§7.1.5: a new node
// takes them as its configuration).
func (p preconditions) newNodeConfig(cap int) NodeConfig {
	c := DefaultConfig()
	for _, f := range p {
		_ = c.apply(f, cap) // checked by parsePublishOptions
	}
	return c
}

// check returns precondition-not-met when c does not meet p.
func (p preconditions) check(c NodeConfig, cap int) error {
	for _, f := range p {
		want := c
		_ = want.apply(f, cap)
		if !sameField(f.Var, c, want, cap) {
			return preconditionNotMet("the node's " + f.Var + " differs")
		}
	}
	return nil
}

// sameField reports whether a and b agree on the field; max_items
// compares the limits they mean.
func sameField(name string, a, b NodeConfig, cap int) bool {
	switch name {
	case "pubsub#max_items":
		return a.itemLimit(cap) == b.itemLimit(cap)
	case "pubsub#roster_groups_allowed":
		x, y := slices.Clone(a.RosterGroupsAllowed), slices.Clone(b.RosterGroupsAllowed)
		slices.Sort(x)
		slices.Sort(y)
		return slices.Equal(x, y)
	}
	return a.Title == b.Title && a.Description == b.Description && a.Type == b.Type &&
		a.PersistItems == b.PersistItems && a.AccessModel == b.AccessModel && a.PublishModel == b.PublishModel &&
		a.DeliverNotifications == b.DeliverNotifications && a.DeliverPayloads == b.DeliverPayloads &&
		a.NotifyRetract == b.NotifyRetract && a.NotifyDelete == b.NotifyDelete && a.NotifyConfig == b.NotifyConfig &&
		a.SendLastPublishedItem == b.SendLastPublishedItem && a.NotificationType == b.NotificationType
}
