package interop_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
)

type mamResult struct {
	Version       string     `json:"version"`
	Events        []string   `json:"events"`
	Error         string     `json:"error"`
	Live          [][]string `json:"live"`    // body, stanza-id
	Archive       [][]string `json:"archive"` // body, result id, from
	AfterLastSeen []string   `json:"after_last_seen"`
	MetadataEnd   *string    `json:"metadata_end"`
}

// TestSlixmppMAM: slixmpp 1.8.3 and 1.10.0 with their xep_0313 plugin
// (slixmpp_mam.py): messages exchanged while both are online carry a
// stanza-id by the recipient; a fresh session of the recipient, after
// missing three messages, pages through its archive (RSM, 3 a page) and
// gets every message exactly once, in order, under the ids it saw live;
// a query after the last stanza-id it saw returns exactly the missed ones.
func TestSlixmppMAM(t *testing.T) {
	for _, peer := range []slixmppPeer{slixmppDebian, slixmppBackports} {
		t.Run(peer.version, func(t *testing.T) {
			peer.need(t)
			srv := xmpptest.Start(t, nil)
			alice := srv.AddUser(t, "alice", "wonderland")
			bob := srv.AddUser(t, "bob", "builder pass")
			host, port, _ := strings.Cut(srv.Addr, ":")
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			cmd := peer.command(ctx, t, "slixmpp_mam.py", host, port, srv.CAFile,
				alice.String(), "wonderland", bob.String(), "builder pass")
			var res mamResult
			peer.scenario(t, cmd, &res)
			var bodies []string
			for _, m := range res.Archive {
				bodies = append(bodies, m[0])
			}
			if want := []string{"1", "2", "3", "r", "4", "5", "6", "7", "8"}; !slices.Equal(bodies, want) {
				t.Errorf("archive retrieved %q, want %q (each once, in order)", bodies, want)
			}
			liveIDs := map[string]string{}
			for _, l := range res.Live {
				if l[1] == "" {
					t.Errorf("live message %q without a stanza-id by bob", l[0])
				}
				liveIDs[l[0]] = l[1]
			}
			for _, m := range res.Archive {
				if id, ok := liveIDs[m[0]]; ok && id != m[1] {
					t.Errorf("message %q: archive id %s, stanza-id seen live %s", m[0], m[1], id)
				}
			}
			if want := []string{"6", "7", "8"}; !slices.Equal(res.AfterLastSeen, want) {
				t.Errorf("after the last stanza-id seen: %q, want %q", res.AfterLastSeen, want)
			}
			if res.MetadataEnd != nil && len(res.Archive) > 0 && *res.MetadataEnd != res.Archive[len(res.Archive)-1][1] {
				t.Errorf("metadata end %s, want the last message's id %s", *res.MetadataEnd, res.Archive[len(res.Archive)-1][1])
			}
		})
	}
}
