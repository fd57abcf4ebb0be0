// Package disco implements XEP-0030 Service Discovery for the server and
// for the accounts it hosts, and advertises the server's XEP-0115 Entity
// Capabilities.
//
// To a hosted domain, disco#info (§3.1) returns the identity server/im
// "ode" and the identities and features the other modules declared on the
// router, and disco#items (§4.1) the router's services on sub-domains of
// the domain (upload.example.org). To an account's bare JID
// the server answers on the account's behalf (§3.1): the identity
// account/registered and those modules declared for accounts
// (pubsub/pep), but only to the account itself and to entities with a
// presence subscription to it; anyone else gets service-unavailable, as for
// an account that does not exist (§8, rule 1). disco#items to an account
// lists what modules serve there (router.AccountDisco: the PEP nodes the
// requester may see, XEP-0060 §5.2), and disco#info and disco#items to
// one of those nodes are the module's answer; a node the server does not
// know gets item-not-found.
//
// XEP-0115: the server's verification string (§5.1, sha-1) is computed from
// its identities and features when the module registers, which is why disco
// comes last in the module table. It is offered as a <c/> stream feature
// (§6.3), and disco#info to the node "<node>#<ver>" (§6.2) returns the same
// information as to the domain. Other nodes on a domain are served by the
// modules that declared them (router.ServerDisco: the XEP-0050 command
// list and its commands).
package disco

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSCaps is the XEP-0115 Entity Capabilities namespace.
const NSCaps = "http://jabber.org/protocol/caps"

// CapsNode is the node that names the server software in its caps.
const CapsNode = "https://github.com/ode-xmpp/ode"

// Module is the disco module.
type Module struct {
	deps module.Deps
	r    *router.Router

	// What the server declared, fixed at registration.
	identities      []router.Identity
	features        []string
	accountFeatures []string // declared with Router.AddAccountFeature, for disco#info to an account
	accountIDs      []router.Identity
	accountDiscos   []router.AccountDisco // modules serving nodes on accounts (PEP)
	serverDiscos    []router.ServerDisco  // modules serving nodes on the domains (commands)
	ver             string
}

var _ module.Module = (*Module)(nil)

// Info describes the module to the server.
var Info = module.Info{
	Name: "disco",
	XEPs: []string{"XEP-0030", "XEP-0115"},
	New:  module.Plain(New),
}

// New returns the disco module.
func New(deps module.Deps) (*Module, error) {
	return &Module{deps: deps}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "disco" }

// Register implements module.Module. It takes the identities and features
// registered so far, so it must run after every module that declares some.
func (m *Module) Register(r *router.Router) {
	m.r = r
	r.AddFeature(stanza.NSDiscoInfo, stanza.NSDiscoItems)
	m.identities = append([]router.Identity{{Category: "server", Type: "im", Name: "ode"}}, r.Identities()...)
	m.features = r.Features()
	m.accountFeatures = r.AccountFeatures()
	m.accountIDs = r.AccountIdentities()
	m.accountDiscos = r.AccountDiscos()
	m.serverDiscos = r.ServerDiscos()
	m.ver = CapsVer(m.identities, m.features)
	r.AddStreamFeature(xmlstream.NewElement(NSCaps, "c").
		SetAttr("hash", "sha-1").SetAttr("node", CapsNode).SetAttr("ver", m.ver))
	r.HandleIQ(stanza.IQGet, router.ClassLocal, stanza.NSDiscoInfo, "query", m.info)
	r.HandleIQ(stanza.IQGet, router.ClassLocal, stanza.NSDiscoItems, "query", m.items)
}

