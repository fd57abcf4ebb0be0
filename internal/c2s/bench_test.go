package c2s_test

import (
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// BenchmarkRouteMessage measures messages routed between two authenticated
// sessions over loopback TLS. The sender writes pre-encoded stanzas and the
// receiver only counts bytes, so the allocations are the server's: read,
// parse, stamp 'from', route, serialise, write.
//
// In the "sm" variant both sessions enable XEP-0198 stream management with
// resumption: the server counts and keeps every stanza until bob's <a/>,
// which bob sends whenever the server's <r/> arrives.
func BenchmarkRouteMessage(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchRoute(b, false) })
	b.Run("sm", func(b *testing.B) { benchRoute(b, true) })
}

func benchRoute(b *testing.B, sm bool) {
	// The routing core, every module on but the archive, whose cost
	// (two archive rows per message) internal/modules/mam measures.
	srv := xmpptest.Start(b, func(c *config.Config) {
		c.Modules.Disabled = append(c.Modules.Disabled, "mam")
	})
	xmpptest.BenchRouteMessages(b, srv, sm)
}
