package metrics_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// token is the [metrics] token of the test servers.
var token = strings.Repeat("t0k3n", 8)

// series is one scrape: each sample by its name and labels.
type series []sample

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parse reads the Prometheus text exposition format (version 0.0.4).
func parse(t *testing.T, text string) series {
	t.Helper()
	var out series
	for n, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			t.Fatalf("line %d: no value: %q", n+1, line)
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("line %d: value: %v", n+1, err)
		}
		s := sample{name: line[:sp], labels: map[string]string{}, value: v}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			body := strings.TrimSuffix(s.name[i+1:], "}")
			s.name = s.name[:i]
			for body != "" {
				k, rest, ok := strings.Cut(body, `="`)
				if !ok {
					t.Fatalf("line %d: labels: %q", n+1, line)
				}
				var val strings.Builder
				j := 0
				for ; j < len(rest) && rest[j] != '"'; j++ {
					if rest[j] == '\\' && j+1 < len(rest) {
						j++
					}
					val.WriteByte(rest[j])
				}
				s.labels[k] = val.String()
				body = strings.TrimPrefix(rest[min(j+1, len(rest)):], ",")
			}
		}
		out = append(out, s)
	}
	return out
}

// get sums the samples of name whose labels include want ("k=v" pairs);
// ok is false when there is none.
func (ss series) get(name string, want ...string) (sum float64, ok bool) {
next:
	for _, s := range ss {
		if s.name != name {
			continue
		}
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if s.labels[k] != v {
				continue next
			}
		}
		sum += s.value
		ok = true
	}
	return sum, ok
}

