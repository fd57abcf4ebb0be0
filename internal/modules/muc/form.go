package muc

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Limits of the configuration's text fields.
const (
	maxNameChars = 100
	maxDescChars = 1000
)

// form builds a XEP-0004 data form.
type form struct{ x *xmlstream.Element }

func newForm(typ, formType string) *form {
	f := &form{x: xmlstream.NewElement(NSData, "x").SetAttr("type", typ)}
	f.x.Append(xmlstream.NewElement(NSData, "field").SetAttr("var", "FORM_TYPE").SetAttr("type", "hidden").
		Append(xmlstream.NewElement(NSData, "value").AppendText(formType)))
	return f
}

// field adds a field with one value (none when value is "" for a
// text-private field); options are pairs of value and label.
func (f *form) field(name, typ, value string, options ...string) *xmlstream.Element {
	fe := xmlstream.NewElement(NSData, "field").SetAttr("var", name).SetAttr("type", typ)
	if value != "" || typ != "text-private" {
		fe.Append(xmlstream.NewElement(NSData, "value").AppendText(value))
	}
	for i := 0; i+1 < len(options); i += 2 {
		fe.Append(xmlstream.NewElement(NSData, "option").SetAttr("label", options[i+1]).
			Append(xmlstream.NewElement(NSData, "value").AppendText(options[i])))
	}
	f.x.Append(fe)
	return fe
}

func boolValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// configForm is the room's muc#roomconfig form with its current values
// (§10.2, §15.5.3).
func (rm *room) configForm() *xmlstream.Element {
	c := rm.cfg
	f := newForm("form", NSConfig)
	f.x.Append(xmlstream.NewElement(NSData, "title").AppendText("Configuration of " + rm.jid.String()))
	f.field("muc#roomconfig_roomname", "text-single", c.name).SetAttr("label", "Name")
	f.field("muc#roomconfig_roomdesc", "text-single", c.desc).SetAttr("label", "Description")
	f.field("muc#roomconfig_persistentroom", "boolean", boolValue(c.persistent)).SetAttr("label", "Persistent (stays when empty)")
	f.field("muc#roomconfig_publicroom", "boolean", boolValue(c.public)).SetAttr("label", "Listed in the directory")
	f.field("muc#roomconfig_membersonly", "boolean", boolValue(c.membersOnly)).SetAttr("label", "Members only")
	f.field("muc#roomconfig_moderatedroom", "boolean", boolValue(c.moderated)).SetAttr("label", "Moderated (visitors may not speak)")
	f.field("muc#roomconfig_passwordprotectedroom", "boolean", boolValue(c.password != "")).SetAttr("label", "Password protected")
	f.field("muc#roomconfig_roomsecret", "text-private", c.password).SetAttr("label", "Password")
	whois := "moderators"
	if c.whoisAnyone {
		whois = "anyone"
	}
	f.field("muc#roomconfig_whois", "list-single", whois, "moderators", "Moderators", "anyone", "Anyone").SetAttr("label", "Who sees real addresses")
	f.field("muc#roomconfig_maxusers", "list-single", strconv.Itoa(rm.maxUsersSetting()),
		"10", "10", "20", "20", "30", "30", "50", "50", "100", "100", "200", "200", "500", "500", "1000", "1000").SetAttr("label", "Most occupants")
	f.field("muc#roomconfig_changesubject", "boolean", boolValue(c.changeSubject)).SetAttr("label", "Occupants may change the subject")
	f.field("muc#roomconfig_allowinvites", "boolean", boolValue(c.allowInvites)).SetAttr("label", "Occupants may invite")
	f.field("muc#roomconfig_enablearchiving", "boolean", boolValue(c.archive)).SetAttr("label", "Keep an archive (persistent rooms)")
	pb := f.field("muc#roomconfig_presencebroadcast", "list-multi", "", roleModerator, "Moderator", roleParticipant, "Participant", roleVisitor, "Visitor")
	pb.SetAttr("label", "Roles whose presence is broadcast")
	pb.Children = pb.Children[1:] // the values are added below, one per role
	for _, role := range []string{roleModerator, roleParticipant, roleVisitor} {
		if c.shows(role) {
			pb.Append(xmlstream.NewElement(NSData, "value").AppendText(role))
		}
	}
	f.field("muc#roomconfig_allowpm", "list-single", c.allowPM,
		"anyone", "Anyone", "participants", "Participants", "moderators", "Moderators", "none", "No one").SetAttr("label", "Who may send private messages")
	return f.x
}

