package adhoc_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/adhoc"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

const (
	adminPass = "admin pass"
	userPass  = "user pass"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// setup starts a server whose administrator is admin@ with the module's
// settings cfg (the defaults when nil), and logs in admin and bob.
func setup(t *testing.T, cfg *adhoc.Config) (srv *xmpptest.Server, admin, bob *client.Client) {
	t.Helper()
	srv = xmpptest.Start(t, func(c *config.Config) {
		c.Server.Admins = []string{"admin@" + c.Server.Domains[0]}
		if cfg != nil {
			if c.Modules.Settings == nil {
				c.Modules.Settings = map[string]any{}
			}
			c.Modules.Settings["adhoc"] = cfg
		}
	})
	admin = srv.Dial(t, srv.AddUser(t, "admin", adminPass), adminPass)
	bob = srv.Dial(t, srv.AddUser(t, "bob", userPass), userPass)
	return srv, admin, bob
}

// step sends one <command/> and returns the <command/> answered.
func step(t *testing.T, c *client.Client, to, node, sid, action string, form map[string][]string) (*xmlstream.Element, error) {
	t.Helper()
	cmd := xmlstream.NewElement(adhoc.NSCommands, "command").SetAttr("node", node)
	if sid != "" {
		cmd.SetAttr("sessionid", sid)
	}
	if action != "" {
		cmd.SetAttr("action", action)
	}
	if form != nil {
		x := xmlstream.NewElement(adhoc.NSData, "x").SetAttr("type", "submit")
		x.Append(field("FORM_TYPE", adhoc.NSAdmin))
		for k, vs := range form {
			x.Append(field(k, vs...))
		}
		cmd.Append(x)
	}
	res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQSet, to, "", "").Append(cmd))
	if err != nil {
		return nil, err
	}
	out := res.Child(adhoc.NSCommands, "command")
	if out == nil {
		t.Fatalf("no <command/> in %s", res)
	}
	if out.Attribute("node") != node {
		t.Errorf("answer for node %q, want %q", out.Attribute("node"), node)
	}
	return out, nil
}

func field(name string, values ...string) *xmlstream.Element {
	f := xmlstream.NewElement(adhoc.NSData, "field").SetAttr("var", name)
	for _, v := range values {
		f.Append(xmlstream.NewElement(adhoc.NSData, "value").AppendText(v))
	}
	return f
}

// runCommand executes node, checks the form it shows has the XEP-0133
// FORM_TYPE and the fields wanted, submits form with complete and
// returns the completed <command/>. A nil form: the command completes at
// once.
func runCommand(t *testing.T, c *client.Client, to, node string, form map[string][]string) *xmlstream.Element {
	t.Helper()
	res, err := step(t, c, to, node, "", adhoc.ActionExecute, nil)
	if err != nil {
		t.Fatalf("execute %s: %v", node, err)
	}
	if form == nil {
		if s := res.Attribute("status"); s != adhoc.StatusCompleted {
			t.Fatalf("execute %s: status %q: %s", node, s, res)
		}
		return res
	}
	if s := res.Attribute("status"); s != adhoc.StatusExecuting || res.Attribute("sessionid") == "" {
		t.Fatalf("execute %s: status %q: %s", node, s, res)
	}
	x := res.Child(adhoc.NSData, "x")
	if x == nil || x.Attribute("type") != "form" || values(x)["FORM_TYPE"][0] != adhoc.NSAdmin {
		t.Fatalf("execute %s: form %s", node, x)
	}
	for k := range form {
		if _, ok := values(x)[k]; !ok && !hasField(x, k) {
			t.Errorf("%s: the form has no field %s: %s", node, k, x)
		}
	}
	if a := res.Child(adhoc.NSCommands, "actions"); a == nil || a.Attribute("execute") != adhoc.ActionComplete || a.Child(adhoc.NSCommands, "complete") == nil {
		t.Errorf("%s: actions %s", node, a)
	}
	done, err := step(t, c, to, node, res.Attribute("sessionid"), adhoc.ActionComplete, form)
	if err != nil {
		t.Fatalf("complete %s: %v", node, err)
	}
	if s := done.Attribute("status"); s != adhoc.StatusCompleted || done.Attribute("sessionid") != res.Attribute("sessionid") {
		t.Fatalf("complete %s: %s", node, done)
	}
	return done
}

