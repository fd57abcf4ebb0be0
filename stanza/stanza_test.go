package stanza

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/xmlstream"
)

func TestValidateIQ(t *testing.T) {
	ping := func() *xmlstream.Element { return xmlstream.NewElement(NSPing, "ping") }
	tests := []struct {
		name string
		iq   *xmlstream.Element
		ok   bool
	}{
		{"get with payload", NewIQ(NSClient, IQGet, "", "", "1").Append(ping()), true},
		{"no id", NewIQ(NSClient, IQGet, "", "", "").Append(ping()), false},
		{"get without payload", NewIQ(NSClient, IQGet, "", "", "1"), false},
		{"set with two payloads", NewIQ(NSClient, IQSet, "", "", "1").Append(ping(), ping()), false},
		{"empty result", NewIQ(NSClient, IQResult, "", "", "1"), true},
		{"result with two", NewIQ(NSClient, IQResult, "", "", "1").Append(ping(), ping()), false},
		{"error", NewIQ(NSClient, IQError, "", "", "1"), true},
		{"no type", NewIQ(NSClient, "", "", "", "1").Append(ping()), false},
		{"bad type", NewIQ(NSClient, "fetch", "", "", "1").Append(ping()), false},
	}
	for _, tt := range tests {
		err := ValidateIQ(tt.iq)
		if (err == nil) != tt.ok {
			t.Errorf("%s: ValidateIQ = %v", tt.name, err)
		}
		if err != nil && !errors.Is(err, NewError(BadRequest, "")) {
			t.Errorf("%s: %v is not bad-request", tt.name, err)
		}
	}
}

func TestDefaultTypes(t *testing.T) {
	// The types of RFC 6120 §8.3.3's examples.
	want := map[Condition]ErrorType{
		BadRequest: Modify, Conflict: Cancel, FeatureNotImplemented: Cancel, Forbidden: Auth,
		Gone: Cancel, InternalServerError: Cancel, ItemNotFound: Cancel, JIDMalformed: Modify,
		NotAcceptable: Modify, NotAllowed: Cancel, NotAuthorized: Auth, PolicyViolation: Modify,
		RecipientUnavailable: Wait, Redirect: Modify, RegistrationRequired: Auth,
		RemoteServerNotFound: Cancel, RemoteServerTimeout: Wait, ResourceConstraint: Wait,
		ServiceUnavailable: Cancel, SubscriptionRequired: Auth, UndefinedCondition: Cancel,
		UnexpectedRequest: Wait,
	}
	if len(want) != len(defaultTypes) {
		t.Errorf("%d conditions defined, RFC 6120 has %d", len(defaultTypes), len(want))
	}
	for c, typ := range want {
		if got := c.DefaultType(); got != typ {
			t.Errorf("%s: type %s, want %s", c, got, typ)
		}
	}
}

func TestErrorReply(t *testing.T) {
	iq := NewIQ(NSClient, IQGet, "romeo@example.net/orchard", "juliet@example.com/balcony", "ix61z").
		Append(xmlstream.NewElement(NSRoster, "query"))
	r := ErrorReply(iq, NewError(ServiceUnavailable, "nobody"))
	if r == nil {
		t.Fatal("nil reply")
	}
	if To(r) != "juliet@example.com/balcony" || From(r) != "romeo@example.net/orchard" || ID(r) != "ix61z" || Type(r) != "error" {
		t.Errorf("addressing: %s", r)
	}
	e, ok := ParseError(r)
	if !ok || e.Condition != ServiceUnavailable || e.Type != Cancel || e.Text != "nobody" {
		t.Errorf("ParseError(%s) = %+v, %v", r, e, ok)
	}
	if !errors.Is(fmt.Errorf("wrap: %w", e), NewError(ServiceUnavailable, "")) {
		t.Error("errors.Is through wrapping")
	}
	var target *Error
	if !errors.As(fmt.Errorf("wrap: %w", e), &target) {
		t.Error("errors.As")
	}
	// Never answer an error with an error, nor an iq result.
	if ErrorReply(r, NewError(BadRequest, "")) != nil {
		t.Error("error answered with an error")
	}
	if ErrorReply(NewIQ(NSClient, IQResult, "", "", "1"), NewError(BadRequest, "")) != nil {
		t.Error("result answered with an error")
	}
	msg := NewMessage(NSClient, MessageChat, "a@b", "c@d/e", "m1").Append(xmlstream.NewElement(NSClient, "body").AppendText("hi"))
	mr := ErrorReply(msg, NewError(RemoteServerNotFound, ""))
	if mr.Child(NSClient, "body") == nil || Type(mr) != "error" {
		t.Errorf("message bounce lost its body: %s", mr)
	}
}

