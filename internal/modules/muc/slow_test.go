package muc_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/muc"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
)

// TestSlowOccupantDropped: an occupant whose client stops reading fills
// its session's outbound queue; the session is closed and the occupant
// leaves the room, which goes on serving the others (alice gets every
// reflection of what she sends, and bob's leaving).
func TestSlowOccupantDropped(t *testing.T) {
	srv := xmpptest.Start(t, func(c *config.Config) {
		c.C2S.OutboundQueueBytes = 64 << 10
		c.C2S.MaxStanzaBytes = 16384
		cfg := *muc.Info.Config.(*muc.Config)
		cfg.MessagesPerSecond = 1e9
		c.Modules.Settings["muc"] = &cfg
	})
	for _, u := range []string{"alice", "bob"} {
		srv.AddUser(t, u, "pw")
	}
	alice, _ := aliceAndBobOn(t, srv) // bob's client stays open, unread
	// bob reads no more. The loopback socket buffers take a few MB before
	// the server's queue for him fills: at most 4,000 messages of 8 KB.
	big := strings.Repeat("y", 8000)
	for i := range 4000 {
		alice.r.Send(fmt.Sprintf(`<message to='%s' type='groupchat' id='m%d'><body>%s</body></message>`, room, i, big))
		for {
			e := alice.next()
			if e.Name.Local == "presence" && stanza.From(e) == room+"/Bob" {
				if stanza.Type(e) != stanza.PresenceUnavailable {
					t.Fatalf("bob's presence: %s", e)
				}
				t.Logf("bob left after %d messages", i+1)
				return
			}
			if e.Name.Local == "message" && e.Attribute("id") == fmt.Sprintf("m%d", i) {
				break
			}
			if e.Name.Local != "message" || stanza.From(e) != room+"/Alice" {
				t.Fatalf("unexpected %s", e)
			}
		}
	}
	t.Fatal("bob, who reads nothing, is still in the room after 32 MB")
}
