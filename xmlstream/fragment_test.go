package xmlstream_test

import (
	"testing"

	"github.com/ode-xmpp/ode/xmlstream"
)

func TestParseElement(t *testing.T) {
	e := xmlstream.NewElement("jabber:client", "message").SetAttr("to", "a@b").
		Append(xmlstream.NewElement("jabber:client", "body").AppendText("<hi & 'bye'>"),
			xmlstream.NewElement("urn:xmpp:delay", "delay").SetAttr("stamp", "2002-09-10T23:08:25Z"))
	b := e.AppendXML(nil, "jabber:client")
	got, err := xmlstream.ParseElement(b, "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != e.String() {
		t.Fatalf("got %s, want %s", got, e)
	}
	for _, bad := range []string{"", "<a/><b/>", "<a>", "text", "<!-- c --><a/>"} {
		if _, err := xmlstream.ParseElement([]byte(bad), "jabber:client"); err == nil {
			t.Errorf("ParseElement(%q) succeeded", bad)
		}
	}
}
