package pep_test

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// TestMain fails the package's tests if they leave goroutines behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	nsPubSub         = pep.NSPubSub
	nsOwner          = pep.NSOwner
	nsEvent          = pep.NSEvent
	nsErrors         = pep.NSErrors
	nsGeo            = "http://jabber.org/protocol/geoloc"
	nsAxolotlDevices = "eu.siacs.conversations.axolotl.devicelist"
	nsOMEMO2Devices  = "urn:xmpp:omemo:2:devices"
)

// start starts a server with the pep module (edit may change its
// settings) and the accounts alice, bob, carol and dave, password "pw".
func start(t *testing.T, edit func(*pep.Config)) *xmpptest.Server {
	t.Helper()
	cfg := *pep.Info.Config.(*pep.Config)
	if edit != nil {
		edit(&cfg)
	}
	srv := xmpptest.Start(t, func(c *config.Config) { c.Modules.Settings["pep"] = &cfg })
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		srv.AddUser(t, u, "pw")
	}
	return srv
}

// subscribe makes a and b mutual presence subscribers, in the store.
func subscribe(t *testing.T, srv *xmpptest.Server, a, b string, groups ...string) {
	t.Helper()
	for _, p := range [][2]string{{a, b}, {b, a}} {
		contact := p[1]
		if !strings.Contains(contact, "@") {
			contact += "@" + srv.Domain
		}
		local, domain, _ := strings.Cut(p[0], "@")
		if domain == "" {
			domain = srv.Domain
		}
		if _, err := srv.Store().PutRosterItem(t.Context(), local, domain,
			storage.RosterItem{Contact: contact, Subscription: storage.SubBoth, Groups: groups}, 0); err != nil && !strings.Contains(p[0], ".") {
			t.Fatalf("PutRosterItem(%s, %s): %v", p[0], contact, err)
		}
	}
}

// client is a raw client session that answers the server's disco#info
// queries with its features (XEP-0115) and keeps what it read while
// waiting for something else.
type client struct {
	t        *testing.T
	r        *xmpptest.Raw
	jid      jid.JID
	ids      int
	features []string
	// wrongCaps makes it answer disco#info with a feature less than its
	// announced hash covers.
	wrongCaps bool
	queried   int // disco#info queries answered
	onlineAt  int // queried when it last sent presence
	held      []*xmlstream.Element
}

func login(t *testing.T, srv *xmpptest.Server, local, res string) *client {
	t.Helper()
	r := srv.DialRaw(t)
	r.Login(local, "pw")
	return &client{t: t, r: r, jid: r.Bind(res)}
}

const capsNode = "https://example.org/test-client"

// discoInfo is the client's disco#info answer.
func (c *client) discoInfo(node string) *xmlstream.Element {
	q := xmlstream.NewElement(stanza.NSDiscoInfo, "query")
	if node != "" {
		q.SetAttr("node", node)
	}
	q.Append(xmlstream.NewElement(stanza.NSDiscoInfo, "identity").SetAttr("category", "client").SetAttr("type", "pc").SetAttr("name", "test"))
	for _, f := range c.features {
		q.Append(xmlstream.NewElement(stanza.NSDiscoInfo, "feature").SetAttr("var", f))
	}
	return q
}

func (c *client) ver() string {
	v, ok := pep.CapsHash("sha-1", c.discoInfo(""))
	if !ok {
		c.t.Fatal("CapsHash failed")
	}
	return v
}

// online sends available presence with capabilities for features (none:
// no <c/>) and reads its own presence back.
func (c *client) online(features ...string) *client {
	c.t.Helper()
	c.features = append([]string{stanza.NSDiscoInfo}, features...)
	c.onlineAt = c.queried
	caps := ""
	if len(features) > 0 {
		caps = fmt.Sprintf(`<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='%s' ver='%s'/>`, capsNode, c.ver())
	}
	c.r.Send(`<presence>` + caps + `</presence>`)
	c.expect("own presence", func(e *xmlstream.Element) bool {
		return e.Name.Local == "presence" && e.Attribute("from") == c.jid.String()
	})
	return c
}

