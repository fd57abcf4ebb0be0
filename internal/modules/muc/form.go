package muc

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Limits of the configuration's text fields.
const (
	maxNameChars = 100
	maxDescChars = 1000
)

// configForm is the room's muc#roomconfig form with its current values
// (§10.2, §15.5.3).
func (rm *room) configForm() *xmlstream.Element {
	c := rm.cfg
	f := dataform.New(dataform.TypeForm, NSConfig)
	f.Title = "Configuration of " + rm.jid.String()
	f.Add("muc#roomconfig_roomname", "text-single", "Name", c.name)
	f.Add("muc#roomconfig_roomdesc", "text-single", "Description", c.desc)
	f.Add("muc#roomconfig_persistentroom", "boolean", "Persistent (stays when empty)", dataform.Bool(c.persistent))
	f.Add("muc#roomconfig_publicroom", "boolean", "Listed in the directory", dataform.Bool(c.public))
	f.Add("muc#roomconfig_membersonly", "boolean", "Members only", dataform.Bool(c.membersOnly))
	f.Add("muc#roomconfig_moderatedroom", "boolean", "Moderated (visitors may not speak)", dataform.Bool(c.moderated))
	f.Add("muc#roomconfig_passwordprotectedroom", "boolean", "Password protected", dataform.Bool(c.password != ""))
	secret := f.Add("muc#roomconfig_roomsecret", "text-private", "Password")
	if c.password != "" {
		secret.Values = []string{c.password}
	}
	whois := "moderators"
	if c.whoisAnyone {
		whois = "anyone"
	}
	f.Add("muc#roomconfig_whois", "list-single", "Who sees real addresses", whois).Choices(
		"moderators", "Moderators",
		"anyone", "Anyone",
	)
	maxUsers := f.Add("muc#roomconfig_maxusers", "list-single", "Most occupants", strconv.Itoa(rm.maxUsersSetting()))
	for _, n := range []string{"10", "20", "30", "50", "100", "200", "500", "1000"} {
		maxUsers.Option(n, n)
	}
	f.Add("muc#roomconfig_changesubject", "boolean", "Occupants may change the subject", dataform.Bool(c.changeSubject))
	f.Add("muc#roomconfig_allowinvites", "boolean", "Occupants may invite", dataform.Bool(c.allowInvites))
	f.Add("muc#roomconfig_enablearchiving", "boolean", "Keep an archive (persistent rooms)", dataform.Bool(c.archive))
	var shown []string
	for _, role := range []string{roleModerator, roleParticipant, roleVisitor} {
		if c.shows(role) {
			shown = append(shown, role)
		}
	}
	f.Add("muc#roomconfig_presencebroadcast", "list-multi", "Roles whose presence is broadcast", shown...).Choices(
		roleModerator, "Moderator",
		roleParticipant, "Participant",
		roleVisitor, "Visitor",
	)
	f.Add("muc#roomconfig_allowpm", "list-single", "Who may send private messages", c.allowPM).Choices(
		"anyone", "Anyone",
		"participants", "Participants",
		"moderators", "Moderators",
		"none", "No one",
	)
	return f.Element()
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
