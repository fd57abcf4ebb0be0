package carbons_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules/carbons"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// fakeSession is a bound resource that keeps what it is given.
type fakeSession struct {
	full   jid.JID
	values session.Values
	mu     sync.Mutex
	got    []string
}

func (s *fakeSession) JID() jid.JID            { return s.full }
func (s *fakeSession) Presence() (int, bool)   { return 0, true }
func (s *fakeSession) Close(*stream.Error)     {}
func (s *fakeSession) LastActive() time.Time   { return time.Time{} }
func (s *fakeSession) Detached() bool          { return false }
func (s *fakeSession) Values() *session.Values { return &s.values }
func (s *fakeSession) Deliver(st *xmlstream.Element) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, st.String())
	return nil
}

func (s *fakeSession) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}

// fakeRemote keeps what the router sends to other domains.
type fakeRemote struct{ sent []*xmlstream.Element }

func (f *fakeRemote) Send(_ context.Context, st *xmlstream.Element) { f.sent = append(f.sent, st) }

func newRouter(t *testing.T) (*router.Router, *fakeRemote) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	r := router.New([]string{"montague.example"}, log)
	rm := &fakeRemote{}
	r.SetRemote(rm)
	m, err := carbons.Info.New(module.Deps{Router: r, Log: log, Now: time.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Register(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return r, rm
}

func bind(r *router.Router, full string) *fakeSession {
	s := &fakeSession{full: jid.MustParse(full)}
	r.Bind(s)
	return s
}

// TestNotFromHere: a remote entity may not switch carbons (§4.1:
// not-allowed).
func TestNotFromHere(t *testing.T) {
	r, rm := newRouter(t)
	r.Route(t.Context(), parse(t, "<iq type='set' id='e1' from='tybalt@capulet.example/home' to='montague.example'><enable xmlns='urn:xmpp:carbons:2'/></iq>"))
	if len(rm.sent) != 1 {
		t.Fatalf("sent to the remote: %v", rm.sent)
	}
	e := rm.sent[0]
	if stanza.Type(e) != "error" || stanza.To(e) != "tybalt@capulet.example/home" || e.Child(stanza.NSClient, "error").Child(stanza.NSStanzas, "not-allowed") == nil {
		t.Errorf("answer %s, want not-allowed", e)
	}
}

// TestSentMUCPrivate: a private message a local user sends to a room
// occupant (a full JID, possibly on another server) is copied (§6.1);
// a groupchat message to the room is not.
func TestSentMUCPrivate(t *testing.T) {
	r, rm := newRouter(t)
	home := bind(r, "romeo@montague.example/home")
	garden := bind(r, "romeo@montague.example/garden")
	r.RouteFrom(t.Context(), garden, parse(t, "<iq type='set' id='e1' from='romeo@montague.example/garden'><enable xmlns='urn:xmpp:carbons:2'/></iq>"))
	if got := garden.take(); len(got) != 1 || !carbons.Enabled(garden) {
		t.Fatalf("enable: %q", got)
	}
	pm := "<message type='chat' from='romeo@montague.example/home' to='chamber@conference.capulet.example/juliet'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>"
	r.RouteFrom(t.Context(), home, parse(t, pm))
	want := `<message xmlns="jabber:client" type="chat" from="romeo@montague.example" to="romeo@montague.example/garden"><sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client" type="chat" from="romeo@montague.example/home" to="chamber@conference.capulet.example/juliet"><body>psst</body><x xmlns="http://jabber.org/protocol/muc#user"/></message></forwarded></sent></message>`
	if got := garden.take(); len(got) != 1 || got[0] != want {
		t.Errorf("garden got %q, want\n%s", got, want)
	}
	if got := home.take(); len(got) != 0 {
		t.Errorf("the sender got %q", got)
	}
	r.RouteFrom(t.Context(), home, parse(t, "<message type='groupchat' from='romeo@montague.example/home' to='chamber@conference.capulet.example'><body>all</body></message>"))
	if got := garden.take(); len(got) != 0 {
		t.Errorf("groupchat copied: %q", got)
	}
	if len(rm.sent) != 2 {
		t.Errorf("%d messages went to the remote, want 2", len(rm.sent))
	}
}
