package xep227_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/sqlite"
	"github.com/ode-xmpp/ode/internal/storage/storagetest"
	"github.com/ode-xmpp/ode/internal/xep227"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/xmlstream"
)

func xep227HashForTest(password string) ([]storage.Credential, error) {
	cs, err := sasl.NewCredentials(password, 4096)
	if err != nil {
		return nil, err
	}
	var out []storage.Credential
	for _, c := range cs {
		out = append(out, storage.Credential{Hash: string(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey})
	}
	return out, nil
}

var (
	domains  = []string{"example.org", "example.net", "capulet.com", "ej.test"}
	services = []string{storagetest.RoomService}
)

func openStore(t testing.TB) storage.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ode.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func export(t testing.TB, s storage.Store) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := xep227.Export(t.Context(), s, &b, xep227.ExportOptions{Domains: domains, RoomServices: services}); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return b.Bytes()
}

func importOpts(notices *[]string) xep227.ImportOptions {
	return xep227.ImportOptions{Domains: domains, RoomServices: services, Iterations: 4096, Notice: func(m string) {
		if notices != nil {
			*notices = append(*notices, m)
		}
	}}
}

// TestRoundTrip exports a populated store, imports the document into an
// empty one and exports that: the two documents are the same bytes.
// The data they hold is checked through the store too.
func TestRoundTrip(t *testing.T) {
	a := openStore(t)
	populate(t, a)
	first := export(t, a)

	b := openStore(t)
	var notices []string
	st, err := xep227.Import(t.Context(), b, bytes.NewReader(first), "first.xml", "", importOpts(&notices))
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	second := export(t, b)
	if !bytes.Equal(first, second) {
		t.Errorf("the export of the import differs:\n%s", cmp.Diff(string(first), string(second)))
	}
	if st.Users != 5 || st.Hosts != 4 || st.Rooms != 2 || st.RoomArchived != 3 || st.Archived != 610 || st.Offline != 4 ||
		st.Credentials != 8 || st.RosterItems != 4 || st.Pending != 3 || st.VCards != 1 || st.PrivateXML != 1 || st.Blocked != 3 ||
		st.PEPNodes != 3 || st.PEPItems != 3 {
		t.Errorf("import stats: %v", st)
	}
	t.Logf("notices: %q", notices)

	ctx := t.Context()
	for _, h := range []string{"SHA-1", "SHA-256", "SHA-512"} {
		ca, errA := a.Credential(ctx, "alice", "example.org", h)
		cb, errB := b.Credential(ctx, "alice", "example.org", h)
		if !errors.Is(errA, storage.ErrNotFound) && (errA != nil || errB != nil || !cmp.Equal(ca, cb)) {
			t.Errorf("credential %s: %+v, %v; imported %+v, %v", h, ca, errA, cb, errB)
		}
	}
	ra, _, _ := a.Roster(ctx, "alice", "example.org")
	rb, _, _ := b.Roster(ctx, "alice", "example.org")
	for i := range ra {
		ra[i].Version = 0
	}
	for i := range rb {
		rb[i].Version = 0
	}
	if diff := cmp.Diff(ra, rb); diff != "" {
		t.Errorf("roster of alice (-exported +imported):\n%s", diff)
	}
	pa, _ := a.PendingSubscriptions(ctx, "carol", "example.org")
	pb, _ := b.PendingSubscriptions(ctx, "carol", "example.org")
	canonical := func(ps []storage.PendingSubscription) {
		for i := range ps {
			e, err := xmlstream.ParseElement(ps[i].Stanza, "jabber:client")
			if err != nil {
				t.Fatal(err)
			}
			ps[i].Stanza = e.AppendXML(nil, "jabber:client")
		}
	}
	canonical(pa)
	canonical(pb)
	if diff := cmp.Diff(pa, pb); diff != "" || len(pa) != 2 {
		t.Errorf("pending subscriptions of carol (-exported +imported):\n%s", diff)
	}
	oa, _ := a.OfflineMessages(ctx, "bob", "example.org")
	ob, _ := b.OfflineMessages(ctx, "bob", "example.org")
	if len(oa) != len(ob) || len(ob) == 0 || !oa[0].Stamp.Equal(ob[0].Stamp) {
		t.Errorf("offline messages of bob: %d, imported %d", len(oa), len(ob))
	}
	ba, _ := a.Blocklist(ctx, "alice", "example.org")
	bb, _ := b.Blocklist(ctx, "alice", "example.org")
	if !cmp.Equal(ba, bb) {
		t.Errorf("block list %q, imported %q", ba, bb)
	}
	for _, node := range []string{"urn:xmpp:avatar:metadata", "urn:xmpp:bookmarks:1"} {
		ia, _ := a.PubSubItems(ctx, "alice", "example.org", node, nil, 0)
		ib, err := b.PubSubItems(ctx, "alice", "example.org", node, nil, 0)
		if err != nil || !cmp.Equal(ia, ib) {
			t.Errorf("PEP items of %s: %+v; imported %+v, %v", node, ia, ib, err)
		}
	}
	qa, _ := a.Rooms(ctx, storagetest.RoomService)
	qb, _ := b.Rooms(ctx, storagetest.RoomService)
	if len(qa) != len(qb) || !cmp.Equal(qa[0].Affiliations, qb[0].Affiliations) || !qa[0].Created.Equal(qb[0].Created) {
		t.Errorf("rooms %+v, imported %+v", qa, qb)
	}

	// A second import of the same data changes nothing: the accounts
	// exist and are skipped.
	st, err = xep227.Import(t.Context(), b, bytes.NewReader(first), "first.xml", "", importOpts(nil))
	if err != nil || st.Skipped != 5 || st.Users != 0 {
		t.Errorf("second import: %v, %v", st, err)
	}
	if third := export(t, b); !bytes.Equal(first, third) {
		t.Errorf("a second import changed the data:\n%s", cmp.Diff(string(first), string(third)))
	}
}

