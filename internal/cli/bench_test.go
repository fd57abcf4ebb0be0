package cli

import (
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/register"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// TestBench runs ode bench as from a shell against a server on loopback;
// internal/bench tests each scenario.
func TestBench(t *testing.T) {
	srv := xmpptest.Start(t, func(c *config.Config) {
		c.Modules.Settings["register"] = &register.Config{Enabled: true, PerIPPerHour: 100}
	})
	st, out, errs := run(t, "", "bench", "chat", "-addr", srv.Addr, "-domain", srv.Domain, "-ca", srv.CAFile,
		"-register", "-users", "3", "-rate", "50", "-duration", "500ms", "-drain", "2s")
	if st != 0 || !strings.Contains(out, "delivered/s") || !strings.Contains(out, "generator:") {
		t.Errorf("bench chat: status %d\n%s%s", st, out, errs)
	}
	if st, _, errs := run(t, "", "bench", "-h"); st != 0 || !strings.Contains(errs, "Usage: ode bench") {
		t.Errorf("bench -h: %d %q", st, errs)
	}
	if st, out, _ := run(t, "", "help"); st != 0 || !strings.Contains(out, "ode bench") {
		t.Errorf("help: %d %q", st, out)
	}
}
