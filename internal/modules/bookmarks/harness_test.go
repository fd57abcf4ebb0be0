package bookmarks_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

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
	nsPubSub  = pep.NSPubSub
	nsEvent   = pep.NSEvent
	nsPrivate = "jabber:iq:private"
	ns402     = "urn:xmpp:bookmarks:1"
	ns48      = "storage:bookmarks"
)

// start starts a server (edit may change pep's settings) with the
// account alice, password "pw".
func start(t *testing.T, edit func(*pep.Config)) *xmpptest.Server {
	t.Helper()
	cfg := *pep.Info.Config.(*pep.Config)
	if edit != nil {
		edit(&cfg)
	}
	srv := xmpptest.Start(t, func(c *config.Config) { c.Modules.Settings["pep"] = &cfg })
	srv.AddUser(t, "alice", "pw")
	return srv
}

// client is a raw session that keeps what it read while waiting for
// something else.
type client struct {
	t    *testing.T
	r    *xmpptest.Raw
	jid  jid.JID
	ids  int
	held []*xmlstream.Element
}

// login binds res and, when online, sends available presence.
func login(t *testing.T, srv *xmpptest.Server, local, res string, online bool) *client {
	t.Helper()
	r := srv.DialRaw(t)
	r.Login(local, "pw")
	c := &client{t: t, r: r, jid: r.Bind(res)}
	if online {
		r.Send(`<presence/>`)
		c.expect("own presence", func(e *xmlstream.Element) bool {
			return e.Name.Local == "presence" && e.Attribute("from") == c.jid.String()
		})
	}
	return c
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
	for range 500 {
		e := c.r.Next()
		if match(e) {
			return e
		}
		c.held = append(c.held, e)
	}
	c.t.Fatalf("%s: not received; got %v", what, c.held)
	return nil
}

// iq sends an IQ without 'to' and returns its answer.
func (c *client) iq(typ, payload string) *xmlstream.Element {
	c.t.Helper()
	c.ids++
	id := fmt.Sprintf("q%d", c.ids)
	c.r.Send(fmt.Sprintf(`<iq type='%s' id='%s'>%s</iq>`, typ, id, payload))
	return c.expect("answer to "+id, func(e *xmlstream.Element) bool {
		return e.Name.Local == "iq" && e.Attribute("id") == id && (stanza.Type(e) == stanza.IQResult || stanza.Type(e) == stanza.IQError)
	})
}

func (c *client) mustIQ(typ, payload string) *xmlstream.Element {
	c.t.Helper()
	res := c.iq(typ, payload)
	if stanza.Type(res) != stanza.IQResult {
		c.t.Fatalf("%s %s: %s", typ, payload, res)
	}
	return res
}

func (c *client) iqErr(typ, payload string, cond stanza.Condition) {
	c.t.Helper()
	res := c.iq(typ, payload)
	se, ok := stanza.ParseError(res)
	if !ok || se.Condition != cond {
		c.t.Fatalf("%s: want error %s, got %s", payload, cond, res)
	}
}

// barrier makes sure everything the server sent before now was read.
func (c *client) barrier() {
	c.t.Helper()
	c.mustIQ("get", `<ping xmlns='urn:xmpp:ping'/>`)
}

// events takes the held notifications about node (after a barrier) and
// returns them.
func (c *client) events(node string) []*xmlstream.Element {
	c.t.Helper()
	c.barrier()
	var out, rest []*xmlstream.Element
	for _, e := range c.held {
		if e.Name.Local == "message" && e.Attribute("from") == c.jid.Bare().String() {
			if ev := e.Child(nsEvent, "event"); ev != nil {
				if items := ev.Child(nsEvent, "items"); items != nil && items.Attribute("node") == node {
					out = append(out, items)
					continue
				}
			}
		}
		rest = append(rest, e)
	}
	c.held = rest
	return out
}

