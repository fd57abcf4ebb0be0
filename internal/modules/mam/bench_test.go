package mam_test

import (
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// BenchmarkRouteMessage is c2s's BenchmarkRouteMessage with the archive
// on (the default) and off: alice writes chat messages to bob's full JID
// in batches of 64, bob's socket is read by a byte counter. With the
// archive on, each message is two rows (alice's and bob's archive), its
// preferences are read twice, and bob's copy gets a stanza-id; the rows
// are written by the group-commit writer while the messages flow.
func BenchmarkRouteMessage(b *testing.B) {
	b.Run("mam", func(b *testing.B) { benchRoute(b, true) })
	b.Run("nomam", func(b *testing.B) { benchRoute(b, false) })
}

func benchRoute(b *testing.B, archive bool) {
	srv := xmpptest.Start(b, func(c *config.Config) {
		if !archive {
			c.Modules.Disabled = append(c.Modules.Disabled, "mam")
		}
	})
	xmpptest.BenchRouteMessages(b, srv, false)
}
