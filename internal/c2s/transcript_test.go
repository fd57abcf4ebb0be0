package c2s_test

import (
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/register"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// TestTranscripts plays testdata/*.xmpp (negotiation, stream management,
// CSI) against a fresh server each, testdata/optional_tls/*.xmpp against
// servers that do not require TLS, and testdata/register/*.xmpp with
// in-band registration on.
func TestTranscripts(t *testing.T) {
	xmpptest.RunTranscripts(t, "testdata/*.xmpp", nil)
	t.Run("optional_tls", func(t *testing.T) {
		xmpptest.RunTranscripts(t, "testdata/optional_tls/*.xmpp", func(c *config.Config) { c.C2S.RequireTLS = false })
	})
	t.Run("register", func(t *testing.T) {
		xmpptest.RunTranscripts(t, "testdata/register/*.xmpp", func(c *config.Config) {
			c.Modules.Settings["register"] = &register.Config{Enabled: true, PerIPPerHour: 3}
		})
	})
}
