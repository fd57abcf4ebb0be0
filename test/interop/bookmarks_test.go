package interop_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

type bookmarkRoom struct {
	Nick     string `json:"nick"`
	Autojoin bool   `json:"autojoin"`
	Name     string `json:"name"`
}

type bookmarksResult struct {
	Version           string                  `json:"version"`
	Plugin402         bool                    `json:"xep_0402_plugin"`
	Events            []string                `json:"events"`
	Error             string                  `json:"error"`
	Features          []string                `json:"features"`
	PrivateRooms      map[string]bookmarkRoom `json:"private_rooms"`
	PEP48Rooms        map[string]bookmarkRoom `json:"pep48_rooms"`
	ItemsAfterPrivate []string                `json:"items_after_private"`
	Retracted         []string                `json:"retracted"`
	ItemsAfterPEP48   []string                `json:"items_after_pep48"`
	AvatarID          string                  `json:"avatar_id"`
	BPhotoHash        string                  `json:"b_photo_hash"`
	BVCardPhotoSHA1   string                  `json:"b_vcard_photo_sha1"`
	VCardPhotoID      string                  `json:"vcard_photo_id"`
	MetadataIDs       []string                `json:"metadata_ids"`
	DataSHA1          string                  `json:"data_sha1"`
}

// TestSlixmppBookmarksAvatars: the server's conversions seen by slixmpp
// 1.8.3 and 1.10.0 (slixmpp_bookmarks.py; 1.10 has the xep_0402 plugin,
// 1.8.3's run publishes the same <conference/> by hand): a XEP-0402
// bookmark shows up through XEP-0048 in private storage (xep_0049) and in
// PEP (xep_0223); a list a legacy client stores in either place becomes
// the XEP-0402 items, with a retraction notification for a room it
// dropped; a XEP-0084 avatar becomes the vCard photo a contact fetches
// (xep_0054) and its hash in presence (xep_0153); a vCard photo becomes
// the XEP-0084 avatar.
func TestSlixmppBookmarksAvatars(t *testing.T) {
	for _, peer := range []slixmppPeer{slixmppDebian, slixmppBackports} {
		t.Run(peer.version, func(t *testing.T) {
			peer.need(t)
			srv := xmpptest.Start(t, nil)
			const password = "bookmarks pass"
			alice := srv.AddUser(t, "alice", password)
			bob := srv.AddUser(t, "bob", password)
			for _, p := range [][2]string{{"alice", bob.String()}, {"bob", alice.String()}} {
				if _, err := srv.Store().PutRosterItem(t.Context(), p[0], srv.Domain,
					storage.RosterItem{Contact: p[1], Subscription: storage.SubBoth}, 0); err != nil {
					t.Fatal(err)
				}
			}
			host, port, _ := strings.Cut(srv.Addr, ":")
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
			defer cancel()
			cmd := peer.command(ctx, t, "slixmpp_bookmarks.py", host, port, srv.CAFile, alice.String(), bob.String(), password)
			out, err := cmd.Output()
			var res bookmarksResult
			if jerr := json.Unmarshal(out, &res); jerr != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("slixmpp script: %v / %v\nstdout: %s\nstderr: %s", err, jerr, out, stderr)
			}
			t.Logf("slixmpp %s (xep_0402 plugin: %v) events:\n  %s", res.Version, res.Plugin402, strings.Join(res.Events, "\n  "))
			if res.Error != "" || err != nil {
				t.Fatalf("slixmpp scenario stopped: %s (exit: %v)", res.Error, err)
			}
			if want := peer.version == "1.10.0"; res.Plugin402 != want {
				t.Errorf("slixmpp %s has the xep_0402 plugin: %v, want %v", res.Version, res.Plugin402, want)
			}
			for _, f := range []string{"urn:xmpp:bookmarks:1#compat", "urn:xmpp:bookmarks:1#compat-pep",
				"urn:xmpp:bookmarks-conversion:0", "urn:xmpp:pep-vcard-conversion:0"} {
				if !slices.Contains(res.Features, f) {
					t.Errorf("account features lack %s: %q", f, res.Features)
				}
			}
			const room1, room2, room3 = "council@conference.underhill.org", "orchard@chat.shakespeare.lit", "balcony@chat.shakespeare.lit"
			want := bookmarkRoom{Nick: "Puck", Autojoin: true, Name: "Council of Oberon"}
			for what, rooms := range map[string]map[string]bookmarkRoom{"private storage": res.PrivateRooms, "XEP-0048 in PEP": res.PEP48Rooms} {
				if len(rooms) != 1 || rooms[room1] != want {
					t.Errorf("%s: %+v, want %s %+v", what, rooms, room1, want)
				}
			}
			if !slices.Equal(res.ItemsAfterPrivate, []string{room2}) || !slices.Contains(res.Retracted, room1) {
				t.Errorf("after the private storage set: items %q, retracted %q", res.ItemsAfterPrivate, res.Retracted)
			}
			if !slices.Equal(res.ItemsAfterPEP48, []string{room3}) {
				t.Errorf("after the PEP set: items %q, want [%s]", res.ItemsAfterPEP48, room3)
			}
			if res.BPhotoHash != res.AvatarID || res.BVCardPhotoSHA1 != res.AvatarID {
				t.Errorf("avatar %s: bob saw hash %q and a vCard photo hashing to %q", res.AvatarID, res.BPhotoHash, res.BVCardPhotoSHA1)
			}
			if !slices.Equal(res.MetadataIDs, []string{res.VCardPhotoID}) || res.DataSHA1 != res.VCardPhotoID {
				t.Errorf("vCard photo %s: metadata items %q, data hashing to %q", res.VCardPhotoID, res.MetadataIDs, res.DataSHA1)
			}
		})
	}
}
