package pep_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// capsExample is the disco#info of XEP-0115 §5.3 (the complex example),
// whose sha-1 verification string is q07IKJEyjvHSyhy//CH0CxmKi8w=.
const capsExample = `<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>` +
	`<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>` +
	`<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>` +
	`<feature var='http://jabber.org/protocol/caps'/>` +
	`<feature var='http://jabber.org/protocol/disco#info'/>` +
	`<feature var='http://jabber.org/protocol/disco#items'/>` +
	`<feature var='http://jabber.org/protocol/muc'/>` +
	`<x xmlns='jabber:x:data' type='result'>` +
	`<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>` +
	`<field var='ip_version'><value>ipv4</value><value>ipv6</value></field>` +
	`<field var='os'><value>Mac</value></field>` +
	`<field var='os_version'><value>10.5.1</value></field>` +
	`<field var='software'><value>Psi</value></field>` +
	`<field var='software_version'><value>0.11</value></field>` +
	`</x></query>`

func parse(t testing.TB, s string) *xmlstream.Element {
	t.Helper()
	e, err := xmlstream.ParseElement([]byte(s), stanza.NSClient)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return e
}

// TestCapsHash checks the verification strings of XEP-0115 §5.2 and
// §5.3 and the §5.4 refusals.
func TestCapsHash(t *testing.T) {
	simple := `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' name='Exodus 0.9.1' type='pc'/>` +
		`<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>` +
		`<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query>`
	for _, tc := range []struct{ name, xml, want string }{
		{"simple", simple, "QgayPKawpkPSDYmwT/WM94uAlu0="},
		{"complex", capsExample, "q07IKJEyjvHSyhy//CH0CxmKi8w="},
	} {
		if got, ok := pep.CapsHash("sha-1", parse(t, tc.xml)); !ok || got != tc.want {
			t.Errorf("%s: CapsHash = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
	for _, bad := range []string{
		`<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/><feature var='a'/></query>`,
		`<query xmlns='http://jabber.org/protocol/disco#info'><identity category='c' type='t'/><identity category='c' type='t'/></query>`,
		`<query xmlns='http://jabber.org/protocol/disco#info'><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>u</value></field></x>` +
			`<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>u</value></field></x></query>`,
	} {
		if _, ok := pep.CapsHash("sha-1", parse(t, bad)); ok {
			t.Errorf("accepted %s", bad)
		}
	}
	if _, ok := pep.CapsHash("md5", parse(t, simple)); ok {
		t.Error("md5 accepted")
	}
}

// FuzzCapsHash: no panic, and the verification string does not depend
// on the order of the result's children (the sort of §5.1).
func FuzzCapsHash(f *testing.F) {
	f.Add([]byte(capsExample))
	f.Add([]byte(`<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/><feature var='urn:x+notify'/></query>`))
	f.Add([]byte(`<query xmlns='http://jabber.org/protocol/disco#info'><x xmlns='jabber:x:data'><field var='FORM_TYPE'><value>a</value><value>b</value></field></x></query>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := xmlstream.ParseElement(b, stanza.NSClient)
		if err != nil {
			return
		}
		s1, ok1 := pep.VerString(q)
		r := q.Copy()
		slices.Reverse(r.Children)
		s2, ok2 := pep.VerString(r)
		if ok1 != ok2 || s1 != s2 {
			t.Errorf("order matters: %q %v / %q %v", s1, ok1, s2, ok2)
		}
		for _, h := range []string{"sha-1", "sha-256", "sha-512"} {
			pep.CapsHash(h, q)
		}
	})
}

// FuzzPublishOptions: no panic, and a node created from publish-options
// always meets them (what ejabberd got wrong for max_items=max).
func FuzzPublishOptions(f *testing.F) {
	form := func(fields string) []byte {
		return []byte(`<publish-options xmlns='http://jabber.org/protocol/pubsub'><x xmlns='jabber:x:data' type='submit'>` +
			`<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` + fields + `</x></publish-options>`)
	}
	f.Add(form(`<field var='pubsub#access_model'><value>open</value></field>`))
	f.Add(form(`<field var='pubsub#max_items'><value>max</value></field><field var='pubsub#persist_items'><value>true</value></field>`))
	f.Add(form(`<field var='pubsub#max_items'><value>256</value></field>`))
	f.Add(form(`<field var='pubsub#roster_groups_allowed'><value>b</value><value>a</value></field><field var='pubsub#access_model'><value>roster</value></field>`))
	f.Add(form(`<field var='pubsub#send_last_published_item'><value>never</value></field><field var='pubsub#notify_retract'><value>0</value></field>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		po, err := xmlstream.ParseElement(b, stanza.NSClient)
		if err != nil {
			return
		}
		if parsed, met := pep.OptionsMet(po, 256); parsed && met != nil {
			t.Errorf("a node made from the options does not meet them: %v", met)
		}
	})
}

// FuzzConfigForm: no panic, and the form of a configuration submitted
// back gives the same configuration.
func FuzzConfigForm(f *testing.F) {
	form := func(fields string) []byte {
		return []byte(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>` + fields + `</x>`)
	}
	f.Add(form(`<field var='pubsub#access_model'><value>whitelist</value></field><field var='pubsub#title'><value>T</value></field>`))
	f.Add(form(`<field var='pubsub#max_items'><value>7</value></field><field var='pubsub#deliver_payloads'><value>false</value></field>`))
	f.Add(form(`<field var='pubsub#roster_groups_allowed'><value>Friends</value></field>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := xmlstream.ParseElement(b, stanza.NSClient)
		if err != nil {
			return
		}
		first, second, err := pep.ConfigRoundTrip(x, 256)
		if err != nil {
			return
		}
		if len(first.RosterGroupsAllowed) == 0 {
			first.RosterGroupsAllowed = nil
		}
		if len(second.RosterGroupsAllowed) == 0 {
			second.RosterGroupsAllowed = nil
		}
		if !reflect.DeepEqual(first, second) {
			t.Errorf("round trip: %+v then %+v", first, second)
		}
	})
}
