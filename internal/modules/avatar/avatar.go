// Package avatar keeps a user's XEP-0084 avatar (the PEP nodes
// 'urn:xmpp:avatar:data' and 'urn:xmpp:avatar:metadata') and their
// vcard-temp PHOTO (XEP-0054, XEP-0153) the same, as XEP-0398 describes,
// and stamps the avatar's hash into the user's presence, so that clients
// that know only one of the two ways (and group chats, which use vCards)
// see the avatar.
//
// When a client publishes metadata, the server takes the <info/> without
// a 'url' (XEP-0398 §3), the data item of its id from the data node,
// checks that the image's SHA-1 is that id, and stores it as the vCard's
// PHOTO (TYPE and BINVAL). Empty metadata (XEP-0084 §4.2: no avatar)
// removes the PHOTO. When a client sets a vCard with a PHOTO whose hash is
// not the current avatar's, the server publishes the image to the data
// node and then its metadata (bytes, type and, for PNG, JPEG and GIF, its
// size in pixels); a vCard without a PHOTO disables the avatar. What the
// server itself publishes or stores is not converted back.
//
// Each available presence a user's client sends gets a <x
// xmlns='vcard-temp:x:update'><photo>hash</photo></x> with the SHA-1 of
// the current avatar (an empty <photo/> for none) in place of what the
// client put there (XEP-0153 §3.1, XEP-0398 §4). Each session keeps the
// hash it stamps, read from storage for its first presence and updated
// when the account's avatar changes on this server (a publish or
// retraction of metadata, a node deletion), so that a presence costs no
// storage read. When the hash changes, the server sends each session's
// last broadcast presence again on its behalf, with the new hash, so that
// contacts learn of the new avatar without waiting for the client's next
// presence (XEP-0153 §3.1 asks a client to do so; a XEP-0084 client does
// not know it should).
//
// Limits: the data item is limited by pep's max_item_bytes, the vCard by
// vcard.MaxBytes; an avatar too large for the vCard stays in PEP only (its
// hash is still in presence).
package avatar

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"image"
	_ "image/gif"  // image.DecodeConfig of GIF avatars
	_ "image/jpeg" // and JPEG
	_ "image/png"  // and PNG
	"strconv"
	"strings"
	"sync"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/modules/vcard"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces: the XEP-0084 nodes, the XEP-0398 feature, the XEP-0153
// presence element.
const (
	NSData       = "urn:xmpp:avatar:data"
	NSMetadata   = "urn:xmpp:avatar:metadata"
	NSConversion = "urn:xmpp:pep-vcard-conversion:0"
	NSUpdate     = "vcard-temp:x:update"
)

// noAvatarItem is the item id of metadata that disables the avatar.
const noAvatarItem = "current"

// Info describes the module to the server.
var Info = module.Info{
	Name: "avatar",
	XEPs: []string{"XEP-0084", "XEP-0398", "XEP-0153"},
	New:  module.Plain(New),
}

// Module is the avatar conversion module.
type Module struct {
	deps    module.Deps
	r       *router.Router
	pep     *pep.Module
	vcard   *vcard.Module
	removes []func() // what Register added to pep and vcard
}

// photoKey is a session's *photoCache.
var photoKey = session.NewKey[*photoCache]()

// photoCache is the hash a session stamps into its presence.
type photoCache struct {
	mu    sync.Mutex // a leaf
	id    string     // "" for no avatar
	known bool
	gen   uint64 // counts changes, so that a lookup that raced one is dropped
	// last is the session's last broadcast available presence, as the
	// client sent it (without the stamp), for the broadcast after a
	// change; nil before one.
	last *xmlstream.Element
}

func cacheOf(s router.Session) *photoCache {
	return photoKey.GetOrInit(s.Values(), func() *photoCache { return new(photoCache) })
}