// publish402 publishes a XEP-0402 bookmark with the XEP's publish-options.
func (c *client) publish402(room, conference string) {
	c.t.Helper()
	c.mustIQ("set", `<pubsub xmlns='`+nsPubSub+`'><publish node='`+ns402+`'><item id='`+room+`'>`+conference+`</item></publish>`+
		`<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>`+pep.NSPublishOptions+`</value></field>`+
		`<field var='pubsub#persist_items'><value>true</value></field><field var='pubsub#max_items'><value>max</value></field>`+
		`<field var='pubsub#send_last_published_item'><value>never</value></field><field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options></pubsub>`)
}

// retract402 retracts a XEP-0402 bookmark with notify (XEP-0402 §3.3).
func (c *client) retract402(room string) {
	c.t.Helper()
	c.mustIQ("set", `<pubsub xmlns='`+nsPubSub+`'><retract node='`+ns402+`' notify='true'><item id='`+room+`'/></retract></pubsub>`)
}

// items returns the items of the account's node by id.
func (c *client) items(node string) map[string]*xmlstream.Element {
	c.t.Helper()
	res := c.iq("get", `<pubsub xmlns='`+nsPubSub+`'><items node='`+node+`'/></pubsub>`)
	out := map[string]*xmlstream.Element{}
	if stanza.Type(res) == stanza.IQError {
		return out
	}
	for _, it := range res.Child(nsPubSub, "pubsub").Child(nsPubSub, "items").ChildrenNS(nsPubSub) {
		out[it.Attribute("id")] = it.FirstChild()
	}
	return out
}

// private returns the account's XEP-0048 bookmarks in private storage.
func (c *client) private() *xmlstream.Element {
	c.t.Helper()
	res := c.mustIQ("get", `<query xmlns='`+nsPrivate+`'><storage xmlns='`+ns48+`'/></query>`)
	return res.Child(nsPrivate, "query").Child(ns48, "storage")
}

func (c *client) setPrivate(storage string) {
	c.t.Helper()
	c.mustIQ("set", `<query xmlns='`+nsPrivate+`'>`+storage+`</query>`)
}

// legacy returns the payload of the legacy PEP item.
func (c *client) legacy() *xmlstream.Element {
	c.t.Helper()
	return c.items(ns48)["current"]
}

// configField returns a field of the node's configuration form.
func (c *client) configField(node, field string) string {
	c.t.Helper()
	res := c.mustIQ("get", `<pubsub xmlns='`+pep.NSOwner+`'><configure node='`+node+`'/></pubsub>`)
	x := res.Child(pep.NSOwner, "pubsub").Child(pep.NSOwner, "configure").Child(pep.NSData, "x")
	for _, f := range x.ChildrenNS(pep.NSData) {
		if f.Attribute("var") == field {
			if v := f.Child(pep.NSData, "value"); v != nil {
				return v.Text()
			}
			return ""
		}
	}
	return ""
}

// conferences returns the conferences of a XEP-0048 <storage/> by room,
// serialised.
func conferences(st *xmlstream.Element) map[string]string {
	out := map[string]string{}
	if st == nil {
		return out
	}
	for _, c := range st.ChildrenNS(ns48) {
		if c.Name.Local == "conference" {
			out[c.Attribute("jid")] = c.String()
		}
	}
	return out
}

// rooms returns the rooms of conferences, in order.
func rooms(st *xmlstream.Element) string {
	var out []string
	if st != nil {
		for _, c := range st.ChildrenNS("") {
			if c.Name.Local == "conference" {
				out = append(out, c.Attribute("jid"))
			} else {
				out = append(out, "<"+c.Name.Local+">")
			}
		}
	}
	return strings.Join(out, " ")
}

// pubsubNode is a node with the default configuration, for the store.
func pubsubNode(node string) storage.PubSubNode {
	return storage.PubSubNode{Node: node, Created: time.Now()}
}

// publishStored puts an item into alice's node in the store, behind the
// server's back.
func publishStored(t *testing.T, srv *xmpptest.Server, node, id, payload string) {
	t.Helper()
	it := storage.PubSubItem{ID: id, Publisher: "alice@" + srv.Domain, Published: time.Now(), Payload: []byte(payload)}
	if _, err := srv.Store().PublishPubSubItem(t.Context(), "alice", srv.Domain, node, it, 0); err != nil {
		t.Fatal(err)
	}
}
