package disco_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/disco"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestCapsVer checks the hash with the XEP-0115 §5.2 simple generation
// example, whatever the order of the input.
func TestCapsVer(t *testing.T) {
	ids := []router.Identity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}}
	features := []string{
		"http://jabber.org/protocol/caps",
		"http://jabber.org/protocol/disco#info",
		"http://jabber.org/protocol/disco#items",
		"http://jabber.org/protocol/muc",
	}
	const want = "QgayPKawpkPSDYmwT/WM94uAlu0="
	if got := disco.CapsVer(ids, features); got != want {
		t.Errorf("CapsVer = %q, want %q", got, want)
	}
	slices.Reverse(features)
	if got := disco.CapsVer(ids, features); got != want {
		t.Errorf("CapsVer of reversed features = %q, want %q", got, want)
	}
}

// discoIQ sends a disco#info or disco#items get and returns the query or
// the error.
func discoIQ(t *testing.T, c *client.Client, ns, to, node string) (*xmlstream.Element, error) {
	t.Helper()
	q := xmlstream.NewElement(ns, "query")
	if node != "" {
		q.SetAttr("node", node)
	}
	res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, to, "", "").Append(q))
	if err != nil {
		return nil, err
	}
	q = res.Child(ns, "query")
	if q == nil {
		t.Fatalf("no query in %s", res)
	}
	if q.Attribute("node") != node {
		t.Errorf("node %q in the answer, want %q", q.Attribute("node"), node)
	}
	return q, nil
}

func wantCondition(t *testing.T, err error, cond stanza.Condition) {
	t.Helper()
	if !errors.Is(err, stanza.NewError(cond, "")) {
		t.Fatalf("got %v, want %s", err, cond)
	}
}

// parseInfo returns a disco#info result's identities and features.
func parseInfo(q *xmlstream.Element) ([]router.Identity, []string) {
	var ids []router.Identity
	var fs []string
	for _, e := range q.ChildrenNS(stanza.NSDiscoInfo) {
		switch e.Name.Local {
		case "identity":
			ids = append(ids, router.Identity{Category: e.Attribute("category"), Type: e.Attribute("type"), Name: e.Attribute("name")})
		case "feature":
			fs = append(fs, e.Attribute("var"))
		}
	}
	return ids, fs
}

func TestServerInfo(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	q, err := discoIQ(t, c, stanza.NSDiscoInfo, srv.Domain, "")
	if err != nil {
		t.Fatal(err)
	}
	ids, fs := parseInfo(q)
	if !slices.Contains(ids, router.Identity{Category: "server", Type: "im", Name: "ode"}) {
		t.Errorf("identities %v lack server/im ode", ids)
	}
	for _, f := range []string{stanza.NSDiscoInfo, stanza.NSDiscoItems, stanza.NSPing, stanza.NSVersion} {
		if !slices.Contains(fs, f) {
			t.Errorf("features %v lack %s", fs, f)
		}
	}
	if !slices.IsSorted(fs) || len(slices.Compact(slices.Clone(fs))) != len(fs) {
		t.Errorf("features not sorted and unique: %v", fs)
	}
	_, err = discoIQ(t, c, stanza.NSDiscoInfo, srv.Domain, "urn:example:unknown")
	wantCondition(t, err, stanza.ItemNotFound)
}

// TestCapsStreamFeature: the <c/> stream feature carries the hash of what
// disco#info returns, and the node#ver query returns the same.
func TestCapsStreamFeature(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "juliet", "balcony")
	r := srv.DialRaw(t)
	f := r.Login("juliet", "balcony")
	r.Bind("raw")
	var c *xmlstream.Element
	for _, e := range f.Other {
		if e.Name.Space == disco.NSCaps && e.Name.Local == "c" {
			c = e
		}
	}
	if c == nil {
		t.Fatalf("no caps in the stream features %+v", f)
	}
	ver := c.Attribute("ver")
	if c.Attribute("hash") != "sha-1" || c.Attribute("node") != disco.CapsNode || ver == "" {
		t.Fatalf("caps %s", c)
	}

	cl := srv.Dial(t, srv.AddUser(t, "romeo", "orchard"), "orchard")
	plain, err := discoIQ(t, cl, stanza.NSDiscoInfo, srv.Domain, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := disco.CapsVer(parseInfo(plain)); got != ver {
		t.Errorf("the hash of disco#info is %q, the stream feature says %q", got, ver)
	}
	withNode, err := discoIQ(t, cl, stanza.NSDiscoInfo, srv.Domain, disco.CapsNode+"#"+ver)
	if err != nil {
		t.Fatal(err)
	}
	if got := disco.CapsVer(parseInfo(withNode)); got != ver {
		t.Errorf("the hash of disco#info to node#ver is %q, want %q", got, ver)
	}
}

