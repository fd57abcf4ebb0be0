package avatar_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/ode-xmpp/ode/internal/modules/avatar"
	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// TestMain fails the package's tests if they leave goroutines behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	nsPubSub = pep.NSPubSub
	nsEvent  = pep.NSEvent
	nsVCard  = "vcard-temp"
)

type client struct {
	t    *testing.T
	r    *xmpptest.Raw
	jid  jid.JID
	ids  int
	held []*xmlstream.Element
}

func login(t *testing.T, srv *xmpptest.Server, local, res string) *client {
	t.Helper()
	r := srv.DialRaw(t)
	r.Login(local, "pw")
	return &client{t: t, r: r, jid: r.Bind(res)}
}

func (c *client) expect(what string, match func(*xmlstream.Element) bool) *xmlstream.Element {
	c.t.Helper()
	for i, e := range c.held {
		if match(e) {
			c.held = append(c.held[:i], c.held[i+1:]...)
			return e
		}
	}
	for range 500 {
		e := c.r.Next()
		if match(e) {
			return e
		}
		c.held = append(c.held, e)
	}
	c.t.Fatalf("%s: not received; got %v", what, c.held)
	return nil
}

func (c *client) mustIQ(typ, to, payload string) *xmlstream.Element {
	c.t.Helper()
	c.ids++
	id := fmt.Sprintf("q%d", c.ids)
	attrTo := ""
	if to != "" {
		attrTo = " to='" + to + "'"
	}
	c.r.Send(fmt.Sprintf(`<iq type='%s' id='%s'%s>%s</iq>`, typ, id, attrTo, payload))
	res := c.expect("answer to "+id, func(e *xmlstream.Element) bool {
		return e.Name.Local == "iq" && e.Attribute("id") == id && (stanza.Type(e) == stanza.IQResult || stanza.Type(e) == stanza.IQError)
	})
	if stanza.Type(res) != stanza.IQResult {
		c.t.Fatalf("%s %s: %s", typ, payload, res)
	}
	return res
}

// presence sends available presence with extra in it and returns the
// copy the server broadcast back to this resource (by its id: the server
// sends a session's last presence again when the avatar changes).
func (c *client) presence(extra string) *xmlstream.Element {
	c.t.Helper()
	c.ids++
	id := fmt.Sprintf("p%d", c.ids)
	c.r.Send(`<presence id='` + id + `'>` + extra + `</presence>`)
	return c.expect("own presence", func(e *xmlstream.Element) bool {
		return e.Name.Local == "presence" && e.Attribute("from") == c.jid.String() && e.Attribute("id") == id
	})
}

// photoHash returns the XEP-0153 hash of a presence: ok false without
// the update element.
func photoHash(t *testing.T, p *xmlstream.Element) (string, bool) {
	t.Helper()
	var xs []*xmlstream.Element
	for _, e := range p.ChildrenNS(avatar.NSUpdate) {
		xs = append(xs, e)
	}
	if len(xs) != 1 {
		t.Fatalf("presence has %d update elements: %s", len(xs), p)
	}
	ph := xs[0].Child(avatar.NSUpdate, "photo")
	if ph == nil {
		return "", false
	}
	return ph.Text(), true
}

func (c *client) publish(node, id, payload string) {
	c.t.Helper()
	c.mustIQ("set", "", `<pubsub xmlns='`+nsPubSub+`'><publish node='`+node+`'><item id='`+id+`'>`+payload+`</item></publish></pubsub>`)
}

// items returns the node's items, newest first (none when it does not
// exist).
func (c *client) items(node string) []*xmlstream.Element {
	c.t.Helper()
	c.ids++
	id := fmt.Sprintf("q%d", c.ids)
	c.r.Send(`<iq type='get' id='` + id + `'><pubsub xmlns='` + nsPubSub + `'><items node='` + node + `'/></pubsub></iq>`)
	res := c.expect("items", func(e *xmlstream.Element) bool { return e.Name.Local == "iq" && e.Attribute("id") == id })
	if stanza.Type(res) != stanza.IQResult {
		return nil
	}
	return res.Child(nsPubSub, "pubsub").Child(nsPubSub, "items").ChildrenNS(nsPubSub)
}

func (c *client) vcard(to string) *xmlstream.Element {
	c.t.Helper()
	return c.mustIQ("get", to, `<vCard xmlns='vcard-temp'/>`).Child(nsVCard, "vCard")
}

