package interop_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/xmlstream"
)

// The web clients live in test/interop/web: package.json pins them and
// install-peers.sh runs npm ci there; Chromium is Debian's package.
const (
	webDir   = "web"
	chromium = "/usr/bin/chromium"
	// screenshotsEnv, when set, makes TestWebConverse copy its
	// screenshots to web/screenshots/ (gitignored).
	screenshotsEnv = "ODE_WEB_SCREENSHOTS"
)

const peersHint = "run `make peers` (bash test/interop/install-peers.sh)"

// needNodeModules fails the test unless node is on PATH and every package
// pinned in web/package.json is installed at its pinned version.
func needNodeModules(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not on PATH (%v): the web interop tests need Node.js >= 20.10 and npm", err)
	}
	var pkg struct{ Dependencies map[string]string }
	readJSON(t, filepath.Join(webDir, "package.json"), &pkg)
	for _, name := range slices.Sorted(maps.Keys(pkg.Dependencies)) {
		want := pkg.Dependencies[name]
		var got struct{ Version string }
		path := filepath.Join(webDir, "node_modules", name, "package.json")
		b, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(b, &got)
		}
		if err != nil || got.Version != want {
			t.Fatalf("%s %s is not installed in %s/node_modules (found %q, %v): %s, which runs npm ci there",
				name, want, webDir, got.Version, err, peersHint)
		}
	}
}

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is missing (%v): %s, which installs Debian's chromium", chromium, err, peersHint)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// goPeer is the Go side of a web test: a Raw client over TCP, logged in,
// bound and available, whose elements a goroutine reads so that the test
// can wait for them and for the web client at once.
type goPeer struct {
	raw  *xmpptest.Raw
	jid  jid.JID
	elem chan *xmlstream.Element
	err  chan error
}

