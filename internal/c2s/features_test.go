package c2s_test

import (
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/c2s"
)

// TestFeatureOrder pins the order of negotiation: it is the order of
// <stream:features/> on the wire, which clients may depend on.
func TestFeatureOrder(t *testing.T) {
	want := "starttls sasl sasl2 pre-auth sasl-channel-binding bind session sm csi"
	if got := strings.Join(c2s.FeatureNames(), " "); got != want {
		t.Errorf("features %s, want %s", got, want)
	}
}
