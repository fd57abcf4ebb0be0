package module_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/ode-xmpp/ode/internal/module"
)

// TestHooks: functions run in the order added, a removal takes out only
// its own, and adding and removing while others call is race-free.
func TestHooks(t *testing.T) {
	var h module.Hooks[func() string]
	if n := len(slices.Collect(h.All())); n != 0 {
		t.Fatalf("zero Hooks has %d functions", n)
	}
	removeA := h.Add(func() string { return "a" })
	h.Add(func() string { return "b" })
	removeC := h.Add(func() string { return "c" })
	removeA()
	removeA() // twice: nothing more
	var got []string
	for fn := range h.All() {
		got = append(got, fn())
	}
	if !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("after removing a: %q", got)
	}
	removeC()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				remove := h.Add(func() string { return "x" })
				for fn := range h.All() {
					_ = fn()
				}
				remove()
			}
		})
	}
	wg.Wait()
	if got := slices.Collect(h.All()); len(got) != 1 || got[0]() != "b" {
		t.Errorf("after the concurrent adds and removes: %d functions", len(got))
	}
}