// CapsVer returns the XEP-0115 verification string (§5.1) for the given
// identities and features with the sha-1 hash: identities sorted by
// category, type and name as "category/type//name<" (no xml:lang), then
// the sorted features each followed by "<", hashed and base64-encoded.
func CapsVer(identities []router.Identity, features []string) string {
	ids := slices.Clone(identities)
	slices.SortFunc(ids, func(a, b router.Identity) int {
		return cmp.Or(strings.Compare(a.Category, b.Category), strings.Compare(a.Type, b.Type), strings.Compare(a.Name, b.Name))
	})
	fs := slices.Clone(features)
	slices.Sort(fs)
	fs = slices.Compact(fs)
	var s strings.Builder
	for _, id := range ids {
		s.WriteString(id.Category + "/" + id.Type + "//" + id.Name + "<")
	}
	for _, f := range fs {
		s.WriteString(f + "<")
	}
	sum := sha1.Sum([]byte(s.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (m *Module) info(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	iq := ev.El
	to, from := ev.To, ev.From
	node := iq.FirstChild().Attribute("node")
	if to.IsDomain() {
		if node == "" || node == CapsNode+"#"+m.ver {
			return m.serverInfo(node), nil
		}
		// A node on the domain (XEP-0050 commands): the module that
		// serves it decides who may see it.
		for _, d := range m.serverDiscos {
			children, ok, err := d.ServerNodeInfo(ctx, to, from, node)
			if err != nil {
				return nil, err
			}
			if ok {
				return query(stanza.NSDiscoInfo, node).Append(children...), nil
			}
		}
		return nil, stanza.NewError(stanza.ItemNotFound, "")
	}
	if node != "" {
		// A node on the account (PEP, XEP-0060 §5.3): the module that
		// serves it decides who may see it.
		for _, d := range m.accountDiscos {
			children, ok, err := d.NodeInfo(ctx, to, from, node)
			if err != nil {
				return nil, err
			}
			if ok {
				return query(stanza.NSDiscoInfo, node).Append(children...), nil
			}
		}
	}
	ok, err := m.mayDiscover(ctx, to, from)
	if err != nil {
		return nil, err
	}
	if !ok {
		// §8 rule 1: the same answer as for an account that does not
		// exist.
		return nil, stanza.NewError(stanza.ServiceUnavailable, "")
	}
	if node != "" {
		return nil, stanza.NewError(stanza.ItemNotFound, "")
	}
	q := query(stanza.NSDiscoInfo, "").Append(identity(router.Identity{Category: "account", Type: "registered"}))
	for _, id := range m.accountIDs {
		q.Append(identity(id))
	}
	q.Append(feature(stanza.NSDiscoInfo), feature(stanza.NSDiscoItems))
	for _, f := range m.accountFeatures {
		q.Append(feature(f))
	}
	return q, nil
}

func (m *Module) items(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	iq := ev.El
	to, from := ev.To, ev.From
	node := iq.FirstChild().Attribute("node")
	if node == "" {
		q := query(stanza.NSDiscoItems, "")
		if to.IsDomain() {
			// The services on the domain's sub-domains (upload.example.org).
			for _, s := range m.r.Services() {
				if strings.HasSuffix(s, "."+to.DomainString()) {
					q.Append(xmlstream.NewElement(stanza.NSDiscoItems, "item").SetAttr("jid", s))
				}
			}
			return q, nil
		}
		// The entities modules serve on the account (PEP nodes), those
		// the requester may see: none to a stranger but open nodes
		// (§8 rule 2).
		for _, d := range m.accountDiscos {
			items, err := d.AccountItems(ctx, to, from)
			if err != nil {
				return nil, err
			}
			q.Append(items...)
		}
		return q, nil
	}
	if to.IsDomain() {
		for _, d := range m.serverDiscos {
			items, ok, err := d.ServerNodeItems(ctx, to, from, node)
			if err != nil {
				return nil, err
			}
			if ok {
				return query(stanza.NSDiscoItems, node).Append(items...), nil
			}
		}
	} else {
		for _, d := range m.accountDiscos {
			items, ok, err := d.NodeItems(ctx, to, from, node)
			if err != nil {
				return nil, err
			}
			if ok {
				return query(stanza.NSDiscoItems, node).Append(items...), nil
			}
		}
		// §8 rule 2: an empty list unless the requester may know the
		// account exists.
		ok, err := m.mayDiscover(ctx, to, from)
		if err != nil {
			return nil, err
		}
		if !ok {
			return query(stanza.NSDiscoItems, node), nil
		}
	}
	return nil, stanza.NewError(stanza.ItemNotFound, "")
}

// serverInfo returns the disco#info result for the server.
func (m *Module) serverInfo(node string) *xmlstream.Element {
	q := query(stanza.NSDiscoInfo, node)
	for _, id := range m.identities {
		q.Append(identity(id))
	}
	for _, f := range m.features {
		q.Append(feature(f))
	}
	return q
}

// mayDiscover reports whether from may learn about the account: it is the
// account itself or has a subscription to the account's presence (the
// account's roster item for it has subscription from or both).
func (m *Module) mayDiscover(ctx context.Context, account, from jid.JID) (bool, error) {
	if from.Bare().Equal(account) {
		return true, nil
	}
	item, err := m.deps.Store.RosterItem(ctx, account.Local(), account.DomainString(), from.Bare().String())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return item.Subscription == storage.SubFrom || item.Subscription == storage.SubBoth, nil
}

func query(ns, node string) *xmlstream.Element {
	q := xmlstream.NewElement(ns, "query")
	if node != "" {
		q.SetAttr("node", node)
	}
	return q
}

func identity(id router.Identity) *xmlstream.Element {
	e := xmlstream.NewElement(stanza.NSDiscoInfo, "identity").SetAttr("category", id.Category).SetAttr("type", id.Type)
	if id.Name != "" {
		e.SetAttr("name", id.Name)
	}
	return e
}

func feature(f string) *xmlstream.Element {
	return xmlstream.NewElement(stanza.NSDiscoInfo, "feature").SetAttr("var", f)
}
