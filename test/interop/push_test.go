package interop_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/push"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
)

// The app server's node for the phone, and the secret of its
// publish-options, as the phone enables push with them.
const (
	pushNode   = "device-7f3a"
	pushSecret = "s3cret-9b1d"
)

// pushPublish is one publish the app server of slixmpp_push.py got:
// the IQ's addresses, the node, the summary form inside <notification/>
// and the publish-options form (var: values).
type pushPublish struct {
	From         string              `json:"from"`
	To           string              `json:"to"`
	ID           string              `json:"id"`
	Node         string              `json:"node"`
	Items        int                 `json:"items"`
	Notification bool                `json:"notification"`
	SummaryType  string              `json:"summary_type"`
	Summary      map[string][]string `json:"summary"`
	OptionsType  string              `json:"options_type"`
	Options      map[string][]string `json:"options"`
}

// pushResult is the last line slixmpp_push.py prints.
type pushResult struct {
	Version string   `json:"version"`
	Module  string   `json:"module"`
	Events  []string `json:"events"`
	Error   string   `json:"error"`
	// Enable and Disable are "result" or the error condition.
	Enable         string   `json:"enable"`
	Disable        string   `json:"disable"`
	DiscoPush      bool     `json:"disco_push"`
	DiscoFeatures  []string `json:"disco_features"`
	SessionStart   int      `json:"session_start"`
	SessionResumed int      `json:"session_resumed"`
	SMFailed       int      `json:"sm_failed"`
	Publishes      []pushPublish
	// PublishesAtDisable is how many publishes had come when the phone
	// disabled push.
	PublishesAtDisable int `json:"publishes_at_disable"`
	// PhoneBodies are the bodies the phone received, in order.
	PhoneBodies    []string `json:"phone_bodies"`
	MarkerReceived bool     `json:"marker_received"`
}

// TestSlixmppPush: XEP-0357 push notifications with slixmpp 1.8.3
// (Debian 12) and 1.10.0 (bookworm-backports) as the phone, a second
// slixmpp client as its app server and a third as a contact
// (slixmpp_push.py). The phone, with stream management and resumption,
// enables push with a publish-options secret, and its account's disco#info
// lists urn:xmpp:push:0. Its TCP connection dies; once the server detached
// the session, bob writes, and the app server gets exactly one publish:
// from the phone's bare JID, to its node, with the summary form
// (message-count, no body or sender by default) and the secret. The phone
// resumes and gets bob's message exactly once. It disables push and
// closes its stream; bob's next message is stored offline and wakes
// nothing. Throttling is off, so that a second notification would come
// at once rather than at the end of an interval the test does not wait
// for.
func TestSlixmppPush(t *testing.T) {
	for _, peer := range []slixmppPeer{slixmppDebian, slixmppBackports} {
		t.Run(peer.version, func(t *testing.T) {
			peer.need(t)
			runPush(t, peer)
		})
	}
}

