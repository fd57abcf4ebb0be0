package certs

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

// TestExplain checks what the operator reads for the CA's problems
// (RFC 8555 §6.7), and that a rate limit is retried when the CA says.
func TestExplain(t *testing.T) {
	limited := &acme.Error{StatusCode: 429, ProblemType: "urn:ietf:params:acme:error:rateLimited",
		Detail: "too many certificates already issued for example.org", Header: http.Header{"Retry-After": {"7200"}}}
	tests := []struct {
		err  error
		want string
	}{
		{limited, "rate limited by the CA (the CA says retry after 7200): too many certificates already issued for example.org; ode retries later"},
		{&acme.Error{ProblemType: "urn:ietf:params:acme:error:dns", Detail: "NXDOMAIN looking up A for example.org"},
			"the CA could not look the name up in DNS: NXDOMAIN looking up A for example.org"},
		{&acme.Error{ProblemType: "urn:ietf:params:acme:error:caa", Detail: "CAA record forbids issuance"}, "a CAA record forbids this CA"},
		{&acme.Error{ProblemType: "urn:ietf:params:acme:error:rejectedIdentifier", Detail: "bad name",
			Subproblems: []acme.Subproblem{{Detail: "no public suffix", Identifier: &acme.AuthzID{Type: "dns", Value: "x.invalid"}}}},
			"the CA will not issue for this name: bad name; x.invalid: no public suffix"},
		{&acme.Error{ProblemType: "urn:ietf:params:acme:error:serverInternal", Detail: "oops"}, "oops (urn:ietf:params:acme:error:serverInternal)"},
		{fmt.Errorf("order: %w", limited), "rate limited by the CA"},
	}
	for _, tt := range tests {
		if got := explain(tt.err).Error(); !strings.Contains(got, tt.want) {
			t.Errorf("explain(%v) = %q, want it to contain %q", tt.err, got, tt.want)
		}
	}

	now := time.Now()
	m := &Manager{cfg: Config{Now: func() time.Time { return now }}, log: slog.New(slog.DiscardHandler)}
	m.scope.Store(&scope{domains: []string{"example.org"}})
	a := &acmeState{m: m, cfg: ACME{Retry: time.Minute}, due: map[string]time.Time{}, failures: map[string]int{}, lastErr: map[string]error{}}
	if at := a.failed("example.org", fmt.Errorf("order: %w", limited)); at.Sub(now) < 2*time.Hour-time.Minute {
		t.Errorf("a rate limit with Retry-After 7200 is retried after %s", at.Sub(now))
	}
	a.failures["example.org"] = 0
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		if at := a.failed("example.org", fmt.Errorf("connection refused")); at.Sub(now) != want {
			t.Errorf("failure %d: retried after %s, want %s", i+1, at.Sub(now), want)
		}
	}
}
