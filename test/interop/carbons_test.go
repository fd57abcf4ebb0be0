package interop_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// carbonsMessage is a message a client of slixmpp_carbons.py received.
type carbonsMessage struct {
	From, To, Type, Body string
	Private              bool
}

// carbonsGot is one entry of a client's list: a plain message, or a
// carbon ("received", "sent") with its wrapper's addresses and the
// forwarded message.
type carbonsGot struct {
	Kind string `json:"kind"`
	carbonsMessage
	OuterFrom string         `json:"outer_from"`
	OuterTo   string         `json:"outer_to"`
	OuterType string         `json:"outer_type"`
	Forwarded carbonsMessage `json:"forwarded"`
}

type carbonsResult struct {
	Version      string                  `json:"version"`
	Events       []string                `json:"events"`
	Error        string                  `json:"error"`
	JIDs         map[string]string       `json:"jids"`
	DiscoCarbons bool                    `json:"disco_carbons"`
	Got          map[string][]carbonsGot `json:"got"`
}

// TestSlixmppCarbons: two slixmpp sessions of one account enable
// XEP-0280 carbons with slixmpp's xep_0280 plugin; a third client writes
// to one of them, and each writes to it (slixmpp_carbons.py). Each
// session must get exactly the carbons of what the other received and
// sent, with the account's bare JID as 'from', and none of a
// <private/> message. Runs with Debian 12's slixmpp 1.8.3 and
// bookworm-backports' 1.10.0.
func TestSlixmppCarbons(t *testing.T) {
	for _, peer := range []slixmppPeer{slixmppDebian, slixmppBackports} {
		t.Run(peer.version, func(t *testing.T) {
			peer.need(t)
			srv := xmpptest.Start(t, nil)
			alice := srv.AddUser(t, "alice", "wonderland")
			bob := srv.AddUser(t, "bob", "builder pass")
			host, port, _ := strings.Cut(srv.Addr, ":")
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			cmd := peer.command(ctx, t, "slixmpp_carbons.py", host, port, srv.CAFile, srv.Domain,
				alice.String(), "wonderland", bob.String(), "builder pass")
			var res carbonsResult
			peer.scenario(t, cmd, &res)
			if !res.DiscoCarbons {
				t.Errorf("disco#info of %s does not list urn:xmpp:carbons:2", srv.Domain)
			}
			a1, a2, b := res.JIDs["a1"], res.JIDs["a2"], res.JIDs["b"]
			checkCarbons(t, "a1", res.Got["a1"], alice.String(), a1, []carbonsMessage{
				{Type: "chat", From: b, To: a1, Body: "1 from b"},
				{Type: "headline", From: b, To: a1, Body: "5 end from b"},
			}, []carbonsGot{
				{Kind: "sent", Forwarded: carbonsMessage{Type: "chat", From: a2, To: bob.String(), Body: "3 from a2"}},
			})
			checkCarbons(t, "a2", res.Got["a2"], alice.String(), a2, []carbonsMessage{
				{Type: "headline", From: a1, To: a2, Body: "5 end from a1"},
				{Type: "headline", From: b, To: a2, Body: "5 end from b"},
			}, []carbonsGot{
				{Kind: "received", Forwarded: carbonsMessage{Type: "chat", From: b, To: a1, Body: "1 from b"}},
				{Kind: "sent", Forwarded: carbonsMessage{Type: "chat", From: a1, To: b, Body: "2 from a1"}},
			})
			checkCarbons(t, "b", res.Got["b"], bob.String(), b, []carbonsMessage{
				{Type: "chat", From: a1, To: b, Body: "2 from a1"},
				{Type: "chat", From: a2, To: bob.String(), Body: "3 from a2"},
				{Type: "chat", From: a1, To: b, Body: "4 private", Private: true},
				{Type: "headline", From: a1, To: b, Body: "5 end from a1"},
			}, nil)
		})
	}
}

// checkCarbons compares what one client got (plain messages in any
// order, carbons in order) with what it should have. Every carbon must come
// from account to the client's full JID full, with the forwarded
// message's type.
func checkCarbons(t *testing.T, name string, got []carbonsGot, account, full string, plain []carbonsMessage, carbons []carbonsGot) {
	t.Helper()
	var gotPlain []carbonsMessage
	var gotCarbons []carbonsGot
	for _, g := range got {
		if g.Kind == "plain" {
			gotPlain = append(gotPlain, g.carbonsMessage)
			continue
		}
		if g.OuterFrom != account || g.OuterTo != full || g.OuterType != g.Forwarded.Type {
			t.Errorf("%s: %s carbon from %q to %q type %q, want from %s to %s with the forwarded message's type %q",
				name, g.Kind, g.OuterFrom, g.OuterTo, g.OuterType, account, full, g.Forwarded.Type)
		}
		gotCarbons = append(gotCarbons, carbonsGot{Kind: g.Kind, Forwarded: g.Forwarded})
	}
	// Plain messages from different senders may arrive in either order.
	byBody := func(a, b carbonsMessage) int { return strings.Compare(a.Body, b.Body) }
	slices.SortFunc(gotPlain, byBody)
	slices.SortFunc(plain, byBody)
	if len(gotPlain) != len(plain) {
		t.Errorf("%s got %d messages, want %d:\n  got  %+v\n  want %+v", name, len(gotPlain), len(plain), gotPlain, plain)
	} else {
		for i := range plain {
			if gotPlain[i] != plain[i] {
				t.Errorf("%s: message %d = %+v, want %+v", name, i, gotPlain[i], plain[i])
			}
		}
	}
	if len(gotCarbons) != len(carbons) {
		t.Errorf("%s got %d carbons, want %d:\n  got  %+v\n  want %+v", name, len(gotCarbons), len(carbons), gotCarbons, carbons)
		return
	}
	for i := range carbons {
		if gotCarbons[i] != carbons[i] {
			t.Errorf("%s: carbon %d = %+v, want %+v", name, i, gotCarbons[i], carbons[i])
		}
	}
}