func (rm *room) maxUsersSetting() int {
	if rm.cfg.maxUsers > 0 {
		return rm.cfg.maxUsers
	}
	return rm.mod().cfg.MaxOccupants
}

// applyForm returns the configuration a submitted form sets: the fields
// it has change, the others keep their value (an empty form accepts the
// current configuration: an instant room, §10.1.2).
func (rm *room) applyForm(x *xmlstream.Element) (roomConfig, *stanza.Error) {
	c := rm.cfg
	protected := c.password != ""
	secret, secretSet := "", false
	bools := map[string]*bool{
		"muc#roomconfig_persistentroom":        &c.persistent,
		"muc#roomconfig_publicroom":            &c.public,
		"muc#roomconfig_membersonly":           &c.membersOnly,
		"muc#roomconfig_moderatedroom":         &c.moderated,
		"muc#roomconfig_passwordprotectedroom": &protected,
		"muc#roomconfig_changesubject":         &c.changeSubject,
		"muc#roomconfig_allowinvites":          &c.allowInvites,
		"muc#roomconfig_enablearchiving":       &c.archive,
		"mam":                                  &c.archive, // ejabberd's and Prosody's name for it
	}
	for _, fe := range x.ChildrenNS(NSData) {
		if fe.Name.Local != "field" {
			continue
		}
		v := childText(fe, NSData, "value")
		b := v == "1" || v == "true"
		okBool := v == "1" || v == "true" || v == "0" || v == "false"
		bad := func() (roomConfig, *stanza.Error) {
			return roomConfig{}, stanza.NewError(stanza.NotAcceptable, "bad value for "+fe.Attribute("var"))
		}
		if target, ok := bools[fe.Attribute("var")]; ok {
			if !okBool {
				return bad()
			}
			*target = b
			continue
		}
		switch fe.Attribute("var") {
		case "FORM_TYPE":
			if v != NSConfig {
				return roomConfig{}, stanza.NewError(stanza.BadRequest, "FORM_TYPE must be "+NSConfig)
			}
		case "muc#roomconfig_roomname":
			if c.name = strings.TrimSpace(v); utf8.RuneCountInString(c.name) > maxNameChars {
				return roomConfig{}, stanza.NewError(stanza.NotAcceptable, fmt.Sprintf("a room name has at most %d characters", maxNameChars))
			}
		case "muc#roomconfig_roomdesc":
			if c.desc = strings.TrimSpace(v); utf8.RuneCountInString(c.desc) > maxDescChars {
				return roomConfig{}, stanza.NewError(stanza.NotAcceptable, fmt.Sprintf("a description has at most %d characters", maxDescChars))
			}
		case "muc#roomconfig_roomsecret":
			secret, secretSet = v, true
		case "muc#roomconfig_whois":
			switch v {
			case "anyone":
				c.whoisAnyone = true
			case "moderators":
				c.whoisAnyone = false
			default:
				return bad()
			}
		case "muc#roomconfig_maxusers":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				if v == "none" || v == "" {
					n = 0
				} else {
					return bad()
				}
			}
			c.maxUsers = min(n, rm.mod().cfg.MaxOccupants)
		case "muc#roomconfig_presencebroadcast":
			c.hidden = []string{roleModerator, roleParticipant, roleVisitor}
			for _, ve := range fe.ChildrenNS(NSData) {
				if ve.Name.Local != "value" {
					continue
				}
				i := slices.Index(c.hidden, ve.Text())
				if i < 0 {
					if ve.Text() == "" {
						continue
					}
					return bad()
				}
				c.hidden = slices.Delete(c.hidden, i, i+1)
			}
			if len(c.hidden) == 0 {
				c.hidden = nil
			}
		case "muc#roomconfig_allowpm":
			switch v {
			case "anyone", "participants", "moderators", "none":
				c.allowPM = v
			default:
				return bad()
			}
		}
	}
	if secretSet {
		c.password = secret
	}
	if !protected {
		c.password = ""
	} else if c.password == "" {
		return roomConfig{}, stanza.NewError(stanza.NotAcceptable, "a password-protected room needs muc#roomconfig_roomsecret")
	}
	return c, nil
}
