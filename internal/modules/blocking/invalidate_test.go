package blocking

import (
	"testing"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/jid"
)

// TestInvalidate checks that Invalidate makes a cached list load again
// and leaves the lists of other users alone.
func TestInvalidate(t *testing.T) {
	m, _ := New(module.Deps{})
	now := m.deps.Now()
	alice, bob := &entry{loaded: true, at: now}, &entry{loaded: true, at: now}
	m.lists["alice@example.org"], m.lists["bob@example.org"] = alice, bob
	m.Invalidate(jid.MustParse("alice@example.org/phone"))
	m.Invalidate(jid.MustParse("carol@example.org")) // none cached
	if alice.fresh(now, m.ttl) || !bob.fresh(now, m.ttl) {
		t.Errorf("after Invalidate(alice): alice fresh %v, bob fresh %v; want false, true", alice.fresh(now, m.ttl), bob.fresh(now, m.ttl))
	}
	if later := now.Add(m.ttl); bob.fresh(later, m.ttl) {
		t.Errorf("a list %v old is fresh", m.ttl)
	}
}
