package httpd_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/httpd"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/xmlstream"
)

const (
	nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsSM      = "urn:xmpp:sm:3"
)

// wsClient is a hand-driven XMPP client over WebSocket (RFC 7395).
type wsClient struct {
	t   testing.TB
	srv *xmpptest.Server
	c   *websocket.Conn
	h   uint32 // stanzas received, for stream management
}

func httpClient(srv *xmpptest.Server) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: srv.TLSConfig()}}
}

func dialWS(t testing.TB, srv *xmpptest.Server, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if opts == nil {
		opts = &websocket.DialOptions{Subprotocols: []string{"xmpp"}}
	}
	opts.HTTPClient = httpClient(srv)
	return websocket.Dial(ctx, "wss://"+srv.HTTPAddr+"/xmpp-websocket", opts)
}

func newWS(t testing.TB, srv *xmpptest.Server) *wsClient {
	t.Helper()
	c, _, err := dialWS(t, srv, nil)
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if c.Subprotocol() != "xmpp" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	return &wsClient{t: t, srv: srv, c: c}
}

func (w *wsClient) send(s string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		w.t.Fatalf("websocket write %q: %v", s, err)
	}
}

// next reads one message, checks it is one element with its namespaces
// declared, and returns it.
func (w *wsClient) next() *xmlstream.Element {
	w.t.Helper()
	e, raw, err := w.nextErr()
	if err != nil {
		w.t.Fatalf("websocket read: %v (%s)", err, raw)
	}
	return e
}

func (w *wsClient) nextErr() (*xmlstream.Element, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := w.c.Read(ctx)
	if err != nil {
		return nil, nil, err
	}
	if typ != websocket.MessageText {
		return nil, b, fmt.Errorf("message type %v", typ)
	}
	if strings.HasPrefix(string(b), "<stream:") && !strings.Contains(string(b), "xmlns:stream=") {
		return nil, b, fmt.Errorf("stream element without xmlns:stream")
	}
	// Parsed with no default namespace: a stanza must declare its own.
	e, err := xmlstream.ParseElement(b, "")
	if err != nil {
		return nil, b, fmt.Errorf("message is not one element: %w", err)
	}
	if e.Name.Space == "" {
		return nil, b, fmt.Errorf("element without a namespace")
	}
	if e.Name.Space == "jabber:client" {
		w.h++
	}
	return e, b, nil
}

func (w *wsClient) expect(space, local string) *xmlstream.Element {
	w.t.Helper()
	for {
		e := w.next()
		if e.Name.Space == nsSM && e.Name.Local == "r" && !(space == nsSM && local == "r") {
			continue
		}
		if e.Name.Space != space || e.Name.Local != local {
			w.t.Fatalf("want {%s}%s, got %s", space, local, e)
		}
		return e
	}
}

// open sends <open/> and reads the server's <open/> and features.
func (w *wsClient) open() *xmlstream.Element {
	w.t.Helper()
	w.send(`<open xmlns='` + nsFraming + `' to='` + w.srv.Domain + `' version='1.0'/>`)
	o := w.expect(nsFraming, "open")
	if o.Attribute("from") != w.srv.Domain || o.Attribute("id") == "" || o.Attribute("version") != "1.0" {
		w.t.Fatalf("server's open: %s", o)
	}
	return w.expect("http://etherx.jabber.org/streams", "features")
}

func (w *wsClient) login(user, pw string) {
	w.t.Helper()
	f := w.open()
	if !strings.Contains(f.String(), "PLAIN") || strings.Contains(f.String(), "starttls") {
		w.t.Fatalf("features before auth: %s", f)
	}
	w.send(`<auth xmlns='` + nsSASL + `' mechanism='PLAIN'>` + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pw)) + `</auth>`)
	w.expect(nsSASL, "success")
	w.open()
}

