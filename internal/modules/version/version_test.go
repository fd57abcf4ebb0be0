package version_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func query() *xmlstream.Element { return xmlstream.NewElement(stanza.NSVersion, "query") }

func TestServerVersion(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	for _, to := range []string{srv.Domain, ""} {
		res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, to, "", "").Append(query()))
		if err != nil {
			t.Fatalf("to %q: %v", to, err)
		}
		q := res.Child(stanza.NSVersion, "query")
		if q == nil {
			t.Fatalf("to %q: no query in %s", to, res)
		}
		if n := q.Child(stanza.NSVersion, "name"); n == nil || n.Text() != "ode" {
			t.Errorf("to %q: name in %s, want ode", to, res)
		}
		if v := q.Child(stanza.NSVersion, "version"); v == nil || v.Text() == "" {
			t.Errorf("to %q: no version in %s", to, res)
		}
		if q.Child(stanza.NSVersion, "os") != nil {
			t.Errorf("to %q: os revealed in %s", to, res)
		}
	}
}

func TestAccountVersionUnavailable(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	srv.AddUser(t, "romeo", "orchard")
	_, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "romeo@"+srv.Domain, "", "").Append(query()))
	if !errors.Is(err, stanza.NewError(stanza.ServiceUnavailable, "")) {
		t.Fatalf("got %v, want service-unavailable", err)
	}
}
