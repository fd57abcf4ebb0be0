package mam_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/modules/mam"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
)

func wantBodies(t *testing.T, what string, p page, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	got := p.bodies
	if got == nil {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: bodies %q, want %q", what, got, want)
	}
}

func wantCondition(t *testing.T, what string, err error, cond stanza.Condition) {
	t.Helper()
	if !errors.Is(err, stanza.NewError(cond, "")) {
		t.Errorf("%s: got %v, want %s", what, err, cond)
	}
}

// TestArchiveBothSides: a message between two local accounts is in both
// archives, the recipient's copy has a stanza-id that is its archive id,
// the sender's live copy has none.
func TestArchiveBothSides(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.send(bob.jid.String(), "hello bob", `<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>`)
	live := bob.expectMessage()
	id := stanzaID(live, "bob@localhost")
	if id == "" || live.Child(mam.NSSID, "origin-id") == nil {
		t.Fatalf("bob's copy without stanza-id or origin-id: %s", live)
	}
	bob.send(alice.jid.String(), "hello alice", "")
	if m := alice.expectMessage(); stanzaID(m, "alice@localhost") == "" || stanzaID(m, "bob@localhost") != "" {
		t.Errorf("alice's copy: want her stanza-id only: %s", m)
	}

	bp := bob.query(nil, "")
	wantBodies(t, "bob's archive", bp, "hello bob", "hello alice")
	if bp.ids[0] != id || !bp.complete || bp.first != id || bp.last != bp.ids[1] {
		t.Errorf("bob's archive: ids %q first %q last %q complete %v; live stanza-id %q", bp.ids, bp.first, bp.last, bp.complete, id)
	}
	// The archived copy is the delivered one: stanza-id and origin-id.
	if got := stanzaID(bp.msgs[0], "bob@localhost"); got != id {
		t.Errorf("archived copy has stanza-id %q, want %q: %s", got, id, bp.msgs[0])
	}
	// The sender's copy has no stanza-id of bob's archive and is from alice.
	if stanzaID(bp.msgs[1], "alice@localhost") != "" || bp.msgs[1].Attribute("from") != bob.jid.String() {
		t.Errorf("bob's sent message as archived: %s", bp.msgs[1])
	}
	ap := alice.query(nil, "")
	wantBodies(t, "alice's archive", ap, "hello bob", "hello alice")
	if ap.ids[0] == id {
		t.Errorf("alice's archive reuses bob's id %s", id)
	}
	if _, err := time.Parse(time.RFC3339, ap.stamps[0]); err != nil {
		t.Errorf("stamp %q: %v", ap.stamps[0], err)
	}
}

// TestForgedStanzaID: a stanza-id in the recipient's name from the sender
// is removed; others stay.
func TestForgedStanzaID(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.send(bob.jid.String(), "forged", `<stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='forged'/>`+
		`<stanza-id xmlns='urn:xmpp:sid:0' by='BOB@localhost' id='forged2'/>`+
		`<stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.example.com' id='other'/>`)
	m := bob.expectMessage()
	var byBob []string
	for _, e := range m.ChildrenNS(mam.NSSID) {
		if strings.EqualFold(e.Attribute("by"), "bob@localhost") {
			byBob = append(byBob, e.Attribute("id"))
		}
	}
	if len(byBob) != 1 || strings.HasPrefix(byBob[0], "forged") || stanzaID(m, "room@muc.example.com") != "other" {
		t.Errorf("bob's stanza-ids %q (want one, the server's); message %s", byBob, m)
	}
	// Not archived (a chat state alone) still loses the forged id.
	alice.send(bob.jid.String(), "", `<active xmlns='http://jabber.org/protocol/chatstates'/><stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='forged'/>`)
	if m := bob.expectMessage(); stanzaID(m, "bob@localhost") != "" {
		t.Errorf("forged stanza-id delivered: %s", m)
	}
	// Alice's own forged id does not reach her archive.
	alice.send(bob.jid.String(), "mine", `<stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='forged'/>`)
	bob.expectMessage()
	p := alice.query(nil, "")
	wantBodies(t, "alice's archive", p, "forged", "mine")
	if stanzaID(p.msgs[1], "alice@localhost") != "" {
		t.Errorf("alice's archived copy keeps her client's stanza-id: %s", p.msgs[1])
	}
}

