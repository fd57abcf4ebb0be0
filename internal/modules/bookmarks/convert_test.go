package bookmarks

import (
	"testing"

	"github.com/ode-xmpp/ode/xmlstream"
)

// FuzzConvert reads a XEP-0048 <storage/> (or a XEP-0402 <conference/>)
// from untrusted bytes and checks that nothing panics and that every
// bookmark survives the trip to the other format and back, and a merge.
func FuzzConvert(f *testing.F) {
	for _, seed := range []string{
		// XEP-0048 Example 3, XEP-0402 Example 3.
		`<storage xmlns='storage:bookmarks'><conference name='Council of Oberon' autojoin='true' jid='council@conference.underhill.org'><nick>Puck</nick><password>titania</password></conference><url name='Complete Works of Shakespeare' url='http://the-tech.mit.edu/Shakespeare/'/></storage>`,
		`<conference xmlns='urn:xmpp:bookmarks:1' name='The Play&apos;s the Thing' autojoin='true'><nick>JC</nick><extensions><state xmlns='http://myclient.example/bookmark/state' minimized='true'/></extensions></conference>`,
		`<storage xmlns='storage:bookmarks'><conference jid='a@b' autojoin='1'><x xmlns='urn:e'><y/>text</x></conference><conference jid='A@B'/><conference jid='c@d/res'/></storage>`,
		`<storage xmlns='storage:bookmarks'/>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := xmlstream.ParseElement(data, "")
		if err != nil {
			return
		}
		if b, ok := from402("room@conference.example.org", e); ok {
			again, ok := from402(b.Room, b.to402())
			if !ok || !again.equal(b) {
				t.Fatalf("XEP-0402 round trip: %+v became %+v", b, again)
			}
		}
		bms := parse48(e)
		for _, b := range bms {
			back, ok := from402(b.Room, b.to402())
			if !ok || !back.equal(b) {
				t.Fatalf("to XEP-0402 and back: %+v became %+v", b, back)
			}
			back, ok = from48(b.to48())
			if !ok || !back.equal(b) {
				t.Fatalf("XEP-0048 round trip: %+v became %+v", b, back)
			}
		}
		merged := parse48(merge48(e, bms))
		if len(merged) != len(bms) {
			t.Fatalf("merge kept %d of %d bookmarks", len(merged), len(bms))
		}
		for i := range bms {
			if !merged[i].equal(bms[i]) {
				t.Fatalf("merge changed %+v into %+v", bms[i], merged[i])
			}
		}
	})
}
