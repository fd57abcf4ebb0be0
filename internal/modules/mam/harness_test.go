package mam_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/mam"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// start starts a server with the mam module (cfg nil: its defaults) and
// the accounts alice and bob (password "pw").
func start(t testing.TB, cfg *mam.Config) *xmpptest.Server {
	t.Helper()
	srv := xmpptest.Start(t, func(c *config.Config) {
		if cfg != nil {
			c.Modules.Settings["mam"] = cfg
		}
	})
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	return srv
}

// user is a raw client session.
type user struct {
	t   testing.TB
	r   *xmpptest.Raw
	jid jid.JID
	ids int
}

// login logs local in with resource res.
func login(t testing.TB, srv *xmpptest.Server, local, res string) *user {
	t.Helper()
	r := srv.DialRaw(t)
	r.Login(local, "pw")
	return &user{t: t, r: r, jid: r.Bind(res)}
}

// online sends initial presence and reads until the server echoes it.
func (u *user) online() *user {
	u.t.Helper()
	u.r.Send(`<presence/>`)
	for {
		e := u.r.Next()
		if e.Name.Local == "presence" && e.Attribute("from") == u.jid.String() {
			return u
		}
	}
}

func (u *user) bare() string { return u.jid.Bare().String() }

// send sends a chat message with body to to, with extra XML inside.
func (u *user) send(to, body, extra string) {
	u.t.Helper()
	b := ""
	if body != "" {
		b = "<body>" + body + "</body>"
	}
	u.r.Send(fmt.Sprintf(`<message to='%s' type='chat'>%s%s</message>`, to, b, extra))
}

// expectMessage reads the next message, skipping presence.
func (u *user) expectMessage() *xmlstream.Element {
	u.t.Helper()
	for {
		e := u.r.Next()
		if e.Name.Local == "message" {
			return e
		}
		if e.Name.Local != "presence" {
			u.t.Fatalf("want a message, got %s", e)
		}
	}
}

// iq sends an IQ of type typ with payload (and to, if not "") and returns
// the messages that came before its answer, and the answer.
func (u *user) iq(typ, to, payload string) ([]*xmlstream.Element, *xmlstream.Element) {
	u.t.Helper()
	u.ids++
	id := fmt.Sprintf("q%d", u.ids)
	attrTo := ""
	if to != "" {
		attrTo = " to='" + to + "'"
	}
	u.r.Send(fmt.Sprintf(`<iq type='%s' id='%s'%s>%s</iq>`, typ, id, attrTo, payload))
	var msgs []*xmlstream.Element
	for {
		e := u.r.Next()
		switch {
		case e.Name.Local == "iq" && e.Attribute("id") == id:
			return msgs, e
		case e.Name.Local == "message":
			msgs = append(msgs, e)
		case e.Name.Local == "presence":
		default:
			u.t.Fatalf("unexpected %s", e)
		}
	}
}

// page is the answer to an archive query.
type page struct {
	ids      []string             // result ids, as sent
	bodies   []string             // the forwarded messages' bodies
	msgs     []*xmlstream.Element // the forwarded messages
	stamps   []string
	complete bool
	first    string
	last     string
}

// query runs an archive query with the given form fields ("var=value"
// pairs, ids may repeat) and RSM/flip XML, to the user's own archive.
func (u *user) query(fields []string, rsm string) page {
	u.t.Helper()
	p, err := u.tryQuery("", fields, rsm)
	if err != nil {
		u.t.Fatalf("query %q %s: %v", fields, rsm, err)
	}
	return p
}

func queryXML(queryID string, fields []string, rsm string) string {
	form := ""
	if len(fields) > 0 {
		form = `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>`
		var names []string
		values := map[string]string{}
		for _, f := range fields {
			name, value, _ := strings.Cut(f, "=")
			if _, ok := values[name]; !ok {
				names = append(names, name)
			}
			values[name] += `<value>` + value + `</value>`
		}
		for _, name := range names {
			form += `<field var='` + name + `'>` + values[name] + `</field>`
		}
		form += `</x>`
	}
	return `<query xmlns='urn:xmpp:mam:2' queryid='` + queryID + `'>` + form + rsm + `</query>`
}

// tryQuery is query to the archive at to, returning the stanza error.
func (u *user) tryQuery(to string, fields []string, rsm string) (page, error) {
	u.t.Helper()
	qid := fmt.Sprintf("qid%d", u.ids+1)
	msgs, res := u.iq("set", to, queryXML(qid, fields, rsm))
	if stanza.Type(res) == stanza.IQError {
		se, _ := stanza.ParseError(res)
		if len(msgs) > 0 {
			u.t.Errorf("results before an error: %s", msgs[0])
		}
		return page{}, se
	}
	var p page
	for _, m := range msgs {
		r := m.Child(mam.NS, "result")
		if r == nil || r.Attribute("queryid") != qid || m.Attribute("from") != u.bare() || m.Attribute("to") != u.jid.String() {
			u.t.Fatalf("not a result of query %s: %s", qid, m)
		}
		fwd := r.Child(mam.NSForward, "forwarded")
		orig := fwd.Child(stanza.NSClient, "message")
		delay := fwd.Child(stanza.NSDelay, "delay")
		if orig == nil || delay == nil {
			u.t.Fatalf("result without message or delay: %s", m)
		}
		p.ids = append(p.ids, r.Attribute("id"))
		p.msgs = append(p.msgs, orig)
		p.stamps = append(p.stamps, delay.Attribute("stamp"))
		if b := orig.Child(stanza.NSClient, "body"); b != nil {
			p.bodies = append(p.bodies, b.Text())
		} else {
			p.bodies = append(p.bodies, "")
		}
	}
	fin := res.Child(mam.NS, "fin")
	if fin == nil {
		u.t.Fatalf("no fin: %s", res)
	}
	p.complete = fin.Attribute("complete") == "true"
	if set := fin.Child(mam.NSRSM, "set"); set != nil {
		if f := set.Child(mam.NSRSM, "first"); f != nil {
			p.first = f.Text()
		}
		if l := set.Child(mam.NSRSM, "last"); l != nil {
			p.last = l.Text()
		}
	} else {
		u.t.Fatalf("fin without an RSM set: %s", res)
	}
	return p, nil
}

// stanzaID returns the stanza-id by by in m, or "".
func stanzaID(m *xmlstream.Element, by string) string {
	for _, e := range m.ChildrenNS(mam.NSSID) {
		if e.Name.Local == "stanza-id" && e.Attribute("by") == by {
			return e.Attribute("id")
		}
	}
	return ""
}