// TestWhatIsArchived: chat and normal messages with a body or a store
// hint; not chat states alone, no-store, headlines, errors.
func TestWhatIsArchived(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	to := bob.jid.String()
	for _, m := range []string{
		`<message to='%s' type='chat'><body>chat</body></message>`,
		`<message to='%s'><body>normal</body></message>`,
		`<message to='%s' type='normal'><body>normal2</body></message>`,
		`<message to='%s' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
		`<message to='%s' type='chat'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>`,
		`<message to='%s' type='chat'><body>secret2</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>`,
		`<message to='%s' type='headline'><body>news</body></message>`,
		`<message to='%s' type='chat'><store xmlns='urn:xmpp:hints'/><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>`,
	} {
		alice.r.Send(fmt.Sprintf(m, to))
		bob.expectMessage()
	}
	p := bob.query(nil, "")
	wantBodies(t, "bob's archive", p, "chat", "normal", "normal2", "")
	if len(p.msgs) == 4 && p.msgs[3].Child("eu.siacs.conversations.axolotl", "encrypted") == nil {
		t.Errorf("store hint: %s", p.msgs[3])
	}
	wantBodies(t, "alice's archive", alice.query(nil, ""), "chat", "normal", "normal2", "")
}

// TestOffline: a message stored offline is archived with its stanza-id,
// which the offline copy carries too.
func TestOffline(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	alice.send("bob@localhost", "while you were out", "")
	alice.query(nil, "") // the message has been routed (the router handles alice's stanzas in order)
	bob := login(t, srv, "bob", "b")
	bob.r.Send(`<presence/>`)
	m := bob.expectMessage()
	p := bob.query(nil, "")
	wantBodies(t, "bob's archive", p, "while you were out")
	if id := stanzaID(m, "bob@localhost"); id == "" || len(p.ids) != 1 || p.ids[0] != id {
		t.Errorf("offline copy stanza-id %q, archive %q: %s", id, p.ids, m)
	}
}

// conversation has alice and bob exchange n messages "0".."n-1" (even
// from alice), with carol's "c" messages to alice after 3 and 6, and
// returns alice's archive ids in order.
func conversation(t *testing.T, srv *xmpptest.Server, alice, bob *user, n int) []string {
	t.Helper()
	srv.AddUser(t, "carol", "pw")
	carol := login(t, srv, "carol", "c")
	for i := range n {
		if i%2 == 0 {
			alice.send(bob.jid.String(), fmt.Sprint(i), "")
			bob.expectMessage()
		} else {
			bob.send(alice.jid.String(), fmt.Sprint(i), "")
			alice.expectMessage()
		}
		if i == 3 || i == 6 {
			carol.send(alice.jid.String(), fmt.Sprintf("c%d", i), "")
			alice.expectMessage()
		}
	}
	return alice.query(nil, "<set xmlns='http://jabber.org/protocol/rsm'><max>250</max></set>").ids
}

func TestQueryFilters(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "phone")
	ids := conversation(t, srv, alice, bob, 10)
	if len(ids) != 12 {
		t.Fatalf("alice's archive has %d messages, want 12", len(ids))
	}
	all := []string{"0", "1", "2", "3", "c3", "4", "5", "6", "c6", "7", "8", "9"}
	wantBodies(t, "all", alice.query(nil, ""), all...)
	wantBodies(t, "with bob", alice.query([]string{"with=bob@localhost"}, ""), "0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
	// From bob/phone (received) and to bob/phone (sent to his full JID).
	wantBodies(t, "with bob/phone", alice.query([]string{"with=bob@localhost/phone"}, ""), "0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
	wantBodies(t, "with bob/laptop", alice.query([]string{"with=bob@localhost/laptop"}, ""))
	wantBodies(t, "with carol", alice.query([]string{"with=carol@localhost"}, ""), "c3", "c6")
	wantBodies(t, "after-id", alice.query([]string{"after-id=" + ids[8]}, ""), "7", "8", "9")
	wantBodies(t, "before-id", alice.query([]string{"before-id=" + ids[2]}, ""), "0", "1")
	wantBodies(t, "between", alice.query([]string{"after-id=" + ids[2], "before-id=" + ids[6]}, ""), "3", "c3", "4")
	wantBodies(t, "ids", alice.query([]string{"ids=" + ids[5], "ids=" + ids[1]}, ""), "1", "4")
	wantBodies(t, "with carol after", alice.query([]string{"with=carol@localhost", "after-id=" + ids[5]}, ""), "c6")

	// Time: everything is stamped now; a window in the future is empty,
	// one around now holds everything.
	now := time.Now().UTC()
	wantBodies(t, "start in the future", alice.query([]string{"start=" + now.Add(time.Hour).Format(time.RFC3339)}, ""))
	wantBodies(t, "end in the past", alice.query([]string{"end=" + now.Add(-time.Hour).Format(time.RFC3339)}, ""))
	wantBodies(t, "start and end", alice.query([]string{"start=" + now.Add(-time.Hour).Format(time.RFC3339), "end=" + now.Add(time.Hour).Format("2006-01-02T15:04:05.000-07:00")}, ""), all...)
	// start is inclusive: from the stamp of message 4 on.
	p := alice.query(nil, "")
	stamp := p.stamps[5]
	got := alice.query([]string{"start=" + stamp}, "")
	if len(got.bodies) == 0 || !slices.Contains(got.bodies, "4") || slices.Contains(got.bodies, "0") && p.stamps[0] != stamp {
		t.Errorf("start=%s: %q", stamp, got.bodies)
	}
	for _, b := range got.bodies {
		i := slices.Index(p.bodies, b)
		if p.stamps[i] < stamp {
			t.Errorf("start=%s returned %s stamped %s", stamp, b, p.stamps[i])
		}
	}
}

func TestRSMPaging(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	ids := conversation(t, srv, alice, bob, 10)
	rsm := func(inner string) string { return "<set xmlns='http://jabber.org/protocol/rsm'>" + inner + "</set>" }

	// Forward, 5 at a time.
	p := alice.query(nil, rsm("<max>5</max>"))
	wantBodies(t, "page 1", p, "0", "1", "2", "3", "c3")
	if p.complete || p.first != ids[0] || p.last != ids[4] {
		t.Errorf("page 1: complete %v first %q last %q", p.complete, p.first, p.last)
	}
	p = alice.query(nil, rsm("<max>5</max><after>"+p.last+"</after>"))
	wantBodies(t, "page 2", p, "4", "5", "6", "c6", "7")
	if p.complete {
		t.Error("page 2 complete")
	}
	p = alice.query(nil, rsm("<max>5</max><after>"+p.last+"</after>"))
	wantBodies(t, "page 3", p, "8", "9")
	if !p.complete {
		t.Error("page 3 not complete")
	}
	// Exactly the rest is complete; after the last, an empty complete page.
	p = alice.query(nil, rsm("<max>2</max><after>"+ids[9]+"</after>"))
	if wantBodies(t, "exact rest", p, "8", "9"); !p.complete {
		t.Error("exact rest not complete")
	}
	p = alice.query(nil, rsm("<max>5</max><after>"+ids[11]+"</after>"))
	if wantBodies(t, "after the last", p); !p.complete || p.first != "" {
		t.Errorf("after the last: complete %v first %q", p.complete, p.first)
	}

	// Backward from the end (empty <before/>), then before the first.
	p = alice.query(nil, rsm("<max>5</max><before/>"))
	wantBodies(t, "last page", p, "6", "c6", "7", "8", "9")
	if p.complete || p.first != ids[7] || p.last != ids[11] {
		t.Errorf("last page: complete %v first %q last %q", p.complete, p.first, p.last)
	}
	p = alice.query(nil, rsm("<max>5</max><before>"+p.first+"</before>"))
	wantBodies(t, "page before", p, "2", "3", "c3", "4", "5")
	p = alice.query(nil, rsm("<max>5</max><before>"+p.first+"</before>"))
	if wantBodies(t, "first page backwards", p, "0", "1"); !p.complete {
		t.Error("first page backwards not complete")
	}
	// The last page with a filter.
	wantBodies(t, "last of carol", alice.query([]string{"with=carol@localhost"}, rsm("<max>1</max><before/>")), "c6")

	// flip-page: the same page, newest first.
	p = alice.query(nil, rsm("<max>3</max><before/>")+"<flip-page/>")
	wantBodies(t, "flipped last page", p, "9", "8", "7")
	if p.first != ids[9] || p.last != ids[11] {
		t.Errorf("flipped page: first %q last %q, want the page's oldest and newest", p.first, p.last)
	}
	wantBodies(t, "flipped first page", alice.query(nil, rsm("<max>2</max>")+"<flip-page/>"), "1", "0")

	// The default page is 50, the largest 250; max 0 says only whether
	// anything matches.
	p = alice.query(nil, rsm("<max>0</max>"))
	if wantBodies(t, "max 0", p); p.complete {
		t.Error("max 0 on a non-empty archive is complete")
	}
}

func TestPageLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("routes 300 messages")
	}
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	var batch strings.Builder
	for i := range 300 {
		fmt.Fprintf(&batch, `<message to='%s' type='chat'><body>%d</body></message>`, bob.jid, i)
	}
	alice.r.Send(batch.String())
	for range 300 {
		bob.expectMessage()
	}
	if p := alice.query(nil, ""); len(p.ids) != 50 || p.complete {
		t.Errorf("default page: %d results, complete %v; want 50, false", len(p.ids), p.complete)
	}
	if p := alice.query(nil, "<set xmlns='http://jabber.org/protocol/rsm'><max>1000</max></set>"); len(p.ids) != 250 || p.complete {
		t.Errorf("max 1000: %d results, complete %v; want 250, false", len(p.ids), p.complete)
	}
}

func TestQueryErrors(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.send(bob.jid.String(), "x", "")
	bob.expectMessage()
	rsm := func(inner string) string { return "<set xmlns='http://jabber.org/protocol/rsm'>" + inner + "</set>" }
	for _, tt := range []struct {
		name   string
		to     string
		fields []string
		rsm    string
		cond   stanza.Condition
	}{
		{"unknown after", "", nil, rsm("<after>nope</after>"), stanza.ItemNotFound},
		{"unknown before", "", nil, rsm("<before>nope</before>"), stanza.ItemNotFound},
		{"unknown after-id", "", []string{"after-id=nope"}, "", stanza.ItemNotFound},
		{"unknown before-id", "", []string{"before-id=nope"}, "", stanza.ItemNotFound},
		{"unknown ids", "", []string{"ids=nope"}, "", stanza.ItemNotFound},
		{"bad with", "", []string{"with=@@"}, "", stanza.BadRequest},
		{"bad start", "", []string{"start=yesterday"}, "", stanza.BadRequest},
		{"bad max", "", nil, rsm("<max>-1</max>"), stanza.BadRequest},
		{"unknown field", "", []string{"urn:example:xmpp:free-text-search=romeo"}, "", stanza.FeatureNotImplemented},
		{"rsm index", "", nil, rsm("<index>3</index>"), stanza.FeatureNotImplemented},
		{"another archive", "bob@localhost", nil, "", stanza.Forbidden},
		{"the server's", "localhost", nil, "", stanza.ServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := alice.tryQuery(tt.to, tt.fields, tt.rsm)
			wantCondition(t, tt.name, err, tt.cond)
		})
	}
	// A bad FORM_TYPE.
	_, res := alice.iq("set", "", `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x></query>`)
	se, _ := stanza.ParseError(res)
	wantCondition(t, "FORM_TYPE", se, stanza.BadRequest)
	// To one's own bare JID works like no 'to'.
	if p, err := alice.tryQuery("alice@localhost", nil, ""); err != nil || len(p.ids) != 1 {
		t.Errorf("query to own bare JID: %v, %d results", err, len(p.ids))
	}
}

func TestFormAndMetadata(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	_, res := alice.iq("get", "", `<query xmlns='urn:xmpp:mam:2'/>`)
	x := res.Child(mam.NS, "query").Child(mam.NSData, "x")
	var fields []string
	for _, f := range x.ChildrenNS(mam.NSData) {
		fields = append(fields, f.Attribute("var")+":"+f.Attribute("type"))
	}
	want := []string{"FORM_TYPE:hidden", "with:jid-single", "start:text-single", "end:text-single", "before-id:text-single", "after-id:text-single", "ids:text-multi"}
	if !slices.Equal(fields, want) {
		t.Errorf("form fields %q, want %q", fields, want)
	}

	_, res = alice.iq("get", "", `<metadata xmlns='urn:xmpp:mam:2'/>`)
	if md := res.Child(mam.NS, "metadata"); md == nil || len(md.Children) != 0 {
		t.Errorf("metadata of an empty archive: %s", res)
	}
	for i := range 3 {
		alice.send(bob.jid.String(), fmt.Sprint(i), "")
		bob.expectMessage()
	}
	p := alice.query(nil, "")
	_, res = alice.iq("get", "alice@localhost", `<metadata xmlns='urn:xmpp:mam:2'/>`)
	md := res.Child(mam.NS, "metadata")
	s, e := md.Child(mam.NS, "start"), md.Child(mam.NS, "end")
	if s == nil || e == nil || s.Attribute("id") != p.ids[0] || e.Attribute("id") != p.ids[2] ||
		s.Attribute("timestamp") != p.stamps[0] || e.Attribute("timestamp") != p.stamps[2] {
		t.Errorf("metadata %s, archive ids %q stamps %q", res, p.ids, p.stamps)
	}
	_, res = alice.iq("get", "bob@localhost", `<metadata xmlns='urn:xmpp:mam:2'/>`)
	se, _ := stanza.ParseError(res)
	wantCondition(t, "bob's metadata", se, stanza.Forbidden)
}

func TestDiscoFeatures(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	_, res := alice.iq("get", "localhost", `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	var features []string
	for _, f := range res.FirstChild().ChildrenNS("http://jabber.org/protocol/disco#info") {
		if f.Name.Local == "feature" {
			features = append(features, f.Attribute("var"))
		}
	}
	for _, f := range []string{mam.NS, mam.NSExtended, mam.NSSID} {
		if !slices.Contains(features, f) {
			t.Errorf("disco#info of the server lacks %s: %q", f, features)
		}
	}
	// XEP-0313 §8: and on the account, where clients look.
	_, res = alice.iq("get", alice.bare(), `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	features = nil
	for _, f := range res.FirstChild().ChildrenNS("http://jabber.org/protocol/disco#info") {
		if f.Name.Local == "feature" {
			features = append(features, f.Attribute("var"))
		}
	}
	for _, f := range []string{mam.NS, mam.NSExtended} {
		if !slices.Contains(features, f) {
			t.Errorf("disco#info of the account lacks %s: %q", f, features)
		}
	}
}

func TestPrefs(t *testing.T) {
	srv := start(t, nil)
	srv.AddUser(t, "carol", "pw")
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	carol := login(t, srv, "carol", "c")
	prefs := func(u *user) string {
		t.Helper()
		_, res := u.iq("get", "", `<prefs xmlns='urn:xmpp:mam:2'/>`)
		return res.FirstChild().String()
	}
	if got, want := prefs(alice), `<prefs xmlns="urn:xmpp:mam:2" default="always"><always/><never/></prefs>`; got != want {
		t.Errorf("default prefs %s, want %s", got, want)
	}
	// Never bob; carol always.
	_, res := alice.iq("set", "", `<prefs xmlns='urn:xmpp:mam:2' default='never'><always><jid>carol@localhost/x</jid></always><never><jid>bob@localhost</jid></never></prefs>`)
	if got, want := res.FirstChild().String(), `<prefs xmlns="urn:xmpp:mam:2" default="never"><always><jid>carol@localhost</jid></always><never><jid>bob@localhost</jid></never></prefs>`; got != want {
		t.Errorf("set prefs answered %s, want %s", got, want)
	}
	if got := prefs(alice); !strings.Contains(got, `default="never"`) {
		t.Errorf("prefs after set: %s", got)
	}
	bob.send(alice.jid.String(), "from bob", "")
	if m := alice.expectMessage(); stanzaID(m, "alice@localhost") != "" {
		t.Errorf("a message not archived has a stanza-id: %s", m)
	}
	carol.send(alice.jid.String(), "from carol", "")
	alice.expectMessage()
	alice.send(bob.jid.String(), "to bob", "")
	bob.expectMessage()
	wantBodies(t, "alice's archive", alice.query(nil, ""), "from carol")
	wantBodies(t, "bob's archive", bob.query(nil, ""), "from bob", "to bob")

	// roster: only contacts in the roster.
	alice.iq("set", "", `<prefs xmlns='urn:xmpp:mam:2' default='roster'/>`)
	alice.iq("set", "", `<query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query>`)
	bob.send(alice.jid.String(), "from contact", "")
	alice.expectMessage()
	carol.send(alice.jid.String(), "from stranger", "")
	alice.expectMessage()
	wantBodies(t, "alice's archive (roster)", alice.query(nil, ""), "from carol", "from contact")

	// Bad preferences; someone else's.
	_, res = alice.iq("set", "", `<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>`)
	se, _ := stanza.ParseError(res)
	wantCondition(t, "bad default", se, stanza.BadRequest)
	_, res = alice.iq("get", "bob@localhost", `<prefs xmlns='urn:xmpp:mam:2'/>`)
	se, _ = stanza.ParseError(res)
	wantCondition(t, "bob's prefs", se, stanza.Forbidden)
}

func TestConfigDefaultNever(t *testing.T) {
	srv := start(t, &mam.Config{Default: mam.Never})
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.send(bob.jid.String(), "x", "")
	if m := bob.expectMessage(); stanzaID(m, "bob@localhost") != "" {
		t.Errorf("default never, yet a stanza-id: %s", m)
	}
	wantBodies(t, "bob's archive", bob.query(nil, ""))
}

// TestAccountDeleted: deleting an account deletes its archive, not the
// other party's copy.
func TestAccountDeleted(t *testing.T) {
	srv := start(t, nil)
	alice := login(t, srv, "alice", "a")
	bob := login(t, srv, "bob", "b")
	alice.send(bob.jid.String(), "x", "")
	bob.expectMessage()
	bob.query(nil, "") // written
	if err := srv.Store().DeleteAccount(t.Context(), "alice", "localhost"); err != nil {
		t.Fatal(err)
	}
	srv.AddUser(t, "alice", "pw")
	for who, want := range map[string]int{"alice": 0, "bob": 1} {
		p, err := srv.Store().QueryArchive(t.Context(), who, "localhost", storage.ArchiveQuery{Max: 10})
		if err != nil || len(p.Messages) != want {
			t.Errorf("%s's archive after alice's deletion: %d messages, %v; want %d", who, len(p.Messages), err, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  mam.Config
		keys []string
	}{
		{mam.Config{Default: mam.Always}, nil},
		{mam.Config{Default: mam.Roster, ExpireAfter: 1}, nil},
		{mam.Config{Default: "sometimes"}, []string{"default"}},
		{mam.Config{Default: mam.Never, ExpireAfter: -1}, []string{"expire_after"}},
	} {
		var keys []string
		for _, p := range tt.cfg.Validate() {
			keys = append(keys, p.Key)
		}
		if !slices.Equal(keys, tt.keys) {
			t.Errorf("Validate(%+v) problems at %q, want %q", tt.cfg, keys, tt.keys)
		}
	}
}
