package interop_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

type pepEvent struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Type    string   `json:"type"`
	Node    string   `json:"node"`
	IDs     []string `json:"ids"`
	Payload string   `json:"payload"`
}

type pepItem struct {
	ID      string `json:"id"`
	Payload string `json:"payload"`
}

type pepResult struct {
	Version           string               `json:"version"`
	Events            []string             `json:"events"`
	Error             string               `json:"error"`
	Identities        []string             `json:"identities"`
	Features          []string             `json:"features"`
	Published         map[string]string    `json:"published"`
	BEvents           []pepEvent           `json:"b_events"`
	EItems            map[string][]pepItem `json:"e_items"`
	EGeolocError      string               `json:"e_geoloc_error"`
	WhitelistError    string               `json:"whitelist_error"`
	WhitelistAppError string               `json:"whitelist_app_error"`
}

// TestSlixmppPEP: OMEMO over PEP with slixmpp's xep_0060, xep_0115 and
// xep_0163 plugins (slixmpp_pep.py), slixmpp 1.8.3 and 1.10.0. alice
// publishes her legacy OMEMO device list and bundle and her OMEMO 2
// device list with publish-options access_model=open; bob, subscribed
// to her presence, whose caps (computed by slixmpp) want the device
// lists, gets them; eve, a stranger, fetches the bundle and both lists
// and is refused a presence-only node; a publish asking for a whitelist
// on the open node fails with conflict and precondition-not-met.
func TestSlixmppPEP(t *testing.T) {
	for _, peer := range []slixmppPeer{slixmppDebian, slixmppBackports} {
		t.Run(peer.version, func(t *testing.T) {
			peer.need(t)
			srv := xmpptest.Start(t, nil)
			const password = "omemo pass"
			alice := srv.AddUser(t, "alice", password)
			bob := srv.AddUser(t, "bob", password)
			eve := srv.AddUser(t, "eve", password)
			for _, p := range [][2]string{{"alice", bob.String()}, {"bob", alice.String()}} {
				if _, err := srv.Store().PutRosterItem(t.Context(), p[0], srv.Domain,
					storage.RosterItem{Contact: p[1], Subscription: storage.SubBoth}, 0); err != nil {
					t.Fatal(err)
				}
			}
			// A presence-only node of alice's, for eve to be refused.
			if err := srv.Store().CreatePubSubNode(t.Context(), "alice", srv.Domain,
				storage.PubSubNode{Node: "http://jabber.org/protocol/geoloc", Config: []byte(`{"access_model":"presence","max_items":1,"persist_items":true}`),
					Created: time.Now()}, 0); err != nil {
				t.Fatal(err)
			}
			host, port, _ := strings.Cut(srv.Addr, ":")
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
			defer cancel()
			const device = "31415"
			cmd := peer.command(ctx, t, "slixmpp_pep.py", host, port, srv.CAFile,
				alice.String(), bob.String(), eve.String(), password, device)
			var res pepResult
			peer.scenario(t, cmd, &res)
			if !slices.Contains(res.Identities, "pubsub/pep") {
				t.Errorf("account identities %q lack pubsub/pep", res.Identities)
			}
			if !slices.Contains(res.Features, "http://jabber.org/protocol/pubsub#publish-options") {
				t.Errorf("account features lack publish-options: %q", res.Features)
			}
			const devicelist = "eu.siacs.conversations.axolotl.devicelist"
			const omemo2 = "urn:xmpp:omemo:2:devices"
			bundle := "eu.siacs.conversations.axolotl.bundles:" + device
			for _, node := range []string{devicelist, bundle, omemo2} {
				if res.Published[node] != "current" {
					t.Errorf("publish to %s answered item %q", node, res.Published[node])
				}
			}
			for _, node := range []string{devicelist, omemo2} {
				i := slices.IndexFunc(res.BEvents, func(e pepEvent) bool { return e.Node == node })
				if i < 0 {
					t.Errorf("bob got no notification of %s: %+v", node, res.BEvents)
					continue
				}
				ev := res.BEvents[i]
				if ev.From != alice.String() || !strings.HasPrefix(ev.To, bob.String()+"/") || ev.Type != "headline" ||
					!slices.Equal(ev.IDs, []string{"current"}) || !strings.Contains(ev.Payload, device) {
					t.Errorf("bob's notification of %s: %+v", node, ev)
				}
			}
			for _, node := range []string{bundle, devicelist, omemo2} {
				items := res.EItems[node]
				if len(items) != 1 || items[0].ID != "current" || items[0].Payload == "" {
					t.Errorf("eve fetched %s: %+v", node, items)
				}
			}
			if got := res.EItems[bundle]; len(got) == 1 && !strings.Contains(got[0].Payload, "signedPreKeyPublic") {
				t.Errorf("the bundle eve fetched: %s", got[0].Payload)
			}
			if res.EGeolocError != "not-authorized" {
				t.Errorf("eve fetching a presence-only node: %q, want not-authorized", res.EGeolocError)
			}
			if res.WhitelistError != "conflict" || res.WhitelistAppError != "precondition-not-met" {
				t.Errorf("publish with unmet options: %q %q, want conflict precondition-not-met", res.WhitelistError, res.WhitelistAppError)
			}
		})
	}
}