func hasField(x *xmlstream.Element, name string) bool {
	for _, f := range x.ChildrenNS(adhoc.NSData) {
		if f.Name.Local == "field" && f.Attribute("var") == name {
			return true
		}
	}
	return false
}

// values are the fields of a form, by var.
func values(x *xmlstream.Element) map[string][]string {
	out := map[string][]string{}
	if x == nil {
		return out
	}
	for _, f := range x.ChildrenNS(adhoc.NSData) {
		if f.Name.Local != "field" {
			continue
		}
		var vs []string
		for _, v := range f.ChildrenNS(adhoc.NSData) {
			if v.Name.Local == "value" {
				vs = append(vs, v.Text())
			}
		}
		out[f.Attribute("var")] = vs
	}
	return out
}

func note(t *testing.T, res *xmlstream.Element, typ string) string {
	t.Helper()
	n := res.Child(adhoc.NSCommands, "note")
	if n == nil || n.Attribute("type") != typ {
		t.Fatalf("want a note of type %s: %s", typ, res)
	}
	return n.Text()
}

func result(t *testing.T, res *xmlstream.Element) map[string][]string {
	t.Helper()
	x := res.Child(adhoc.NSData, "x")
	if x == nil || x.Attribute("type") != "result" {
		t.Fatalf("no result form: %s", res)
	}
	v := values(x)
	if !slices.Equal(v["FORM_TYPE"], []string{adhoc.NSAdmin}) {
		t.Errorf("FORM_TYPE %q", v["FORM_TYPE"])
	}
	return v
}

// wantError checks err is the stanza error cond with the XEP-0050
// application condition app (none when empty).
func wantError(t *testing.T, err error, cond stanza.Condition, app string) {
	t.Helper()
	var se *stanza.Error
	if !errors.As(err, &se) || se.Condition != cond {
		t.Fatalf("got %v, want %s", err, cond)
	}
	switch {
	case app == "" && se.App != nil:
		t.Errorf("%s: unexpected %s", cond, se.App)
	case app != "" && (se.App == nil || se.App.Name.Space != adhoc.NSCommands || se.App.Name.Local != app):
		t.Errorf("%s: application condition %v, want <%s xmlns='%s'/>", cond, se.App, app, adhoc.NSCommands)
	}
}

func node(name string) string { return adhoc.NSAdmin + "#" + name }

var allNodes = []string{"add-user", "delete-user", "end-user-session", "change-user-password", "get-user-roster",
	"get-registered-users-num", "get-online-users-num", "get-registered-users-list", "get-online-users-list", "announce"}

// TestDiscovery: the command list and the command nodes (XEP-0050 §2.2,
// §2.3) as an administrator and as anyone else sees them.
func TestDiscovery(t *testing.T) {
	srv, admin, bob := setup(t, nil)
	items := func(c *client.Client) []string {
		res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, srv.Domain, "", "").
			Append(xmlstream.NewElement(stanza.NSDiscoItems, "query").SetAttr("node", adhoc.NSCommands)))
		if err != nil {
			t.Fatal(err)
		}
		var nodes []string
		for _, it := range res.Child(stanza.NSDiscoItems, "query").ChildrenNS(stanza.NSDiscoItems) {
			if it.Attribute("jid") != srv.Domain || it.Attribute("name") == "" {
				t.Errorf("item %s", it)
			}
			nodes = append(nodes, it.Attribute("node"))
		}
		return nodes
	}
	got := items(admin)
	for _, n := range allNodes {
		if !slices.Contains(got, node(n)) {
			t.Errorf("the administrator's list lacks %s: %q", n, got)
		}
	}
	if got := items(bob); len(got) != 0 {
		t.Errorf("bob's list: %q, want none", got)
	}
	info := func(c *client.Client, n string) (*xmlstream.Element, error) {
		res, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, srv.Domain, "", "").
			Append(xmlstream.NewElement(stanza.NSDiscoInfo, "query").SetAttr("node", n)))
		if err != nil {
			return nil, err
		}
		return res.Child(stanza.NSDiscoInfo, "query"), nil
	}
	q, err := info(admin, node("add-user"))
	if err != nil {
		t.Fatal(err)
	}
	id := q.Child(stanza.NSDiscoInfo, "identity")
	if id == nil || id.Attribute("category") != "automation" || id.Attribute("type") != "command-node" || q.Attribute("node") != node("add-user") {
		t.Errorf("disco#info of add-user: %s", q)
	}
	var features []string
	for _, f := range q.ChildrenNS(stanza.NSDiscoInfo) {
		if f.Name.Local == "feature" {
			features = append(features, f.Attribute("var"))
		}
	}
	if !slices.Contains(features, adhoc.NSCommands) || !slices.Contains(features, adhoc.NSData) {
		t.Errorf("features of add-user: %q", features)
	}
	if _, err := info(bob, node("add-user")); !errors.Is(err, stanza.NewError(stanza.ItemNotFound, "")) {
		t.Errorf("bob's disco#info of add-user: %v, want item-not-found", err)
	}
	// The server advertises the feature.
	q, err = info(bob, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(q.String(), `var="`+adhoc.NSCommands+`"`) && !strings.Contains(q.String(), `var='`+adhoc.NSCommands+`'`) {
		t.Errorf("server disco#info lacks %s: %s", adhoc.NSCommands, q)
	}
}