func runPush(t *testing.T, peer slixmppPeer) {
	began := time.Now()
	t.Setenv("ODE_TEST_LOG", "1")
	logs := &serverLog{TB: t}
	cfg := *push.Info.Config.(*push.Config)
	cfg.Throttle = 0
	srv := xmpptest.Start(logs, func(c *config.Config) { c.Modules.Settings["push"] = &cfg })
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", strings.Join(logs.lines(), "\n"))
		}
	}()
	const password = "push pass"
	alice := srv.AddUser(t, "alice", password)
	srv.AddUser(t, "bob", password)
	app := srv.AddUser(t, "app", password)
	phone := mustJID(t, alice.String()+"/phone")
	appFull := mustJID(t, app.String()+"/appserver")
	host, port, _ := strings.Cut(srv.Addr, ":")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := peer.command(ctx, t, "slixmpp_push.py", host, port, srv.CAFile,
		phone.String(), appFull.String(), "bob@"+srv.Domain+"/pc", password, pushNode, pushSecret)
	s := startResumeScript(t, "slixmpp", cmd)
	noMessages := func(string) {}
	checkpoint := func(name string) {
		t.Helper()
		ev := s.await(name, 30*time.Second, func(ev resumeEvent) bool { return ev.Event == name }, noMessages)
		if ev.JID != phone.String() {
			t.Fatalf("the phone is %q, want %s", ev.JID, phone)
		}
	}
	registrations := func() []string {
		t.Helper()
		regs, err := srv.Store().PushRegistrations(t.Context(), alice.Local(), alice.DomainString())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range regs {
			out = append(out, r.Service+" "+r.Node+" "+string(r.Options))
		}
		return out
	}

	// 1. Enabled: the registration is stored, with the form.
	checkpoint("enabled")
	if regs := registrations(); len(regs) != 1 || !strings.HasPrefix(regs[0], appFull.String()+" "+pushNode+" ") || !strings.Contains(regs[0], pushSecret) {
		t.Errorf("registrations after <enable/>: %q, want one for %s, node %s, with the secret", regs, appFull, pushNode)
	}
	s.command("go")

	// 2. The connection is gone: the session waits for a resumption.
	checkpoint("dropped")
	xmpptest.WaitFor(t, 10*time.Second, "the server to detach the phone's session", func() bool {
		return slices.ContainsFunc(logs.records(), func(r map[string]string) bool {
			return r["msg"] == "session detached, waiting for resumption" && r["jid"] == phone.String()
		})
	})
	if sess := srv.Router().Session(phone); sess == nil || !sess.Detached() {
		t.Errorf("the phone's session is %v in the router, want it there, detached", sess)
	}
	s.command("go")

	// 3. Resumed. The script waits for the server's log line, which
	// comes once c2s counts the session as attached again: c2s resends
	// the queue before it clears the session's detached mark
	// (internal/c2s/sm.go, resume), and a message routed in between would
	// be taken for one to a detached session and wake the device again.
	checkpoint("resumed")
	xmpptest.WaitFor(t, 10*time.Second, "the server to resume the phone's session", func() bool {
		return slices.ContainsFunc(logs.records(), func(r map[string]string) bool {
			return r["msg"] == "session resumed" && r["jid"] == phone.String()
		})
	})
	s.command("go")

	// 4. Disabled: nothing stored any more.
	checkpoint("disabled")
	if regs := registrations(); len(regs) != 0 {
		t.Errorf("registrations after <disable/>: %q, want none", regs)
	}
	s.command("go")
	checkpoint("closed")
	xmpptest.WaitFor(t, 10*time.Second, "the server to end the phone's session", func() bool {
		return srv.Router().Session(phone) == nil
	})
	s.command("go")

	ev := s.await("the result", 30*time.Second, func(ev resumeEvent) bool { return ev.Event == "result" }, noMessages)
	var res pushResult
	if err := json.Unmarshal(ev.line, &res); err != nil {
		t.Fatalf("slixmpp: result: %v: %s", err, ev.line)
	}
	err := s.wait()
	t.Logf("slixmpp %s (%s) events:\n  %s", res.Version, res.Module, strings.Join(res.Events, "\n  "))
	if err != nil || res.Error != "" {
		t.Fatalf("slixmpp scenario stopped: %s (exit: %v)", res.Error, err)
	}
	if res.Version != peer.version {
		t.Errorf("the script loaded slixmpp %s from %s, want %s", res.Version, res.Module, peer.version)
	}
	checkPushResult(t, res, alice, appFull)

	// The server's side.
	n, err := srv.Store().CountOffline(t.Context(), alice.Local(), alice.DomainString())
	if err != nil || n != 1 {
		t.Errorf("%s has %d offline messages (%v), want 1: bob's after the phone closed its stream", alice, n, err)
	}
	var notified, detached, resumed int
	for _, r := range logs.records() {
		switch r["msg"] {
		case "push: notified":
			notified++
		case "session detached, waiting for resumption":
			detached++
		case "session resumed":
			resumed++
			t.Logf("server: session resumed, resent %s stanzas", r["resent"])
		}
		if r["level"] == "ERROR" || r["level"] == "WARN" {
			t.Errorf("server: %s", r["line"])
		}
	}
	if notified != 1 || detached != 1 || resumed != 1 {
		t.Errorf("server logged %d notifications answered, %d detachments, %d resumptions; want 1 of each", notified, detached, resumed)
	}
	t.Logf("slixmpp %s: %v", peer.version, time.Since(began).Round(time.Millisecond))
}

