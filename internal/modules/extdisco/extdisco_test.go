package extdisco_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules/extdisco"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestCredentials checks the TURN REST API math against a vector computed
// with openssl:
//
//	$ printf %s '1700000000:juliet@example.org' | openssl dgst -sha1 -hmac 'north-tower' -binary | base64
//	JQhaX3TWicRsUyER7Jf6yTCFcgk=
func TestCredentials(t *testing.T) {
	user, pass := extdisco.Credentials("north-tower", "juliet@example.org", time.Unix(1700000000, 0))
	if user != "1700000000:juliet@example.org" || pass != "JQhaX3TWicRsUyER7Jf6yTCFcgk=" {
		t.Errorf("Credentials = %q, %q", user, pass)
	}
}

func TestValidate(t *testing.T) {
	turn := func(edit func(*extdisco.Service)) extdisco.Config {
		s := extdisco.Service{Type: "turn", Host: "turn.example.org", Restricted: true, Secret: "s"}
		edit(&s)
		return extdisco.Config{Services: []extdisco.Service{{Type: "stun", Host: "192.0.2.1"}, s}}
	}
	tests := []struct {
		name string
		cfg  extdisco.Config
		want []string
	}{
		{"no services", extdisco.Config{}, nil},
		{"valid", turn(func(s *extdisco.Service) {
			s.Port, s.Transport, s.Name, s.TTL = 443, "tcp", "Relay", config.Duration(time.Hour)
		}), nil},
		{"unknown type", turn(func(s *extdisco.Service) { s.Type = "ftp" }),
			[]string{"services[1].type", "services[1].restricted"}},
		{"no host", turn(func(s *extdisco.Service) { s.Host = "" }), []string{"services[1].host"}},
		{"port", turn(func(s *extdisco.Service) { s.Port = 65536 }), []string{"services[1].port"}},
		{"transport", turn(func(s *extdisco.Service) { s.Transport = "sctp" }), []string{"services[1].transport"}},
		{"restricted stun", extdisco.Config{Services: []extdisco.Service{{Type: "stuns", Host: "h", Restricted: true, Secret: "s"}}},
			[]string{"services[0].restricted"}},
		{"restricted without secret", turn(func(s *extdisco.Service) { s.Secret = "" }), []string{"services[1].secret"}},
		{"secret without restricted", turn(func(s *extdisco.Service) { s.Restricted = false }), []string{"services[1].secret"}},
		{"ttl under a second", turn(func(s *extdisco.Service) { s.TTL = config.Duration(time.Millisecond) }), []string{"services[1].ttl"}},
		{"negative ttl", turn(func(s *extdisco.Service) { s.TTL = -1 }), []string{"services[1].ttl"}},
		{"ttl unused", turn(func(s *extdisco.Service) { s.Restricted, s.Secret, s.TTL = false, "", config.Duration(time.Hour) }),
			[]string{"services[1].ttl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var keys []string
			for _, p := range tt.cfg.Validate() {
				keys = append(keys, p.Key)
			}
			if diff := cmp.Diff(tt.want, keys); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConfigFile decodes services written as an array of tables.
func TestConfigFile(t *testing.T) {
	doc := `
[[modules.extdisco.services]]
type = "stun"
host = "turn.example.org"

[[modules.extdisco.services]]
type = "turn"
host = "turn.example.org"
port = 3478
transport = "udp"
restricted = true
secret = "north-tower"
ttl = "12h"
`
	schema := config.ModuleSchema{Name: "extdisco", Defaults: extdisco.Info.Config}
	cfg, err := config.Parse([]byte(doc), "ode.toml", schema)
	if err != nil {
		t.Fatal(err)
	}
	want := &extdisco.Config{Services: []extdisco.Service{
		{Type: "stun", Host: "turn.example.org"},
		{Type: "turn", Host: "turn.example.org", Port: 3478, Transport: "udp", Restricted: true,
			Secret: "north-tower", TTL: config.Duration(12 * time.Hour)},
	}}
	if diff := cmp.Diff(want, cfg.Modules.Settings["extdisco"]); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	_, err = config.Parse([]byte(doc+"bogus = 1\n"), "ode.toml", schema)
	if err == nil || !strings.Contains(err.Error(), "unknown key modules.extdisco.services.bogus") {
		t.Errorf("unknown key: got %v", err)
	}
	_, err = config.Parse([]byte("[[modules.extdisco.services]]\ntype = \"turn\"\nhost = \"h\"\nsecret = \"s\"\n"), "ode.toml", schema)
	if err == nil || !strings.Contains(err.Error(), "modules.extdisco.services[0].secret: is only used by a restricted service") {
		t.Errorf("validation: got %v", err)
	}
}

const secret = "north-tower"

var services = []extdisco.Service{
	{Type: "stun", Host: "stun.example.org", Name: "STUN"},
	{Type: "turn", Host: "turn.example.org", Restricted: true, Secret: secret},
	{Type: "turns", Host: "turn.example.org", Restricted: true, Secret: secret, TTL: config.Duration(time.Hour)},
	{Type: "turn", Host: "turn.example.org", Port: 3479, Transport: "tcp", Restricted: true, Secret: secret},
	{Type: "turn", Host: "open-relay.example.org"},
}

func withServices(c *config.Config) {
	c.Modules.Settings["extdisco"] = &extdisco.Config{Services: services}
}

func iq(to string, payload *xmlstream.Element) *xmlstream.Element {
	return stanza.NewIQ(stanza.NSClient, stanza.IQGet, to, "", "").Append(payload)
}

func servicesReq(ns, typ string) *xmlstream.Element {
	e := xmlstream.NewElement(ns, "services")
	if typ != "" {
		e.SetAttr("type", typ)
	}
	return e
}

func credentialsReq(ns string, attrs ...string) *xmlstream.Element {
	s := xmlstream.NewElement(ns, "service")
	for i := 0; i+1 < len(attrs); i += 2 {
		s.SetAttr(attrs[i], attrs[i+1])
	}
	return xmlstream.NewElement(ns, "credentials").Append(s)
}

// summary is a service element without its credentials, which are
// checked by checkCredentials.
func summary(t *testing.T, e *xmlstream.Element, user string, ttl time.Duration, before time.Time) string {
	t.Helper()
	var parts []string
	for _, a := range []string{"type", "host", "port", "transport", "name", "restricted"} {
		if v := e.Attribute(a); v != "" {
			parts = append(parts, a+"="+v)
		}
	}
	if e.Attribute("restricted") != "" {
		checkCredentials(t, e, user, ttl, before)
	} else if e.Attribute("username") != "" || e.Attribute("password") != "" || e.Attribute("expires") != "" {
		t.Errorf("credentials on an unrestricted service: %s", e)
	}
	return strings.Join(parts, " ")
}

// checkCredentials checks that e's credentials are for user, expire ttl
// after a time between before and now, and are made with secret.
func checkCredentials(t *testing.T, e *xmlstream.Element, user string, ttl time.Duration, before time.Time) {
	t.Helper()
	expires, err := time.Parse(time.RFC3339, e.Attribute("expires"))
	if err != nil || !strings.HasSuffix(e.Attribute("expires"), "Z") {
		t.Fatalf("expires in %s: %v (want UTC)", e, err)
	}
	if lo, hi := before.Add(ttl).Truncate(time.Second), time.Now().Add(ttl); expires.Before(lo) || expires.After(hi) {
		t.Errorf("expires %s, want between %s and %s", expires, lo, hi)
	}
	wantUser, wantPass := extdisco.Credentials(secret, user, expires)
	if e.Attribute("username") != wantUser || e.Attribute("password") != wantPass {
		t.Errorf("credentials %q/%q, want %q/%q", e.Attribute("username"), e.Attribute("password"), wantUser, wantPass)
	}
	if !strings.HasPrefix(wantUser, strconv.FormatInt(expires.Unix(), 10)+":") {
		t.Errorf("username %q does not start with the expiry", wantUser)
	}
}

func wantCondition(t *testing.T, err error, cond stanza.Condition) {
	t.Helper()
	if !errors.Is(err, stanza.NewError(cond, "")) {
		t.Fatalf("got %v, want %s", err, cond)
	}
}

func TestServices(t *testing.T) {
	srv := xmpptest.Start(t, withServices)
	juliet := srv.AddUser(t, "juliet", "balcony")
	c := srv.Dial(t, juliet, "balcony")
	all := []string{
		"type=stun host=stun.example.org port=3478 transport=udp name=STUN",
		"type=turn host=turn.example.org port=3478 transport=udp restricted=true",
		"type=turns host=turn.example.org port=5349 transport=tcp restricted=true",
		"type=turn host=turn.example.org port=3479 transport=tcp restricted=true",
		"type=turn host=open-relay.example.org port=3478 transport=udp",
	}
	tests := []struct {
		name, ns, to, typ string
		want              []string
	}{
		{"all", extdisco.NS, srv.Domain, "", all},
		{"no to", extdisco.NS, "", "", all},
		{"turn", extdisco.NS, srv.Domain, "turn", []string{all[1], all[3], all[4]}},
		{"turns", extdisco.NS, srv.Domain, "turns", []string{all[2]}},
		{"none of that type", extdisco.NS, srv.Domain, "ftp", nil},
		{"version 0.6", extdisco.NS1, srv.Domain, "stun", []string{all[0]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			res, err := c.IQ(ctxT(t), iq(tt.to, servicesReq(tt.ns, tt.typ)))
			if err != nil {
				t.Fatal(err)
			}
			list := res.Child(tt.ns, "services")
			if list == nil || list.Attribute("type") != tt.typ {
				t.Fatalf("no <services type=%q/> in %s", tt.typ, res)
			}
			var got []string
			for _, e := range list.ChildrenNS(tt.ns) {
				ttl := extdisco.DefaultTTL
				if e.Attribute("type") == "turns" {
					ttl = time.Hour
				}
				got = append(got, summary(t, e, juliet.Bare().String(), ttl, before))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("services (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestCredentials(t *testing.T) {
	srv := xmpptest.Start(t, withServices)
	juliet := srv.AddUser(t, "juliet", "balcony")
	c := srv.Dial(t, juliet, "balcony")
	tests := []struct {
		name  string
		ns    string
		attrs []string
		want  []string
	}{
		{"host and type", extdisco.NS, []string{"host", "turn.example.org", "type", "turn"}, []string{
			"type=turn host=turn.example.org port=3478 transport=udp restricted=true",
			"type=turn host=turn.example.org port=3479 transport=tcp restricted=true",
		}},
		{"with port", extdisco.NS, []string{"host", "turn.example.org", "type", "turn", "port", "3479"}, []string{
			"type=turn host=turn.example.org port=3479 transport=tcp restricted=true",
		}},
		{"standard port", extdisco.NS, []string{"host", "turn.example.org", "type", "turns", "port", "5349"}, []string{
			"type=turns host=turn.example.org port=5349 transport=tcp restricted=true",
		}},
		{"version 0.6", extdisco.NS1, []string{"host", "turn.example.org", "type", "turn", "port", "3478"}, []string{
			"type=turn host=turn.example.org port=3478 transport=udp restricted=true",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			res, err := c.IQ(ctxT(t), iq(srv.Domain, credentialsReq(tt.ns, tt.attrs...)))
			if err != nil {
				t.Fatal(err)
			}
			creds := res.Child(tt.ns, "credentials")
			if creds == nil {
				t.Fatalf("no <credentials/> in %s", res)
			}
			var got []string
			for _, e := range creds.ChildrenNS(tt.ns) {
				ttl := extdisco.DefaultTTL
				if e.Attribute("type") == "turns" {
					ttl = time.Hour
				}
				got = append(got, summary(t, e, juliet.Bare().String(), ttl, before))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("services (-want +got):\n%s", diff)
			}
		})
	}

	errs := []struct {
		name string
		iq   *xmlstream.Element
		want stanza.Condition
	}{
		{"unknown host", iq(srv.Domain, credentialsReq(extdisco.NS, "host", "relay.example.net", "type", "turn")), stanza.ItemNotFound},
		{"other port", iq(srv.Domain, credentialsReq(extdisco.NS, "host", "turn.example.org", "type", "turn", "port", "3480")), stanza.ItemNotFound},
		{"unrestricted", iq(srv.Domain, credentialsReq(extdisco.NS, "host", "open-relay.example.org", "type", "turn")), stanza.ItemNotFound},
		{"stun", iq(srv.Domain, credentialsReq(extdisco.NS, "host", "stun.example.org", "type", "stun")), stanza.ItemNotFound},
		{"no type", iq(srv.Domain, credentialsReq(extdisco.NS, "host", "turn.example.org")), stanza.BadRequest},
		{"bad port", iq(srv.Domain, credentialsReq(extdisco.NS, "host", "turn.example.org", "type", "turn", "port", "x")), stanza.BadRequest},
		{"no service", iq(srv.Domain, xmlstream.NewElement(extdisco.NS, "credentials")), stanza.BadRequest},
		{"to an account", iq("romeo@localhost", servicesReq(extdisco.NS, "")), stanza.ServiceUnavailable},
		{"to oneself", iq("juliet@localhost", servicesReq(extdisco.NS, "")), stanza.ServiceUnavailable},
	}
	srv.AddUser(t, "romeo", "orchard")
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.IQ(ctxT(t), tt.iq)
			wantCondition(t, err, tt.want)
		})
	}
}

// features returns the server's disco#info features.
func features(t *testing.T, c *client.Client, domain string) []string {
	t.Helper()
	res, err := c.IQ(ctxT(t), iq(domain, xmlstream.NewElement(stanza.NSDiscoInfo, "query")))
	if err != nil {
		t.Fatal(err)
	}
	var fs []string
	for _, f := range res.Child(stanza.NSDiscoInfo, "query").ChildrenNS(stanza.NSDiscoInfo) {
		if f.Name.Local == "feature" {
			fs = append(fs, f.Attribute("var"))
		}
	}
	return fs
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDiscoFeature(t *testing.T) {
	srv := xmpptest.Start(t, withServices)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	fs := features(t, c, srv.Domain)
	if !has(fs, extdisco.NS) || !has(fs, extdisco.NS1) {
		t.Errorf("disco#info features %q lack %s and %s", fs, extdisco.NS, extdisco.NS1)
	}
}

// TestOffByDefault: without services nothing is advertised or answered.
func TestOffByDefault(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	c := srv.Dial(t, srv.AddUser(t, "juliet", "balcony"), "balcony")
	if fs := features(t, c, srv.Domain); has(fs, extdisco.NS) || has(fs, extdisco.NS1) {
		t.Errorf("disco#info features %q list extdisco with no services", fs)
	}
	_, err := c.IQ(ctxT(t), iq(srv.Domain, servicesReq(extdisco.NS, "")))
	wantCondition(t, err, stanza.ServiceUnavailable)
}

// remote records what the router sends to other domains.
type remote struct {
	mu   sync.Mutex
	sent []*xmlstream.Element
}

func (r *remote) Send(_ context.Context, st *xmlstream.Element) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, st)
}

// TestRemoteForbidden: an entity of another server gets forbidden, since
// credentials are for the server's own users.
func TestRemoteForbidden(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	r := router.New([]string{"localhost"}, log)
	rm := new(remote)
	r.SetRemote(rm)
	m, err := extdisco.New(module.Deps{Router: r, Log: log, Now: time.Now}, extdisco.Config{Services: services})
	if err != nil {
		t.Fatal(err)
	}
	m.Register(r)
	for _, payload := range []*xmlstream.Element{
		servicesReq(extdisco.NS, ""),
		credentialsReq(extdisco.NS, "host", "turn.example.org", "type", "turn"),
	} {
		rm.sent = nil
		r.Route(t.Context(), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "localhost", "romeo@montague.net/orchard", "r1").Append(payload))
		if len(rm.sent) != 1 {
			t.Fatalf("%s: sent %d stanzas to montague.net, want one error", payload.Name.Local, len(rm.sent))
		}
		e, ok := stanza.ParseError(rm.sent[0])
		if !ok || e.Condition != stanza.Forbidden || stanza.To(rm.sent[0]) != "romeo@montague.net/orchard" {
			t.Errorf("%s: got %s, want forbidden", payload.Name.Local, rm.sent[0])
		}
	}
}

// TestExampleServices uncomments the services of ode.example.toml's
// [modules.extdisco] and checks that they decode and validate.
func TestExampleServices(t *testing.T) {
	data, err := os.ReadFile("../../../ode.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(data), "\n[modules.extdisco]\n")
	_, example, ok := strings.Cut(section, "\n# services = [\n")
	example, _, ok2 := strings.Cut(example, "\n# ]\n")
	if !ok || !ok2 {
		t.Fatal("no commented services = [ … ] in [modules.extdisco]")
	}
	doc := "[modules.extdisco]\nservices = [\n" + strings.ReplaceAll(example, "# ", "") + "\n]\n"
	cfg, err := config.Parse([]byte(doc), "example", config.ModuleSchema{Name: "extdisco", Defaults: extdisco.Info.Config})
	if err != nil {
		t.Fatalf("%s\n%v", doc, err)
	}
	got := cfg.Modules.Settings["extdisco"].(*extdisco.Config).Services
	if len(got) != 3 || !got[1].Restricted || got[1].Secret == "" {
		t.Errorf("example services: %+v", got)
	}
}
