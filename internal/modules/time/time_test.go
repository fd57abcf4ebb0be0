package time_test

import (
	"context"
	"errors"
	"testing"
	"time"

	entitytime "github.com/ode-xmpp/ode/internal/modules/time"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestElement(t *testing.T) {
	tests := []struct {
		name     string
		t        time.Time
		tzo, utc string
	}{
		{"utc", time.Date(2006, 12, 19, 17, 58, 35, 0, time.UTC), "+00:00", "2006-12-19T17:58:35.000Z"},
		// XEP-0202 §4, Example 2: Denver in winter.
		{"west", time.Date(2006, 12, 19, 11, 58, 35, 123e6, time.FixedZone("MST", -6*3600)), "-06:00", "2006-12-19T17:58:35.123Z"},
		{"half hour", time.Date(2024, 1, 1, 5, 30, 0, 0, time.FixedZone("IST", 5*3600+1800)), "+05:30", "2024-01-01T00:00:00.000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := entitytime.Element(tt.t)
			if got := e.Child(entitytime.NS, "tzo").Text(); got != tt.tzo {
				t.Errorf("tzo %q, want %q", got, tt.tzo)
			}
			if got := e.Child(entitytime.NS, "utc").Text(); got != tt.utc {
				t.Errorf("utc %q, want %q", got, tt.utc)
			}
		})
	}
}

func TestServerTime(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	before := time.Now().Add(-time.Second)
	res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, srv.Domain, "", "").
		Append(xmlstream.NewElement(entitytime.NS, "time")))
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(time.Second)
	e := res.Child(entitytime.NS, "time")
	if e == nil || e.Child(entitytime.NS, "tzo") == nil || e.Child(entitytime.NS, "utc") == nil {
		t.Fatalf("got %s", res)
	}
	utc, err := time.Parse(time.RFC3339Nano, e.Child(entitytime.NS, "utc").Text())
	if err != nil {
		t.Fatal(err)
	}
	if utc.Before(before) || utc.After(after) {
		t.Errorf("server time %v, not between %v and %v", utc, before, after)
	}
	if _, err := time.Parse("-07:00", e.Child(entitytime.NS, "tzo").Text()); err != nil {
		t.Errorf("tzo: %v", err)
	}
}

func TestAccountTimeUnavailable(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	_, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, c.JID().Bare().String(), "", "").
		Append(xmlstream.NewElement(entitytime.NS, "time")))
	if !errors.Is(err, stanza.NewError(stanza.ServiceUnavailable, "")) {
		t.Fatalf("got %v, want service-unavailable", err)
	}
}
