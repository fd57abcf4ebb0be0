package module

import (
	"iter"
	"sync"
	"sync/atomic"
)

// Hooks is a list of functions one module offers others to add (pep's
// OnPublished, vcard's OnSet). Functions are added and removed while the
// server runs — a reload builds the modules that use another's Go API
// again, and stops the ones it replaced — and read on every call without
// a lock. The zero value is an empty list.
type Hooks[F any] struct {
	mu   sync.Mutex // serialises Add and remove
	list atomic.Pointer[[]hookEntry[F]]
	next uint64
}

type hookEntry[F any] struct {
	id uint64
	fn F
}

// Add appends fn and returns what removes it again (a module calls that
// when it stops).
func (h *Hooks[F]) Add(fn F) (remove func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	id := h.next
	var cur []hookEntry[F]
	if p := h.list.Load(); p != nil {
		cur = *p
	}
	next := append(cur[:len(cur):len(cur)], hookEntry[F]{id, fn})
	h.list.Store(&next)
	return func() { h.remove(id) }
}

func (h *Hooks[F]) remove(id uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.list.Load()
	if p == nil {
		return
	}
	next := make([]hookEntry[F], 0, len(*p))
	for _, e := range *p {
		if e.id != id {
			next = append(next, e)
		}
	}
	h.list.Store(&next)
}

// All yields the functions in the order they were added.
func (h *Hooks[F]) All() iter.Seq[F] {
	return func(yield func(F) bool) {
		p := h.list.Load()
		if p == nil {
			return
		}
		for _, e := range *p {
			if !yield(e.fn) {
				return
			}
		}
	}
}