// populate stores something of every aggregate Export writes: what
// storagetest.Populate stores, with fewer accounts (Export reads each
// account's data with a few queries, slow under the race detector), and
// an archive of more than one export page.
func populate(t *testing.T, s storage.Store) {
	t.Helper()
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("populate: %s: %v", what, err)
		}
	}
	creds, err := xep227HashForTest("secret")
	must("credentials", err)
	for _, a := range []struct{ local, domain string }{{"alice", "example.org"}, {"bob", "example.org"}, {"carol", "example.org"}, {"alice", "example.net"}} {
		must("CreateAccount", s.CreateAccount(ctx, a.local, a.domain, creds[:2]))
	}
	must("CreateAccount", s.CreateAccount(ctx, "nocreds", "example.org", nil))
	for _, it := range []storage.RosterItem{
		{Contact: "bob@example.org", Name: "Bob", Groups: []string{"Friends", "Work"}, Subscription: storage.SubBoth},
		{Contact: "carol@example.org", Subscription: storage.SubTo, AskOut: true},
		{Contact: "dave@example.com", Name: "Dave ☺", Subscription: storage.SubNone, PendingIn: true, Approved: true},
	} {
		_, err := s.PutRosterItem(ctx, "alice", "example.org", it, 0)
		must("PutRosterItem", err)
	}
	_, err = s.PutRosterItem(ctx, "bob", "example.org", storage.RosterItem{Contact: "alice@example.org", Subscription: storage.SubBoth}, 0)
	must("PutRosterItem", err)
	for _, c := range []string{"mallory@example.com", "trent@example.com"} {
		must("PutPendingSubscription", s.PutPendingSubscription(ctx, "carol", "example.org",
			storage.PendingSubscription{Contact: c, Stanza: []byte("<presence from='" + c + "' type='subscribe'><status>hi &amp; bye</status></presence>")}))
	}
	stamp := time.Date(2025, 3, 1, 21, 30, 15, 0, time.UTC)
	for i := range 4 {
		must("StoreOffline", s.StoreOffline(ctx, "bob", "example.org", storage.OfflineMessage{
			Stanza: fmt.Appendf(nil, "<message from='romeo@example.net/orchard' to='bob@example.org' type='chat'><body>for bob %d</body></message>", i),
			Stamp:  stamp.Add(time.Duration(i) * time.Second)}, 0))
	}
	must("PutXML", s.PutXML(ctx, "alice", "example.org", "vcard-temp", []byte("<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><BINVAL>AAAA</BINVAL></PHOTO></vCard>")))
	must("PutXML", s.PutXML(ctx, "bob", "example.org", "private:storage:bookmarks storage", []byte("<storage xmlns='storage:bookmarks'><conference jid='lobby@conference.example.org'/></storage>")))
	must("Block", s.Block(ctx, "alice", "example.org", []string{"example.com", "mallory@example.com", "trent@example.com/x"}))
	var msgs []storage.ArchivedMessage
	for i := range 600 {
		m := storage.ArchivedMessage{Local: "alice", Domain: "example.org", ID: fmt.Sprintf("a%05d", i), With: "bob@example.org", WithResource: "phone",
			Stamp: stamp.Add(time.Duration(i) * time.Minute), Outgoing: i%2 == 0}
		if m.Outgoing {
			m.Stanza = fmt.Appendf(nil, "<message from='alice@example.org/home' to='bob@example.org/phone' type='chat'><body>%d ☺</body></message>", i)
		} else {
			m.Stanza = fmt.Appendf(nil, "<message from='bob@example.org/phone' to='alice@example.org/home' type='chat'><body>%d ☺</body></message>", i)
		}
		msgs = append(msgs, m)
	}
	for i := range 10 {
		msgs = append(msgs, storage.ArchivedMessage{Local: "bob", Domain: "example.org", ID: fmt.Sprintf("b%02d", i), With: "alice@example.org",
			Stamp: stamp.Add(time.Duration(i) * time.Minute), Stanza: []byte("<message from='alice@example.org' to='bob@example.org'><body>x</body></message>")})
	}
	_, err = s.AppendArchive(ctx, msgs)
	must("AppendArchive", err)
	for i, n := range []struct{ node, config string }{
		{"urn:xmpp:avatar:metadata", `{"access_model":"presence","max_items":1}`},
		{"urn:xmpp:bookmarks:1", `{"access_model":"whitelist","members":["alice@example.net"],"title":"Bookmarks ☺"}`},
		{"empty", ""},
	} {
		must("CreatePubSubNode", s.CreatePubSubNode(ctx, "alice", "example.org", storage.PubSubNode{Node: n.node, Config: []byte(n.config),
			Created: stamp.Add(time.Duration(i) * time.Hour)}, 0))
	}
	for i, it := range []storage.PubSubItem{
		{ID: "a1", Publisher: "alice@example.org/home", Payload: []byte(`<metadata xmlns="urn:xmpp:avatar:metadata"><info id="a1" bytes="3"/></metadata>`)},
		{ID: "lobby@conference.example.org", Publisher: "alice@example.org", Payload: []byte(`<conference xmlns="urn:xmpp:bookmarks:1" autojoin="true"><nick>Al</nick></conference>`)},
		{ID: "play@conference.example.org", Publisher: "alice@example.org"},
	} {
		node := "urn:xmpp:bookmarks:1"
		if i == 0 {
			node = "urn:xmpp:avatar:metadata"
		}
		it.Published = stamp.Add(time.Duration(i) * time.Minute)
		_, err := s.PublishPubSubItem(ctx, "alice", "example.org", node, it, 0)
		must("PublishPubSubItem", err)
	}
	room := "lobby@" + storagetest.RoomService
	must("PutRoom", s.PutRoom(ctx, storage.Room{JID: room, Config: []byte(`{"name":"Lobby","public":true,"whois_anyone":true,"max_users":50,"occupant_id_key":"AAECAwQFBgcICQoLDA0ODw=="}`),
		Subject: []byte(`<message xmlns="jabber:client" type="groupchat"><subject>hi</subject></message>`), Created: stamp}))
	must("PutRoom", s.PutRoom(ctx, storage.Room{JID: "quiet@" + storagetest.RoomService, Config: []byte(`{}`), Created: stamp}))
	must("SetRoomAffiliation", s.SetRoomAffiliation(ctx, room, "alice@example.org", "owner"))
	must("SetRoomAffiliation", s.SetRoomAffiliation(ctx, room, "eve@example.net", "outcast"))
	var roomMsgs []storage.ArchivedMessage
	for i := range 3 {
		roomMsgs = append(roomMsgs, storage.ArchivedMessage{Local: "lobby", Domain: storagetest.RoomService, ID: fmt.Sprintf("r%02d", i), With: room, WithResource: "alice",
			Stamp: stamp.Add(time.Duration(i) * time.Second), Stanza: fmt.Appendf(nil, `<message type="groupchat" from="%s/alice"><body>%d</body></message>`, room, i)})
	}
	_, err = s.AppendRoomArchive(ctx, roomMsgs)
	must("AppendRoomArchive", err)
}

