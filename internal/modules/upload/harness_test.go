package upload_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules/upload"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage/sqlite"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

const domain = "localhost"

// clock is a time the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// web is a module.HTTP on an httptest server.
type web struct {
	mux *http.ServeMux
	srv *httptest.Server
}

func (w *web) Handle(pattern string, h http.Handler) { w.mux.Handle(pattern, h) }
func (w *web) BaseURL() string                       { return w.srv.URL }

// sess is a bound resource that records what it is sent.
type sess struct {
	j      jid.JID
	mu     sync.Mutex
	got    []*xmlstream.Element
	values session.Values
}

func (s *sess) JID() jid.JID            { return s.j }
func (s *sess) Presence() (int, bool)   { return 0, true }
func (s *sess) Close(*stream.Error)     {}
func (s *sess) LastActive() time.Time   { return time.Now() }
func (s *sess) Detached() bool          { return false }
func (s *sess) Values() *session.Values { return &s.values }
func (s *sess) Deliver(st *xmlstream.Element) error {
	s.mu.Lock()
	s.got = append(s.got, st)
	s.mu.Unlock()
	return nil
}

func (s *sess) take(t *testing.T) *xmlstream.Element {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 1 {
		t.Fatalf("%s received %d stanzas, want 1: %v", s.j, len(s.got), s.got)
	}
	st := s.got[0]
	s.got = nil
	return st
}

// remote records what goes to other domains.
type remote struct{ sess }

func (r *remote) Send(_ context.Context, st *xmlstream.Element) { r.Deliver(st) }

// env is a router with the upload module, a store with the accounts
// alice and bob, and the module's handler on an HTTPS test server.
type env struct {
	t      *testing.T
	dir    string
	store  *sqlite.Store
	r      *router.Router
	m      *upload.Module
	web    *web
	clock  *clock
	alice  *sess
	bob    *sess
	remote *remote
	client *http.Client
}

func newEnv(t *testing.T, cfg *upload.Config) *env {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "ode.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, u := range []string{"alice", "bob"} {
		if err := store.CreateAccount(t.Context(), u, domain, nil); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, dir: dir, store: store, clock: &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}}
	e.start(cfg)
	return e
}

// start builds the module (again, as after a restart) on a new router and
// HTTPS server.
func (e *env) start(cfg *upload.Config) {
	t := e.t
	t.Helper()
	if cfg == nil {
		cfg = upload.Info.Config.(*upload.Config)
	}
	e.web = &web{mux: http.NewServeMux()}
	e.web.srv = httptest.NewTLSServer(e.web.mux)
	t.Cleanup(e.web.srv.Close)
	e.client = e.web.srv.Client()
	e.client.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS12
	log := slog.New(slog.DiscardHandler)
	e.r = router.New([]string{domain}, log)
	e.remote = &remote{sess{j: jid.MustParse("remote.example")}}
	e.r.SetRemote(e.remote)
	m, err := upload.New(module.Deps{Store: e.store, Router: e.r, Log: log, Now: e.clock.Now, DataDir: e.dir, HTTP: e.web}, *cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Register(e.r)
	if err := e.r.Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	e.m = m
	e.alice = e.bind("alice@localhost/phone")
	e.bob = e.bind("bob@localhost/pc")
}

func (e *env) bind(full string) *sess {
	s := &sess{j: jid.MustParse(full)}
	e.r.Bind(s)
	return s
}

// iq sends an IQ get with payload from s to the upload service and
// returns the answer.
func (e *env) iq(s *sess, to string, payload *xmlstream.Element) *xmlstream.Element {
	e.t.Helper()
	iq := stanza.NewIQ(stanza.NSClient, stanza.IQGet, to, s.j.String(), "q1").Append(payload)
	e.r.RouteFrom(e.t.Context(), s, iq)
	return s.take(e.t)
}

func request(filename string, size int64, ct string) *xmlstream.Element {
	req := xmlstream.NewElement(upload.NSUpload, "request").SetAttr("filename", filename)
	if size >= 0 {
		req.SetAttr("size", itoa(size))
	}
	if ct != "" {
		req.SetAttr("content-type", ct)
	}
	return req
}

// slot is a granted slot.
type slot struct {
	put, get, auth string
}

// slot requests a slot for s and fails the test unless it is granted.
func (e *env) slot(s *sess, filename string, size int64, ct string) slot {
	e.t.Helper()
	res := e.iq(s, "upload."+domain, request(filename, size, ct))
	if stanza.Type(res) != stanza.IQResult {
		e.t.Fatalf("slot request: %s", res)
	}
	el := res.Child(upload.NSUpload, "slot")
	put, get := el.Child(upload.NSUpload, "put"), el.Child(upload.NSUpload, "get")
	if put == nil || get == nil {
		e.t.Fatalf("slot %s", el)
	}
	h := put.Child(upload.NSUpload, "header")
	if h == nil || h.Attribute("name") != "Authorization" {
		e.t.Fatalf("put %s: want an Authorization header", put)
	}
	return slot{put: put.Attribute("url"), get: get.Attribute("url"), auth: h.Text()}
}

// do sends an HTTP request and returns the response with its body read.
func (e *env) do(method, url string, body string, header map[string]string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	for k, v := range header {
		if k == "Content-Length" {
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res, string(b)
}

// putFile PUTs body to the slot with its token and type.
func (e *env) putFile(s slot, ct, body string) int {
	e.t.Helper()
	h := map[string]string{"Authorization": s.auth}
	if ct != "" {
		h["Content-Type"] = ct
	}
	res, _ := e.do(http.MethodPut, s.put, body, h)
	return res.StatusCode
}
