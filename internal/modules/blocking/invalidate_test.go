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
	alice, bob := &entry{loaded: true, at: now, life: m.ttl}, &entry{loaded: true, at: now, life: m.ttl}
	m.lists["alice@example.org"], m.lists["bob@example.org"] = alice, bob
	m.Invalidate(jid.MustParse("alice@example.org/phone"))
	m.Invalidate(jid.MustParse("carol@example.org")) // none cached
	if alice.fresh(now) || !bob.fresh(now) {
		t.Errorf("after Invalidate(alice): alice fresh %v, bob fresh %v; want false, true", alice.fresh(now), bob.fresh(now))
	}
	if later := now.Add(m.ttl); bob.fresh(later) {
		t.Errorf("a list %v old is fresh", m.ttl)
	}
}

// TestJittered: an entry's life is within 3/4 and 5/4 of the TTL.
func TestJittered(t *testing.T) {
	for range 1000 {
		if d := jittered(CacheTTL); d < CacheTTL*3/4 || d > CacheTTL*5/4 {
			t.Fatalf("jittered(%v) = %v", CacheTTL, d)
		}
	}
}
