package interop_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// resumeMessages is how many numbered messages the resumption tests send
// to the client: before it loses its connection, while the connection
// dies, while it is gone, and after it resumed.
const resumeMessages = 50

// The phases of the resumption scenario: messages 1..resumeBeforeDrop are
// received before the drop, the next ones up to resumeInFlight are sent
// just as it happens, the next ones up to resumeDetached while the session
// is detached, and the rest after the resumption.
const (
	resumeBeforeDrop = 20
	resumeInFlight   = 25
	resumeDetached   = 40
)

// smElement is a stream-management element a script saw on the wire.
type smElement struct {
	Tag   string            `json:"tag"`
	Attrs map[string]string `json:"attrs"`
}

func (e smElement) String() string {
	var b strings.Builder
	b.WriteString("<" + e.Tag)
	for _, k := range slices.Sorted(maps.Keys(e.Attrs)) {
		fmt.Fprintf(&b, " %s='%s'", k, e.Attrs[k])
	}
	b.WriteString("/>")
	return b.String()
}

// resumeResult is the last line a resumption script prints.
type resumeResult struct {
	Version string `json:"version"`
	Module  string `json:"module"`
	Python  string `json:"python"`
	// SMSent are the <enable/>s and <resume/>s sent, SMReceived the
	// <enabled/>s, <resumed/>s and <failed/>s received.
	SMSent     []smElement `json:"sm_sent"`
	SMReceived []smElement `json:"sm_received"`
	// Acknowledgement requests and answers, counted.
	RReceived int     `json:"r_received"`
	AReceived int     `json:"a_received"`
	RSent     int     `json:"r_sent"`
	ASent     int     `json:"a_sent"`
	ASentLast *string `json:"a_sent_last"`
	// HandledAtDrop and SentAtDrop are the client's counts of stanzas
	// received and sent since <enable/> when the connection died,
	// UnreadAtDrop the bytes it left unread in the socket.
	HandledAtDrop *int `json:"handled_at_drop"`
	SentAtDrop    *int `json:"sent_at_drop"`
	UnreadAtDrop  *int `json:"unread_at_drop"`
	// Events: a fresh session (bind), a resumption, SM enabled or failed.
	SessionStart   int      `json:"session_start"`
	SessionResumed int      `json:"session_resumed"`
	SMEnabled      int      `json:"sm_enabled"`
	SMFailed       int      `json:"sm_failed"`
	Disconnected   []string `json:"disconnected"`
	// Bodies are the bodies of the messages received, in order.
	Bodies []string `json:"bodies"`
	// JIDs are the JIDs bound (one per fresh session).
	JIDs  []string `json:"jids"`
	Notes []string `json:"notes"`
	Error string   `json:"error"`
}

// resumeEvent is one line a resumption script prints.
type resumeEvent struct {
	Event  string `json:"event"`
	JID    string `json:"jid"`
	Body   string `json:"body"`
	Reason string `json:"reason"`
	XML    string `json:"xml"`
	Unread int    `json:"unread"`
	line   []byte
}

// resumeScript is a running resumption script: it takes commands on
// stdin ("pause", "drop", "reconnect", "done") and prints events on stdout,
// one JSON object a line, the last one its resumeResult.
type resumeScript struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan resumeEvent
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startResumeScript starts cmd; it is killed, if still running, when the
// test ends.
func startResumeScript(t *testing.T, name string, cmd *exec.Cmd) *resumeScript {
	t.Helper()
	s := &resumeScript{t: t, name: name, cmd: cmd, events: make(chan resumeEvent, 256), stderr: &lockedBuffer{}}
	cmd.Stderr = s.stderr
	var err error
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			ev := resumeEvent{line: append([]byte(nil), sc.Bytes()...)}
			if err := json.Unmarshal(ev.line, &ev); err != nil {
				ev.Event = "junk"
			}
			s.events <- ev
		}
	}()
	t.Cleanup(func() {
		_ = s.stdin.Close()
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			s.wait()
		}
		if t.Failed() {
			t.Logf("%s's stderr:\n%s", name, s.stderr.String())
		}
	})
	return s
}

// command writes one command line to the script.
func (s *resumeScript) command(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		s.t.Fatalf("%s: command %q: %v", s.name, line, err)
	}
}