func startGoPeer(t *testing.T, srv *xmpptest.Server, user, password string) *goPeer {
	t.Helper()
	raw := srv.DialRaw(t)
	raw.Login(user, password)
	p := &goPeer{raw: raw, jid: raw.Bind("go"), elem: make(chan *xmlstream.Element, 64), err: make(chan error, 1)}
	raw.Send(`<presence/>`)
	_ = raw.Conn().SetDeadline(time.Now().Add(2 * time.Minute))
	ctx := t.Context()
	go func() {
		for {
			e, err := raw.NextErr()
			if err != nil {
				p.err <- err
				return
			}
			select {
			case p.elem <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

// message waits for a message with a body from a JID that from accepts,
// until the connection fails or timeout passes, or for two seconds more
// once done is closed (the web client may exit as soon as the server has
// its message).
func (p *goPeer) message(t *testing.T, from func(string) bool, timeout time.Duration, done <-chan struct{}) (*xmlstream.Element, error) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	exited := ""
	for {
		select {
		case e := <-p.elem:
			if e.Name.Local == "message" && e.Child("jabber:client", "body") != nil && from(e.Attribute("from")) {
				return e, nil
			}
		case err := <-p.err:
			return nil, fmt.Errorf("%s's stream: %w", p.jid, err)
		case <-done:
			done, exited = nil, " (the web client has exited)"
			timer.Reset(2 * time.Second)
		case <-timer.C:
			return nil, fmt.Errorf("no message within %v%s", timeout, exited)
		}
	}
}

// nodeRun is a Node.js script started in web/, whose stdout is JSON lines.
type nodeRun struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	done   chan struct{} // closed when the script has exited
	err    error         // its exit status, once done
	stderr strings.Builder
}

func startNode(t *testing.T, ctx context.Context, env []string, args ...string) *nodeRun {
	t.Helper()
	n := &nodeRun{lines: make(chan string, 16), done: make(chan struct{})}
	n.cmd = exec.CommandContext(ctx, "node", args...)
	n.cmd.Dir = webDir
	n.cmd.Env = append(os.Environ(), env...)
	n.cmd.Stderr = &n.stderr
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("node %s: %v", args, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			n.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
		n.err = n.cmd.Wait()
		close(n.lines)
		close(n.done)
	}()
	t.Cleanup(func() {
		if n.cmd.Process != nil {
			_ = n.cmd.Process.Kill()
		}
		<-n.done
	})
	return n
}

// next returns the next JSON line that has the given "event", skipping
// others; it fails the test when the script ends without one.
func (n *nodeRun) next(t *testing.T, event string, v any) {
	t.Helper()
	for line := range n.lines {
		var e struct{ Event string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Event == event {
			if err := json.Unmarshal([]byte(line), v); err != nil {
				t.Fatalf("node: %v: %s", err, line)
			}
			return
		}
		t.Logf("node: %s", line)
	}
	<-n.done
	t.Fatalf("node exited (%v) before its %q line\nstderr: %s", n.err, event, n.stderr.String())
}

type xmppjsResult struct {
	Events []string `json:"events"`
	Error  string   `json:"error"`
	SASL   string   `json:"sasl"`
	Mech   string   `json:"mech"`
	JID    string   `json:"jid"`
	SM     struct {
		EnableSent   bool `json:"enable_sent"`
		EnableResume bool `json:"enable_resume"`
		Enabled      bool `json:"enabled"`
		Resume       bool `json:"resume"`
		IDSet        bool `json:"id_set"`
		EnabledAtEnd bool `json:"enabled_at_end"`
		Outbound     int  `json:"outbound"`
		Inbound      int  `json:"inbound"`
	} `json:"sm"`
	Received     *struct{ From, To, Type, Body string } `json:"received"`
	Acked        bool                                   `json:"acked"`
	ServerClosed bool                                   `json:"server_closed"`
}

// TestWebXMPPJS: xmpp.js (@xmpp/client, Node.js) logs in over XMPP over
// WebSocket (RFC 7395) at wss://localhost:PORT/xmpp-websocket with its
// default negotiation, trusting the test CA through NODE_EXTRA_CA_CERTS,
// and chats with a Go client on TCP both ways. xmpp.js prefers SASL2
// (XEP-0388), which ode offers, with SCRAM-SHA-1 (its only SCRAM), and
// binds with Bind2 (XEP-0386, its resource option as the tag), enabling
// stream management (XEP-0198) with resumption inline; the server
// acknowledges its second message. xmpp.js's stop waits for the server's
// <close/> after its own.
func TestWebXMPPJS(t *testing.T) {
	needNodeModules(t)
	srv := xmpptest.Start(t, nil)
	alice := srv.AddUser(t, "alice", "wonderland")
	srv.AddUser(t, "bob", "builder pass")
	bob := startGoPeer(t, srv, "bob", "builder pass")
	_, port, _ := strings.Cut(srv.HTTPAddr, ":")
	service := "wss://localhost:" + port + "/xmpp-websocket"

	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	start := time.Now()
	node := startNode(t, ctx, []string{"NODE_EXTRA_CA_CERTS=" + srv.CAFile},
		"--experimental-websocket", "--no-warnings", "xmppjs_chat.mjs",
		service, srv.Domain, alice.Local(), "wonderland", bob.jid.String())

	// Bind2 (XEP-0386): the resource is xmpp.js's tag, "/", the server's part.
	wantFrom := ""
	m, err := bob.message(t, func(f string) bool {
		if strings.HasPrefix(f, alice.String()+"/xmppjs/") {
			wantFrom = f
		}
		return wantFrom != ""
	}, 30*time.Second, node.done)
	if err != nil {
		t.Errorf("bob got no message from %s: %v", wantFrom, err)
	} else {
		if body := m.Child("jabber:client", "body").Text(); body != "hello from xmpp.js" || m.Attribute("type") != "chat" {
			t.Errorf("bob received %s, want a chat \"hello from xmpp.js\"", m)
		}
		bob.raw.Send(`<message type='chat' id='go-1' to='` + wantFrom + `'><body>hello from Go</body></message>`)
		m, err = bob.message(t, func(f string) bool { return f == wantFrom }, 20*time.Second, node.done)
		if err != nil {
			t.Errorf("bob got no second message from %s: %v", wantFrom, err)
		} else if body := m.Child("jabber:client", "body").Text(); body != "hello again from xmpp.js" {
			t.Errorf("bob received %s, want \"hello again from xmpp.js\"", m)
		}
	}

	var res xmppjsResult
	var line string
	for l := range node.lines {
		line = l
	}
	<-node.done
	if jerr := json.Unmarshal([]byte(line), &res); jerr != nil {
		t.Fatalf("xmpp.js script: %v / %v\nstdout: %s\nstderr: %s", node.err, jerr, line, node.stderr.String())
	}
	t.Logf("xmpp.js (%v):\n  %s", time.Since(start).Round(time.Millisecond), strings.Join(res.Events, "\n  "))
	if res.Error != "" || node.err != nil {
		t.Fatalf("xmpp.js script failed: %v: %s\nstderr: %s", node.err, res.Error, node.stderr.String())
	}
	t.Logf("xmpp.js: %s %s; stream management %+v", res.SASL, res.Mech, res.SM)
	if res.JID != wantFrom {
		t.Errorf("xmpp.js bound %q, want %q", res.JID, wantFrom)
	}
	if res.SASL != "sasl2" || res.Mech != "SCRAM-SHA-1" {
		t.Errorf("xmpp.js authenticated with %s %s, want sasl2 SCRAM-SHA-1 (its preferred profile and mechanism)", res.SASL, res.Mech)
	}
	if r := res.Received; r == nil || r.Body != "hello from Go" || r.From != bob.jid.String() || r.Type != "chat" || r.To != wantFrom {
		t.Errorf("xmpp.js received %+v, want chat \"hello from Go\" from %s to %s", r, bob.jid, wantFrom)
	}
	if !res.SM.EnableSent || !res.SM.EnableResume || !res.SM.Enabled || !res.SM.Resume || !res.SM.IDSet {
		t.Errorf("stream management: %+v, want <enable resume='true'/> answered by <enabled resume='true' id=…/>", res.SM)
	}
	if !res.Acked {
		t.Errorf("the server did not acknowledge xmpp.js's second message (XEP-0198 <a/>)")
	}
	if !res.ServerClosed {
		t.Errorf("xmpp.js sent <close/> and the server did not answer with its own (RFC 7395 §3.6)")
	}
}

type converseResult struct {
	Event         string                       `json:"event"`
	JID           string                       `json:"jid"`
	Transport     string                       `json:"transport"`
	Mech          string                       `json:"mech"`
	SMOffered     bool                         `json:"sm_offered"`
	SMEnable      bool                         `json:"sm_enable"`
	SMEnabled     bool                         `json:"sm_enabled"`
	SMResume      bool                         `json:"sm_resume"`
	UnreadBadge   string                       `json:"unread_badge"`
	ReceivedInDOM bool                         `json:"received_in_dom"`
	SentInDOM     bool                         `json:"sent_in_dom"`
	CloseSent     bool                         `json:"close_sent"`
	CloseReceived bool                         `json:"close_received"`
	LogoutMS      int                          `json:"logout_ms"`
	ChatHeading   string                       `json:"chat_heading"`
	ChatText      string                       `json:"chat_text"`
	Screenshot    string                       `json:"screenshot"`
	Blocked       []struct{ URL, Type string } `json:"blocked"`
	PageErrors    []string                     `json:"page_errors"`
	Events        []string                     `json:"events"`
	Error         string                       `json:"error"`
}

// TestWebConverse: Converse.js (its npm package's dist/, served from
// another origin by an httptest server) runs in Debian's headless
// Chromium, driven by playwright-core; Chromium trusts the server's
// certificate through an SPKI pin. Over WebSocket, then over BOSH
// (XEP-0124/0206), Converse logs in, shows a message from a Go client on
// TCP in its chat, sends one back typed into the chat's textarea, and a
// screenshot of the chat is taken into the test's temporary directory
// (and copied to web/screenshots/ when ODE_WEB_SCREENSHOTS is set); then
// Converse logs out.
// Converse (Strophe.js) takes SCRAM-SHA-512 and, over WebSocket only,
// enables stream management (its smacks plugin skips BOSH); in fullscreen
// a message from a contact not in the roster opens no chat, so the script
// clicks the contact shown with an unread message, as a user would.
func TestWebConverse(t *testing.T) {
	needNodeModules(t)
	needChromium(t)
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "alice", "wonderland")
	srv.AddUser(t, "bob", "builder pass")
	spki := spkiHash(t, srv.Config.TLS.Cert)
	site := converseSite(t)
	_, port, _ := strings.Cut(srv.HTTPAddr, ":")
	base := "localhost:" + port

	for _, tc := range []struct{ name, param, url string }{
		{"websocket", "websocket_url", "wss://" + base + "/xmpp-websocket"},
		{"bosh", "bosh_service_url", "https://" + base + "/http-bind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "bosh" {
				needBOSH(t, srv)
			}
			runConverse(t, srv, site, spki, tc.name, url.Values{
				tc.param:   {tc.url},
				"jid":      {"alice@" + srv.Domain},
				"password": {"wonderland"},
			})
		})
	}
}