// vcardPhoto returns the image of a vCard's PHOTO and its TYPE.
func vcardPhoto(t *testing.T, v *xmlstream.Element) ([]byte, string) {
	t.Helper()
	ph := v.Child(nsVCard, "PHOTO")
	if ph == nil {
		return nil, ""
	}
	img, err := base64.StdEncoding.DecodeString(ph.Child(nsVCard, "BINVAL").Text())
	if err != nil {
		t.Fatalf("BINVAL: %v", err)
	}
	return img, ph.Child(nsVCard, "TYPE").Text()
}

// events takes the held notifications about node.
func (c *client) events(node string) []*xmlstream.Element {
	c.t.Helper()
	c.mustIQ("get", c.jid.Domain().String(), `<ping xmlns='urn:xmpp:ping'/>`)
	var out, rest []*xmlstream.Element
	for _, e := range c.held {
		if ev := e.Child(nsEvent, "event"); e.Name.Local == "message" && ev != nil && ev.Child(nsEvent, "items") != nil &&
			ev.Child(nsEvent, "items").Attribute("node") == node {
			out = append(out, e)
			continue
		}
		rest = append(rest, e)
	}
	c.held = rest
	return out
}

// pngImage returns a w×h PNG.
func pngImage(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, x%h, color.RGBA{R: 200, A: 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sha(b []byte) string {
	h := sha1.Sum(b)
	return hex.EncodeToString(h[:])
}

// publishAvatar publishes img with XEP-0084: data, then metadata.
func (c *client) publishAvatar(img []byte, infos string) string {
	c.t.Helper()
	id := sha(img)
	c.publish(avatar.NSData, id, `<data xmlns='urn:xmpp:avatar:data'>`+base64.StdEncoding.EncodeToString(img)+`</data>`)
	if infos == "" {
		infos = fmt.Sprintf(`<info bytes='%d' id='%s' type='image/png' width='8' height='4'/>`, len(img), id)
	}
	c.publish(avatar.NSMetadata, id, `<metadata xmlns='urn:xmpp:avatar:metadata'>`+infos+`</metadata>`)
	return id
}

func start(t *testing.T) *xmpptest.Server {
	t.Helper()
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	return srv
}

// TestDisco: the account advertises XEP-0398.
func TestDisco(t *testing.T) {
	srv := start(t)
	alice := login(t, srv, "alice", "phone")
	q := alice.mustIQ("get", "", `<query xmlns='`+stanza.NSDiscoInfo+`'/>`).Child(stanza.NSDiscoInfo, "query")
	var features []string
	for _, f := range q.ChildrenNS(stanza.NSDiscoInfo) {
		features = append(features, f.Attribute("var"))
	}
	if !slices.Contains(features, avatar.NSConversion) {
		t.Errorf("account features lack %s: %q", avatar.NSConversion, features)
	}
}

// TestPEPToVCard: a XEP-0084 avatar becomes the vCard PHOTO (seen by
// another user) and its hash is stamped into presence, replacing the
// client's; other vCard fields stay; empty metadata removes the PHOTO.
func TestPEPToVCard(t *testing.T) {
	srv := start(t)
	for _, p := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		if _, err := srv.Store().PutRosterItem(t.Context(), p[0], srv.Domain,
			storage.RosterItem{Contact: p[1] + "@" + srv.Domain, Subscription: storage.SubBoth}, 0); err != nil {
			t.Fatal(err)
		}
	}
	alice := login(t, srv, "alice", "phone")
	bob := login(t, srv, "bob", "pc")
	bob.presence("")
	alice.mustIQ("set", "", `<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>`)
	if h, ok := photoHash(t, alice.presence(`<x xmlns='vcard-temp:x:update'><photo>0123456789abcdef</photo></x>`)); !ok || h != "" {
		t.Errorf("presence before an avatar: photo %q %v, want an empty <photo/>", h, ok)
	}

	img := pngImage(t, 8, 4)
	id := alice.publishAvatar(img, `<info bytes='1' id='`+sha(img)+`' type='image/png' url='https://example.org/a.png'/>`+
		fmt.Sprintf(`<info bytes='%d' id='%s' type='image/png'/>`, len(img), sha(img)))
	v := bob.vcard("alice@" + srv.Domain)
	got, typ := vcardPhoto(t, v)
	if !bytes.Equal(got, img) || typ != "image/png" {
		t.Errorf("vCard PHOTO: %d bytes of type %q, want the %d bytes of the avatar", len(got), typ, len(img))
	}
	if fn := v.Child(nsVCard, "FN"); fn == nil || fn.Text() != "Alice" {
		t.Errorf("the vCard lost its FN: %s", v)
	}
	if h, ok := photoHash(t, alice.presence(`<x xmlns='vcard-temp:x:update'><photo>0123456789abcdef</photo></x><status>here</status>`)); !ok || h != id {
		t.Errorf("presence photo %q, want %s", h, id)
	}
	// A contact's copy carries it too.
	p := bob.expect("alice's presence", func(e *xmlstream.Element) bool {
		return e.Name.Local == "presence" && e.Attribute("from") == alice.jid.String() && e.Child("", "status") != nil
	})
	if h, _ := photoHash(t, p); h != id {
		t.Errorf("bob sees photo %q, want %s", h, id)
	}
	// No loop: the server's vCard write published nothing more than the
	// notification of the client's own publish.
	if ev := alice.events(avatar.NSMetadata); len(ev) != 1 {
		t.Errorf("%d metadata events, want the one of the client's publish", len(ev))
	}

	// A new avatar: alice's last presence goes out again with its hash,
	// without her client sending it.
	img2 := pngImage(t, 5, 5)
	id2 := alice.publishAvatar(img2, "")
	p = bob.expect("alice's presence again", func(e *xmlstream.Element) bool {
		if e.Name.Local != "presence" || e.Attribute("from") != alice.jid.String() {
			return false
		}
		h, _ := photoHash(t, e)
		return h == id2
	})
	if st := p.Child("", "status"); st == nil || st.Text() != "here" {
		t.Errorf("the presence sent again is not alice's last one: %s", p)
	}

	// Disabled (XEP-0084 §4.2).
	alice.publish(avatar.NSMetadata, "current", `<metadata xmlns='urn:xmpp:avatar:metadata'/>`)
	if ph := alice.vcard("").Child(nsVCard, "PHOTO"); ph != nil {
		t.Errorf("the vCard keeps a PHOTO after the avatar was disabled: %s", ph)
	}
	if h, ok := photoHash(t, alice.presence("")); !ok || h != "" {
		t.Errorf("presence after disabling: %q %v", h, ok)
	}

	// Unavailable (still connected): a new avatar sends nothing for her.
	alice.r.Send(`<presence type='unavailable'/>`)
	bob.expect("alice unavailable", func(e *xmlstream.Element) bool {
		return e.Name.Local == "presence" && e.Attribute("from") == alice.jid.String() && e.Attribute("type") == "unavailable"
	})
	alice.publishAvatar(pngImage(t, 3, 3), "")
	bob.mustIQ("get", srv.Domain, `<ping xmlns='urn:xmpp:ping'/>`)
	for _, e := range bob.held {
		if e.Name.Local == "presence" && e.Attribute("from") == alice.jid.String() && e.Attribute("type") == "" {
			if h, _ := photoHash(t, e); h == sha(pngImage(t, 3, 3)) {
				t.Errorf("an unavailable session's presence was sent again: %s", e)
			}
		}
	}
}

// TestPEPToVCardRefused: metadata whose data is missing, whose hash does
// not match, or whose image is too large for a vCard, leaves the vCard as
// it is.
func TestPEPToVCardRefused(t *testing.T) {
	srv := start(t)
	alice := login(t, srv, "alice", "phone")
	alice.mustIQ("set", "", `<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>`)
	// Metadata for data never published.
	alice.publish(avatar.NSMetadata, "aaaa", `<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='3' id='aaaa' type='image/png'/></metadata>`)
	// Data under the wrong id.
	img := pngImage(t, 8, 4)
	alice.publish(avatar.NSData, "bbbb", `<data xmlns='urn:xmpp:avatar:data'>`+base64.StdEncoding.EncodeToString(img)+`</data>`)
	alice.publish(avatar.NSMetadata, "bbbb", `<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='3' id='bbbb' type='image/png'/></metadata>`)
	// An image larger than a vCard may be.
	big := make([]byte, 70<<10)
	_, _ = rand.Read(big)
	bigID := alice.publishAvatar(big, "")
	if ph := alice.vcard("").Child(nsVCard, "PHOTO"); ph != nil {
		t.Errorf("the vCard got a PHOTO: %d bytes", len(ph.String()))
	}
	// The presence still names the PEP avatar.
	if h, _ := photoHash(t, alice.presence("")); h != bigID {
		t.Errorf("presence photo %q, want %s", h, bigID)
	}
}

// TestVCardToPEP: a vCard PHOTO set by a legacy client is published as
// XEP-0084 data and metadata (with its size in pixels), notified once;
// the same photo again publishes nothing; a vCard without PHOTO disables
// the avatar.
func TestVCardToPEP(t *testing.T) {
	srv := start(t)
	legacy := login(t, srv, "alice", "legacy")
	modern := login(t, srv, "alice", "modern")
	legacy.presence("")
	modern.presence("")
	img := pngImage(t, 16, 9)
	id := sha(img)
	vc := `<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>` +
		base64.StdEncoding.EncodeToString(img)[:20] + "\n" + base64.StdEncoding.EncodeToString(img)[20:] + `</BINVAL></PHOTO></vCard>`
	legacy.mustIQ("set", "", vc)

	data := modern.items(avatar.NSData)
	if len(data) != 1 || data[0].Attribute("id") != id {
		t.Fatalf("data items: %v", data)
	}
	if got, _ := base64.StdEncoding.DecodeString(data[0].Child(avatar.NSData, "data").Text()); !bytes.Equal(got, img) {
		t.Errorf("data item is not the photo")
	}
	md := modern.items(avatar.NSMetadata)
	if len(md) != 1 || md[0].Attribute("id") != id {
		t.Fatalf("metadata items: %v", md)
	}
	info := md[0].Child(avatar.NSMetadata, "metadata").Child(avatar.NSMetadata, "info")
	want := map[string]string{"id": id, "bytes": fmt.Sprint(len(img)), "type": "image/png", "width": "16", "height": "9"}
	for k, v := range want {
		if info.Attribute(k) != v {
			t.Errorf("info %s = %q, want %q (%s)", k, info.Attribute(k), v, info)
		}
	}
	if ev := modern.events(avatar.NSMetadata); len(ev) != 1 {
		t.Errorf("%d metadata events, want 1", len(ev))
	}
	if h, _ := photoHash(t, modern.presence("")); h != id {
		t.Errorf("presence photo %q, want %s", h, id)
	}
	// The same vCard again: nothing new.
	legacy.mustIQ("set", "", vc)
	if ev := modern.events(avatar.NSMetadata); len(ev) != 0 {
		t.Errorf("an unchanged photo published %d metadata events", len(ev))
	}
	// Without PHOTO: the avatar is disabled.
	legacy.mustIQ("set", "", `<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>`)
	md = modern.items(avatar.NSMetadata)
	if len(md) != 1 || len(md[0].Child(avatar.NSMetadata, "metadata").ChildrenNS("")) != 0 {
		t.Errorf("metadata after removing the PHOTO: %v", md)
	}
	if h, ok := photoHash(t, modern.presence("")); !ok || h != "" {
		t.Errorf("presence photo after removing: %q", h)
	}
}

// TestVCardBeforeConversion: a vCard photo stored before the module ran
// (no PEP avatar) is what presence names.
func TestVCardBeforeConversion(t *testing.T) {
	srv := start(t)
	img := pngImage(t, 4, 4)
	doc := `<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>` + base64.StdEncoding.EncodeToString(img) + `</BINVAL></PHOTO></vCard>`
	if err := srv.Store().PutXML(t.Context(), "alice", srv.Domain, "vcard-temp", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	alice := login(t, srv, "alice", "phone")
	if h, _ := photoHash(t, alice.presence("")); h != sha(img) {
		t.Errorf("presence photo %q, want %s", h, sha(img))
	}
}

// TestReload: a reload that turns the module off takes its functions out
// of pep and vcard (which run on), and one that turns it on again
// converts each change once.
func TestReload(t *testing.T) {
	srv := start(t)
	reload := func(disabled ...string) {
		t.Helper()
		cfg := srv.Server.Config()
		cfg.Modules.Disabled = disabled
		if _, err := srv.Reload(t.Context(), cfg); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}
	reload("avatar")
	alice := login(t, srv, "alice", "phone")
	img := pngImage(t, 6, 6)
	vc := `<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>` + base64.StdEncoding.EncodeToString(img) + `</BINVAL></PHOTO></vCard>`
	alice.mustIQ("set", "", vc)
	if md := alice.items(avatar.NSMetadata); len(md) != 0 {
		t.Errorf("avatar off: the vCard was converted: %v", md)
	}
	if p := alice.presence(""); len(p.ChildrenNS(avatar.NSUpdate)) != 0 {
		t.Errorf("avatar off: presence stamped: %s", p)
	}
	reload()
	alice.presence("")
	alice.mustIQ("set", "", `<vCard xmlns='vcard-temp'><FN>A</FN>`+vc[len(`<vCard xmlns='vcard-temp'>`):])
	if md := alice.items(avatar.NSMetadata); len(md) != 1 || md[0].Attribute("id") != sha(img) {
		t.Errorf("avatar on again: metadata %v", md)
	}
	if ev := alice.events(avatar.NSMetadata); len(ev) != 1 {
		t.Errorf("avatar on again: %d metadata events, want 1", len(ev))
	}
}