// TestServerItems: the domain's items are the services on its
// sub-domains (MUC and upload; none when they are disabled).
func TestServerItems(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	q, err := discoIQ(t, c, stanza.NSDiscoItems, srv.Domain, "")
	if err != nil {
		t.Fatal(err)
	}
	var items []string
	for _, it := range q.ChildrenNS(stanza.NSDiscoItems) {
		items = append(items, it.Attribute("jid"))
	}
	if !slices.Equal(items, []string{"conference.localhost", "upload.localhost"}) {
		t.Errorf("items %s, want conference.localhost and upload.localhost", q)
	}
	_, err = discoIQ(t, c, stanza.NSDiscoItems, srv.Domain, "urn:example:unknown")
	wantCondition(t, err, stanza.ItemNotFound)

	srv = xmpptest.Start(t, func(c *config.Config) { c.Modules.Disabled = []string{"upload", "muc"} })
	c = srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	if q, err = discoIQ(t, c, stanza.NSDiscoItems, srv.Domain, ""); err != nil || q.FirstChild() != nil {
		t.Errorf("items without the upload and muc modules: %v, %v; want none", q, err)
	}
}

// TestAccountInfo: the server answers for accounts, but only to the account
// itself and to its presence subscribers (XEP-0030 §8).
func TestAccountInfo(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	juliet := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	romeo := srv.Dial(t, srv.AddUser(t, "romeo", "orchard"), "orchard")
	tybalt := srv.Dial(t, srv.AddUser(t, "tybalt", "sword"), "sword")
	// Romeo is subscribed to Juliet's presence; Tybalt is not.
	if _, err := srv.Store().PutRosterItem(t.Context(), "juliet", srv.Domain,
		storage.RosterItem{Contact: "romeo@" + srv.Domain, Subscription: storage.SubFrom}, 0); err != nil {
		t.Fatal(err)
	}
	account := router.Identity{Category: "account", Type: "registered"}
	tests := []struct {
		name     string
		c        *client.Client
		to, node string
		want     stanza.Condition // "" for a result
	}{
		{"own bare JID", juliet, "juliet@localhost", "", ""},
		{"no to", juliet, "", "", ""},
		{"subscriber", romeo, "juliet@localhost", "", ""},
		{"not subscribed", tybalt, "juliet@localhost", "", stanza.ServiceUnavailable},
		{"subscription the other way", juliet, "romeo@localhost", "", stanza.ServiceUnavailable},
		{"no such account", juliet, "nobody@localhost", "", stanza.ServiceUnavailable},
		{"own node", juliet, "juliet@localhost", "urn:example:node", stanza.ItemNotFound},
		{"stranger's node", tybalt, "juliet@localhost", "urn:example:node", stanza.ServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := discoIQ(t, tt.c, stanza.NSDiscoInfo, tt.to, tt.node)
			if tt.want != "" {
				wantCondition(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ids, fs := parseInfo(q)
			// account/registered, and pubsub/pep from the pep module.
			if !slices.Equal(ids, []router.Identity{account, {Category: "pubsub", Type: "pep"}}) {
				t.Errorf("identities %v, want account/registered and pubsub/pep", ids)
			}
			if !slices.Contains(fs, stanza.NSDiscoInfo) {
				t.Errorf("features %v lack disco#info", fs)
			}
		})
	}
}

func TestAccountItems(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	juliet := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	tybalt := srv.Dial(t, srv.AddUser(t, "tybalt", "sword"), "sword")
	tests := []struct {
		name     string
		c        *client.Client
		to, node string
		want     stanza.Condition
	}{
		{"own", juliet, "juliet@localhost", "", ""},
		{"stranger", tybalt, "juliet@localhost", "", ""},
		{"no such account", tybalt, "nobody@localhost", "", ""},
		{"own node", juliet, "juliet@localhost", "urn:example:node", stanza.ItemNotFound},
		{"stranger's node", tybalt, "juliet@localhost", "urn:example:node", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := discoIQ(t, tt.c, stanza.NSDiscoItems, tt.to, tt.node)
			if tt.want != "" {
				wantCondition(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q.FirstChild() != nil {
				t.Errorf("items %s, want none", q)
			}
		})
	}
}