func (w *wsClient) bind(res string) jid.JID {
	w.t.Helper()
	w.send(`<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>` + res + `</resource></bind></iq>`)
	e := w.expect("jabber:client", "iq")
	j, err := jid.Parse(e.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind").Child("urn:ietf:params:xml:ns:xmpp-bind", "jid").Text())
	if err != nil {
		w.t.Fatalf("bind: %s", e)
	}
	return j
}

func startHTTP(t testing.TB, edit func(*config.Config)) *xmpptest.Server {
	t.Helper()
	srv := xmpptest.Start(t, edit)
	if srv.HTTPAddr == "" {
		t.Fatal("no HTTPS listener")
	}
	srv.AddUser(t, "alice", "pw")
	srv.AddUser(t, "bob", "pw")
	return srv
}

// TestWebSocketChat: a WebSocket client logs in, binds and exchanges
// messages with a TCP client; every server message is one element
// declaring its namespaces.
func TestWebSocketChat(t *testing.T) {
	srv := startHTTP(t, nil)
	alice := newWS(t, srv)
	alice.login("alice", "pw")
	aliceJID := alice.bind("web")
	bob := srv.DialRaw(t)
	bob.Login("bob", "pw")
	bobJID := bob.Bind("tcp")

	alice.send(fmt.Sprintf(`<message xmlns='jabber:client' to='%s' type='chat' id='w1'><body>from the web</body></message>`, bobJID))
	m := bob.Expect("jabber:client", "message")
	if m.Attribute("from") != aliceJID.String() || m.Child("", "body").Text() != "from the web" {
		t.Errorf("bob got %s", m)
	}
	bob.Send(fmt.Sprintf(`<message to='%s' type='chat' id='t1'><body>from tcp</body></message>`, aliceJID))
	m = alice.expect("jabber:client", "message")
	if m.Attribute("from") != bobJID.String() || m.Child("jabber:client", "body").Text() != "from tcp" {
		t.Errorf("alice got %s", m)
	}
	// A ping to the server, then a clean close: <close/> both ways.
	alice.send(`<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if e := alice.expect("jabber:client", "iq"); e.Attribute("id") != "p1" || e.Attribute("type") != "result" {
		t.Errorf("ping: %s", e)
	}
	alice.send(`<close xmlns='` + nsFraming + `'/>`)
	alice.expect(nsFraming, "close")
	xmpptest.WaitFor(t, 10*time.Second, "the session to end", func() bool { return srv.Router().Session(aliceJID) == nil })
}

// TestWebSocketResumeAcrossTransports: a session with stream management
// moves from TCP to WebSocket and back, each unacknowledged message
// arriving exactly once.
func TestWebSocketResumeAcrossTransports(t *testing.T) {
	srv := startHTTP(t, nil)
	bob := srv.DialRaw(t)
	bob.Login("bob", "pw")
	bob.Bind("sender")
	send := func(to jid.JID, from, n int) {
		for i := from; i < from+n; i++ {
			bob.Send(fmt.Sprintf(`<message to='%s' type='chat' id='m%d'><body>%d</body></message>`, to, i, i))
		}
	}
	got := map[string]int{}

	tcp := srv.DialRaw(t)
	tcp.Login("alice", "pw")
	aliceJID := tcp.Bind("phone")
	tcp.Send(`<enable xmlns='` + nsSM + `' resume='true'/>`)
	id := tcp.Expect(nsSM, "enabled").Attribute("id")
	send(aliceJID, 0, 3)
	nextMessage := func(r *xmpptest.Raw) *xmlstream.Element {
		t.Helper()
		for {
			e := r.Next()
			if e.Name.Local == "message" {
				return e
			}
			if e.Name.Space != nsSM {
				t.Fatalf("want a message, got %s", e)
			}
		}
	}
	for range 3 {
		got[nextMessage(tcp).Child("", "body").Text()]++
	}
	tcp.Drop() // acknowledged nothing
	send(aliceJID, 3, 2)

	ws := newWS(t, srv)
	ws.login("alice", "pw")
	ws.send(fmt.Sprintf(`<resume xmlns='%s' previd='%s' h='2'/>`, nsSM, id))
	if r := ws.expect(nsSM, "resumed"); r.Attribute("previd") != id {
		t.Fatalf("resumed: %s", r)
	}
	ws.h = 0
	for range 3 { // 2, 3, 4: the first two were handled
		got[ws.expect("jabber:client", "message").Child("jabber:client", "body").Text()]++
	}
	h := 2 + ws.h
	send(aliceJID, 5, 1)
	got[ws.expect("jabber:client", "message").Child("jabber:client", "body").Text()]++
	h++
	ws.c.CloseNow() // dropped without <close/>, 2..5 unacknowledged: only 0, 1 were
	send(aliceJID, 6, 1)

	tcp2 := srv.DialRaw(t)
	tcp2.Login("alice", "pw")
	tcp2.Send(fmt.Sprintf(`<resume xmlns='%s' previd='%s' h='%d'/>`, nsSM, id, h))
	tcp2.Expect(nsSM, "resumed")
	got[nextMessage(tcp2).Child("", "body").Text()]++
	tcp2.Send(`<iq type='get' id='end'><ping xmlns='urn:xmpp:ping'/></iq>`)
	for {
		e := tcp2.Next()
		if e.Name.Local == "message" {
			t.Fatalf("more than expected after the second resumption: %s", e)
		}
		if e.Attribute("id") == "end" {
			break
		}
	}
	want := map[string]int{"0": 1, "1": 1, "2": 2, "3": 1, "4": 1, "5": 1, "6": 1}
	// Message 2 was received on TCP but not handled (h=2 at resumption),
	// so it was resent once to WebSocket: the client saw it twice, as
	// stream management intends; every other exactly once.
	for k, v := range want {
		if got[k] != v {
			t.Errorf("message %s received %d times, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

// TestWebSocketRefusals: the subprotocol is required, origins can be
// restricted, binary and oversized messages end the stream.
func TestWebSocketRefusals(t *testing.T) {
	srv := startHTTP(t, func(c *config.Config) {
		c.HTTP.AllowedOrigins = []string{"https://chat.example.org"}
		c.C2S.MaxStanzaBytes = 10000
	})
	// No xmpp subprotocol: closed with a protocol error.
	c, _, err := dialWS(t, srv, &websocket.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(t.Context()); websocket.CloseStatus(err) != websocket.StatusProtocolError {
		t.Errorf("without the subprotocol: %v", err)
	}
	// A page from another origin.
	_, resp, err := dialWS(t, srv, &websocket.DialOptions{Subprotocols: []string{"xmpp"}, HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: %v %v", err, resp)
	}
	c, _, err = dialWS(t, srv, &websocket.DialOptions{Subprotocols: []string{"xmpp"}, HTTPHeader: http.Header{"Origin": {"https://chat.example.org"}}})
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	c.CloseNow()

	// Something else than <open/> first.
	w := newWS(t, srv)
	w.send(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`)
	w.expectStreamError(t, "invalid-namespace")

	// A message bigger than the stanza limit.
	w = newWS(t, srv)
	w.login("alice", "pw")
	w.send(`<message xmlns='jabber:client' to='bob@localhost'><body>` + strings.Repeat("x", 20000) + `</body></message>`)
	w.expectStreamError(t, "policy-violation")

	// A binary message.
	w = newWS(t, srv)
	w.open()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_ = w.c.Write(ctx, websocket.MessageBinary, []byte("<presence/>"))
	w.expectStreamError(t, "unsupported-encoding")
}

// expectStreamError reads until a stream error with cond, then <close/>.
func (w *wsClient) expectStreamError(t *testing.T, cond string) {
	t.Helper()
	for {
		e, raw, err := w.nextErr()
		if err != nil {
			t.Fatalf("want stream error %s, got %v (%s)", cond, err, raw)
		}
		if e.Name.Local != "error" || e.Name.Space != "http://etherx.jabber.org/streams" {
			continue
		}
		if e.Child("urn:ietf:params:xml:ns:xmpp-streams", cond) == nil {
			t.Fatalf("stream error %s, want %s", e, cond)
		}
		break
	}
	if e, raw, err := w.nextErr(); err != nil || e.Name.Local != "close" {
		t.Fatalf("after the stream error: %v %v (%s)", e, err, raw)
	}
}

// TestHostMeta: XEP-0156 in XML and JSON, readable from any origin.
func TestHostMeta(t *testing.T) {
	srv := startHTTP(t, nil)
	hc := httpClient(srv)
	for _, path := range []string{"/.well-known/host-meta", "/.well-known/host-meta.json"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+srv.HTTPAddr+path, nil)
		req.Header.Set("Origin", "https://converse.example")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %s, CORS %q", path, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		want := "wss://" + strings.Replace(srv.HTTPAddr, "127.0.0.1", "localhost", 1) + "/xmpp-websocket"
		if !strings.Contains(string(body), want) {
			t.Errorf("%s does not announce %s:\n%s", path, want, body)
		}
		if strings.HasSuffix(path, ".json") {
			var doc struct{ Links []struct{ Rel, Href string } }
			if err := json.Unmarshal(body, &doc); err != nil || len(doc.Links) == 0 || doc.Links[0].Rel != "urn:xmpp:alt-connections:websocket" {
				t.Errorf("host-meta.json: %v %s", err, body)
			}
		}
	}
	// A CORS preflight.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, "https://"+srv.HTTPAddr+"/http-bind", nil)
	req.Header.Set("Origin", "https://converse.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %s %v", resp.Status, resp.Header)
	}
}