// changed records the account's avatar id (known) or forgets it (to be
// read again) in each of its sessions. A session whose hash changed sends
// its last broadcast presence again, stamped with the new one.
func (m *Module) changed(ctx context.Context, account jid.JID, id string, known bool) {
	for _, s := range m.r.Sessions(account) {
		pc := cacheOf(s)
		pc.mu.Lock()
		var again *xmlstream.Element
		if known && (!pc.known || pc.id != id) && pc.last != nil {
			again = pc.last.Copy()
		}
		pc.id, pc.known = id, known
		pc.gen++
		pc.mu.Unlock()
		if again != nil {
			m.r.RouteFrom(ctx, s, again)
		}
	}
}

var (
	_ module.Module  = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)

// New returns the avatar module. It needs the pep and vcard modules,
// built before it.
func New(deps module.Deps) (*Module, error) {
	m := &Module{deps: deps}
	if deps.Module != nil {
		m.pep, _ = deps.Module("pep").(*pep.Module)
		m.vcard, _ = deps.Module("vcard").(*vcard.Module)
	}
	if m.pep == nil || m.vcard == nil {
		return nil, errors.New("avatar: the pep or the vcard module is disabled: disable avatar too")
	}
	return m, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "avatar" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	m.r = r
	r.AddAccountFeature(NSConversion)
	m.removes = append(m.removes,
		m.pep.OnPublished(m.published),
		m.pep.OnRetracted(func(ctx context.Context, account jid.JID, node, _ string) {
			if node == NSMetadata {
				m.changed(ctx, account, "", false)
			}
		}),
		m.pep.OnEmptied(func(ctx context.Context, account jid.JID, node string) {
			if node == NSMetadata {
				m.changed(ctx, account, "", false)
			}
		}),
		m.vcard.OnSet(m.vcardSet))
	r.HookOutbound(200, m.stamp)
}

// Stop implements module.Stopper: it takes its functions out of the pep
// and vcard modules, which may run on without it.
func (m *Module) Stop() {
	for _, remove := range m.removes {
		remove()
	}
	m.removes = nil
}

// published converts a client's metadata publish to the vCard.
func (m *Module) published(ctx context.Context, p pep.Published) {
	if p.Node != NSMetadata {
		return
	}
	if isMetadata(p.Item.Payload) {
		id := ""
		if info := pickInfo(p.Item.Payload); info != nil {
			id = strings.ToLower(info.Attribute("id"))
		}
		m.changed(ctx, p.Account, id, true)
	} else {
		m.changed(ctx, p.Account, "", false)
	}
	if p.ByServer {
		return
	}
	if err := m.toVCard(ctx, p.Account, p.Item.Payload); err != nil {
		m.deps.Log.Error("avatar to vCard", "jid", p.Account.String(), "err", err)
	}
}

// pickInfo returns the <info/> of metadata that points to the data node
// (no 'url', XEP-0398 §3), or nil.
func pickInfo(md *xmlstream.Element) *xmlstream.Element {
	for _, info := range md.ChildrenNS(NSMetadata) {
		if info.Name.Local == "info" && info.Attribute("url") == "" && info.Attribute("id") != "" {
			return info
		}
	}
	return nil
}

func isMetadata(e *xmlstream.Element) bool {
	return e != nil && e.Name == xmlstream.Name{Space: NSMetadata, Local: "metadata"}
}