// await reads events until one that want accepts, and returns it. Every
// message is passed to onMessage; a fresh session start, an SM failure,
// the result or a line that is not JSON on the way fails the test.
func (s *resumeScript) await(what string, timeout time.Duration, want func(resumeEvent) bool, onMessage func(string)) resumeEvent {
	s.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatalf("%s ended while waiting for %s", s.name, what)
			}
			if ev.Event == "message" {
				onMessage(ev.Body)
			}
			if want(ev) {
				return ev
			}
			switch ev.Event {
			case "message":
			case "result":
				s.t.Fatalf("%s ended while waiting for %s: %s", s.name, what, ev.line)
			case "session_start", "sm_failed", "junk":
				s.t.Fatalf("%s, while waiting for %s: %s", s.name, what, ev.line)
			default:
				s.t.Logf("%s: %s", s.name, ev.line)
			}
		case <-timer.C:
			s.t.Fatalf("%s: timed out waiting for %s", s.name, what)
		}
	}
}

// wait reads what is left of the output and waits for the process.
func (s *resumeScript) wait() error {
	for range s.events {
	}
	return s.cmd.Wait()
}

// result reads the last line and waits for the process.
func (s *resumeScript) result(onMessage func(string)) resumeResult {
	s.t.Helper()
	ev := s.await("its result", 30*time.Second, func(ev resumeEvent) bool { return ev.Event == "result" }, onMessage)
	var res resumeResult
	if err := json.Unmarshal(ev.line, &res); err != nil {
		s.t.Fatalf("%s: result: %v: %s", s.name, err, ev.line)
	}
	err := s.wait()
	if err != nil || res.Error != "" {
		s.t.Fatalf("%s failed: %v: %s", s.name, err, res.Error)
	}
	return res
}

// observer is a second resource of the user, logged in with the Go client
// and available: it sends the numbered messages to the resource that
// resumes, and receives the messages and presence that resource sends.
type observer struct {
	c  *client.Client
	in chan *xmlstream.Element
	// presence has the types of the presence received from the resource
	// ("available" for none).
	presence []string
}

func startObserver(t *testing.T, srv *xmpptest.Server, user jid.JID, password string) (*observer, jid.JID) {
	t.Helper()
	full, err := user.WithResource("observer")
	if err != nil {
		t.Fatal(err)
	}
	o := &observer{c: srv.Dial(t, full, password), in: make(chan *xmlstream.Element, 1024)}
	go func() {
		defer close(o.in)
		for {
			e, err := o.c.Recv(context.Background())
			if err != nil {
				return
			}
			o.in <- e
		}
	}()
	if err := o.c.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
		t.Fatal(err)
	}
	return o, full
}

// send sends messages from..to (bodies "from".."to") to full.
func (o *observer) send(t *testing.T, full jid.JID, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		m := stanza.NewMessage(stanza.NSClient, "chat", full.String(), "", "m"+strconv.Itoa(i))
		m.Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(strconv.Itoa(i)))
		if err := o.c.Send(m); err != nil {
			t.Fatal(err)
		}
	}
}

// receive reads until the messages with bodies want have come from full,
// in that order, noting presence from full on the way.
func (o *observer) receive(t *testing.T, full jid.JID, want ...string) {
	t.Helper()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for len(want) > 0 {
		select {
		case e, ok := <-o.in:
			if !ok {
				t.Fatalf("observer: stream ended before %q", want)
			}
			if stanza.From(e) != full.String() {
				continue
			}
			switch e.Name.Local {
			case "presence":
				typ := stanza.Type(e)
				if typ == "" {
					typ = "available"
				}
				o.presence = append(o.presence, typ)
			case "message":
				b := e.Child(stanza.NSClient, "body")
				if b == nil || b.Text() != want[0] {
					t.Fatalf("observer: received %s from %s, want body %q", e, full, want[0])
				}
				want = want[1:]
			}
		case <-timer.C:
			t.Fatalf("observer: timed out waiting for %q", want)
		}
	}
}

// resumeClient starts a resumption script for one client library.
// The script logs in as user and sends its messages to observer.
type resumeClient func(t *testing.T, srv *xmpptest.Server, user jid.JID, password string, observer jid.JID) *resumeScript