// TestWebSocketShutdown: an idle stream gets system-shutdown, <close/>
// and a WebSocket close frame with a normal closure.
func TestWebSocketShutdown(t *testing.T) {
	srv := startHTTP(t, nil)
	w := newWS(t, srv)
	w.login("alice", "pw")
	aliceJID := w.bind("web")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	w.expectStreamError(t, "system-shutdown")
	if _, _, err := w.c.Read(t.Context()); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after <close/>: %v, want a normal closure", err)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	_ = aliceJID
}

// TestBehindProxy: on the loopback plain-HTTP listener, a request from a
// trusted proxy that says it terminated TLS is a secure stream (PLAIN is
// offered and works), and host-meta announces the public URL.
func TestBehindProxy(t *testing.T) {
	plain := xmpptest.FreeAddr(t)
	srv := startHTTP(t, func(c *config.Config) {
		c.HTTP.ListenPlain = []string{plain}
		c.HTTP.TrustedProxies = []string{"127.0.0.1"}
		c.HTTP.PublicURL = "https://xmpp.example.org"
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+plain+"/xmpp-websocket", &websocket.DialOptions{
		Subprotocols: []string{"xmpp"},
		HTTPHeader:   http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-For": {"192.0.2.7"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	w := &wsClient{t: t, srv: srv, c: c}
	w.login("alice", "pw")
	w.bind("proxied")

	resp, err := http.Get("http://" + plain + "/.well-known/host-meta.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"wss://xmpp.example.org/xmpp-websocket"`) {
		t.Errorf("host-meta behind the proxy: %s", body)
	}
}

// TestPublicPlain checks what a plain listener on a public address (for
// ACME's HTTP-01 challenge on port 80) serves: the challenges, and
// redirects to HTTPS for the rest.
func TestPublicPlain(t *testing.T) {
	s, err := httpd.New(httpd.Config{Domains: []string{"example.org"}, PublicURL: "https://xmpp.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	s.Handle(httpd.ACMEChallengePath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "key-authorization")
	}))
	tests := []struct {
		name, method, path string
		local              net.IP
		wantCode           int
		wantBody, wantLoc  string
	}{
		{"challenge", "GET", "/.well-known/acme-challenge/tok", net.IPv4(192, 0, 2, 1), 200, "key-authorization", ""},
		{"host-meta redirected", "GET", "/.well-known/host-meta?x=1", net.IPv4(192, 0, 2, 1), 301, "", "https://xmpp.example.org/.well-known/host-meta?x=1"},
		{"bosh refused", "POST", "/http-bind", net.ParseIP("2001:db8::1"), 403, "use HTTPS", ""},
		{"loopback serves all", "GET", "/.well-known/host-meta", net.IPv4(127, 0, 0, 1), 200, "<XRD", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://example.org"+tt.path, nil)
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: tt.local, Port: 80}))
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), tt.wantBody) || w.Header().Get("Location") != tt.wantLoc {
				t.Errorf("%s %s on %s: %d %q Location %q; want %d containing %q, Location %q", tt.method, tt.path, tt.local,
					w.Code, w.Body.String(), w.Header().Get("Location"), tt.wantCode, tt.wantBody, tt.wantLoc)
			}
		})
	}
}
