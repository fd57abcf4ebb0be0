package roster

import (
	"testing"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/stanza"
)

// The nine states of RFC 6121 Appendix A.1.
var states = map[string]state{
	"None":                {sub: storage.SubNone},
	"None+PendingOut":     {sub: storage.SubNone, pendOut: true},
	"None+PendingIn":      {sub: storage.SubNone, pendIn: true},
	"None+PendingOut+In":  {sub: storage.SubNone, pendOut: true, pendIn: true},
	"To":                  {sub: storage.SubTo},
	"To+PendingIn":        {sub: storage.SubTo, pendIn: true},
	"From":                {sub: storage.SubFrom},
	"From+PendingOut":     {sub: storage.SubFrom, pendOut: true},
	"Both":                {sub: storage.SubBoth},
	"None (pre-approved)": {sub: storage.SubNone, preApprov: true},
}

func name(s state) string {
	base := s
	base.preApprov = false
	for n, v := range states {
		if v == base {
			if s.preApprov {
				return n + " (pre-approved)"
			}
			return n
		}
	}
	return "?"
}

// TestStateMachine walks every state × every subscription stanza, in both
// directions, against the tables of RFC 6121 Appendix A (A.2 to A.5).
func TestStateMachine(t *testing.T) {
	// For each stanza and direction: state → next state ("" = no change).
	tables := []struct {
		dir, typ string
		next     map[string]string
	}{
		{"out", stanza.PresenceSubscribe, map[string]string{ // A.2.1
			"None": "None+PendingOut", "None+PendingIn": "None+PendingOut+In", "From": "From+PendingOut",
			"None (pre-approved)": "None+PendingOut (pre-approved)",
		}},
		{"out", stanza.PresenceUnsubscribe, map[string]string{ // A.2.2
			"None+PendingOut": "None", "None+PendingOut+In": "None+PendingIn", "To": "None",
			"To+PendingIn": "None+PendingIn", "From+PendingOut": "From", "Both": "From",
		}},
		{"in", stanza.PresenceSubscribe, map[string]string{ // A.3.1
			"None": "None+PendingIn", "None+PendingOut": "None+PendingOut+In", "To": "To+PendingIn",
			"None (pre-approved)": "From", // §3.4: answered automatically
		}},
		{"in", stanza.PresenceUnsubscribe, map[string]string{ // A.3.2
			"None+PendingIn": "None", "None+PendingOut+In": "None+PendingOut", "To+PendingIn": "To",
			"From": "None", "From+PendingOut": "None+PendingOut", "Both": "To",
		}},
		{"out", stanza.PresenceSubscribed, map[string]string{ // A.4.1 (+ §3.4 pre-approval)
			"None": "None (pre-approved)", "None+PendingIn": "From", "None+PendingOut+In": "From+PendingOut",
			"To+PendingIn": "Both", "None+PendingOut": "None+PendingOut (pre-approved)", "To": "To (pre-approved)",
		}},
		{"out", stanza.PresenceUnsubscribed, map[string]string{ // A.4.2
			"None+PendingIn": "None", "None+PendingOut+In": "None+PendingOut", "To+PendingIn": "To",
			"From": "None", "From+PendingOut": "None+PendingOut", "Both": "To", "None (pre-approved)": "None",
		}},
		{"in", stanza.PresenceSubscribed, map[string]string{ // A.5.1
			"None+PendingOut": "To", "None+PendingOut+In": "To+PendingIn", "From+PendingOut": "Both",
		}},
		{"in", stanza.PresenceUnsubscribed, map[string]string{ // A.5.2
			"None+PendingOut": "None", "None+PendingOut+In": "None+PendingIn", "To": "None",
			"To+PendingIn": "None+PendingIn", "From+PendingOut": "From", "Both": "From",
		}},
	}
	for _, tb := range tables {
		for from, s := range states {
			t.Run(tb.dir+" "+tb.typ+" in "+from, func(t *testing.T) {
				var tr Transition
				if tb.dir == "out" {
					tr = outboundTransition(s, tb.typ)
				} else {
					tr = inboundTransition(s, tb.typ)
				}
				want := tb.next[from]
				if want == "" {
					want = from
				}
				if got := name(tr.Next); got != want {
					t.Errorf("next state %s, want %s", got, want)
				}
				if changed := want != from; changed && !tr.Changed {
					t.Errorf("state changed but Changed is false")
				}
				// An inbound stanza that changes nothing is not delivered,
				// except a repeated subscription request.
				if tb.dir == "in" && want == from && tr.Forward && !(tb.typ == stanza.PresenceSubscribe && s.pendIn) {
					t.Errorf("delivered without a state change")
				}
				if tb.dir == "in" && want != from && tb.typ != stanza.PresenceSubscribe && !tr.Forward {
					t.Errorf("state changed but the stanza is not delivered")
				}
			})
		}
	}
}
