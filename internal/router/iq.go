package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// pendingIQs holds the server's own IQ requests waiting for an answer.
type pendingIQs struct {
	mu sync.Mutex
	m  map[string]pendingIQ
}

type pendingIQ struct {
	to string // the request's 'to': the answer must come from it
	ch chan *xmlstream.Element
}

// IQ sends an IQ get or set from the server (its 'from' must be set, e.g.
// to a hosted domain) and waits for the result or error. It sets the id.
// An error answer is returned as a *stanza.Error (with the element).
func (r *Router) IQ(ctx context.Context, iq *xmlstream.Element) (*xmlstream.Element, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := "ode-" + hex.EncodeToString(b[:])
	iq.SetAttr("id", id)
	ch := make(chan *xmlstream.Element, 1)
	r.pending.mu.Lock()
	if r.pending.m == nil {
		r.pending.m = make(map[string]pendingIQ)
	}
	r.pending.m[id] = pendingIQ{to: stanza.To(iq), ch: ch}
	r.pending.mu.Unlock()
	defer func() {
		r.pending.mu.Lock()
		delete(r.pending.m, id)
		r.pending.mu.Unlock()
	}()
	r.Route(ctx, iq)
	select {
	case res := <-ch:
		if stanza.Type(res) == stanza.IQError {
			if se, ok := stanza.ParseError(res); ok {
				return res, se
			}
			return res, errors.New("router: iq error without a condition")
		}
		return res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("router: iq to %s: %w", stanza.To(iq), ctx.Err())
	}
}

// iqResponse passes an IQ result or error addressed to the server to the
// request waiting for it, if any; others are dropped.
func (r *Router) iqResponse(iq *xmlstream.Element) {
	id := stanza.ID(iq)
	r.pending.mu.Lock()
	p, ok := r.pending.m[id]
	if ok && p.to == stanza.From(iq) {
		delete(r.pending.m, id)
	} else {
		ok = false
	}
	r.pending.mu.Unlock()
	if ok {
		p.ch <- iq
	}
}