func TestErrorElementRoundTrip(t *testing.T) {
	app := xmlstream.NewElement("http://jabber.org/protocol/pubsub#errors", "unsupported").SetAttr("feature", "x")
	in := &Error{Type: Modify, Condition: Redirect, URI: "xmpp:x@y", Text: "moved", Lang: "en", By: "y", App: app}
	st := NewMessage(NSServer, "error", "", "", "").Append(in.Element(NSServer))
	out, ok := ParseError(st)
	if !ok {
		t.Fatal("not parsed")
	}
	if out.Type != in.Type || out.Condition != in.Condition || out.URI != in.URI || out.Text != in.Text ||
		out.Lang != in.Lang || out.By != in.By || out.App == nil || out.App.Attribute("feature") != "x" {
		t.Errorf("got %+v want %+v", out, in)
	}
	if _, ok := ParseError(NewMessage(NSClient, "chat", "", "", "")); ok {
		t.Error("chat message parsed as error")
	}
}

func TestIsStanza(t *testing.T) {
	for _, c := range []struct {
		e  *xmlstream.Element
		ok bool
	}{
		{xmlstream.NewElement(NSClient, "message"), true},
		{xmlstream.NewElement(NSServer, "presence"), true},
		{xmlstream.NewElement(NSClient, "iq"), true},
		{xmlstream.NewElement("urn:xmpp:sm:3", "r"), false},
		{xmlstream.NewElement("jabber:component:accept", "message"), false},
		{xmlstream.NewElement(NSClient, "body"), false},
	} {
		if IsStanza(c.e) != c.ok {
			t.Errorf("IsStanza(%s) = %v", c.e, !c.ok)
		}
	}
}

func TestIQResultFor(t *testing.T) {
	r := IQResultFor(NewIQ(NSClient, IQGet, "example.com", "a@example.com/r", "p1"))
	if Type(r) != IQResult || To(r) != "a@example.com/r" || From(r) != "example.com" || ID(r) != "p1" {
		t.Errorf("got %s", r)
	}
}

// TestTranslate: a stanza moves from jabber:client to jabber:server with
// its children in the content namespace (RFC 6120 §4.8.3); extension
// payloads keep theirs, and the original is untouched.
func TestTranslate(t *testing.T) {
	st := NewMessage(NSClient, MessageChat, "b@x.example", "a@y.example", "1").
		Append(xmlstream.NewElement(NSClient, "body").AppendText("hi")).
		Append(xmlstream.NewElement("urn:example", "ext").Append(xmlstream.NewElement("urn:example", "in")))
	before := st.String()
	out := Translate(st, NSClient, NSServer)
	if st.String() != before {
		t.Fatalf("Translate changed its input: %s", st)
	}
	if out.Name.Space != NSServer || out.Child(NSServer, "body") == nil || out.Child("urn:example", "ext") == nil {
		t.Fatalf("translated %s", out)
	}
	if got := string(out.AppendXML(nil, NSServer)); strings.Contains(got, NSClient) || !strings.Contains(got, "<body>hi</body>") {
		t.Errorf("serialised in jabber:server: %s", got)
	}
	if same := Translate(out, NSClient, NSServer); same != out {
		t.Error("Translate copied a stanza that needed no change")
	}
	TranslateInPlace(out, NSServer, NSClient)
	if out.Name.Space != NSClient || out.Child(NSClient, "body") == nil {
		t.Errorf("in place: %s", out)
	}
}