// awaitQuery reads (and holds) what comes until the server asked the
// client for its capabilities since its last presence, and answers.
func (c *client) awaitQuery() *client {
	c.t.Helper()
	for range 200 {
		if c.queried > c.onlineAt {
			return c
		}
		e, query := c.next()
		if query {
			return c
		}
		c.held = append(c.held, e)
	}
	c.t.Fatal("no capabilities query")
	return c
}

// read returns the next element, answering disco#info queries.
func (c *client) read() *xmlstream.Element {
	c.t.Helper()
	for {
		if e, query := c.next(); !query {
			return e
		}
	}
}

// next reads one element; a disco#info query is answered, with query
// true.
func (c *client) next() (e *xmlstream.Element, query bool) {
	c.t.Helper()
	e = c.r.Next()
	if e.Name.Local == "iq" && stanza.Type(e) == stanza.IQGet && e.Child(stanza.NSDiscoInfo, "query") != nil {
		c.queried++
		q := c.discoInfo(e.Child(stanza.NSDiscoInfo, "query").Attribute("node"))
		if c.wrongCaps {
			q.Children = q.Children[:len(q.Children)-1]
		}
		c.r.Send(`<iq type='result' id='` + e.Attribute("id") + `' to='` + e.Attribute("from") + `'>` + string(q.AppendXML(nil, stanza.NSClient)) + `</iq>`)
		return e, true
	}
	return e, false
}

// expect returns the first element (held or new) that match accepts.
func (c *client) expect(what string, match func(*xmlstream.Element) bool) *xmlstream.Element {
	c.t.Helper()
	for i, e := range c.held {
		if match(e) {
			c.held = append(c.held[:i], c.held[i+1:]...)
			return e
		}
	}
	for range 200 {
		e := c.read()
		if match(e) {
			return e
		}
		c.held = append(c.held, e)
	}
	c.t.Fatalf("%s: not received; got %v", what, c.held)
	return nil
}

// iq sends an IQ (to "" for none) and returns its answer.
func (c *client) iq(typ, to, payload string) *xmlstream.Element {
	c.t.Helper()
	c.ids++
	id := fmt.Sprintf("q%d", c.ids)
	attrTo := ""
	if to != "" {
		attrTo = " to='" + to + "'"
	}
	c.r.Send(fmt.Sprintf(`<iq type='%s' id='%s'%s>%s</iq>`, typ, id, attrTo, payload))
	return c.expect("answer to "+id, func(e *xmlstream.Element) bool {
		return e.Name.Local == "iq" && e.Attribute("id") == id && (stanza.Type(e) == stanza.IQResult || stanza.Type(e) == stanza.IQError)
	})
}

func (c *client) mustIQ(typ, to, payload string) *xmlstream.Element {
	c.t.Helper()
	res := c.iq(typ, to, payload)
	if stanza.Type(res) != stanza.IQResult {
		c.t.Fatalf("%s %s: %s", typ, payload, res)
	}
	return res
}

// iqErr checks that the IQ fails with cond and, unless app is "", the
// pubsub#errors condition app.
func (c *client) iqErr(typ, to, payload string, cond stanza.Condition, app string) *stanza.Error {
	c.t.Helper()
	res := c.iq(typ, to, payload)
	se, ok := stanza.ParseError(res)
	if !ok {
		c.t.Fatalf("%s: want error %s %s, got %s", payload, cond, app, res)
	}
	if se.Condition != cond {
		c.t.Errorf("%s: condition %s, want %s (%s)", payload, se.Condition, cond, res)
	}
	if app != "" && (se.App == nil || se.App.Name.Space != nsErrors || se.App.Name.Local != app) {
		c.t.Errorf("%s: application condition %v, want %s (%s)", payload, se.App, app, res)
	}
	if app == "" && se.App != nil && se.App.Name.Space == nsErrors {
		c.t.Errorf("%s: unexpected application condition %s", payload, se.App)
	}
	return se
}

