package xep227

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/xmlstream"
)

// positive parses a positive decimal integer without leading zeros
// (§4.3's iter-count).
func positive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || s[0] == '0' || s[0] == '+' {
		return 0, errors.New("not a positive integer")
	}
	return n, nil
}

// decodeSCRAM decodes the base64 salt and keys of a verifier whose keys
// should be size bytes. ejabberd (24.12 at least) encodes them twice,
// the text it keeps them as being base64 already; keys that decode to
// base64 text of size bytes are decoded again, with the salt.
func decodeSCRAM(salt, serverKey, storedKey string, size int) (s, server, stored []byte, err error) {
	dec := func(name, v string) ([]byte, error) {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("<%s/>: not base64", name)
		}
		return b, nil
	}
	if s, err = dec("salt", salt); err != nil {
		return nil, nil, nil, err
	}
	if server, err = dec("server-key", serverKey); err != nil {
		return nil, nil, nil, err
	}
	if stored, err = dec("stored-key", storedKey); err != nil {
		return nil, nil, nil, err
	}
	if len(server) != size || len(stored) != size {
		s2, err1 := base64.StdEncoding.DecodeString(string(s))
		server2, err2 := base64.StdEncoding.DecodeString(string(server))
		stored2, err3 := base64.StdEncoding.DecodeString(string(stored))
		if err1 == nil && err2 == nil && err3 == nil && len(server2) == size && len(stored2) == size && len(s2) > 0 {
			s, server, stored = s2, server2, stored2
		}
		// Otherwise keys of another size are kept as the source had them.
	}
	return s, server, stored, nil
}

// credentialElement is a verifier as §4.3 writes it.
func credentialElement(c storage.Credential) *xmlstream.Element {
	e := xmlstream.NewElement(NSSCRAM, "scram-credentials").SetAttr("mechanism", "SCRAM-"+c.Hash)
	text := func(name, v string) {
		e.Append(xmlstream.NewElement(NSSCRAM, name).AppendText(v))
	}
	text("iter-count", strconv.Itoa(c.Iterations))
	text("salt", base64.StdEncoding.EncodeToString(c.Salt))
	text("server-key", base64.StdEncoding.EncodeToString(c.ServerKey))
	text("stored-key", base64.StdEncoding.EncodeToString(c.StoredKey))
	return e
}

// parseRosterItem reads a roster <item/> (RFC 6121 §2.1.2); ok is false
// for subscription='remove', which is no item.
func parseRosterItem(e *xmlstream.Element) (storage.RosterItem, bool, error) {
	j, err := jid.Parse(e.Attribute("jid"))
	if err != nil {
		return storage.RosterItem{}, false, fmt.Errorf("jid %q: %v", e.Attribute("jid"), err)
	}
	item := storage.RosterItem{Contact: j.Bare().String(), Name: e.Attribute("name"), Subscription: storage.SubNone}
	switch sub := e.Attribute("subscription"); sub {
	case "", "none":
	case "to", "from", "both":
		item.Subscription = storage.Subscription(sub)
	case "remove":
		return item, false, nil
	default:
		return item, false, fmt.Errorf("%s: subscription %q", item.Contact, sub)
	}
	item.AskOut = e.Attribute("ask") == "subscribe"
	item.Approved = e.Attribute("approved") == "true" || e.Attribute("approved") == "1"
	for _, g := range e.ChildrenNS(nsRoster) {
		name := g.Text()
		if g.Name.Local != "group" || name == "" || containsString(item.Groups, name) {
			continue
		}
		item.Groups = append(item.Groups, name)
	}
	return item, true, nil
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// rosterItemElement is a roster item as RFC 6121 writes it, with the
// pre-approval of §3.4.
func rosterItemElement(it storage.RosterItem) *xmlstream.Element {
	e := xmlstream.NewElement(nsRoster, "item").SetAttr("jid", it.Contact)
	if it.Name != "" {
		e.SetAttr("name", it.Name)
	}
	e.SetAttr("subscription", string(it.Subscription))
	if it.AskOut {
		e.SetAttr("ask", "subscribe")
	}
	if it.Approved {
		e.SetAttr("approved", "true")
	}
	for _, g := range it.Groups {
		e.Append(xmlstream.NewElement(nsRoster, "group").AppendText(g))
	}
	return e
}

// offlineMessage makes a stored offline message of a <message/> (§4.5):
// its stamp is that of the delay the server added (from its domain) or,
// failing that, of any delay, or now. The message is kept as it is.
func offlineMessage(e *xmlstream.Element, u *user) (storage.OfflineMessage, error) {
	var stamp time.Time
	for _, d := range e.ChildrenNS(nsDelay) {
		if d.Name.Local != "delay" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, d.Attribute("stamp"))
		if err != nil {
			return storage.OfflineMessage{}, fmt.Errorf("delay stamp %q: %v", d.Attribute("stamp"), err)
		}
		if stamp.IsZero() || d.Attribute("from") == u.host {
			stamp = t
		}
	}
	if stamp.IsZero() {
		stamp = time.Now()
	}
	return storage.OfflineMessage{Stanza: e.AppendXML(nil, nsClient), Stamp: stamp.UTC().Truncate(time.Millisecond)}, nil
}