// metricsClient speaks HTTPS to the test server.
func metricsClient(srv *xmpptest.Server) *http.Client {
	tc := srv.TLSConfig()
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

// fetch requests /metrics at addr with the given headers and returns
// the status and body.
func fetch(t *testing.T, srv *xmpptest.Server, addr string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", "https://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := metricsClient(srv).Do(req)
	if err != nil {
		t.Fatalf("GET /metrics at %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func scrape(t *testing.T, srv *xmpptest.Server) series {
	t.Helper()
	code, body := fetch(t, srv, srv.HTTPAddr)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics from loopback: %d %s", code, body)
	}
	return parse(t, body)
}

// nonLoopback returns an address of this machine that is not loopback,
// or "" when it has none.
func nonLoopback(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startServer starts a server whose HTTPS listener is on every IPv4
// address, so that it can be reached from loopback and from another of
// this machine's addresses.
func startServer(t *testing.T, edit func(*config.Config)) *xmpptest.Server {
	t.Helper()
	srv := xmpptest.Start(t, func(c *config.Config) {
		c.HTTP.Listen = []string{"0.0.0.0:0"}
		if edit != nil {
			edit(c)
		}
	})
	srv.HTTPAddr = net.JoinHostPort("127.0.0.1", port(t, srv.HTTPAddr))
	return srv
}

// TestScrapeDuringLoad logs in clients over STARTTLS (SASL2), direct TLS
// (RFC 6120 SASL) and WebSocket, fails one login, exchanges messages, and
// checks that the scraped counters moved by at least what was done.
func TestScrapeDuringLoad(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.Metrics.Token = token })
	alice := srv.AddUser(t, "alice", "alice pw")
	bob := srv.AddUser(t, "bob", "bob pw")
	carol := srv.AddUser(t, "carol", "carol pw")
	before := scrape(t, srv)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	ac := srv.Dial(t, alice, "alice pw") // STARTTLS, SASL2 with Bind2
	bcfg := srv.ClientConfig(bob, "bob pw")
	bcfg.Addr, bcfg.DirectTLS, bcfg.NoSASL2 = srv.DirectAddr, true, true
	bc, err := client.Dial(ctx, bcfg)
	if err != nil {
		t.Fatalf("bob over direct TLS: %v", err)
	}
	defer bc.Close()
	ws := wsLogin(t, srv, "carol", "carol pw")
	bad := srv.ClientConfig(carol, "wrong")
	bad.NoSASL2 = true
	if c, err := client.Dial(ctx, bad); err == nil {
		c.Close()
		t.Fatal("a wrong password logged in")
	}

	const n = 70 // more than one sampling period (64)
	for i := range n {
		msg := stanza.NewMessage(stanza.NSClient, stanza.MessageChat, bc.JID().String(), "", fmt.Sprintf("m%d", i)).
			Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText("hello"))
		if err := ac.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < n; {
		e, err := bc.Recv(ctx)
		if err != nil {
			t.Fatalf("bob after %d messages: %v", got, err)
		}
		if e.Name.Local == "message" && e.Child(stanza.NSClient, "body") != nil {
			got++
		}
	}
	ws.send(`<message xmlns='jabber:client' to='` + bc.JID().String() + `' type='chat'><body>from the web</body></message>`)
	for {
		e, err := bc.Recv(ctx)
		if err != nil {
			t.Fatalf("bob, waiting for carol's message: %v", err)
		}
		if e.Name.Local == "message" && strings.HasPrefix(e.Attribute("from"), "carol@") {
			break
		}
	}

	// Scraped while the sessions are up; the archive's group commit may
	// take a moment.
	var during series
	xmpptest.WaitFor(t, 30*time.Second, "the archive writer's commit in the metrics", func() bool {
		during = scrape(t, srv)
		return delta(before, during, "ode_mam_batches_total") >= 1
	})
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"ode_c2s_logins_total", []string{"profile=sasl2"}, 1},
		{"ode_c2s_logins_total", []string{"profile=sasl"}, 2}, // bob and carol
		{"ode_c2s_login_failures_total", []string{"profile=sasl", "reason=not-authorized"}, 1},
		{"ode_stanzas_total", []string{"stream=c2s", "direction=in", "kind=message"}, n + 1},
		{"ode_stanzas_total", []string{"stream=c2s", "direction=out", "kind=message"}, n + 1},
		{"ode_stanzas_total", []string{"stream=c2s", "direction=in", "kind=presence"}, 1},
		{"ode_stanzas_total", []string{"stream=c2s", "direction=out", "kind=iq"}, 1},
		{"ode_route_duration_seconds_count", []string{"stream=c2s", "kind=message"}, 1}, // one in 64 of alice's stanzas
		{"ode_storage_duration_seconds_count", []string{"op=credential"}, 3},
		{"ode_storage_duration_seconds_count", []string{"op=append_archive"}, 1},
		{"ode_mam_batches_total", nil, 1},
	} {
		if d := delta(before, during, c.name, c.labels...); d < c.min {
			t.Errorf("%s%v moved by %v during the load, want at least %v", c.name, c.labels, d, c.min)
		}
	}
	for _, c := range []struct {
		transport string
		min       float64
	}{{"tcp", 1}, {"tls", 1}, {"websocket", 1}} {
		if v, _ := during.get("ode_c2s_sessions", "transport="+c.transport); v < c.min {
			t.Errorf("ode_c2s_sessions{transport=%q} = %v with clients bound, want at least %v", c.transport, v, c.min)
		}
		if v, _ := during.get("ode_c2s_connections", "transport="+c.transport); v < c.min {
			t.Errorf("ode_c2s_connections{transport=%q} = %v, want at least %v", c.transport, v, c.min)
		}
	}
	for _, name := range []string{
		"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_open_fds",
		"ode_s2s_streams", "ode_queue_overflows_total", "ode_mam_queue_rows", "ode_mam_queue_bytes",
		"ode_c2s_sessions_detached", "ode_route_duration_seconds_bucket",
	} {
		if _, ok := during.get(name); !ok {
			t.Errorf("no series %s in the scrape", name)
		}
	}
	if v, _ := during.get("ode_mam_queue_rows"); v < 0 {
		t.Errorf("ode_mam_queue_rows = %v", v)
	}

	// The sessions end: the gauges go back down.
	ac.Close()
	bc.Close()
	ws.c.Close(websocket.StatusNormalClosure, "")
	xmpptest.WaitFor(t, 30*time.Second, "the session gauges to fall back", func() bool {
		after := scrape(t, srv)
		for _, tr := range []string{"tcp", "tls", "websocket"} {
			b, _ := before.get("ode_c2s_sessions", "transport="+tr)
			a, _ := after.get("ode_c2s_sessions", "transport="+tr)
			if a > b {
				return false
			}
		}
		return true
	})
}

func delta(before, after series, name string, labels ...string) float64 {
	b, _ := before.get(name, labels...)
	a, _ := after.get(name, labels...)
	return a - b
}

// wsConn is a client on XMPP over WebSocket (RFC 7395).
type wsConn struct {
	t *testing.T
	c *websocket.Conn
}

func (w *wsConn) send(s string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		w.t.Fatalf("websocket write: %v", err)
	}
}

// expect reads messages until the element named local.
func (w *wsConn) expect(local string) *xmlstream.Element {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			w.t.Fatalf("websocket read, waiting for <%s/>: %v", local, err)
		}
		e, err := xmlstream.ParseElement(b, "")
		if err != nil {
			w.t.Fatalf("websocket message %q: %v", b, err)
		}
		if e.Name.Local == local {
			return e
		}
		if e.Name.Local == "failure" || e.Name.Local == "error" {
			w.t.Fatalf("websocket: %s while waiting for <%s/>", b, local)
		}
	}
}