// publish publishes payload as item id ("" for none) on node with the
// publish-options fields (name, value, name, value…) and returns the id.
func (c *client) publish(to, node, id, payload string, options ...string) string {
	c.t.Helper()
	res := c.mustIQ("set", to, publishXML(node, id, payload, options...))
	item := res.Child(nsPubSub, "pubsub").Child(nsPubSub, "publish").Child(nsPubSub, "item")
	return item.Attribute("id")
}

func publishXML(node, id, payload string, options ...string) string {
	idAttr := ""
	if id != "" {
		idAttr = " id='" + id + "'"
	}
	po := ""
	if len(options) > 0 {
		po = `<publish-options>` + formXML(pep.NSPublishOptions, options...) + `</publish-options>`
	}
	return `<pubsub xmlns='` + nsPubSub + `'><publish node='` + node + `'><item` + idAttr + `>` + payload + `</item></publish>` + po + `</pubsub>`
}

// formXML is a submitted form of formType with the fields (name, value…).
func formXML(formType string, fields ...string) string {
	var b strings.Builder
	b.WriteString(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>` + formType + `</value></field>`)
	for i := 0; i+1 < len(fields); i += 2 {
		b.WriteString(`<field var='` + fields[i] + `'><value>` + fields[i+1] + `</value></field>`)
	}
	b.WriteString(`</x>`)
	return b.String()
}

func configureXML(node string, fields ...string) string {
	return `<pubsub xmlns='` + nsOwner + `'><configure node='` + node + `'>` + formXML(pep.NSNodeConfig, fields...) + `</configure></pubsub>`
}

func itemsXML(node, extra string) string {
	return `<pubsub xmlns='` + nsPubSub + `'><items node='` + node + `'` + extra + `</pubsub>`
}

// items fetches the node's items from to and returns their ids.
func (c *client) items(to, node string) []string {
	c.t.Helper()
	res := c.mustIQ("get", to, itemsXML(node, "/>"))
	return itemIDs(res.Child(nsPubSub, "pubsub").Child(nsPubSub, "items"))
}

func itemIDs(items *xmlstream.Element) []string {
	var ids []string
	for _, it := range items.ChildrenNS(items.Name.Space) {
		if it.Name.Local == "item" {
			ids = append(ids, it.Attribute("id"))
		}
	}
	return ids
}

// configField returns the value of the field in the node's configuration
// form.
func (c *client) configField(node, field string) string {
	c.t.Helper()
	res := c.mustIQ("get", "", `<pubsub xmlns='`+nsOwner+`'><configure node='`+node+`'/></pubsub>`)
	x := res.Child(nsOwner, "pubsub").Child(nsOwner, "configure").Child(pep.NSData, "x")
	for _, f := range x.ChildrenNS(pep.NSData) {
		if f.Attribute("var") == field {
			if v := f.Child(pep.NSData, "value"); v != nil {
				return v.Text()
			}
			return ""
		}
	}
	c.t.Fatalf("no field %s in %s", field, x)
	return ""
}

// isEvent matches a notification from from about node.
func isEvent(from, node string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool {
		if e.Name.Local != "message" || e.Attribute("from") != from {
			return false
		}
		ev := e.Child(nsEvent, "event")
		if ev == nil {
			return false
		}
		for _, c := range ev.Children {
			if c.Elem != nil && c.Elem.Attribute("node") == node {
				return true
			}
		}
		return false
	}
}

// eventItems returns the <items/> of a notification.
func eventItems(e *xmlstream.Element) *xmlstream.Element {
	return e.Child(nsEvent, "event").Child(nsEvent, "items")
}

// barrier makes sure everything the server sent c before now was read:
// a ping answered by the server comes after it.
func (c *client) barrier() {
	c.t.Helper()
	c.mustIQ("get", c.jid.Domain().String(), `<ping xmlns='urn:xmpp:ping'/>`)
}

// noEvent checks that c holds no notification about node from from.
func (c *client) noEvent(from, node string) {
	c.t.Helper()
	c.barrier()
	match := isEvent(from, node)
	for _, e := range c.held {
		if match(e) {
			c.t.Errorf("%s got a notification it should not have: %s", c.jid, e)
		}
	}
}

func geo(text string) string {
	return `<geoloc xmlns='` + nsGeo + `'><text>` + text + `</text></geoloc>`
}
