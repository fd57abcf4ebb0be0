package blocking

import (
	"testing"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/jid"
)

// TestInvalidate checks that Invalidate drops a cached list, so that the
// next stanza reads it again, and leaves the lists of other users alone.
func TestInvalidate(t *testing.T) {
	m, _ := New(module.Deps{})
	alice, bob := &entry{}, &entry{}
	empty := blockSet{}
	alice.set.Store(&empty)
	bob.set.Store(&empty)
	m.lists.Store("alice@example.org", alice)
	m.lists.Store("bob@example.org", bob)
	m.Invalidate(jid.MustParse("alice@example.org/phone"))
	m.Invalidate(jid.MustParse("carol@example.org")) // none cached
	if alice.set.Load() != nil || bob.set.Load() == nil {
		t.Errorf("after Invalidate(alice): alice cached %v, bob cached %v; want false, true", alice.set.Load() != nil, bob.set.Load() != nil)
	}
}

// TestBlockSet checks the matching of §6 on a set: full JID, bare JID,
// domain/resource and domain items.
func TestBlockSet(t *testing.T) {
	s := blockSet{"romeo@montague.net": {}, "capulet.lit/chapel": {}, "verona.lit": {}, "tybalt@capulet.lit/sword": {}}
	for addr, want := range map[string]bool{
		"romeo@montague.net":         true,
		"romeo@montague.net/orchard": true,
		"benvolio@montague.net":      false,
		"montague.net":               false,
		"nurse@capulet.lit/chapel":   true,
		"capulet.lit/chapel":         true,
		"nurse@capulet.lit/kitchen":  false,
		"tybalt@capulet.lit/sword":   true,
		"tybalt@capulet.lit":         false,
		"anyone@verona.lit/x":        true,
		"verona.lit":                 true,
	} {
		if got := s.blocks(jid.MustParse(addr)); got != want {
			t.Errorf("blocks(%s) = %v, want %v", addr, got, want)
		}
	}
	if (blockSet{}).blocks(jid.MustParse("romeo@montague.net")) {
		t.Error("an empty set blocks")
	}
}