func (m *Module) toVCard(ctx context.Context, account jid.JID, md *xmlstream.Element) error {
	if !isMetadata(md) {
		return nil
	}
	v, err := m.vcard.Load(ctx, account)
	if err != nil {
		return err
	}
	if v == nil {
		v = xmlstream.NewElement(vcard.NS, "vCard")
	}
	info := pickInfo(md)
	if info == nil {
		// No avatar: the vCard has no PHOTO either.
		if v.Child(vcard.NS, "PHOTO") == nil {
			return nil
		}
		removePhoto(v)
		return m.vcard.Put(ctx, account, v)
	}
	id := strings.ToLower(info.Attribute("id"))
	its, err := m.pep.Items(ctx, account, NSData, []string{info.Attribute("id")}, 0)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if len(its) == 0 {
		m.deps.Log.Info("avatar metadata without its data", "jid", account.String(), "id", id)
		return nil
	}
	img, ok := decodeData(its[0].Payload)
	if !ok || hash(img) != id {
		m.deps.Log.Warn("avatar data does not match its id", "jid", account.String(), "id", id)
		return nil
	}
	typ := info.Attribute("type")
	if typ == "" {
		typ = "image/png"
	}
	removePhoto(v)
	v.Append(xmlstream.NewElement(vcard.NS, "PHOTO").Append(
		xmlstream.NewElement(vcard.NS, "TYPE").AppendText(typ),
		xmlstream.NewElement(vcard.NS, "BINVAL").AppendText(base64.StdEncoding.EncodeToString(img))))
	if n := len(v.AppendXML(nil, "")); n > vcard.MaxBytes {
		m.deps.Log.Info("avatar too large for the vCard", "jid", account.String(), "bytes", n)
		return nil
	}
	return m.vcard.Put(ctx, account, v)
}

// vcardSet converts a client's vCard PHOTO to the PEP avatar.
func (m *Module) vcardSet(ctx context.Context, account jid.JID, v *xmlstream.Element) {
	if err := m.toPEP(ctx, account, v); err != nil {
		m.deps.Log.Warn("vCard photo to avatar", "jid", account.String(), "err", err)
	}
}

func (m *Module) toPEP(ctx context.Context, account jid.JID, v *xmlstream.Element) error {
	current, _, err := m.current(ctx, account)
	if err != nil {
		return err
	}
	img, typ, ok := photo(v)
	if !ok {
		if current == "" {
			return nil
		}
		_, err := m.pep.Publish(ctx, account, NSMetadata, noAvatarItem, xmlstream.NewElement(NSMetadata, "metadata"), nil)
		return err
	}
	id := hash(img)
	if id == current {
		return nil
	}
	// XEP-0398 §3: the data first, then the metadata.
	data := xmlstream.NewElement(NSData, "data").AppendText(base64.StdEncoding.EncodeToString(img))
	if _, err := m.pep.Publish(ctx, account, NSData, id, data, nil); err != nil {
		return err
	}
	info := xmlstream.NewElement(NSMetadata, "info").SetAttr("id", id).
		SetAttr("bytes", strconv.Itoa(len(img))).SetAttr("type", typ)
	if c, _, err := image.DecodeConfig(bytes.NewReader(img)); err == nil {
		info.SetAttr("width", strconv.Itoa(c.Width)).SetAttr("height", strconv.Itoa(c.Height))
	}
	_, err = m.pep.Publish(ctx, account, NSMetadata, id, xmlstream.NewElement(NSMetadata, "metadata").Append(info), nil)
	return err
}

