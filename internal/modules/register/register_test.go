package register_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/register"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func enabled(c *config.Config) {
	c.Modules.Settings["register"] = &register.Config{Enabled: true, PerIPPerHour: 2}
}

func TestRegisterLoginChangeCancel(t *testing.T) {
	srv := xmpptest.Start(t, enabled)
	romeo := jid.MustParse("romeo@localhost")
	if err := client.Register(ctxT(t), srv.ClientConfig(romeo, "r0meo")); err != nil {
		t.Fatal(err)
	}
	// Taken: conflict (and the attempt does not count toward the limit).
	err := client.Register(ctxT(t), srv.ClientConfig(romeo, "other"))
	if !errors.Is(err, stanza.NewError(stanza.Conflict, "")) {
		t.Fatalf("second registration: %v, want conflict", err)
	}
	// No password: not-acceptable.
	err = client.Register(ctxT(t), srv.ClientConfig(jid.MustParse("a@localhost"), ""))
	if !errors.Is(err, stanza.NewError(stanza.NotAcceptable, "")) {
		t.Fatalf("empty password: %v, want not-acceptable", err)
	}
	c := srv.Dial(t, romeo, "r0meo")
	res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "", "", "").Append(xmlstream.NewElement(register.NSRegister, "query")))
	if err != nil || res.Child(register.NSRegister, "query").Child(register.NSRegister, "registered") == nil {
		t.Fatalf("registered? %v %s", err, res)
	}
	// Change the password; the old one stops working.
	set := stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", "").Append(xmlstream.NewElement(register.NSRegister, "query").Append(
		xmlstream.NewElement(register.NSRegister, "username").AppendText("romeo"),
		xmlstream.NewElement(register.NSRegister, "password").AppendText("n3w")))
	if _, err := c.IQ(ctxT(t), set); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Dial(ctxT(t), srv.ClientConfig(romeo, "r0meo")); err == nil {
		t.Fatal("the old password still works")
	}
	c2 := srv.Dial(t, romeo, "n3w")
	// Someone else's username: bad-request.
	bad := stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", "").Append(xmlstream.NewElement(register.NSRegister, "query").Append(
		xmlstream.NewElement(register.NSRegister, "username").AppendText("juliet"),
		xmlstream.NewElement(register.NSRegister, "password").AppendText("x")))
	if _, err := c2.IQ(ctxT(t), bad); !errors.Is(err, stanza.NewError(stanza.BadRequest, "")) {
		t.Fatalf("other username: %v", err)
	}
	// Cancel: the result, then the stream ends; the account is gone.
	cancelIQ := stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", "").Append(xmlstream.NewElement(register.NSRegister, "query").Append(
		xmlstream.NewElement(register.NSRegister, "remove")))
	if _, err := c2.IQ(ctxT(t), cancelIQ); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client.Client{c, c2} {
		for {
			if _, err := cl.Recv(ctxT(t)); err != nil {
				var se *stream.Error
				if !errors.As(err, &se) || se.Condition != stream.NotAuthorized {
					t.Fatalf("%s: stream ended with %v", cl.JID(), err)
				}
				break
			}
		}
	}
	if _, err := client.Dial(ctxT(t), srv.ClientConfig(romeo, "n3w")); err == nil {
		t.Fatal("a cancelled account can still log in")
	}
}

func TestRegisterRateLimit(t *testing.T) {
	srv := xmpptest.Start(t, enabled)
	for _, u := range []string{"a", "b"} {
		if err := client.Register(ctxT(t), srv.ClientConfig(jid.MustParse(u+"@localhost"), "pw")); err != nil {
			t.Fatal(err)
		}
	}
	err := client.Register(ctxT(t), srv.ClientConfig(jid.MustParse("c@localhost"), "pw"))
	if !errors.Is(err, stanza.NewError(stanza.PolicyViolation, "")) {
		t.Fatalf("third registration in an hour: %v, want policy-violation", err)
	}
}

func TestRegisterOffByDefault(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	err := client.Register(ctxT(t), srv.ClientConfig(jid.MustParse("a@localhost"), "pw"))
	if err == nil || !strings.Contains(err.Error(), "does not offer in-band registration") {
		t.Fatalf("register with registration off: %v", err)
	}
}