// TestImportFile reads a document split into files with XInclude (§5),
// as ejabberd writes it: a main file including one file per host.
func TestImportFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("main.xml", `<?xml version='1.0' encoding='UTF-8'?><server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>`+
		`<xi:include href='example.org.xml'/></server-data>`)
	write("example.org.xml", `<?xml version='1.0'?><host xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' jid='example.org'>`+
		`<xi:include href='example.org/juliet.xml'/><user name='romeo' password='iLuvJuLi3T'/></host>`)
	write("example.org/juliet.xml", `<user xmlns='urn:xmpp:pie:0' name='Juliet'>
  <query xmlns='jabber:iq:roster'><item jid='Romeo@example.org' subscription='both' name='Romeo'><group>Friends</group><group>Friends</group></item></query>
  <vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard>
  <presence xmlns='jabber:client' type='subscribe' from='nurse@example.net/kitchen'/>
  <query xmlns='jabber:iq:privacy'><default name='public'/><list name='public'><item type='jid' value='tybalt@example.com' action='deny' order='1'/><item action='allow' order='2'/></list></query>
  <unknown xmlns='urn:example'>ignored</unknown>
</user>`)
	s := openStore(t)
	var notices []string
	st, err := xep227.ImportFile(t.Context(), s, filepath.Join(dir, "main.xml"), importOpts(&notices))
	if err != nil {
		t.Fatalf("ImportFile: %v", err)
	}
	if st.Users != 2 || st.Passwords != 1 || st.RosterItems != 1 || st.VCards != 1 || st.Pending != 1 || st.Blocked != 1 || st.Ignored != 1 {
		t.Errorf("stats: %v", st)
	}
	ctx := context.Background()
	items, _, err := s.Roster(ctx, "juliet", "example.org")
	want := []storage.RosterItem{{Contact: "romeo@example.org", Name: "Romeo", Groups: []string{"Friends"}, Subscription: storage.SubBoth, Version: 1}}
	if err != nil || !cmp.Equal(items, want) {
		t.Errorf("roster = %+v, %v; want %+v", items, err, want)
	}
	for _, h := range []string{"SHA-1", "SHA-256", "SHA-512"} {
		if c, err := s.Credential(ctx, "romeo", "example.org", h); err != nil || c.Iterations != 4096 {
			t.Errorf("romeo's %s credential: %+v, %v", h, c, err)
		}
	}
	if !strings.Contains(strings.Join(notices, "\n"), "urn:example") {
		t.Errorf("no notice of the ignored element: %q", notices)
	}
}

