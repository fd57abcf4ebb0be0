package private_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/modules/private"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func query(children ...*xmlstream.Element) *xmlstream.Element {
	return xmlstream.NewElement(private.NS, "query").Append(children...)
}

// prefs is the XEP-0049 example element.
func prefs(nick string) *xmlstream.Element {
	e := xmlstream.NewElement("exodus:prefs", "exodus")
	if nick != "" {
		e.Append(xmlstream.NewElement("exodus:prefs", "defaultnick").AppendText(nick))
	}
	return e
}

func bookmarks() *xmlstream.Element {
	return xmlstream.NewElement("storage:bookmarks", "storage").Append(
		xmlstream.NewElement("storage:bookmarks", "conference").
			SetAttr("name", "Council of Oberon").SetAttr("autojoin", "true").SetAttr("jid", "council@conference.underhill.org").
			Append(xmlstream.NewElement("storage:bookmarks", "nick").AppendText("Puck")))
}

func iq(t *testing.T, c *client.Client, typ, to string, q *xmlstream.Element) (*xmlstream.Element, error) {
	t.Helper()
	res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, typ, to, "", "").Append(q))
	if err != nil {
		return nil, err
	}
	if typ == stanza.IQSet {
		return nil, nil
	}
	q = res.Child(private.NS, "query")
	if q == nil {
		t.Fatalf("no query in %s", res)
	}
	return q, nil
}

func wantCondition(t *testing.T, err error, cond stanza.Condition) {
	t.Helper()
	if !errors.Is(err, stanza.NewError(cond, "")) {
		t.Fatalf("got %v, want %s", err, cond)
	}
}

func TestStoreAndRetrieve(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "hamlet", "denmark"), "denmark")
	// Nothing stored: the element comes back as asked.
	q, err := iq(t, c, stanza.IQGet, "", query(prefs("")))
	if err != nil {
		t.Fatal(err)
	}
	if q.String() != query(prefs("")).String() {
		t.Fatalf("got %s", q)
	}
	if _, err := iq(t, c, stanza.IQSet, "", query(prefs("Hamlet"))); err != nil {
		t.Fatal(err)
	}
	if _, err := iq(t, c, stanza.IQSet, "hamlet@localhost", query(bookmarks())); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ask  *xmlstream.Element
		want *xmlstream.Element
	}{
		{"prefs", prefs(""), prefs("Hamlet")},
		{"bookmarks", xmlstream.NewElement("storage:bookmarks", "storage"), bookmarks()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, to := range []string{"", "hamlet@localhost"} {
				q, err := iq(t, c, stanza.IQGet, to, query(tt.ask))
				if err != nil {
					t.Fatal(err)
				}
				if q.String() != query(tt.want).String() {
					t.Fatalf("to %q: got %s, want %s", to, q, query(tt.want))
				}
			}
		})
	}
	// A set replaces the element of the same name.
	if _, err := iq(t, c, stanza.IQSet, "", query(prefs("Prince"))); err != nil {
		t.Fatal(err)
	}
	if q, _ := iq(t, c, stanza.IQGet, "", query(prefs(""))); q.String() != query(prefs("Prince")).String() {
		t.Fatalf("after replace: %s", q)
	}
}

func TestErrors(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	hamlet := srv.Dial(t, srv.AddUser(t, "hamlet", "denmark"), "denmark")
	srv.AddUser(t, "macbeth", "scotland")
	tests := []struct {
		name string
		typ  string
		to   string
		q    *xmlstream.Element
		want stanza.Condition
	}{
		{"get another user's", stanza.IQGet, "macbeth@localhost", query(prefs("")), stanza.Forbidden},
		{"set another user's", stanza.IQSet, "macbeth@localhost", query(prefs("Macbeth")), stanza.Forbidden},
		{"to the server", stanza.IQGet, srv.Domain, query(prefs("")), stanza.Forbidden},
		{"get without a child", stanza.IQGet, "", query(), stanza.NotAcceptable},
		{"set without a child", stanza.IQSet, "", query(), stanza.NotAcceptable},
		{"jabber:iq:private", stanza.IQSet, "", query(xmlstream.NewElement(private.NS, "x")), stanza.NotAcceptable},
		{"jabber:client", stanza.IQGet, "", query(xmlstream.NewElement(stanza.NSClient, "message")), stanza.NotAcceptable},
		{"jabber:server", stanza.IQSet, "", query(xmlstream.NewElement(stanza.NSServer, "x")), stanza.NotAcceptable},
		{"two namespaces", stanza.IQGet, "", query(prefs(""), bookmarks()), stanza.BadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := iq(t, hamlet, tt.typ, tt.to, tt.q)
			wantCondition(t, err, tt.want)
		})
	}
}