// offlineElement is a stored offline message as §4.5 writes it: with
// the server's delay (XEP-0203), which ode's offline module adds when it
// stores a message, added from the stored stamp when it is missing.
func offlineElement(m storage.OfflineMessage, domain string) (*xmlstream.Element, error) {
	e, err := xmlstream.ParseElement(m.Stanza, nsClient)
	if err != nil {
		return nil, err
	}
	for _, d := range e.ChildrenNS(nsDelay) {
		if d.Name.Local == "delay" && d.Attribute("from") == domain {
			return e, nil
		}
	}
	e.Append(xmlstream.NewElement(nsDelay, "delay").SetAttr("from", domain).
		SetAttr("stamp", m.Stamp.UTC().Format(stampLayout)).AppendText("Offline storage"))
	return e, nil
}

// blockedByPrivacy returns the JIDs that a privacy query's default
// list, or the list named "Blocked contacts" (ejabberd's XEP-0191 list),
// denies all stanzas from.
func blockedByPrivacy(q *xmlstream.Element) []string {
	def := ""
	if d := q.Child(nsPrivacy, "default"); d != nil {
		def = d.Attribute("name")
	}
	var out []string
	for _, l := range q.ChildrenNS(nsPrivacy) {
		if l.Name.Local != "list" || (l.Attribute("name") != def && l.Attribute("name") != "Blocked contacts") {
			continue
		}
		for _, it := range l.ChildrenNS(nsPrivacy) {
			if it.Name.Local != "item" || it.Attribute("type") != "jid" || it.Attribute("action") != "deny" || len(it.ChildrenNS("")) > 0 {
				continue
			}
			if j, err := jid.Parse(it.Attribute("value")); err == nil && !containsString(out, j.String()) {
				out = append(out, j.String())
			}
		}
	}
	return out
}

// archivedMessage reads a XEP-0313 <result/> (§4.11): its id, and the
// forwarded message with its delay stamp.
func archivedMessage(e *xmlstream.Element) (storage.ArchivedMessage, sides, error) {
	id := e.Attribute("id")
	if id == "" {
		return storage.ArchivedMessage{}, sides{}, errors.New("<result/> without an id")
	}
	fw := e.Child(nsForward, "forwarded")
	if fw == nil {
		return storage.ArchivedMessage{}, sides{}, fmt.Errorf("<result id='%s'/> without <forwarded/>", id)
	}
	d, msg := fw.Child(nsDelay, "delay"), fw.Child(nsClient, "message")
	if d == nil || msg == nil {
		return storage.ArchivedMessage{}, sides{}, fmt.Errorf("<result id='%s'/>: want a <delay/> and a <message/> in <forwarded/>", id)
	}
	stamp, err := time.Parse(time.RFC3339Nano, d.Attribute("stamp"))
	if err != nil {
		return storage.ArchivedMessage{}, sides{}, fmt.Errorf("<result id='%s'/>: delay stamp %q: %v", id, d.Attribute("stamp"), err)
	}
	from, _ := jid.Parse(msg.Attribute("from"))
	to, _ := jid.Parse(msg.Attribute("to"))
	return storage.ArchivedMessage{ID: id, Stamp: stamp.UTC().Truncate(time.Millisecond), Stanza: msg.AppendXML(nil, nsClient)},
		sides{from, to}, nil
}

// sides are the from and to of an archived message.
type sides struct{ from, to jid.JID }

// forUser sets the direction and the other party of a message of
// owner's archive: outgoing when owner sent it.
func (s sides) forUser(m *storage.ArchivedMessage, owner string) {
	other := s.from
	if s.from.IsZero() || s.from.Bare().String() == owner {
		m.Outgoing, other = true, s.to
	}
	m.With, m.WithResource = other.Bare().String(), other.Resource()
}

// forRoom sets the sender of a message of a room's archive: the nick in
// its from (room@service/nick).
func (s sides) forRoom(m *storage.ArchivedMessage, room string) {
	m.With, m.WithResource, m.Outgoing = room, s.from.Resource(), false
}

// resultElement is an archived message as §4.11 writes it.
func resultElement(m storage.ArchivedMessage) (*xmlstream.Element, error) {
	msg, err := xmlstream.ParseElement(m.Stanza, nsClient)
	if err != nil {
		return nil, fmt.Errorf("archived message %s: %w", m.ID, err)
	}
	fw := xmlstream.NewElement(nsForward, "forwarded").Append(
		xmlstream.NewElement(nsDelay, "delay").SetAttr("stamp", m.Stamp.UTC().Format(stampLayout)), msg)
	return xmlstream.NewElement(nsMAM, "result").SetAttr("id", m.ID).Append(fw), nil
}