// TestImportErrors checks that bad input is refused with its position.
func TestImportErrors(t *testing.T) {
	const head = `<server-data xmlns='urn:xmpp:pie:0'><host jid='example.org'>`
	const tail = `</host></server-data>`
	for _, tc := range []struct{ name, doc, want string }{
		{"not XML", "hello", "doc.xml:1:"},
		{"truncated", head + "<user name='a'>", "doc.xml:1:76: unexpected EOF"},
		{"wrong root", "<stream xmlns='x'/>", "unexpected root element <stream xmlns='x'>"},
		{"other host", `<server-data xmlns='urn:xmpp:pie:0'><host jid='elsewhere.example'></host></server-data>`, "does not serve elsewhere.example"},
		{"user without name", head + "<user/>" + tail, "not a valid localpart"},
		{"bad localpart", head + "<user name='a b'/>" + tail, "not a valid localpart"},
		{"bad scram", head + "<user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>0</iter-count></scram-credentials></user>" + tail, "iter-count"},
		{"bad mechanism", head + "<user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='DIGEST-MD5'/></user>" + tail, "mechanism \"DIGEST-MD5\""},
		{"bad roster jid", head + "<user name='a'><query xmlns='jabber:iq:roster'><item jid='@'/></query></user>" + tail, "roster item of a@example.org"},
		{"entity", head + "<user name='&foo;'/>" + tail, "doc.xml:1:"},
		{"include without file", `<server-data xmlns='urn:xmpp:pie:0'><include xmlns='http://www.w3.org/2001/XInclude' href='x.xml'/></server-data>`, "includes need the document read from a file"},
		{"text", head + "text" + tail, "text in <host/>"},
		{"deep", head + "<user name='a'><vCard xmlns='vcard-temp'>" + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + "</vCard></user>" + tail, "nested deeper than 64"},
		{"huge text", head + "<user name='a'><vCard xmlns='vcard-temp'><FN>" + strings.Repeat("x", 2000) + "</FN></vCard></user>" + tail, "larger than 1024 bytes"},
		{"two roots", head + tail + "<server-data xmlns='urn:xmpp:pie:0'/>", "a second root element"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := importOpts(nil)
			opts.Limits.MaxElementBytes = 1024
			_, err := xep227.Import(t.Context(), openStore(t), strings.NewReader(tc.doc), "doc.xml", "", opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Import = %v, want an error containing %q", err, tc.want)
			}
			if !errors.Is(err, xep227.ErrInput) {
				t.Errorf("%v does not wrap ErrInput", err)
			}
		})
	}
}

