package xep227

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Rooms are not in XEP-0227. ode writes each MUC service's stored rooms
// as
//
//	<muc xmlns='urn:xmpp:ode:pie:muc:0' service='conference.example.org'>
//	  <room jid='lobby@conference.example.org' created='2024-01-02T03:04:05.000Z'>
//	    <x xmlns='jabber:x:data' type='submit'>…muc#roomconfig fields…</x>
//	    <subject><message xmlns='jabber:client' …><subject>…</subject></message></subject>
//	    <query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='owner' jid='…'/></query>
//	    <archive xmlns='urn:xmpp:pie:0#mam'>…XEP-0313 results…</archive>
//	  </room>
//	</muc>
//
// The configuration is a XEP-0045 muc#roomconfig form (§10.2) with the
// standard fields, and ode's own settings as ode#<name> fields holding
// their JSON value.

// roomFields maps the muc module's stored settings (JSON keys) to
// muc#roomconfig fields, with how the value is written.
var roomFields = []struct {
	key, field string
	kind       byte // 'b' boolean, 'i' integer, 's' text, 'w' whois, 'n' negated boolean
}{
	{"name", "muc#roomconfig_roomname", 's'},
	{"desc", "muc#roomconfig_roomdesc", 's'},
	{"public", "muc#roomconfig_publicroom", 'b'},
	{"members_only", "muc#roomconfig_membersonly", 'b'},
	{"moderated", "muc#roomconfig_moderatedroom", 'b'},
	{"password", "muc#roomconfig_roomsecret", 's'},
	{"whois_anyone", "muc#roomconfig_whois", 'w'},
	{"max_users", "muc#roomconfig_maxusers", 'i'},
	{"change_subject", "muc#roomconfig_changesubject", 'b'},
	{"allow_invites", "muc#roomconfig_allowinvites", 'b'},
	{"allow_pm", "muc#roomconfig_allowpm", 's'},
	{"no_archive", "muc#roomconfig_enablearchiving", 'n'},
}

const odeField = "ode#"

