package dataform_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/xmlstream"
)

func parse(t testing.TB, s string) *xmlstream.Element {
	t.Helper()
	x, err := xmlstream.ParseElement([]byte(s), "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestRoundTrip: a form built with Add and Option is written as XEP-0004
// §3 shows and reads back the same.
func TestRoundTrip(t *testing.T) {
	f := dataform.New(dataform.TypeForm, "http://jabber.org/protocol/muc#roomconfig")
	f.Title = "Configuration of room"
	f.Add("muc#roomconfig_roomname", "text-single", "Name", "lobby")
	f.Add("muc#roomconfig_whois", "list-single", "Who may see real JIDs", "moderators").
		Option("moderators", "Moderators only").Option("anyone", "")
	f.Add("muc#roomconfig_roomsecret", "text-private", "").Required = true
	got := f.Element().String()
	want := `<x xmlns="jabber:x:data" type="form"><title>Configuration of room</title>` +
		`<field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/muc#roomconfig</value></field>` +
		`<field var="muc#roomconfig_roomname" type="text-single" label="Name"><value>lobby</value></field>` +
		`<field var="muc#roomconfig_whois" type="list-single" label="Who may see real JIDs">` +
		`<value>moderators</value>` +
		`<option label="Moderators only"><value>moderators</value></option><option><value>anyone</value></option></field>` +
		`<field var="muc#roomconfig_roomsecret" type="text-private"><required/></field></x>`
	if got != want {
		t.Fatalf("form:\n got %s\nwant %s", got, want)
	}
	back, err := dataform.Parse(parse(t, got))
	if err != nil {
		t.Fatal(err)
	}
	if back.FormType != f.FormType || back.Title != f.Title || len(back.Fields) != 3 {
		t.Fatalf("read back: %+v", back)
	}
	if back.Value("muc#roomconfig_roomname") != "lobby" || back.Value("absent") != "" || back.Values("absent") != nil {
		t.Errorf("values: %+v", back.Fields)
	}
	if fd, _ := back.Field("muc#roomconfig_roomsecret"); !fd.Required || fd.Value() != "" {
		t.Errorf("required field read back as %+v", fd)
	}
	if dataform.FormType(parse(t, got)) != f.FormType {
		t.Errorf("FormType: %q", dataform.FormType(parse(t, got)))
	}
}

// TestParse: what a submitted form may and may not hold.
func TestParse(t *testing.T) {
	x := parse(t, `<x xmlns='jabber:x:data' type='submit'>
		<field var='FORM_TYPE' type='hidden'><value> urn:xmpp:mam:2 </value></field>
		<field type='fixed'><value>a note</value></field>
		<field var='ids'><value>a</value><value>b</value></field>
		<field var='with'/>
		<value>stray</value>
	</x>`)
	f, err := dataform.Parse(x)
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != dataform.TypeSubmit || f.FormType != "urn:xmpp:mam:2" {
		t.Errorf("type %q, FORM_TYPE %q", f.Type, f.FormType)
	}
	if !slices.Equal(f.Values("ids"), []string{"a", "b"}) || f.Value("with") != "" {
		t.Errorf("fields %+v", f.Fields)
	}
	if _, ok := f.Field("with"); !ok {
		t.Error("an empty field is not a missing one")
	}
	for _, bad := range []string{
		`<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>`,
		`<x xmlns='jabber:x:data' type='submit'><field><value>1</value></field></x>`,
		`<query xmlns='jabber:x:data'/>`,
		`<x xmlns='urn:other'/>`,
	} {
		if _, err := dataform.Parse(parse(t, bad)); err == nil {
			t.Errorf("Parse(%s) accepted it", bad)
		}
	}
	if _, err := dataform.Parse(nil); err == nil {
		t.Error("Parse(nil) accepted it")
	}
}

// FuzzParse: any element parses or is refused without a panic, and what
// parses writes out and reads back the same.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='with'><value>a@b</value></field></x>`,
		`<x xmlns='jabber:x:data' type='form'><title>t</title><instructions>i</instructions><field var='a' type='list-multi' label='l'><required/><option label='o'><value>1</value></option><value>1</value><value>2</value></field></x>`,
		`<x xmlns='jabber:x:data'><field type='fixed'><value>note</value></field></x>`,
		`<x xmlns='jabber:x:data'><field var='a'/><field var='a'/></x>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x, err := xmlstream.ParseElement([]byte(s), "jabber:client")
		if err != nil {
			return
		}
		form, err := dataform.Parse(x)
		if err != nil {
			return
		}
		_ = dataform.FormType(x)
		back, err := dataform.Parse(form.Element())
		if err != nil {
			t.Fatalf("a parsed form does not parse once written: %v\n%s", err, form.Element())
		}
		if len(back.Fields) != len(form.Fields) || back.FormType != strings.TrimSpace(form.FormType) {
			t.Fatalf("round trip: %+v\nbecame %+v", form, back)
		}
		for i, fd := range form.Fields {
			if b := back.Fields[i]; b.Var != fd.Var || !slices.Equal(b.Values, fd.Values) || b.Required != fd.Required {
				t.Fatalf("field %d: %+v became %+v", i, fd, b)
			}
		}
	})
}