// TestIncludeOutside refuses includes that leave the document's
// directory.
func TestIncludeOutside(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.xml"), []byte("<host xmlns='urn:xmpp:pie:0' jid='example.org'/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "export")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, href := range []string{"../secret.xml", "/etc/passwd", "file:///etc/passwd", "main.xml"} {
		doc := `<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='` + href + `'/></server-data>`
		if err := os.WriteFile(filepath.Join(sub, "main.xml"), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := xep227.ImportFile(t.Context(), openStore(t), filepath.Join(sub, "main.xml"), importOpts(nil))
		if !errors.Is(err, xep227.ErrInput) {
			t.Errorf("include %s: %v, want an ErrInput error", href, err)
		}
	}
}

// TestProsody imports what Prosody 0.12.3 (Debian 12) writes with
// prosody-migrator into its xep0227 store (testdata: the file it wrote
// for juliet@pr.test, registered with prosodyctl): the SCRAM-SHA-1
// verifier, whose salt is the text of a UUID, checks the password.
func TestProsody(t *testing.T) {
	s := openStore(t)
	opts := importOpts(nil)
	opts.Domains = []string{"pr.test"}
	st, err := xep227.ImportFile(t.Context(), s, "testdata/prosody-0.12.3-migrator.xml", opts)
	if err != nil || st.Users != 1 || st.Credentials != 1 {
		t.Fatalf("ImportFile: %v, %v", st, err)
	}
	c, err := s.Credential(t.Context(), "juliet", "pr.test", "SHA-1")
	if err != nil {
		t.Fatal(err)
	}
	cred := sasl.Credential{Hash: sasl.Hash(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	if string(c.Salt) != "662d4e61-f219-4d25-8ba9-cf0c48c14180" || c.Iterations != 10000 || !sasl.VerifyPassword(cred, "R0meo ☺") || sasl.VerifyPassword(cred, "R0meo") {
		t.Errorf("imported credential %+v does not check Prosody's password", c)
	}
}

// TestEjabberdSCRAM imports ejabberd 24.12's export (testdata: the host
// file export_piefxis wrote for juliet@ej.test and romeo@ej.test, with
// the keys and salt base64-encoded twice): the SCRAM-SHA-256 verifiers
// check the passwords.
func TestEjabberdSCRAM(t *testing.T) {
	s := openStore(t)
	st, err := xep227.ImportFile(t.Context(), s, "testdata/ejabberd-24.12-host.xml", importOpts(nil))
	if err != nil || st.Users != 2 || st.Credentials != 2 || st.Offline != 1 || st.RosterItems != 2 || st.PrivateXML != 1 {
		t.Fatalf("ImportFile: %v, %v", st, err)
	}
	for user, password := range map[string]string{"juliet": "Rom3o&me", "romeo": "s3cret"} {
		c, err := s.Credential(t.Context(), user, "ej.test", "SHA-256")
		if err != nil {
			t.Fatal(err)
		}
		cred := sasl.Credential{Hash: sasl.Hash(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
		if len(c.StoredKey) != 32 || !sasl.VerifyPassword(cred, password) {
			t.Errorf("%s: imported credential %+v does not check ejabberd's password", user, c)
		}
	}
}