// roomForm writes a room's stored configuration (the muc module's JSON)
// as a muc#roomconfig form, fields in a fixed order.
func roomForm(config []byte) (*xmlstream.Element, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(config, &m); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	form := dataform.New(dataform.TypeSubmit, "http://jabber.org/protocol/muc#roomconfig")
	field := func(v, value string) { form.Add(v, "", "", value) }
	field("muc#roomconfig_persistentroom", "1")
	for _, f := range roomFields {
		raw, ok := m[f.key]
		if !ok {
			continue
		}
		delete(m, f.key)
		var value string
		switch f.kind {
		case 's':
			if err := json.Unmarshal(raw, &value); err != nil {
				return nil, fmt.Errorf("configuration: %s: %w", f.key, err)
			}
		case 'i':
			var n int64
			if err := json.Unmarshal(raw, &n); err != nil {
				return nil, fmt.Errorf("configuration: %s: %w", f.key, err)
			}
			value = strconv.FormatInt(n, 10)
		default:
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil {
				return nil, fmt.Errorf("configuration: %s: %w", f.key, err)
			}
			switch f.kind {
			case 'n':
				b = !b
				fallthrough
			case 'b':
				value = map[bool]string{false: "0", true: "1"}[b]
			case 'w':
				value = map[bool]string{false: "moderators", true: "anyone"}[b]
			}
		}
		field(f.field, value)
	}
	rest := make([]string, 0, len(m))
	for k := range m {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	for _, k := range rest {
		var compact bytes.Buffer
		if err := json.Compact(&compact, m[k]); err != nil {
			return nil, fmt.Errorf("configuration: %s: %w", k, err)
		}
		field(odeField+k, compact.String())
	}
	return form.Element(), nil
}

// roomConfig reads a muc#roomconfig form back into the muc module's
// stored configuration; fields it does not know are left out.
func roomConfig(x *xmlstream.Element) ([]byte, error) {
	m := map[string]json.RawMessage{}
	for _, f := range x.ChildrenNS(nsData) {
		if f.Name.Local != "field" {
			continue
		}
		v := f.Attribute("var")
		value := ""
		if val := f.Child(nsData, "value"); val != nil {
			value = val.Text()
		}
		if k, ok := cutPrefix(v, odeField); ok {
			if !json.Valid([]byte(value)) {
				return nil, fmt.Errorf("field %s: not a JSON value", v)
			}
			m[k] = json.RawMessage(value)
			continue
		}
		i := slices.IndexFunc(roomFields, func(rf struct {
			key, field string
			kind       byte
		}) bool {
			return rf.field == v
		})
		if i < 0 {
			continue
		}
		rf := roomFields[i]
		var out any
		switch rf.kind {
		case 's':
			out = value
		case 'i':
			n, err := strconv.ParseInt(value, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("field %s: %q is not an integer", v, value)
			}
			out = n
		case 'w':
			out = value == "anyone"
		default:
			b := value == "1" || value == "true"
			if !b && value != "0" && value != "false" {
				return nil, fmt.Errorf("field %s: %q is not a boolean", v, value)
			}
			if rf.kind == 'n' {
				b = !b
			}
			out = b
		}
		raw, _ := json.Marshal(out)
		m[rf.key] = raw
	}
	return json.Marshal(m) // keys sorted: the same form makes the same bytes
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

// muc imports ode's <muc/> element: the stored rooms of one service.
func (im *importer) muc(ctx context.Context, dec *decoder, t xml.StartElement) error {
	service := attr(t, "service")
	if !slices.Contains(im.opts.RoomServices, service) {
		return dec.errorf("<muc service='%s'>: not a MUC service of this server (%v)", service, im.opts.RoomServices)
	}
	return dec.children("<muc/>", func(t xml.StartElement) error {
		if t.Name.Space != NSMUC || t.Name.Local != "room" {
			return im.ignore(dec, t, "<muc/>")
		}
		return im.room(ctx, dec, service, t)
	})
}

// roomImport is the room being imported.
type roomImport struct {
	r      storage.Room
	stored bool
}

// room imports one <room/>.
func (im *importer) room(ctx context.Context, dec *decoder, service string, t xml.StartElement) error {
	j, err := jid.Parse(attr(t, "jid"))
	if err != nil || j.Local() == "" || j.Resource() != "" || j.DomainString() != service {
		return dec.errorf("<room jid='%s'>: not a room of %s", attr(t, "jid"), service)
	}
	rm := &roomImport{r: storage.Room{JID: j.String(), Config: []byte("{}"), Created: time.Now().UTC().Truncate(time.Millisecond)}}
	if c := attr(t, "created"); c != "" {
		if rm.r.Created, err = time.Parse(time.RFC3339Nano, c); err != nil {
			return dec.errorf("<room jid='%s'>: created %q: %v", j, c, err)
		}
		rm.r.Created = rm.r.Created.UTC()
	}
	put := func() error {
		if err := im.store.PutRoom(ctx, rm.r); err != nil {
			return fmt.Errorf("xep227: room %s: %w", j, err)
		}
		if !rm.stored {
			im.stats.Rooms++
		}
		rm.stored = true
		return nil
	}
	err = dec.children("<room/>", func(t xml.StartElement) error {
		switch {
		case t.Name.Space == nsData && t.Name.Local == "x":
			e, err := dec.element(t)
			if err != nil {
				return err
			}
			if rm.r.Config, err = roomConfig(e); err != nil {
				return dec.errorf("room %s: %v", j, err)
			}
			if rm.stored {
				return put()
			}
			return nil
		case t.Name.Space == NSMUC && t.Name.Local == "subject":
			e, err := dec.element(t)
			if err != nil {
				return err
			}
			if msg := e.Child(nsClient, "message"); msg != nil {
				rm.r.Subject = msg.AppendXML(nil, nsClient)
			}
			if rm.stored {
				return put()
			}
			return nil
		case t.Name.Space == nsMUCAdmin && t.Name.Local == "query":
			if !rm.stored {
				if err := put(); err != nil {
					return err
				}
			}
			return im.affiliations(ctx, dec, rm.r.JID)
		case t.Name.Space == NSMAM && t.Name.Local == "archive":
			if !rm.stored {
				if err := put(); err != nil {
					return err
				}
			}
			return im.roomArchive(ctx, dec, rm.r.JID)
		}
		return im.ignore(dec, t, "<room/>")
	})
	if err != nil {
		return err
	}
	if !rm.stored {
		return put()
	}
	return nil
}

func (im *importer) affiliations(ctx context.Context, dec *decoder, room string) error {
	return dec.children("the affiliations", func(t xml.StartElement) error {
		if t.Name.Space != nsMUCAdmin || t.Name.Local != "item" {
			return im.ignore(dec, t, "the affiliations")
		}
		raw, aff := attr(t, "jid"), attr(t, "affiliation")
		if err := dec.skip(); err != nil {
			return err
		}
		j, err := jid.Parse(raw)
		if err != nil {
			return dec.errorf("affiliation in %s: jid %q: %v", room, raw, err)
		}
		switch aff {
		case "owner", "admin", "member", "outcast":
		case "none", "":
			return nil
		default:
			return dec.errorf("affiliation in %s: %q for %s", room, aff, raw)
		}
		if err := im.store.SetRoomAffiliation(ctx, room, j.Bare().String(), aff); err != nil {
			return fmt.Errorf("xep227: affiliation of %s in %s: %w", raw, room, err)
		}
		im.stats.RoomAffiliations++
		return nil
	})
}

func (im *importer) roomArchive(ctx context.Context, dec *decoder, room string) error {
	j, _ := jid.Parse(room)
	a := &archiveImport{im: im, owner: room, append: im.store.AppendRoomArchive, count: &im.stats.RoomArchived}
	err := dec.children("<archive/>", func(t xml.StartElement) error {
		if t.Name.Space != nsMAM || t.Name.Local != "result" {
			return im.ignore(dec, t, "<archive/>")
		}
		e, err := dec.element(t)
		if err != nil {
			return err
		}
		m, sd, err := archivedMessage(e)
		if err != nil {
			return dec.errorf("archived message of %s: %v", room, err)
		}
		m.Local, m.Domain = j.Local(), j.DomainString()
		sd.forRoom(&m, room)
		return a.add(ctx, m)
	})
	if err != nil {
		return err
	}
	return a.flush(ctx)
}