func runConverse(t *testing.T, srv *xmpptest.Server, site, spki, name string, q url.Values) {
	bob := startGoPeer(t, srv, "bob", "builder pass")
	dir := t.TempDir()
	shot := filepath.Join(dir, "converse-"+name+".png")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	node := startNode(t, ctx, nil, "converse_chat.mjs",
		site+"/?"+q.Encode(), bob.jid.Bare().String(), spki, filepath.Join(dir, "profile"), shot)

	var online struct{ JID string }
	node.next(t, "online", &online)
	t.Logf("Converse online as %s after %v", online.JID, time.Since(start).Round(time.Millisecond))
	aliceJID := online.JID
	if !strings.HasPrefix(aliceJID, "alice@"+srv.Domain+"/") {
		t.Errorf("Converse bound %q, want alice@%s/…", aliceJID, srv.Domain)
	}
	bob.raw.Send(`<message type='chat' id='go-1' to='` + aliceJID + `'><body>hello from Go</body></message>`)
	// The script waits for this line before it closes the browser: Converse
	// shows a message before its transport has carried it.
	m, err := bob.message(t, func(f string) bool { return f == aliceJID }, 40*time.Second, node.done)
	switch {
	case err != nil:
		fmt.Fprintf(node.stdin, "bob got nothing: %v\n", err)
		t.Errorf("bob got no message from %s: %v", aliceJID, err)
	default:
		body := m.Child("jabber:client", "body").Text()
		fmt.Fprintf(node.stdin, "bob got %q\n", body)
		if body != "hello from Converse" || m.Attribute("type") != "chat" || m.Attribute("to") != bob.jid.Bare().String() {
			t.Errorf("bob received %s, want a chat \"hello from Converse\" to %s", m, bob.jid.Bare())
		}
	}

	var res converseResult
	node.next(t, "result", &res)
	<-node.done
	t.Logf("Converse (%s, %v):\n  %s", name, time.Since(start).Round(time.Millisecond), strings.Join(res.Events, "\n  "))
	if res.Error != "" || node.err != nil {
		t.Fatalf("Converse script failed: %v: %s\nstderr: %s", node.err, res.Error, node.stderr.String())
	}
	t.Logf("Converse over %s: %s; XEP-0198 offered=%v enable=%v enabled=%v resume=%v; chat %q: %q",
		res.Transport, res.Mech, res.SMOffered, res.SMEnable, res.SMEnabled, res.SMResume, res.ChatHeading, res.ChatText)
	if res.UnreadBadge != "1" {
		t.Errorf("the roster showed %q unread messages from bob, want 1", res.UnreadBadge)
	}
	if !res.ReceivedInDOM || !strings.Contains(res.ChatText, "hello from Go") {
		t.Errorf("the chat does not show \"hello from Go\": %q", res.ChatText)
	}
	if !res.SentInDOM || !strings.Contains(res.ChatText, "hello from Converse") {
		t.Errorf("the chat does not show \"hello from Converse\": %q", res.ChatText)
	}
	if res.Mech != "SCRAM-SHA-512" {
		t.Errorf("Converse authenticated with %q, want SCRAM-SHA-512 (Strophe's strongest that ode offers)", res.Mech)
	}
	if name == "websocket" && (!res.SMEnable || !res.SMEnabled || !res.SMResume) {
		t.Errorf("stream management over WebSocket: offered=%v enable=%v enabled=%v resume=%v, want Converse's <enable/> answered by <enabled resume='true'/>",
			res.SMOffered, res.SMEnable, res.SMEnabled, res.SMResume)
	}
	// Strophe closes the WebSocket right after its <close/>, so the
	// server's answer is not seen there (TestWebXMPPJS checks it).
	if !res.CloseSent || (name == "bosh" && !res.CloseReceived) {
		t.Errorf("logout (%d ms): the stream's end sent=%v, answered=%v; want the client's <close/> (RFC 7395 §3.6) or terminate <body/> answered by the server's (XEP-0124 §13)",
			res.LogoutMS, res.CloseSent, res.CloseReceived)
	}
	// Fullscreen's footer has sponsors' logos from conversejs.org: images
	// that are aborted with the rest; anything else would be a dependency.
	for _, b := range res.Blocked {
		if b.Type == "image" && strings.HasPrefix(b.URL, "https://conversejs.org/media/logos/") {
			t.Logf("aborted (decoration): %s", b.URL)
			continue
		}
		t.Errorf("Converse asked another host for a %s (aborted; it must work offline): %s", b.Type, b.URL)
	}
	if len(res.PageErrors) > 0 {
		t.Errorf("page errors: %q", res.PageErrors)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("screenshot %s: %v", shot, err)
	} else if os.Getenv(screenshotsEnv) != "" {
		copyScreenshot(t, shot)
	}
}

