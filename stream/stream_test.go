package stream

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/xmlstream"
)

func TestNegotiateVersion(t *testing.T) {
	tests := []struct {
		peer string
		want string
		cond Condition
	}{
		{"1.0", "1.0", ""},
		{"1.1", "1.0", ""},
		{"1.10", "1.0", ""},
		{"01.00", "1.0", ""}, // leading zeros are ignored (§4.7.5)
		{"", "", ""},
		{"0.9", "", ""},
		{"2.0", "", UnsupportedVersion},
		{"10.0", "", UnsupportedVersion},
		{"1", "", BadFormat},
		{"1.x", "", BadFormat},
		{"-1.0", "", BadFormat},
		{"1.0.0", "", BadFormat},
	}
	for _, tt := range tests {
		got, err := NegotiateVersion(tt.peer)
		if tt.cond != "" {
			if !errors.Is(err, &Error{Condition: tt.cond}) {
				t.Errorf("NegotiateVersion(%q) error = %v, want %s", tt.peer, err, tt.cond)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NegotiateVersion(%q) = %q, %v; want %q", tt.peer, got, err, tt.want)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{To: "juliet@im.example.com", From: "im.example.com", ID: "t7AMCin9zjMNwQKDnplntZPIDEI=", Version: "1.0", Lang: "en"}
	b := h.AppendXML(nil, "jabber:client")
	r := xmlstream.NewReader(strings.NewReader(string(b)), xmlstream.Limits{})
	start, err := r.ReadStart()
	if err != nil {
		t.Fatalf("ReadStart(%s): %v", b, err)
	}
	if r.DefaultNS() != "jabber:client" {
		t.Errorf("default namespace %q", r.DefaultNS())
	}
	got, err := ParseHeader(start)
	if err != nil {
		t.Fatal(err)
	}
	if got != h {
		t.Errorf("round trip: got %+v, want %+v", got, h)
	}
}

func TestHeaderEscapes(t *testing.T) {
	b := Header{ID: "a'<&"}.AppendXML(nil, "jabber:client")
	if !strings.Contains(string(b), "id='a&apos;&lt;&amp;'") {
		t.Errorf("not escaped: %s", b)
	}
}

func TestParseHeaderWrongNamespace(t *testing.T) {
	_, err := ParseHeader(xmlstream.NewElement("urn:bad", "stream"))
	if !errors.Is(err, &Error{Condition: InvalidNamespace}) {
		t.Fatalf("got %v, want invalid-namespace", err)
	}
}

func TestErrorRoundTrip(t *testing.T) {
	app := xmlstream.NewElement("urn:example:app", "escape-your-data")
	for _, e := range []*Error{
		{Condition: SystemShutdown},
		{Condition: Conflict, Text: "replaced", Lang: "en"},
		{Condition: SeeOtherHost, Host: "[2001:db8::1]:5222"},
		{Condition: UndefinedCondition, App: app},
	} {
		b := Header{Version: "1.0"}.AppendXML(nil, "jabber:client")
		b = e.AppendXML(b)
		r := xmlstream.NewReader(strings.NewReader(string(b)), xmlstream.Limits{})
		if _, err := r.ReadStart(); err != nil {
			t.Fatal(err)
		}
		el, err := r.Next()
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		got, err := ParseError(el)
		if err != nil {
			t.Fatal(err)
		}
		if got.Condition != e.Condition || got.Text != e.Text || got.Lang != e.Lang || got.Host != e.Host {
			t.Errorf("round trip of %s: got %+v", b, got)
		}
		if (e.App == nil) != (got.App == nil) || (got.App != nil && got.App.Name != e.App.Name) {
			t.Errorf("app condition: got %v want %v", got.App, e.App)
		}
	}
}

func TestErrorRFCExample(t *testing.T) {
	// RFC 6120 §4.9.1.1's example, as a peer would send it.
	in := `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>` +
		`<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>` +
		`<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Some special application diagnostic information!</text>` +
		`<escape-your-data xmlns='http://example.org/ns'/></stream:error>`
	r := xmlstream.NewReader(strings.NewReader(in), xmlstream.Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	el, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseError(el)
	if err != nil {
		t.Fatal(err)
	}
	if e.Condition != NotWellFormed || e.Lang != "en" || e.App == nil || e.App.Name.Local != "escape-your-data" {
		t.Errorf("got %+v", e)
	}
	if !errors.Is(e, &Error{Condition: NotWellFormed}) || errors.Is(e, &Error{Condition: Conflict}) {
		t.Error("errors.Is does not compare conditions")
	}
}

func TestAllConditionsDefined(t *testing.T) {
	// RFC 6120 §4.9.3 defines 24 conditions plus the reset of §4.9.3.17.
	if len(conditions) != 25 {
		t.Errorf("%d conditions", len(conditions))
	}
	if Condition("bogus").Defined() {
		t.Error("bogus is defined")
	}
}

func TestFromXMLError(t *testing.T) {
	for _, c := range []xmlstream.Condition{
		xmlstream.CondNotWellFormed, xmlstream.CondRestrictedXML, xmlstream.CondInvalidNamespace,
		xmlstream.CondBadNamespacePrefix, xmlstream.CondBadFormat, xmlstream.CondPolicyViolation,
		xmlstream.CondUnsupportedEncoding,
	} {
		var err error = &xmlstream.Error{Cond: c, Msg: "x"}
		err = errors.Join(errors.New("wrapped"), err)
		se := FromXMLError(err)
		if se == nil || string(se.Condition) != string(c) {
			t.Errorf("FromXMLError(%s) = %v", c, se)
		}
	}
	if FromXMLError(errors.New("io")) != nil {
		t.Error("plain error mapped to a stream error")
	}
}

func TestFeatures(t *testing.T) {
	f := Features{StartTLS: true, StartTLSRequired: true, Mechanisms: []string{"SCRAM-SHA-256", "PLAIN"},
		Bind: true, Session: true, SessionOptional: true,
		Other: []*xmlstream.Element{xmlstream.NewElement("urn:xmpp:sm:3", "sm")}}
	b := Header{Version: "1.0"}.AppendXML(nil, "jabber:client")
	b = f.Element().AppendXML(b, "jabber:client")
	r := xmlstream.NewReader(strings.NewReader(string(b)), xmlstream.Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatal(err)
	}
	el, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseFeatures(el)
	if err != nil {
		t.Fatal(err)
	}
	if !got.StartTLS || !got.StartTLSRequired || !got.Bind || !got.Session || !got.SessionOptional ||
		strings.Join(got.Mechanisms, ",") != "SCRAM-SHA-256,PLAIN" || len(got.Other) != 1 || got.Other[0].Name.Local != "sm" {
		t.Errorf("round trip: %+v from %s", got, b)
	}
	if _, err := ParseFeatures(xmlstream.NewElement(NS, "error")); err == nil {
		t.Error("ParseFeatures accepted an error element")
	}
}

// TestHeaderDialback: the db prefix declared on a server stream header
// binds the dialback elements that follow (XEP-0220 §2.1).
func TestHeaderDialback(t *testing.T) {
	b := Header{From: "a.example", To: "b.example", Version: "1.0", Dialback: true}.AppendXML(nil, "jabber:server")
	b = append(b, "<db:result from='a.example' to='b.example'>key</db:result>"...)
	r := xmlstream.NewReader(strings.NewReader(string(b)), xmlstream.Limits{})
	if _, err := r.ReadStart(); err != nil {
		t.Fatalf("ReadStart(%s): %v", b, err)
	}
	e, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if e.Name.Space != NSDialback || e.Name.Local != "result" || e.Text() != "key" {
		t.Errorf("got %+v %q", e.Name, e.Text())
	}
}

func TestFromReadError(t *testing.T) {
	own := &Error{Condition: HostUnknown}
	for _, tc := range []struct {
		err  error
		want Condition // "" for nil
	}{
		{fmt.Errorf("open: %w", own), HostUnknown},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), ConnectionTimeout},
		{&xmlstream.Error{Cond: xmlstream.CondRestrictedXML, Msg: "comment"}, RestrictedXML},
		{io.EOF, ""},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), ""},
		{net.ErrClosed, ""},
		{errors.New("something else"), ""},
	} {
		got := FromReadError(tc.err)
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("FromReadError(%v) = %v, want nil", tc.err, got)
		case tc.want != "" && (got == nil || got.Condition != tc.want):
			t.Errorf("FromReadError(%v) = %v, want %s", tc.err, got, tc.want)
		}
	}
}
