package session_test

import (
	"testing"

	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/stanza"
)

// TestSharedBytes: a shared stanza's bytes for a recipient are exactly
// the serialisation of the stanza addressed to it, whatever the address
// holds, and for elements the fast path does not cover too.
func TestSharedBytes(t *testing.T) {
	for _, s := range []string{
		`<message from='room@conference.example.org/nick' type='groupchat' id='1'><body>hi &amp; &lt;bye&gt;</body></message>`,
		`<presence from='room@conference.example.org/n' to='stale@example.org/r'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>`,
		`<message/>`,
		`<message xmlns='jabber:server' from='a@b'><body>x</body></message>`,
	} {
		el := parse(t, s)
		attrs := len(el.Attr)
		sh := session.NewShared(el)
		for _, to := range []string{"a@example.org/r", `o'brien@example.org/"quoted" & <odd>`, ""} {
			want := string(sh.Addressed(to).AppendXML(nil, stanza.NSClient))
			if got := string(sh.AppendTo([]byte("pre:"), to)); got != "pre:"+want {
				t.Errorf("%s to %q:\n got %s\nwant pre:%s", s, to, got, want)
			}
			if got := stanza.To(sh.Addressed(to)); got != to {
				t.Errorf("Addressed(%q) is to %q", to, got)
			}
		}
		if len(el.Attr) != attrs || sh.El != el {
			t.Errorf("%s: NewShared changed the element", s)
		}
	}
}

// TestQueueDeliverShared: shared stanzas are queued, counted and resent
// like the others, and held while the client is inactive.
func TestQueueDeliverShared(t *testing.T) {
	w := &conn{}
	q, l := sm(t, w, 0, 100)
	msg := session.NewShared(parse(t, `<message from='r@c.x/n' type='groupchat' id='g1'><body>hi</body></message>`))
	pres := session.NewShared(parse(t, `<presence from='r@c.x/n' id='p1'/>`))
	if err := q.DeliverShared(msg, "a@x/1"); err != nil {
		t.Fatal(err)
	}
	q.SetInactive(true)
	if err := q.DeliverShared(pres, "a@x/1"); err != nil { // held
		t.Fatal(err)
	}
	if err := q.DeliverShared(msg, "a@x/1"); err != nil { // not held
		t.Fatal(err)
	}
	flush(t, l)
	es := w.elements(t)
	if got := ids(es); got != "enabled g1 g1 r" {
		t.Fatalf("written: %s", got)
	}
	for _, e := range es[1:3] {
		if stanza.To(e) != "a@x/1" || e.Child(stanza.NSClient, "body").Text() != "hi" {
			t.Errorf("written: %s", e)
		}
	}
	q.SetInactive(false)
	flush(t, l)
	es = w.elements(t)
	if got := ids(es); got != "p1" || stanza.To(es[0]) != "a@x/1" {
		t.Errorf("when active: %s", es)
	}
	if sent, _ := q.Counts(); sent != 3 {
		t.Errorf("counted %d stanzas, want 3", sent)
	}
	// Unacknowledged shared stanzas are resent like the others.
	if got := len(q.TakeUnacked()); got != 3 {
		t.Errorf("%d unacknowledged stanzas taken, want 3", got)
	}
	<-l.Close(nil)
}
