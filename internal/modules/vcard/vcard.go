// Package vcard implements XEP-0054 vcard-temp on the server: a user gets
// and sets their own vCard (§3.1, §3.2: an IQ with no 'to' or to their own
// bare JID) and gets another local user's vCard (§3.3: to that user's bare
// JID). The vCard is stored whole, as the client sent it, under the key
// "vcard-temp"; a user without one gets an empty <vCard/>.
//
// Setting someone else's vCard is forbidden; a vCard larger than MaxBytes
// (serialised) is not-acceptable. A get for an account that does not exist
// is service-unavailable (RFC 6121 §8.5.1).
//
// Other modules read and write vCards through Load and Put, and learn of a
// client's set with OnSet: the avatar module keeps the PHOTO in step with
// the PEP avatar (XEP-0398).
package vcard

import (
	"context"
	"errors"
	"fmt"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NS is the vcard-temp namespace (and the disco feature).
const NS = "vcard-temp"

// MaxBytes bounds the size of a stored vCard, serialised.
const MaxBytes = 64 << 10

// storeKey is the XMLStore key of a user's vCard.
const storeKey = "vcard-temp"

// Module is the vcard module.
type Module struct {
	deps  module.Deps
	onSet module.Hooks[func(ctx context.Context, account jid.JID, v *xmlstream.Element)]
}

var _ module.Module = (*Module)(nil)

// Info describes the module to the server.
var Info = module.Info{
	Name: "vcard",
	XEPs: []string{"XEP-0054"},
	New:  module.Plain(New),
}

// New returns the vcard module.
func New(deps module.Deps) (*Module, error) {
	return &Module{deps: deps}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "vcard" }

// OnSet adds fn to what runs after a client stored its vCard (v is nil
// when it deleted it with an empty one) and returns what removes it,
// which the module that added it calls when it stops.
func (m *Module) OnSet(fn func(ctx context.Context, account jid.JID, v *xmlstream.Element)) (remove func()) {
	return m.onSet.Add(fn)
}

// Load returns the account's stored vCard, or nil when it has none.
func (m *Module) Load(ctx context.Context, account jid.JID) (*xmlstream.Element, error) {
	doc, err := m.deps.Store.GetXML(ctx, account.Local(), account.DomainString(), storeKey)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && len(doc) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vcard: load %s: %w", account, err)
	}
	v, err := parseDoc(doc)
	if err != nil {
		return nil, fmt.Errorf("vcard: stored vCard of %s: %w", account, err)
	}
	return v, nil
}

// Put stores v as the account's vCard, on the server's behalf: the OnSet
// functions do not run. A vCard larger than MaxBytes is an error.
func (m *Module) Put(ctx context.Context, account jid.JID, v *xmlstream.Element) error {
	doc := []byte(v.String())
	if len(doc) > MaxBytes {
		return fmt.Errorf("vcard: the vCard of %s would have %d bytes, more than %d", account, len(doc), MaxBytes)
	}
	if err := m.deps.Store.PutXML(ctx, account.Local(), account.DomainString(), storeKey, doc); err != nil {
		return fmt.Errorf("vcard: store %s: %w", account, err)
	}
	return nil
}

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	r.AddFeature(NS)
	r.HandleIQ(stanza.IQGet, router.ClassLocal, NS, "vCard", m.get)
	r.HandleIQ(stanza.IQSet, router.ClassLocal, NS, "vCard", m.set)
}

// target returns the sender and the account an IQ is about (the sender's
// own with no 'to'); ok is false for a request to a domain.
func target(ev *router.Event) (from, account jid.JID, ok bool) {
	if ev.Class == router.ClassServer {
		return jid.JID{}, jid.JID{}, false
	}
	return ev.From, ev.To.Bare(), true
}

func (m *Module) get(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	from, account, ok := target(ev)
	if !ok {
		return nil, stanza.NewError(stanza.ServiceUnavailable, "")
	}
	doc, err := m.deps.Store.GetXML(ctx, account.Local(), account.DomainString(), storeKey)
	if errors.Is(err, storage.ErrNotFound) {
		if !from.Bare().Equal(account) {
			exists, err := m.deps.Store.AccountExists(ctx, account.Local(), account.DomainString())
			if err != nil {
				return nil, err
			}
			if !exists {
				return nil, stanza.NewError(stanza.ServiceUnavailable, "")
			}
		}
		return xmlstream.NewElement(NS, "vCard"), nil
	}
	if err != nil {
		return nil, err
	}
	v, err := parseDoc(doc)
	if err != nil {
		return nil, fmt.Errorf("vcard: stored vCard of %s: %w", account, err)
	}
	return v, nil
}

func (m *Module) set(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	iq := ev.El
	from, account, ok := target(ev)
	if !ok || !from.Bare().Equal(account) {
		return nil, stanza.NewError(stanza.Forbidden, "")
	}
	v := iq.FirstChild()
	var doc []byte
	if len(v.Children) > 0 || len(v.Attr) > 0 {
		doc = []byte(v.String())
	}
	if len(doc) > MaxBytes {
		return nil, stanza.NewError(stanza.NotAcceptable, fmt.Sprintf("the vCard is larger than %d bytes", MaxBytes))
	}
	// An empty vCard deletes the stored one.
	if err := m.deps.Store.PutXML(ctx, account.Local(), account.DomainString(), storeKey, doc); err != nil {
		return nil, err
	}
	stored := v
	if doc == nil {
		stored = nil
	}
	for fn := range m.onSet.All() {
		fn(ctx, account, stored)
	}
	return nil, nil
}

// parseDoc reads back a stored document.
func parseDoc(doc []byte) (*xmlstream.Element, error) {
	return xmlstream.ParseElement(doc, stanza.NSClient)
}
