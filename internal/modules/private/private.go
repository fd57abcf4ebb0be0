// Package private implements XEP-0049 Private XML Storage: a user stores
// arbitrary XML elements on the server and gets them back by name (§2).
//
// Each child of the <query xmlns='jabber:iq:private'/> of a set is stored
// under the key "private:" + its namespace + " " + its local name. A get
// returns the stored element for each child asked for, or the child as it
// was asked for (empty) when nothing is stored. Only the user's own account
// can be addressed (no 'to', or the user's bare JID); another is forbidden
// (§3). A query without a child, or with a child in the jabber:iq:private,
// jabber:client or jabber:server namespace, is not-acceptable (§2.3, §3);
// a get for more than one namespace is bad-request (§2.3).
//
// Another module may take over one element (Handle): bookmarks keeps
// {storage:bookmarks}storage in step with the PEP bookmarks (XEP-0402),
// so it stores a client's set of it and answers gets for it.
package private

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NS is the XEP-0049 namespace.
const NS = "jabber:iq:private"

// Module is the private XML storage module.
type Module struct {
	deps     module.Deps
	mu       sync.RWMutex // guards handlers (a reload changes them); a leaf
	handlers map[xmlstream.Name]*handlerEntry
}

// handlerEntry is one Handle call, so that its removal removes only it.
type handlerEntry struct{ h Handler }

// Handler takes over one element of private storage for another module
// that keeps it in step with something else (bookmarks: the PEP nodes).
type Handler interface {
	// Set stores the element a client set for account (with Put) and
	// whatever the handler keeps in step with it. A *stanza.Error is
	// sent to the client as it is.
	Set(ctx context.Context, account jid.JID, e *xmlstream.Element) error
	// Get returns the element to answer a get of it with, or nil when
	// there is none.
	Get(ctx context.Context, account jid.JID) (*xmlstream.Element, error)
}

var _ module.Module = (*Module)(nil)

// Info describes the module to the server.
var Info = module.Info{
	Name: "private",
	XEPs: []string{"XEP-0049"},
	New:  module.Plain(New),
}

// New returns the private XML storage module.
func New(deps module.Deps) (*Module, error) {
	return &Module{deps: deps, handlers: map[xmlstream.Name]*handlerEntry{}}, nil
}

// Handle makes h the handler of the element {space}local and returns what
// removes it again, which the module that set it calls when it stops (a
// later Handle of the same element replaces it).
func (m *Module) Handle(space, local string, h Handler) (remove func()) {
	name := xmlstream.Name{Space: space, Local: local}
	e := &handlerEntry{h}
	m.mu.Lock()
	m.handlers[name] = e
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		if m.handlers[name] == e {
			delete(m.handlers, name)
		}
		m.mu.Unlock()
	}
}

// handler returns the handler of the element name, or nil.
func (m *Module) handler(name xmlstream.Name) Handler {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if e := m.handlers[name]; e != nil {
		return e.h
	}
	return nil
}

// Load returns the account's stored element {space}local, or nil when
// none is stored. It does not ask a handler.
func (m *Module) Load(ctx context.Context, account jid.JID, space, local string) (*xmlstream.Element, error) {
	e := xmlstream.NewElement(space, local)
	doc, err := m.deps.Store.GetXML(ctx, account.Local(), account.DomainString(), key(e))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && len(doc) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("private: load %s of %s: %w", key(e), account, err)
	}
	stored, err := parseDoc(doc)
	if err != nil {
		return nil, fmt.Errorf("private: stored %s of %s: %w", key(e), account, err)
	}
	return stored, nil
}

// Put stores e for the account, replacing the element of its name. It
// does not call a handler: it is how a handler stores.
func (m *Module) Put(ctx context.Context, account jid.JID, e *xmlstream.Element) error {
	if err := m.deps.Store.PutXML(ctx, account.Local(), account.DomainString(), key(e), []byte(e.String())); err != nil {
		return fmt.Errorf("private: store %s of %s: %w", key(e), account, err)
	}
	return nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "private" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	r.AddFeature(NS)
	r.HandleIQ(stanza.IQGet, router.ClassLocal, NS, "query", m.get)
	r.HandleIQ(stanza.IQSet, router.ClassLocal, NS, "query", m.set)
}

// request checks the rules common to get and set and returns the account
// and the elements of the query.
func request(ev *router.Event) (account jid.JID, elems []*xmlstream.Element, err error) {
	if ev.Class != router.ClassSelf || ev.From.Local() == "" {
		return jid.JID{}, nil, stanza.NewError(stanza.Forbidden, "")
	}
	from, iq := ev.From, ev.El
	elems = iq.FirstChild().ChildrenNS("")
	if len(elems) == 0 {
		return jid.JID{}, nil, stanza.NewError(stanza.NotAcceptable, "a child element is required")
	}
	for _, e := range elems {
		switch e.Name.Space {
		case NS, stanza.NSClient, stanza.NSServer:
			return jid.JID{}, nil, stanza.NewError(stanza.NotAcceptable, "reserved namespace "+e.Name.Space)
		}
	}
	return from.Bare(), elems, nil
}

func key(e *xmlstream.Element) string { return "private:" + e.Name.Space + " " + e.Name.Local }

func (m *Module) get(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	account, elems, err := request(ev)
	if err != nil {
		return nil, err
	}
	for _, e := range elems[1:] {
		if e.Name.Space != elems[0].Name.Space {
			return nil, stanza.NewError(stanza.BadRequest, "one namespace per request")
		}
	}
	q := xmlstream.NewElement(NS, "query")
	for _, e := range elems {
		if h := m.handler(e.Name); h != nil {
			got, err := h.Get(ctx, account)
			if err != nil {
				return nil, err
			}
			if got == nil {
				got = xmlstream.NewElement(e.Name.Space, e.Name.Local)
			}
			q.Append(got)
			continue
		}
		doc, err := m.deps.Store.GetXML(ctx, account.Local(), account.DomainString(), key(e))
		if errors.Is(err, storage.ErrNotFound) {
			q.Append(xmlstream.NewElement(e.Name.Space, e.Name.Local))
			continue
		}
		if err != nil {
			return nil, err
		}
		stored, err := parseDoc(doc)
		if err != nil {
			return nil, fmt.Errorf("private: stored %s of %s: %w", key(e), account, err)
		}
		q.Append(stored)
	}
	return q, nil
}

func (m *Module) set(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	account, elems, err := request(ev)
	if err != nil {
		return nil, err
	}
	for _, e := range elems {
		if h := m.handler(e.Name); h != nil {
			if err := h.Set(ctx, account, e); err != nil {
				return nil, err
			}
			continue
		}
		if err := m.Put(ctx, account, e); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// parseDoc reads back a stored document.
func parseDoc(doc []byte) (*xmlstream.Element, error) {
	return xmlstream.ParseElement(doc, stanza.NSClient)
}