// current returns the id (the SHA-1) of the account's avatar: the
// current metadata's, or "" when it has none. ok is false when there is
// no metadata node.
func (m *Module) current(ctx context.Context, account jid.JID) (id string, ok bool, err error) {
	its, err := m.pep.Items(ctx, account, NSMetadata, nil, 1)
	if errors.Is(err, storage.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if len(its) == 0 || !isMetadata(its[0].Payload) {
		return "", true, nil
	}
	if info := pickInfo(its[0].Payload); info != nil {
		return strings.ToLower(info.Attribute("id")), true, nil
	}
	return "", true, nil
}

// stamp puts the avatar's hash into an available presence from a local
// client, replacing the client's own <x xmlns='vcard-temp:x:update'/>.
func (m *Module) stamp(ctx context.Context, ev *router.Event) bool {
	p := ev.El
	if p.Name.Local != "presence" || ev.Origin == nil {
		return false
	}
	if typ := p.Attribute("type"); typ != "" {
		if typ == "unavailable" && p.Attribute("to") == "" {
			pc := cacheOf(ev.Origin)
			pc.mu.Lock()
			pc.last = nil // nothing to send again: the session is unavailable
			pc.mu.Unlock()
		}
		return false
	}
	if p.Attribute("to") == "" {
		pc := cacheOf(ev.Origin)
		last := p.Copy()
		pc.mu.Lock()
		pc.last = last
		pc.mu.Unlock()
	}
	id, err := m.sessionHash(ctx, ev.Origin, ev.From.Bare())
	if err != nil {
		m.deps.Log.Error("avatar hash for presence", "jid", ev.From.Bare().String(), "err", err)
		return false
	}
	kept := p.Children[:0:0]
	for _, c := range p.Children {
		if c.Elem != nil && c.Elem.Name.Space == NSUpdate {
			continue
		}
		kept = append(kept, c)
	}
	ph := xmlstream.NewElement(NSUpdate, "photo")
	if id != "" {
		ph.AppendText(id)
	}
	p.Children = append(kept, xmlstream.Child{Elem: xmlstream.NewElement(NSUpdate, "x").Append(ph)})
	return false
}

// sessionHash returns the hash the session stamps: cached, or read.
func (m *Module) sessionHash(ctx context.Context, s router.Session, account jid.JID) (string, error) {
	pc := cacheOf(s)
	pc.mu.Lock()
	id, known, gen := pc.id, pc.known, pc.gen
	pc.mu.Unlock()
	if known {
		return id, nil
	}
	id, err := m.lookup(ctx, account)
	if err != nil {
		return "", err
	}
	pc.mu.Lock()
	if pc.gen == gen {
		pc.id, pc.known = id, true
	} else if pc.known {
		id = pc.id // changed meanwhile: the newer one
	}
	pc.mu.Unlock()
	return id, nil
}

// lookup reads the account's avatar id: the metadata's, or with no
// metadata node that of a vCard photo stored before conversion.
func (m *Module) lookup(ctx context.Context, account jid.JID) (string, error) {
	id, ok, err := m.current(ctx, account)
	if err != nil || ok {
		return id, err
	}
	v, err := m.vcard.Load(ctx, account)
	if err != nil {
		return "", err
	}
	if img, _, has := photo(v); has {
		return hash(img), nil
	}
	return "", nil
}

// photo returns the image of a vCard's PHOTO (BINVAL, base64) and its
// TYPE (image/png when it names none); ok is false without one.
func photo(v *xmlstream.Element) (img []byte, typ string, ok bool) {
	if v == nil {
		return nil, "", false
	}
	ph := v.Child(vcard.NS, "PHOTO")
	if ph == nil {
		return nil, "", false
	}
	bin := ph.Child(vcard.NS, "BINVAL")
	if bin == nil {
		return nil, "", false // EXTVAL: an image elsewhere
	}
	img, err := base64.StdEncoding.DecodeString(stripSpace(bin.Text()))
	if err != nil || len(img) == 0 {
		return nil, "", false
	}
	typ = "image/png"
	if t := ph.Child(vcard.NS, "TYPE"); t != nil && strings.TrimSpace(t.Text()) != "" {
		typ = strings.TrimSpace(t.Text())
	}
	return img, typ, true
}

func removePhoto(v *xmlstream.Element) {
	kept := v.Children[:0:0]
	for _, c := range v.Children {
		if c.Elem != nil && c.Elem.Name.Space == vcard.NS && c.Elem.Name.Local == "PHOTO" {
			continue
		}
		kept = append(kept, c)
	}
	v.Children = kept
}

// decodeData returns the image of a XEP-0084 <data/> payload.
func decodeData(e *xmlstream.Element) ([]byte, bool) {
	if e == nil || e.Name != (xmlstream.Name{Space: NSData, Local: "data"}) {
		return nil, false
	}
	img, err := base64.StdEncoding.DecodeString(stripSpace(e.Text()))
	return img, err == nil && len(img) > 0
}

// stripSpace removes the white space base64 text may be wrapped with.
func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
}

// hash is the avatar id of an image: its SHA-1, hex (XEP-0084 §4.1,
// XEP-0153 §3.1).
func hash(img []byte) string {
	h := sha1.Sum(img)
	return hex.EncodeToString(h[:])
}