// TestAdminCommands: an administrator runs every XEP-0133 command and
// sees its effect.
func TestAdminCommands(t *testing.T) {
	srv, admin, bob := setup(t, nil)
	d := srv.Domain
	carol := "carol@" + d
	available := func(c *client.Client) {
		if err := c.Send(stanza.NewPresence(stanza.NSClient, "", "", "", "")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.IQ(ctxT(t), stanza.NewIQ(stanza.NSClient, stanza.IQGet, "", "", "").Append(xmlstream.NewElement(stanza.NSPing, "ping"))); err != nil {
			t.Fatal(err)
		}
	}
	available(admin)
	available(bob)

	res := runCommand(t, admin, d, node("add-user"), map[string][]string{"accountjid": {carol}, "password": {"c1"}, "password-verify": {"c1"}})
	note(t, res, "info")
	cj := jid.MustParse(carol)
	srv.Dial(t, cj, "c1").Close()
	res = runCommand(t, admin, d, node("add-user"), map[string][]string{"accountjid": {carol}, "password": {"x"}, "password-verify": {"x"}})
	if n := note(t, res, "error"); !strings.Contains(n, "exists") {
		t.Errorf("adding carol again: %q", n)
	}
	res = runCommand(t, admin, d, node("add-user"), map[string][]string{"accountjid": {"dave@" + d}, "password": {"x"}, "password-verify": {"y"}})
	note(t, res, "error")
	res = runCommand(t, admin, d, node("add-user"), map[string][]string{"accountjid": {"dave@elsewhere.example"}, "password": {"x"}, "password-verify": {"x"}})
	note(t, res, "error")

	res = runCommand(t, admin, d, node("change-user-password"), map[string][]string{"accountjid": {carol}, "password": {"c2"}})
	note(t, res, "info")
	srv.Dial(t, cj, "c2").Close()

	if _, err := srv.Store().PutRosterItem(t.Context(), "carol", d, storage.RosterItem{Contact: "bob@" + d, Name: "Bob", Groups: []string{"Friends"}, Subscription: storage.SubBoth}, 0); err != nil {
		t.Fatal(err)
	}
	res = runCommand(t, admin, d, node("get-user-roster"), map[string][]string{"accountjid": {carol}})
	if v := result(t, res); !slices.Equal(v["accountjid"], []string{carol}) {
		t.Errorf("roster of %s: accountjid %q", carol, v["accountjid"])
	}
	q := res.Child(adhoc.NSData, "x").Child(stanza.NSRoster, "query")
	if q == nil || q.Child(stanza.NSRoster, "item") == nil || q.Child(stanza.NSRoster, "item").Attribute("jid") != "bob@"+d {
		t.Errorf("roster of carol: %s", res)
	}

	res = runCommand(t, admin, d, node("get-registered-users-num"), nil)
	if v := result(t, res); !slices.Equal(v["registeredusersnum"], []string{"3"}) {
		t.Errorf("registered users: %q, want 3", v["registeredusersnum"])
	}
	res = runCommand(t, admin, d, node("get-registered-users-list"), map[string][]string{"max_items": {"none"}})
	if v := result(t, res); !slices.Equal(v["registereduserjids"], []string{"admin@" + d, "bob@" + d, carol}) {
		t.Errorf("registered users: %q", v["registereduserjids"])
	}
	res = runCommand(t, admin, d, node("get-registered-users-list"), map[string][]string{"max_items": {"25"}})
	if v := result(t, res); len(v["registereduserjids"]) != 3 {
		t.Errorf("registered users (25 at most): %q", v["registereduserjids"])
	}
	res = runCommand(t, admin, d, node("get-online-users-num"), nil)
	if v := result(t, res); !slices.Equal(v["onlineusersnum"], []string{"2"}) {
		t.Errorf("online users: %q, want 2", v["onlineusersnum"])
	}
	res = runCommand(t, admin, d, node("get-online-users-list"), map[string][]string{"max_items": {"25"}})
	if v := result(t, res); !slices.Equal(v["onlineuserjids"], []string{"admin@" + d, "bob@" + d}) {
		t.Errorf("online users: %q", v["onlineuserjids"])
	}

	res = runCommand(t, admin, d, node("announce"), map[string][]string{"announcement": {"Server going down", "at noon"}})
	note(t, res, "info")
	for {
		m, err := bob.Recv(ctxT(t))
		if err != nil {
			t.Fatalf("bob waiting for the announcement: %v", err)
		}
		if m.Name.Local == "message" && m.Attribute("type") == "headline" {
			if b := m.Child(stanza.NSClient, "body"); b == nil || b.Text() != "Server going down\nat noon" || m.Attribute("from") != d {
				t.Errorf("announcement %s", m)
			}
			break
		}
	}

	res = runCommand(t, admin, d, node("end-user-session"), map[string][]string{"accountjids": {"bob@" + d}})
	if n := note(t, res, "info"); !strings.Contains(n, "1") {
		t.Errorf("end-user-session: %q", n)
	}
	xmpptest.WaitFor(t, 10*time.Second, "bob's stream to end", func() bool { return bob.Err() != nil })

	res = runCommand(t, admin, d, node("delete-user"), map[string][]string{"accountjids": {carol}})
	note(t, res, "info")
	if ok, err := srv.Store().AccountExists(t.Context(), "carol", d); err != nil || ok {
		t.Errorf("carol exists after delete-user: %v %v", ok, err)
	}
	res = runCommand(t, admin, d, node("delete-user"), map[string][]string{"accountjids": {carol}})
	note(t, res, "error")
}

// TestForbidden: someone who is not an administrator may not run the
// commands.
func TestForbidden(t *testing.T) {
	srv, _, bob := setup(t, nil)
	for _, n := range allNodes {
		_, err := step(t, bob, srv.Domain, node(n), "", adhoc.ActionExecute, nil)
		wantError(t, err, stanza.Forbidden, "")
	}
	if ok, _ := srv.Store().AccountExists(t.Context(), "mallory", srv.Domain); ok {
		t.Fatal("mallory exists")
	}
}

// TestFlow: the actions of XEP-0050 §4 and their errors (§4.6) over a
// session: actions the stage does not allow, unknown actions, an empty
// required field, a session the requester does not hold, cancel.
func TestFlow(t *testing.T) {
	srv, admin, _ := setup(t, nil)
	d := srv.Domain
	add := node("add-user")
	res, err := step(t, admin, d, add, "", "", nil) // no action: execute
	if err != nil {
		t.Fatal(err)
	}
	sid := res.Attribute("sessionid")
	if res.Attribute("status") != adhoc.StatusExecuting || sid == "" {
		t.Fatalf("execute: %s", res)
	}
	_, err = step(t, admin, d, add, sid, adhoc.ActionNext, nil)
	wantError(t, err, stanza.BadRequest, "bad-action")
	_, err = step(t, admin, d, add, sid, adhoc.ActionPrev, nil)
	wantError(t, err, stanza.BadRequest, "bad-action")
	_, err = step(t, admin, d, add, sid, "jump", nil)
	wantError(t, err, stanza.BadRequest, "malformed-action")
	_, err = step(t, admin, d, add, sid, adhoc.ActionComplete, map[string][]string{"accountjid": {"erin@" + d}})
	wantError(t, err, stanza.BadRequest, "bad-payload")
	_, err = step(t, admin, d, add, "no-such-session", adhoc.ActionComplete, nil)
	wantError(t, err, stanza.BadRequest, "bad-sessionid")
	_, err = step(t, admin, d, node("delete-user"), sid, adhoc.ActionComplete, nil)
	wantError(t, err, stanza.BadRequest, "bad-sessionid")
	_, err = step(t, admin, d, add, "", adhoc.ActionComplete, nil)
	wantError(t, err, stanza.BadRequest, "bad-sessionid")
	_, err = step(t, admin, d, adhoc.NSAdmin+"#no-such-command", "", adhoc.ActionExecute, nil)
	wantError(t, err, stanza.ItemNotFound, "")

	// Another resource of the administrator does not hold the session.
	other := srv.Dial(t, jid.MustParse("admin@"+d+"/other"), adminPass)
	_, err = step(t, other, d, add, sid, adhoc.ActionComplete, map[string][]string{"accountjid": {"erin@" + d}, "password": {"e"}, "password-verify": {"e"}})
	wantError(t, err, stanza.BadRequest, "bad-sessionid")

	// The session survived the errors: cancel it.
	res, err = step(t, admin, d, add, sid, adhoc.ActionCancel, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attribute("status") != adhoc.StatusCanceled || res.Attribute("sessionid") != sid {
		t.Errorf("cancel: %s", res)
	}
	_, err = step(t, admin, d, add, sid, adhoc.ActionComplete, map[string][]string{"accountjid": {"erin@" + d}, "password": {"e"}, "password-verify": {"e"}})
	wantError(t, err, stanza.BadRequest, "bad-sessionid")
	if ok, _ := srv.Store().AccountExists(t.Context(), "erin", d); ok {
		t.Error("erin was added by a canceled session")
	}

	// execute with the sessionid runs the stage's default action.
	res, err = step(t, admin, d, add, "", adhoc.ActionExecute, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err = step(t, admin, d, add, res.Attribute("sessionid"), adhoc.ActionExecute, map[string][]string{"accountjid": {"erin@" + d}, "password": {"e"}, "password-verify": {"e"}})
	if err != nil || res.Attribute("status") != adhoc.StatusCompleted {
		t.Fatalf("execute as the default action: %v %s", err, res)
	}
	if ok, _ := srv.Store().AccountExists(t.Context(), "erin", d); !ok {
		t.Error("erin was not added")
	}
}

// TestSessionExpired: a session that waited past the timeout (here a
// nanosecond: every session has expired by its next step) is
// session-expired (not-allowed), then unknown.
func TestSessionExpired(t *testing.T) {
	srv, admin, _ := setup(t, &adhoc.Config{MaxSessions: 5, Timeout: config.Duration(time.Nanosecond)})
	d, add := srv.Domain, node("add-user")
	form := map[string][]string{"accountjid": {"erin@" + d}, "password": {"e"}, "password-verify": {"e"}}
	res, err := step(t, admin, d, add, "", adhoc.ActionExecute, nil)
	if err != nil {
		t.Fatal(err)
	}
	sid := res.Attribute("sessionid")
	_, err = step(t, admin, d, add, sid, adhoc.ActionComplete, form)
	wantError(t, err, stanza.NotAllowed, "session-expired")
	_, err = step(t, admin, d, add, sid, adhoc.ActionComplete, form)
	wantError(t, err, stanza.BadRequest, "bad-sessionid")
	if ok, _ := srv.Store().AccountExists(t.Context(), "erin", d); ok {
		t.Error("an expired session added erin")
	}
}

// TestSessionLimit: past max_sessions, starting a session drops the
// account's oldest.
func TestSessionLimit(t *testing.T) {
	srv, admin, _ := setup(t, &adhoc.Config{MaxSessions: 2, Timeout: config.Duration(time.Hour)})
	d, add := srv.Domain, node("add-user")
	var sids []string
	for range 3 {
		res, err := step(t, admin, d, add, "", adhoc.ActionExecute, nil)
		if err != nil {
			t.Fatal(err)
		}
		sids = append(sids, res.Attribute("sessionid"))
	}
	_, err := step(t, admin, d, add, sids[0], adhoc.ActionCancel, nil)
	wantError(t, err, stanza.BadRequest, "bad-sessionid")
	for _, sid := range sids[1:] {
		if _, err := step(t, admin, d, add, sid, adhoc.ActionCancel, nil); err != nil {
			t.Errorf("cancel %s: %v", sid, err)
		}
	}
}
