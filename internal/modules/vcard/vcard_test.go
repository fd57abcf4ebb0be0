package vcard_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/modules/vcard"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func el(local, text string) *xmlstream.Element {
	return xmlstream.NewElement(vcard.NS, local).AppendText(text)
}

// card returns a vCard with a few fields, nesting and characters to escape.
func card(name string) *xmlstream.Element {
	return xmlstream.NewElement(vcard.NS, "vCard").Append(
		el("FN", name),
		xmlstream.NewElement(vcard.NS, "N").Append(el("FAMILY", "Capulet"), el("GIVEN", name)),
		el("NICKNAME", "<&> ünïcode"),
		xmlstream.NewElement(vcard.NS, "EMAIL").Append(xmlstream.NewElement(vcard.NS, "INTERNET"), el("USERID", name+"@example.com")),
	)
}

func get(t *testing.T, c *client.Client, to string) (*xmlstream.Element, error) {
	t.Helper()
	res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, to, "", "").Append(xmlstream.NewElement(vcard.NS, "vCard")))
	if err != nil {
		return nil, err
	}
	v := res.Child(vcard.NS, "vCard")
	if v == nil {
		t.Fatalf("no vCard in %s", res)
	}
	return v, nil
}

func set(t *testing.T, c *client.Client, to string, v *xmlstream.Element) error {
	t.Helper()
	_, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQSet, to, "", "").Append(v))
	return err
}

func wantCondition(t *testing.T, err error, cond stanza.Condition) {
	t.Helper()
	if !errors.Is(err, stanza.NewError(cond, "")) {
		t.Fatalf("got %v, want %s", err, cond)
	}
}

func wantCard(t *testing.T, got, want *xmlstream.Element) {
	t.Helper()
	if got.String() != want.String() {
		t.Fatalf("got vCard\n%s\nwant\n%s", got, want)
	}
}

func TestOwnVCard(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	empty := xmlstream.NewElement(vcard.NS, "vCard")
	for _, to := range []string{"", "juliet@localhost"} {
		v, err := get(t, c, to)
		if err != nil {
			t.Fatal(err)
		}
		wantCard(t, v, empty)
	}
	if err := set(t, c, "", card("Juliet")); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"", "juliet@localhost"} {
		v, err := get(t, c, to)
		if err != nil {
			t.Fatal(err)
		}
		wantCard(t, v, card("Juliet"))
	}
	// Set to the own bare JID replaces it; an empty vCard deletes it.
	if err := set(t, c, "juliet@localhost", card("Jules")); err != nil {
		t.Fatal(err)
	}
	if v, _ := get(t, c, ""); v.String() != card("Jules").String() {
		t.Fatalf("after replace: %s", v)
	}
	if err := set(t, c, "", empty); err != nil {
		t.Fatal(err)
	}
	if v, _ := get(t, c, ""); v.String() != empty.String() {
		t.Fatalf("after delete: %s", v)
	}
}

func TestOtherUsersVCard(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	juliet := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	romeo := srv.Dial(t, srv.AddUser(t, "romeo", "orchard"), "orchard")
	if err := set(t, juliet, "", card("Juliet")); err != nil {
		t.Fatal(err)
	}
	v, err := get(t, romeo, "juliet@localhost")
	if err != nil {
		t.Fatal(err)
	}
	wantCard(t, v, card("Juliet"))
	// Romeo has none yet: empty. Nobody does not exist.
	v, err = get(t, juliet, "romeo@localhost")
	if err != nil {
		t.Fatal(err)
	}
	wantCard(t, v, xmlstream.NewElement(vcard.NS, "vCard"))
	_, err = get(t, juliet, "nobody@localhost")
	wantCondition(t, err, stanza.ServiceUnavailable)
	// Only Juliet writes her vCard.
	wantCondition(t, set(t, romeo, "juliet@localhost", card("Romeo was here")), stanza.Forbidden)
	if v, _ := get(t, romeo, "juliet@localhost"); v.String() != card("Juliet").String() {
		t.Fatalf("after a forbidden set: %s", v)
	}
	// The server has no vCard of its own here.
	_, err = get(t, juliet, srv.Domain)
	wantCondition(t, err, stanza.ServiceUnavailable)
}

func TestVCardTooLarge(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	if err := set(t, c, "", card("Juliet")); err != nil {
		t.Fatal(err)
	}
	big := card("Juliet").Append(el("DESC", strings.Repeat("x", vcard.MaxBytes)))
	wantCondition(t, set(t, c, "", big), stanza.NotAcceptable)
	if v, _ := get(t, c, ""); v.String() != card("Juliet").String() {
		t.Fatalf("after a refused set: %s", v)
	}
	// Just under the limit is fine.
	fits := card("Juliet")
	fits.Append(el("DESC", strings.Repeat("x", vcard.MaxBytes-len(fits.String())-len("<DESC></DESC>"))))
	if err := set(t, c, "", fits); err != nil {
		t.Fatalf("a vCard of %d bytes: %v", len(fits.String()), err)
	}
	if v, _ := get(t, c, ""); v.String() != fits.String() {
		t.Fatal("the largest vCard did not come back whole")
	}
}