// wsLogin logs in over WebSocket with PLAIN and binds a resource.
func wsLogin(t *testing.T, srv *xmpptest.Server, user, pw string) *wsConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://"+srv.HTTPAddr+"/xmpp-websocket", &websocket.DialOptions{
		Subprotocols: []string{"xmpp"}, HTTPClient: metricsClient(srv)})
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	w := &wsConn{t: t, c: c}
	open := `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='` + srv.Domain + `' version='1.0'/>`
	w.send(open)
	w.expect("features")
	w.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pw)) + `</auth>`)
	w.expect("success")
	w.send(open)
	w.expect("features")
	w.send(`<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`)
	if _, err := jid.Parse(w.expect("iq").Child("urn:ietf:params:xml:ns:xmpp-bind", "bind").Child("urn:ietf:params:xml:ns:xmpp-bind", "jid").Text()); err != nil {
		t.Fatalf("websocket bind: %v", err)
	}
	w.send(`<presence xmlns='jabber:client'/>`)
	return w
}

// TestAccess checks who may read /metrics, over real sockets: loopback
// peers, and with the token anyone; forwarded requests and requests
// from web pages need the token; other peers get 401 when a token is
// configured, 403 when none is.
func TestAccess(t *testing.T) {
	other := nonLoopback(t)
	withToken := startServer(t, func(c *config.Config) { c.Metrics.Token = token })
	noToken := startServer(t, nil)
	off := startServer(t, func(c *config.Config) { c.Metrics.Enabled = false })
	at := func(srv *xmpptest.Server, host string) string {
		return net.JoinHostPort(host, port(t, srv.HTTPAddr))
	}
	type check struct {
		name   string
		srv    *xmpptest.Server
		host   string
		header []string
		want   int
	}
	checks := []check{
		{"loopback", withToken, "127.0.0.1", nil, 200},
		{"loopback, no token configured", noToken, "127.0.0.1", nil, 200},
		{"loopback with the token", withToken, "127.0.0.1", []string{"Authorization", "Bearer " + token}, 200},
		{"loopback with a wrong token", withToken, "127.0.0.1", []string{"Authorization", "Bearer " + strings.Repeat("x", 40)}, 401},
		{"loopback, forwarded", withToken, "127.0.0.1", []string{"X-Forwarded-For", "192.0.2.7"}, 401},
		{"loopback, forwarded, no token configured", noToken, "127.0.0.1", []string{"Forwarded", "for=192.0.2.7"}, 403},
		{"loopback, from a web page", noToken, "127.0.0.1", []string{"Origin", "https://evil.example"}, 403},
		{"loopback, token without a token configured", noToken, "127.0.0.1", []string{"Authorization", "Bearer " + token}, 401},
		{"metrics off", off, "127.0.0.1", nil, 404},
	}
	if other != "" {
		checks = append(checks,
			check{"other address", withToken, other, nil, 401},
			check{"other address with the token", withToken, other, []string{"Authorization", "Bearer " + token}, 200},
			check{"other address, scheme in lower case", withToken, other, []string{"Authorization", "bearer " + token}, 200},
			check{"other address, basic auth", withToken, other, []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+token))}, 401},
			check{"other address with a wrong token", withToken, other, []string{"Authorization", "Bearer " + token[1:] + "x"}, 401},
			check{"other address, no token configured", noToken, other, nil, 403},
		)
	} else {
		t.Log("this machine has no non-loopback IPv4 address: remote peers are checked by internal/httpd's TestMetricsAccess only")
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			code, body := fetch(t, c.srv, at(c.srv, c.host), c.header...)
			if code != c.want {
				t.Fatalf("status %d, want %d (%s)", code, c.want, firstLine(body))
			}
			if c.want == 200 && !strings.Contains(body, "ode_stanzas_total{") {
				t.Errorf("a 200 without the series: %s", firstLine(body))
			}
			if c.want != 200 && strings.Contains(body, "ode_") {
				t.Errorf("a refusal shows metrics: %s", body)
			}
		})
	}
	// A 401 says how to authenticate.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://"+at(withToken, "127.0.0.1")+"/metrics", nil)
	req.Header.Set("X-Forwarded-For", "192.0.2.7")
	resp, err := metricsClient(withToken).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
		t.Errorf("401 with WWW-Authenticate %q, want a Bearer challenge", h)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