// runResume plays the scenario with one client: it logs in (the library
// enables stream management with resumption by itself), receives
// messages, loses its TCP connection, stays away while more messages are
// sent, comes back with <resume/> and receives the rest. It checks that
// each message arrived exactly once, that the session was resumed (on the
// client's side: no second session start; on the server's: "session
// resumed" logged, the session stayed in the router while detached, no
// unavailable presence broadcast) and returns what the script reported.
func runResume(t *testing.T, start resumeClient) resumeResult {
	began := time.Now()
	t.Setenv("ODE_TEST_LOG", "1")
	logs := &serverLog{TB: t}
	srv := xmpptest.Start(logs, nil)
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", strings.Join(logs.lines(), "\n"))
		}
	}()
	alice := srv.AddUser(t, "alice", "wonderland")
	obs, obsJID := startObserver(t, srv, alice, "wonderland")

	s := start(t, srv, alice, "wonderland", obsJID)
	received := make(map[string]int) // body: times, from the events
	onMessage := func(body string) { received[body]++ }
	gotMessage := func(body string) func(resumeEvent) bool {
		return func(ev resumeEvent) bool { return ev.Event == "message" && ev.Body == body }
	}
	is := func(event string) func(resumeEvent) bool {
		return func(ev resumeEvent) bool { return ev.Event == event }
	}
	ready := s.await("ready", 60*time.Second, is("ready"), onMessage)
	full, err := jid.Parse(ready.JID)
	if err != nil || !full.Bare().Equal(alice) || full.Resource() == "" {
		t.Fatalf("%s bound %q (%v), want %s/…", s.name, ready.JID, err, alice)
	}
	t.Logf("%s: session started as %s with stream management", s.name, full)
	// The client's messages, which the server counts in <resumed h/>.
	obs.receive(t, full, "c1", "c2", "c3")

	// Received before the connection dies.
	obs.send(t, full, 1, resumeBeforeDrop)
	s.await("message "+strconv.Itoa(resumeBeforeDrop), 30*time.Second, gotMessage(strconv.Itoa(resumeBeforeDrop)), onMessage)

	// Delivered to the socket but never read, as the connection dies.
	s.command("pause")
	s.await("paused", 10*time.Second, is("paused"), onMessage)
	obs.send(t, full, resumeBeforeDrop+1, resumeInFlight)
	s.command("drop")
	dropped := s.await("dropped", 30*time.Second, is("dropped"), onMessage)
	if n := sumCounts(received); n != resumeBeforeDrop {
		t.Errorf("%s had received %d messages when its connection died, want %d (it stopped reading after message %d)", s.name, n, resumeBeforeDrop, resumeBeforeDrop)
	}
	disc := s.await("disconnected", 30*time.Second, is("disconnected"), onMessage)
	t.Logf("%s: connection dropped with %d bytes never read; the client saw it lost (%s)", s.name, dropped.Unread, disc.Reason)
	detached := func(r map[string]string) bool {
		return r["msg"] == "session detached, waiting for resumption" && r["jid"] == full.String()
	}
	xmpptest.WaitFor(t, 30*time.Second, "the server to detach the session", func() bool {
		for _, r := range logs.records() {
			if detached(r) {
				return true
			}
		}
		return false
	})
	if srv.Router().Session(full) == nil {
		t.Errorf("the detached session %s is not in the router", full)
	}

	// Sent while the session is detached.
	obs.send(t, full, resumeInFlight+1, resumeDetached)
	s.command("reconnect")
	s.await("resumed", 60*time.Second, is("resumed"), onMessage)
	if srv.Router().Session(full) == nil {
		t.Errorf("the resumed session %s is not in the router", full)
	}

	// After the resumption.
	obs.send(t, full, resumeDetached+1, resumeMessages)
	last := strconv.Itoa(resumeMessages)
	s.await("message "+last, 30*time.Second, gotMessage(last), onMessage)

	// The server's side, before the client closes its stream.
	var resumed, detachedN int
	wantResent := strconv.Itoa(resumeDetached - resumeBeforeDrop)
	for _, r := range logs.records() {
		switch {
		case detached(r):
			detachedN++
		case r["msg"] == "session resumed":
			resumed++
			if r["jid"] != full.String() {
				t.Errorf("server resumed %q, want %s", r["jid"], full)
			}
			t.Logf("server: session resumed, resent %s unacknowledged stanzas", r["resent"])
			if r["resent"] != wantResent {
				t.Errorf("server resent %s stanzas, want %s (messages %d to %d)", r["resent"], wantResent, resumeBeforeDrop+1, resumeDetached)
			}
		case r["msg"] == "session ended":
			t.Errorf("server ended a session: %s", r["line"])
		}
		if r["level"] == "ERROR" || r["level"] == "WARN" {
			t.Errorf("server: %s", r["line"])
		}
	}
	if detachedN != 1 || resumed != 1 {
		t.Errorf("server logged %d detachments and %d resumptions of %s, want 1 and 1", detachedN, resumed, full)
	}

	s.command("done")
	obs.receive(t, full, "done")
	presence := obs.presence
	if len(presence) == 0 || presence[0] != "available" {
		t.Errorf("observer received presence %q from %s, want its initial presence first", presence, full)
	}
	for _, typ := range presence {
		if typ == "unavailable" {
			t.Errorf("observer received unavailable presence from %s before the client closed its stream (all: %q)", full, presence)
		}
	}
	t.Logf("observer: presence from %s before \"done\": %q", full, presence)

	res := s.result(onMessage)
	t.Logf("%s %s (%s, Python %s)", s.name, res.Version, res.Module, res.Python)
	for _, e := range res.SMSent {
		t.Logf("  sent %s", e)
	}
	for _, e := range res.SMReceived {
		t.Logf("  received %s", e)
	}
	t.Logf("  <r/>: %d received, %d sent; <a/>: %d sent (last h=%v), %d received", res.RReceived, res.RSent, res.ASent, deref(res.ASentLast), res.AReceived)
	for _, n := range res.Notes {
		t.Logf("  note: %s", n)
	}

	// The client's side: one session, resumed once.
	if res.SessionStart != 1 || res.SessionResumed != 1 || res.SMFailed != 0 {
		t.Errorf("%s: %d session starts, %d resumptions, %d SM failures; want 1, 1, 0", s.name, res.SessionStart, res.SessionResumed, res.SMFailed)
	}
	if len(res.JIDs) != 1 || res.JIDs[0] != full.String() {
		t.Errorf("%s bound %q, want only %s", s.name, res.JIDs, full)
	}
	checkResumeWire(t, res)
	// <resume h/> is what the client counted when it lost the connection
	// (stanzas received since its <enable/>); <resumed h/> what it had sent
	// since then (the server handled them all).
	t.Logf("  when the connection died: %s stanzas received, %s sent", derefInt(res.HandledAtDrop), derefInt(res.SentAtDrop))
	if len(res.SMSent) == 2 && res.SMSent[1].Attrs["h"] != derefInt(res.HandledAtDrop) {
		t.Errorf("%s sent %v, but had handled %s stanzas", s.name, res.SMSent[1], derefInt(res.HandledAtDrop))
	}
	if len(res.SMReceived) == 2 && res.SMReceived[1].Attrs["h"] != derefInt(res.SentAtDrop) {
		t.Errorf("server sent %v, but %s had sent %s stanzas since <enable/>", res.SMReceived[1], s.name, derefInt(res.SentAtDrop))
	}

	// Every message exactly once, as the script counted them.
	counts := make(map[string]int)
	for _, b := range res.Bodies {
		counts[b]++
	}
	var missing, twice []string
	for i := 1; i <= resumeMessages; i++ {
		n := strconv.Itoa(i)
		switch {
		case counts[n] == 0:
			missing = append(missing, n)
		case counts[n] > 1:
			twice = append(twice, fmt.Sprintf("%s×%d", n, counts[n]))
		}
		delete(counts, n)
	}
	if len(missing) > 0 || len(twice) > 0 || len(counts) > 0 {
		t.Errorf("%s received %d messages: missing %v, more than once %v, unexpected %v\nin order: %v", s.name, len(res.Bodies), missing, twice, counts, res.Bodies)
	} else {
		t.Logf("%s received each of the %d messages exactly once", s.name, resumeMessages)
	}
	if len(res.Bodies) != sumCounts(received) {
		t.Errorf("%s reported %d messages in its result, %d as events", s.name, len(res.Bodies), sumCounts(received))
	}
	t.Logf("%s: %v", s.name, time.Since(began).Round(time.Millisecond))
	return res
}