// needBOSH fails the test unless /http-bind answers a BOSH session
// creation request (XEP-0124 §7.1, XEP-0206 §4) with a <body/>.
func needBOSH(t *testing.T, srv *xmpptest.Server) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CA.Pool, ServerName: "localhost"}}}
	defer c.CloseIdleConnections()
	body := `<body content='text/xml; charset=utf-8' hold='1' rid='1573741820' to='` + srv.Domain +
		`' wait='5' ver='1.6' xml:lang='en' xmpp:version='1.0' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>`
	post := func(body string) (*http.Response, []byte, error) {
		resp, err := c.Post("https://"+srv.HTTPAddr+"/http-bind", "text/xml; charset=utf-8", strings.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return resp, b, err
	}
	resp, b, err := post(body)
	if err != nil {
		t.Fatalf("BOSH not mounted at /http-bind: POST of a session creation request: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "http://jabber.org/protocol/httpbind") {
		t.Fatalf("BOSH not mounted at /http-bind: a session creation request got %s: %.300s", resp.Status, b)
	}
	// End the probe's session (XEP-0124 §13) rather than leave it to
	// inactivity.
	var created struct {
		SID string `xml:"sid,attr"`
	}
	if err := xml.Unmarshal(b, &created); err != nil || created.SID == "" {
		t.Fatalf("BOSH session creation response without a sid (%v): %.300s", err, b)
	}
	if resp, b, err = post(`<body rid='1573741821' sid='` + created.SID + `' type='terminate' xmlns='http://jabber.org/protocol/httpbind'/>`); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("BOSH terminate: %v %v: %.300s", err, resp, b)
	}
}

// spkiHash is what Chromium's --ignore-certificate-errors-spki-list takes:
// the base64 SHA-256 of the certificate's SubjectPublicKeyInfo.
func spkiHash(t *testing.T, certFile string) string {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", certFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", certFile, err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// converseSite serves converse.html at / and Converse's dist/ at /dist/
// on a loopback port of its own: another origin than the XMPP server's.
func converseSite(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/dist/", http.StripPrefix("/dist/", http.FileServer(http.Dir(filepath.Join(webDir, "node_modules", "converse.js", "dist")))))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(webDir, "converse.html"))
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

func copyScreenshot(t *testing.T, shot string) {
	t.Helper()
	dst := filepath.Join(webDir, "screenshots", filepath.Base(shot))
	b, err := os.ReadFile(shot)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(dst), 0o755)
	}
	if err == nil {
		err = os.WriteFile(dst, b, 0o644)
	}
	if err != nil {
		t.Errorf("copy screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", dst)
}
