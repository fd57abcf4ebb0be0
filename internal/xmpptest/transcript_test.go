package xmpptest_test

import (
	"testing"

	"github.com/ode-xmpp/ode/internal/xmpptest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTranscripts plays testdata/*.xmpp against a fresh server each.
func TestTranscripts(t *testing.T) {
	xmpptest.RunTranscripts(t, "testdata/*.xmpp", nil)
}
