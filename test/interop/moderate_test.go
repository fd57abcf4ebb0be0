package interop_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ode-xmpp/ode/internal/modules/muc"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// moderateForm is one form of a moderation announcement as
// slixmpp_moderate.py read it: the stanza-id it retracts, the moderator's
// occupant JID and the reason.
type moderateForm struct {
	ID      string `json:"id"`
	By      string `json:"by"`
	Reason  string `json:"reason"`
	Retract bool   `json:"retract"` // :0 only: <retract xmlns='urn:xmpp:message-retract:0'/> inside <moderated/>
}

type moderateResult struct {
	Version  string `json:"version"`
	Messages map[string][]struct {
		From      string   `json:"from"`
		Body      string   `json:"body"`
		StanzaIDs []string `json:"stanza_ids"`
	} `json:"messages"`
	Raw map[string][]struct {
		Type string        `json:"type"`
		V1   *moderateForm `json:"v1"`
		V0   *moderateForm `json:"v0"`
	} `json:"raw"`
	Plugin map[string][]struct {
		NS string `json:"ns"`
		moderateForm
	} `json:"plugin"`
	Moderate    string `json:"moderate"`
	Participant string `json:"participant"`
	Unknown     string `json:"unknown"`
}

// TestSlixmppModerate: alice, owner of a stored room, retracts bob's
// groupchat message by its stanza-id with slixmpp's xep_0425 plugin
// (slixmpp_moderate.py): XEP-0425 0.2 (urn:xmpp:message-moderate:0) with
// Debian 12's slixmpp 1.8.3, 0.3 (urn:xmpp:message-moderate:1) with
// bookworm-backports' 1.10.0. Every occupant's plugin must report the
// retraction of that id by room/alice with the reason, and the
// announcement must carry both versions' forms. A participant's request
// is forbidden, and an id the room never gave is item-not-found (what
// muc's moderate answers).
func TestSlixmppModerate(t *testing.T) {
	for _, peer := range []slixmppPeer{slixmppDebian, slixmppBackports} {
		t.Run(peer.version, func(t *testing.T) {
			peer.need(t)
			srv := xmpptest.Start(t, nil)
			const password = "moderate pass"
			service := "conference." + srv.Domain
			host, port, _ := strings.Cut(srv.Addr, ":")
			args := []string{"slixmpp_moderate.py", host, port, srv.CAFile, service}
			for _, u := range []string{"alice", "bob", "carol"} {
				args = append(args, srv.AddUser(t, u, password).String())
			}
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			var res moderateResult
			peer.scenario(t, peer.command(ctx, t, append(args, password)...), &res)
			if res.Version != peer.version {
				t.Errorf("the script ran slixmpp %s, want %s", res.Version, peer.version)
			}
			room := "room@" + service
			wantNS := muc.NSModerate
			if peer.version == "1.8.3" {
				wantNS = muc.NSModerate0
			}

			// Everyone got bob's message with one stanza-id by the room.
			sid := ""
			for _, name := range []string{"alice", "bob", "carol"} {
				msgs := res.Messages[name]
				if len(msgs) != 1 || msgs[0].From != room+"/bob" || msgs[0].Body != "buy cheap watches" || len(msgs[0].StanzaIDs) != 1 || msgs[0].StanzaIDs[0] == "" {
					t.Fatalf("%s's groupchat messages: %+v, want bob's with one stanza-id by %s", name, msgs, room)
				}
				if sid == "" {
					sid = msgs[0].StanzaIDs[0]
				} else if msgs[0].StanzaIDs[0] != sid {
					t.Errorf("%s got the stanza-id %q, alice %q", name, msgs[0].StanzaIDs[0], sid)
				}
			}

			if res.Moderate != "result" {
				t.Errorf("alice's moderation answered %q, want a result", res.Moderate)
			}
			want := moderateForm{ID: sid, By: room + "/alice", Reason: "Spam"}
			for _, name := range []string{"alice", "bob", "carol"} {
				// The plugin's view, in the version it speaks.
				if p := res.Plugin[name]; len(p) != 1 || p[0].NS != wantNS || p[0].moderateForm != want {
					t.Errorf("%s's moderated_message events: %+v, want one in %s with %+v", name, p, wantNS, want)
				}
				// Both forms in the one announcement.
				raw := res.Raw[name]
				if len(raw) != 1 {
					t.Errorf("%s got %d announcements from the room, want 1: %+v", name, len(raw), raw)
					continue
				}
				if raw[0].Type != "groupchat" {
					t.Errorf("%s: the announcement is of type %q, want groupchat", name, raw[0].Type)
				}
				if diff := cmp.Diff(&want, raw[0].V1); diff != "" {
					t.Errorf("%s: the announcement's <retract xmlns='%s'> (-want +got):\n%s", name, muc.NSRetract, diff)
				}
				want0 := want
				want0.Retract = true
				if diff := cmp.Diff(&want0, raw[0].V0); diff != "" {
					t.Errorf("%s: the announcement's <apply-to xmlns='%s'> (-want +got):\n%s", name, muc.NSFasten, diff)
				}
			}

			if res.Participant != "forbidden" {
				t.Errorf("carol's (a participant's) moderation answered %q, want forbidden", res.Participant)
			}
			if res.Unknown != "item-not-found" {
				t.Errorf("moderating an unknown id answered %q, want item-not-found", res.Unknown)
			}
		})
	}
}