// checkPushResult checks what slixmpp_push.py saw.
func checkPushResult(t *testing.T, res pushResult, user, appServer jid.JID) {
	t.Helper()
	if res.Enable != "result" {
		t.Errorf("<enable/> answered %q, want a result", res.Enable)
	}
	if !res.DiscoPush {
		t.Errorf("disco#info of %s does not list %s: %q", user, push.NS, res.DiscoFeatures)
	}
	if res.SessionStart != 1 || res.SessionResumed != 1 || res.SMFailed != 0 {
		t.Errorf("the phone had %d session starts, %d resumptions, %d SM failures; want 1, 1, 0", res.SessionStart, res.SessionResumed, res.SMFailed)
	}
	if res.Disable != "result" {
		t.Errorf("<disable/> answered %q, want a result", res.Disable)
	}
	if !res.MarkerReceived {
		t.Error("the app server did not get bob's last message")
	}

	// Exactly one publish, for bob's message while the phone was away.
	if res.PublishesAtDisable != 1 || len(res.Publishes) != 1 {
		t.Fatalf("the app server got %d publishes before <disable/>, %d in all; want 1 and 1:\n%+v", res.PublishesAtDisable, len(res.Publishes), res.Publishes)
	}
	p := res.Publishes[0]
	if p.From != user.String() || p.To != appServer.String() || p.ID == "" {
		t.Errorf("publish from %q to %q, id %q; want from %s to %s with an id", p.From, p.To, p.ID, user, appServer)
	}
	if p.Node != pushNode || p.Items != 1 || !p.Notification {
		t.Errorf("publish to node %q of %d items, notification %v; want node %s, one item with a <notification/>", p.Node, p.Items, p.Notification, pushNode)
	}
	if p.SummaryType != "submit" || !slices.Equal(p.Summary["FORM_TYPE"], []string{push.NSSummary}) {
		t.Errorf("summary form of type %q with FORM_TYPE %q, want a submitted %s form", p.SummaryType, p.Summary["FORM_TYPE"], push.NSSummary)
	}
	if count := p.Summary["message-count"]; len(count) != 1 || atoi(count[0]) < 1 {
		t.Errorf("message-count %q, want one value of at least 1", count)
	}
	for _, private := range []string{"last-message-body", "last-message-sender"} {
		if v, ok := p.Summary[private]; ok {
			t.Errorf("the summary has %s %q, which the server sends only when configured to", private, v)
		}
	}
	if p.OptionsType != "submit" || !slices.Equal(p.Options["FORM_TYPE"], []string{push.NSPublishOptions}) || !slices.Equal(p.Options["secret"], []string{pushSecret}) {
		t.Errorf("publish-options of type %q: %q, want the phone's form (FORM_TYPE %s, secret %s)", p.OptionsType, p.Options, push.NSPublishOptions, pushSecret)
	}

	// Bob's messages: each once on the phone, none after it left.
	counts := make(map[string]int)
	for _, b := range res.PhoneBodies {
		counts[b]++
	}
	if counts["while you were away"] != 1 || counts["after the resumption"] != 1 || counts["stored offline"] != 0 {
		t.Errorf("the phone received %q; want bob's two messages once each, and not the offline one", res.PhoneBodies)
	}
}

func mustJID(t *testing.T, s string) jid.JID {
	t.Helper()
	j, err := jid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// atoi is strconv.Atoi, -1 for what is not a number.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
