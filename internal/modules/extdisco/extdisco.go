// Package extdisco implements XEP-0215 External Service Discovery for the
// STUN and TURN servers that clients need for calls (Jingle ICE-UDP).
//
// A local user's IQ get <services xmlns='urn:xmpp:extdisco:2'/> to its
// server (§3.1), optionally with a 'type' (§3.2), is answered with the
// configured services of that type. A restricted TURN service carries
// fresh credentials in the TURN REST API scheme (draft-uberti-behave-
// turn-rest-00 §2.2, which coturn implements with use-auth-secret): the
// username "<expiry as unix time>:<the user's bare JID>", the password
// base64(HMAC-SHA1(secret, username)) and 'expires' (XEP-0082). A
// <credentials/> request (§3.3) naming a service by host and type (and
// optionally port) gets fresh credentials for the restricted services that
// match, item-not-found when none does. Entities of other servers get
// forbidden (§2: no permission to receive the list), as from Prosody's
// mod_external_services. The older namespace urn:xmpp:extdisco:1 (version
// 0.6, which has the same elements) is answered the same way, in its own
// namespace.
//
// With no services configured the module registers nothing: requests get
// service-unavailable and disco#info lists neither namespace.
package extdisco

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// The XEP-0215 namespaces: version 1.0 and the older version 0.6.
const (
	NS  = "urn:xmpp:extdisco:2"
	NS1 = "urn:xmpp:extdisco:1"
)

// Module is the extdisco module.
type Module struct {
	now      func() time.Time
	services []Service
}

var _ module.Module = (*Module)(nil)

// Info describes the module to the server.
var Info = module.Info{
	Name:   "extdisco",
	XEPs:   []string{"XEP-0215"},
	Config: &Config{Services: []Service{}},
	New:    module.Configured(New),
}

// New returns the extdisco module.
func New(deps module.Deps, cfg Config) (*Module, error) {
	return &Module{now: deps.Now, services: append([]Service(nil), cfg.Services...)}, nil
}

// Name implements module.Module.
func (m *Module) Name() string { return "extdisco" }

// Register implements module.Module.
func (m *Module) Register(r *router.Router) {
	if len(m.services) == 0 {
		return
	}
	for _, ns := range []string{NS, NS1} {
		r.AddFeature(ns)
		r.HandleIQ(stanza.IQGet, router.ClassLocal, ns, "services", m.list)
		r.HandleIQ(stanza.IQGet, router.ClassLocal, ns, "credentials", m.credentials)
	}
}

// allowed returns the error for a request the module does not answer:
// one to another account (only its clients could answer), or from an
// entity that is not a client of this server.
func allowed(ev *router.Event) error {
	if ev.Class != router.ClassServer && stanza.To(ev.El) != "" {
		return stanza.NewError(stanza.ServiceUnavailable, "")
	}
	if ev.Origin == nil {
		return stanza.NewError(stanza.Forbidden, "")
	}
	return nil
}

// list answers <services/> (§3.1, §3.2).
func (m *Module) list(_ context.Context, ev *router.Event) (*xmlstream.Element, error) {
	if err := allowed(ev); err != nil {
		return nil, err
	}
	req := stanza.Payload(ev.El)
	typ := req.Attribute("type")
	res := xmlstream.NewElement(req.Name.Space, "services")
	if typ != "" {
		res.SetAttr("type", typ)
	}
	now := m.now()
	user := ev.From.Bare().String()
	for i := range m.services {
		if s := &m.services[i]; typ == "" || s.Type == typ {
			res.Append(m.element(req.Name.Space, s, user, now))
		}
	}
	return res, nil
}

// credentials answers <credentials/> (§3.3).
func (m *Module) credentials(_ context.Context, ev *router.Event) (*xmlstream.Element, error) {
	if err := allowed(ev); err != nil {
		return nil, err
	}
	req := stanza.Payload(ev.El)
	res := xmlstream.NewElement(req.Name.Space, "credentials")
	asked := req.ChildrenNS(req.Name.Space)
	now := m.now()
	user := ev.From.Bare().String()
	n := 0
	for _, want := range asked {
		if want.Name.Local != "service" {
			continue
		}
		n++
		host, typ := want.Attribute("host"), want.Attribute("type")
		if host == "" || typ == "" {
			return nil, stanza.NewError(stanza.BadRequest, "a service needs a host and a type")
		}
		port := 0
		if p := want.Attribute("port"); p != "" {
			var err error
			if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
				return nil, stanza.NewError(stanza.BadRequest, "invalid port")
			}
		}
		for i := range m.services {
			s := &m.services[i]
			if s.Restricted && s.Host == host && s.Type == typ && (port == 0 || s.port() == port) {
				res.Append(m.element(req.Name.Space, s, user, now))
			}
		}
	}
	switch {
	case n == 0:
		return nil, stanza.NewError(stanza.BadRequest, "no service named")
	case res.FirstChild() == nil:
		return nil, stanza.NewError(stanza.ItemNotFound, "no restricted service with that host and type")
	}
	return res, nil
}

// element is the <service/> for s, with credentials for user when s is
// restricted.
func (m *Module) element(ns string, s *Service, user string, now time.Time) *xmlstream.Element {
	e := xmlstream.NewElement(ns, "service").
		SetAttr("type", s.Type).
		SetAttr("host", s.Host).
		SetAttr("port", strconv.Itoa(s.port())).
		SetAttr("transport", s.transport())
	if s.Name != "" {
		e.SetAttr("name", s.Name)
	}
	if s.Restricted {
		expires := now.Add(s.ttl()).Truncate(time.Second)
		username, password := Credentials(s.Secret, user, expires)
		e.SetAttr("restricted", "true").
			SetAttr("username", username).
			SetAttr("password", password).
			SetAttr("expires", expires.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return e
}

// Credentials returns the TURN REST API credentials (draft-uberti-behave-
// turn-rest-00 §2.2) for user that expire at expires: the username is
// "<expires as unix time>:<user>", the password is the base64 of the
// HMAC-SHA1 of the username keyed with the TURN server's shared secret.
// The TURN server recomputes the password and checks the time.
func Credentials(secret, user string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
