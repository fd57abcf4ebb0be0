package bosh_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/bosh"
	"github.com/ode-xmpp/ode/internal/c2s"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/sqlite"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

const domain = "localhost"

// env is a c2s server with a TCP listener and a BOSH handler behind a
// loopback HTTPS server.
type env struct {
	c2s     *c2s.Server
	store   *sqlite.Store
	bosh    *bosh.Handler
	http    *httptest.Server
	tcpAddr string
}

// start starts an env; edit may change the BOSH configuration.
func start(t testing.TB, edit func(*bosh.Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ode.db"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("ODE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r := router.New([]string{domain}, log)
	cs := c2s.NewServer(c2s.Config{Accounts: st, Router: r, Log: log, AuthTimeout: 20 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cs.Serve(ln, false) }()
	cfg := bosh.Config{Serve: cs.ServeTransport, Log: log, MaxWait: 5 * time.Second, MaxInactivity: 5 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	h := bosh.New(cfg)
	hs := httptest.NewUnstartedServer(h)
	hs.EnableHTTP2 = false
	hs.StartTLS()
	e := &env{c2s: cs, store: st, bosh: h, http: hs, tcpAddr: ln.Addr().String()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cs.Shutdown(ctx); err != nil {
			t.Errorf("c2s shutdown: %v", err)
		}
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("bosh shutdown: %v", err)
		}
		hs.Close()
		st.Close()
	})
	return e
}

// addUser creates local@localhost with password "secret".
func (e *env) addUser(t testing.TB, local string) jid.JID {
	t.Helper()
	j, err := jid.New(local, domain, "")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := sasl.NewCredentials("secret", 4096)
	if err != nil {
		t.Fatal(err)
	}
	creds := make([]storage.Credential, len(cs))
	for i, c := range cs {
		creds[i] = storage.Credential{Hash: string(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	}
	if err := e.store.CreateAccount(context.Background(), local, domain, creds); err != nil {
		t.Fatal(err)
	}
	return j
}

// dialTCP logs j in over TCP.
func (e *env) dialTCP(t testing.TB, j jid.JID) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{JID: j, Password: "secret", Addr: e.tcpAddr, AllowPlaintext: true})
	if err != nil {
		t.Fatalf("dial %s: %v", j, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// post sends one raw request body and returns the status and the body.
func (e *env) post(t testing.TB, body string) (int, string) {
	t.Helper()
	resp, err := e.http.Client().Post(e.http.URL+"/http-bind", "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp.StatusCode, string(b)
}

// parse parses a response body.
func parse(t testing.TB, b string) *xmlstream.Element {
	t.Helper()
	el, err := xmlstream.ParseElement([]byte(b), stanza.NSClient)
	if err != nil {
		t.Fatalf("response %q: %v", b, err)
	}
	if el.Name.Space != bosh.NS || el.Name.Local != "body" {
		t.Fatalf("response %q is not a BOSH body", b)
	}
	return el
}

// boshClient is a BOSH client as browsers' libraries are: it keeps one
// request held by the server (polling again whenever none is), sends
// payloads in new requests, processes responses in rid order, counts
// stanzas for XEP-0198 and answers the server's <r/>.
type boshClient struct {
	t   testing.TB
	e   *env
	sid string

	mu          sync.Mutex
	rid         uint64
	next        uint64 // the rid whose response is processed next
	resps       map[uint64]*xmlstream.Element
	outstanding int
	stopped     bool     // no more requests; responses are dropped
	queue       []string // payloads waiting for a free request
	h           uint32
	sm          bool
	inbox       chan *xmlstream.Element
	terminated  chan *xmlstream.Element
	wg          sync.WaitGroup
}

// newClient creates a BOSH session (to is the stream's 'to') and returns
// the client and the session creation response.
func (e *env) newClient(t testing.TB, to string, attrs string) (*boshClient, *xmlstream.Element) {
	t.Helper()
	c := &boshClient{t: t, e: e, rid: 1000 + uint64(time.Now().UnixNano()%1000000), resps: map[uint64]*xmlstream.Element{},
		inbox: make(chan *xmlstream.Element, 1000), terminated: make(chan *xmlstream.Element, 1)}
	status, b := e.post(t, fmt.Sprintf("<body rid='%d' to='%s' xml:lang='en' wait='5' hold='1' ver='1.11' content='text/xml; charset=utf-8' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh' xmlns='%s'%s/>",
		c.rid, to, bosh.NS, attrs))
	if status != 200 {
		t.Fatalf("session creation: status %d: %s", status, b)
	}
	resp := parse(t, b)
	c.sid = resp.Attribute("sid")
	c.rid++
	c.next = c.rid
	t.Cleanup(c.stop)
	return c, resp
}

// start begins polling.
func (c *boshClient) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outstanding == 0 || len(c.queue) > 0 {
		c.sendLocked("", "")
	}
}

// send sends payload in a new request with extra body attributes.
func (c *boshClient) send(attrs, payload string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sendLocked(attrs, payload)
}

func (c *boshClient) sendLocked(attrs, payload string) {
	if c.stopped {
		return
	}
	if attrs == "" && c.outstanding >= 2 {
		// As many requests as 'requests' allows are open: the payload
		// goes with the next.
		if payload != "" {
			c.queue = append(c.queue, payload)
		}
		return
	}
	if attrs == "" {
		payload = strings.Join(c.queue, "") + payload
		c.queue = nil
	}
	rid := c.rid
	c.rid++
	c.outstanding++
	body := fmt.Sprintf("<body rid='%d' sid='%s' xmlns='%s' xmlns:xmpp='urn:xmpp:xbosh'%s>%s</body>", rid, c.sid, bosh.NS, attrs, payload)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		resp, err := c.e.http.Client().Post(c.e.http.URL+"/http-bind", "text/xml; charset=utf-8", strings.NewReader(body))
		var el *xmlstream.Element
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			el, err = xmlstream.ParseElement(b, stanza.NSClient)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.outstanding--
		if c.stopped {
			return
		}
		if err != nil {
			c.t.Errorf("request %d: %v", rid, err)
			return
		}
		c.resps[rid] = el
		c.process()
	}()
}

// process handles the responses that are next in rid order; c.mu is
// held.
func (c *boshClient) process() {
	for {
		el, ok := c.resps[c.next]
		if !ok {
			break
		}
		delete(c.resps, c.next)
		c.next++
		for _, ch := range el.ChildrenNS("") {
			switch {
			case ch.Name.Space == stanza.NSClient:
				c.h++
			case ch.Name.Space == session.NSSM && ch.Name.Local == "r":
				c.sendLocked("", fmt.Sprintf("<a xmlns='%s' h='%d'/>", session.NSSM, c.h))
				continue
			case ch.Name.Space == session.NSSM && ch.Name.Local == "enabled":
				c.sm = true
				c.h = 0
			}
			select {
			case c.inbox <- ch:
			default:
				c.t.Errorf("inbox full")
			}
		}
		if el.Attribute("type") == "terminate" {
			c.stopped = true
			c.terminated <- el
			return
		}
	}
	if c.outstanding == 0 || len(c.queue) > 0 {
		c.sendLocked("", "")
	}
}

// stop sends nothing more and waits for the requests in flight.
func (c *boshClient) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.wg.Wait()
}

// expect returns the next element received, which must be {space}local.
func (c *boshClient) expect(space, local string) *xmlstream.Element {
	c.t.Helper()
	select {
	case el := <-c.inbox:
		if el.Name.Space != space || el.Name.Local != local {
			c.t.Fatalf("received %s, want {%s}%s", el, space, local)
		}
		return el
	case el := <-c.terminated:
		c.t.Fatalf("session terminated: %s; want {%s}%s", el, space, local)
	case <-time.After(15 * time.Second):
		c.t.Fatalf("nothing received; want {%s}%s", space, local)
	}
	return nil
}

// authenticate authenticates with PLAIN and restarts the stream.
func (c *boshClient) authenticate(user string) {
	c.t.Helper()
	c.start()
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00secret"))
	c.send("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+auth+"</auth>")
	c.expect("urn:ietf:params:xml:ns:xmpp-sasl", "success")
	c.send(" xmpp:restart='true' to='"+domain+"' xml:lang='en'", "")
	f := c.expect("http://etherx.jabber.org/streams", "features")
	if f.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind") == nil {
		c.t.Fatalf("no bind feature after the restart: %s", f)
	}
}

// login authenticates, restarts the stream and binds a resource; it
// returns the bound JID.
func (c *boshClient) login(user string) jid.JID {
	c.t.Helper()
	c.authenticate(user)
	c.send("", "<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>")
	res := c.expect(stanza.NSClient, "iq")
	j, err := jid.Parse(res.Child("", "bind").Child("", "jid").Text())
	if err != nil {
		c.t.Fatalf("bind result %s: %v", res, err)
	}
	return j
}

// message returns a chat message.
func message(to jid.JID, id, body string) *xmlstream.Element {
	return xmlstream.NewElement(stanza.NSClient, "message").SetAttr("to", to.String()).SetAttr("id", id).SetAttr("type", "chat").
		Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(body))
}

// recvTCP returns the next message the TCP client receives.
func recvTCP(t testing.TB, c *client.Client) *xmlstream.Element {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	for {
		el, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("tcp receive: %v", err)
		}
		if el.Name.Local == "message" {
			return el
		}
	}
}
