package adhoc

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// TestStages: a command of two forms goes next, prev (back to the first
// form, with what was submitted there kept), next and complete, each
// stage offering only the actions it allows; the values of both stages
// reach Run. No XEP-0133 command has two forms, so the engine is driven
// directly here; the sockets are adhoc_test.go's.
func TestStages(t *testing.T) {
	m, err := New(module.Deps{Log: slog.New(slog.DiscardHandler)}, *Info.Config.(*Config))
	if err != nil {
		t.Fatal(err)
	}
	var got Values
	stage := func(name string) func(context.Context, *Call) (Form, error) {
		return func(_ context.Context, c *Call) (Form, error) {
			return Form{Title: name, Fields: []Field{{Var: name, Type: "text-single", Required: true, Values: c.Values[name]}}}, nil
		}
	}
	m.commands = []Command{{Node: "two", Name: "Two stages", Forms: []func(context.Context, *Call) (Form, error){stage("first"), stage("second")},
		Run: func(_ context.Context, c *Call) (Result, error) { got = c.Values; return infoNote("done"), nil }}}
	from := jid.MustParse("juliet@example.org/balcony")
	do := func(sid, action string, form map[string]string) (*xmlstream.Element, error) {
		cmd := xmlstream.NewElement(NSCommands, "command").SetAttr("node", "two")
		if sid != "" {
			cmd.SetAttr("sessionid", sid)
		}
		if action != "" {
			cmd.SetAttr("action", action)
		}
		if form != nil {
			x := xmlstream.NewElement(NSData, "x").SetAttr("type", "submit")
			for k, v := range form {
				x.Append(Field{Var: k, Values: []string{v}}.Element())
			}
			cmd.Append(x)
		}
		ev := &router.Event{From: from, To: jid.MustParse("example.org"), Class: router.ClassServer,
			El: stanza.NewIQ(stanza.NSClient, stanza.IQSet, "example.org", from.String(), "1").Append(cmd)}
		return m.command(t.Context(), ev)
	}
	// actions returns the stage's form title and its allowed actions.
	actions := func(res *xmlstream.Element) (title string, allowed []string, def string) {
		a := res.Child(NSCommands, "actions")
		for _, c := range a.ChildrenNS(NSCommands) {
			allowed = append(allowed, c.Name.Local)
		}
		return res.Child(NSData, "x").Child(NSData, "title").Text(), allowed, a.Attribute("execute")
	}
	res, err := do("", ActionExecute, nil)
	if err != nil {
		t.Fatal(err)
	}
	sid := res.Attribute("sessionid")
	if title, allowed, def := actions(res); title != "first" || len(allowed) != 1 || allowed[0] != ActionNext || def != ActionNext {
		t.Fatalf("stage 1: %s %q %s", title, allowed, def)
	}
	if _, err := do(sid, ActionComplete, map[string]string{"first": "1"}); !errors.Is(err, errBadAction()) {
		t.Errorf("complete at stage 1: %v, want bad-action", err)
	}
	res, err = do(sid, ActionNext, map[string]string{"first": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if title, allowed, def := actions(res); title != "second" || len(allowed) != 2 || def != ActionComplete {
		t.Fatalf("stage 2: %s %q %s", title, allowed, def)
	}
	res, err = do(sid, ActionPrev, nil)
	if err != nil {
		t.Fatal(err)
	}
	if title, _, _ := actions(res); title != "first" || res.Attribute("status") != StatusExecuting {
		t.Fatalf("prev: %s", res)
	}
	if v := res.Child(NSData, "x").Child(NSData, "field").Child(NSData, "value"); v == nil || v.Text() != "1" {
		t.Errorf("prev: the first stage's value is not kept: %s", res)
	}
	if _, err := do(sid, "", map[string]string{"first": "one"}); err != nil { // the default action: next
		t.Fatal(err)
	}
	res, err = do(sid, ActionComplete, map[string]string{"second": "two"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attribute("status") != StatusCompleted || got.Get("first") != "one" || got.Get("second") != "two" {
		t.Errorf("complete: %s, Run got %v", res, got)
	}
	if n := m.Sessions(); n != 0 {
		t.Errorf("%d sessions left", n)
	}
}

// FuzzCommand: any <command/> from an administrator gets an answer or a
// stanza error, never a panic, and leaves at most max_sessions sessions.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{
		`<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#add-user' action='execute'/>`,
		`<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#get-online-users-num'/>`,
		`<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#announce' sessionid='x' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='announcement'><value>hi</value></field></x></command>`,
		`<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#add-user' action='prev'/>`,
		`<command xmlns='http://jabber.org/protocol/commands' node='nope' action='bogus'/>`,
	} {
		f.Add(s)
	}
	m, err := New(module.Deps{Log: slog.New(slog.DiscardHandler), IsAdmin: func(jid.JID) bool { return true }}, Config{MaxSessions: 3, Timeout: Info.Config.(*Config).Timeout})
	if err != nil {
		f.Fatal(err)
	}
	// Only the commands whose forms need no router: the engine is what is
	// fuzzed.
	m.commands = slices.DeleteFunc(m.commands, func(c Command) bool { return len(c.Forms) == 0 })
	for i := range m.commands {
		m.commands[i].Run = func(context.Context, *Call) (Result, error) { return infoNote("done"), nil }
	}
	from := jid.MustParse("admin@example.org/fuzz")
	f.Fuzz(func(t *testing.T, s string) {
		el, err := xmlstream.ParseElement([]byte(s), NSCommands)
		if err != nil || el.Name.Space != NSCommands || el.Name.Local != "command" {
			return
		}
		ev := &router.Event{From: from, To: jid.MustParse("example.org"), Class: router.ClassServer, Origin: fakeSession{},
			El: stanza.NewIQ(stanza.NSClient, stanza.IQSet, "example.org", from.String(), "1").Append(el)}
		res, err := m.command(t.Context(), ev)
		var se *stanza.Error
		if (res == nil) == (err == nil) || (err != nil && !errors.As(err, &se)) {
			t.Fatalf("%s: %v, %v", s, res, err)
		}
		if n := m.Sessions(); n > 3 {
			t.Fatalf("%d sessions", n)
		}
	})
}

// fakeSession stands for the administrator's client session: the engine
// only checks that there is one.
type fakeSession struct{ router.Session }