// checkResumeWire checks the stream-management elements: an <enable/>
// asking for resumption, answered with a resumable <enabled/>, then a
// <resume/> of that id answered with <resumed/>.
func checkResumeWire(t *testing.T, res resumeResult) {
	t.Helper()
	if len(res.SMSent) != 2 || res.SMSent[0].Tag != "enable" || res.SMSent[1].Tag != "resume" {
		t.Fatalf("stream management sent: %v, want <enable/> then <resume/>", res.SMSent)
	}
	if len(res.SMReceived) != 2 || res.SMReceived[0].Tag != "enabled" || res.SMReceived[1].Tag != "resumed" {
		t.Fatalf("stream management received: %v, want <enabled/> then <resumed/>", res.SMReceived)
	}
	enable, resume := res.SMSent[0].Attrs, res.SMSent[1].Attrs
	enabled, resumed := res.SMReceived[0].Attrs, res.SMReceived[1].Attrs
	if r := enable["resume"]; r != "true" && r != "1" {
		t.Errorf("<enable/> without resume='true': %v", res.SMSent[0])
	}
	if enabled["id"] == "" || enabled["resume"] != "true" || enabled["max"] == "" {
		t.Errorf("<enabled/> is not resumable: %v", res.SMReceived[0])
	}
	if resume["previd"] != enabled["id"] || resumed["previd"] != enabled["id"] {
		t.Errorf("<resume/> %v and <resumed/> %v, want previd=%q", res.SMSent[1], res.SMReceived[1], enabled["id"])
	}
	if resume["h"] == "" || resumed["h"] == "" {
		t.Errorf("<resume/> %v or <resumed/> %v without h", res.SMSent[1], res.SMReceived[1])
	}
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

func derefInt(p *int) string {
	if p == nil {
		return "none"
	}
	return strconv.Itoa(*p)
}

func deref(p *string) string {
	if p == nil {
		return "none"
	}
	return *p
}

// slixmppResume runs slixmpp_resume.py with this slixmpp.
func (p slixmppPeer) slixmppResume(t *testing.T, srv *xmpptest.Server, user jid.JID, password string, observer jid.JID) *resumeScript {
	t.Helper()
	p.need(t)
	host, port, _ := strings.Cut(srv.Addr, ":")
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	t.Cleanup(cancel)
	cmd := p.command(ctx, t, "slixmpp_resume.py", host, port, srv.CAFile, user.String(), password, observer.String())
	return startResumeScript(t, "slixmpp", cmd)
}

// TestSlixmppResume: slixmpp 1.8.3 (Debian 12) and 1.10.0
// (bookworm-backports) with their xep_0198 plugin as it comes, which
// enables stream management with resumption after binding, lose their TCP
// connection (the socket under TLS is shut down: no stream close, no TLS
// close_notify), connect again as an application does on "disconnected",
// and resume: the plugin sends <resume/> after SASL, instead of binding.
// Each of 50 messages, sent before, during and after the outage, arrives
// exactly once; the server logged one resumption and broadcast no
// unavailable presence.
func TestSlixmppResume(t *testing.T) {
	for _, peer := range []slixmppPeer{slixmppDebian, slixmppBackports} {
		t.Run(peer.version, func(t *testing.T) {
			res := runResume(t, peer.slixmppResume)
			if res.Version != peer.version {
				t.Errorf("the script loaded slixmpp %s from %s, want %s", res.Version, res.Module, peer.version)
			}
		})
	}
}

// aioxmppVersion is Debian 12's python3-aioxmpp.
const aioxmppVersion = "0.13.3"

// needAioxmpp fails the test, saying how to install it, unless python
// loads aioxmpp 0.13.3.
func needAioxmpp(t *testing.T) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), python, "-c", "import aioxmpp; print(aioxmpp.__version__)").CombinedOutput()
	if version := strings.TrimSpace(string(out)); err != nil || version != aioxmppVersion {
		t.Fatalf("aioxmpp %s (Debian 12's python3-aioxmpp) is missing: %s loads %q (%v)\nrun `make peers` (bash test/interop/install-peers.sh)", aioxmppVersion, python, out, err)
	}
}

// aioxmppResume runs aioxmpp_resume.py.
func aioxmppResume(t *testing.T, srv *xmpptest.Server, user jid.JID, password string, observer jid.JID) *resumeScript {
	t.Helper()
	needAioxmpp(t)
	host, port, _ := strings.Cut(srv.Addr, ":")
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, python, "aioxmpp_resume.py", host, port, srv.CAFile, user.String(), password, observer.String())
	return startResumeScript(t, "aioxmpp", cmd)
}

// TestAioxmppResume: aioxmpp 0.13.3 (Debian 12), whose Client enables
// stream management with resumption by itself and reconnects by itself
// when its stream fails, loses its TCP connection the same way as in
// TestSlixmppResume and resumes; the same checks.
func TestAioxmppResume(t *testing.T) {
	res := runResume(t, aioxmppResume)
	if res.Version != aioxmppVersion {
		t.Errorf("the script loaded aioxmpp %s from %s, want %s", res.Version, res.Module, aioxmppVersion)
	}
}
