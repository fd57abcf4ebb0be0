package httpd

import (
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"
)

// metrics serves h (Prometheus /metrics) to the requests metricsAccess
// allows.
func (s *Server) metrics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch code := s.metricsAccess(r); code {
		case http.StatusOK:
			h.ServeHTTP(w, r)
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="ode metrics"`)
			http.Error(w, "metrics: a valid bearer token is required (Authorization: Bearer <[metrics] token>)", code)
		default:
			http.Error(w, "metrics: only requests from this machine may read them; set [metrics] token to scrape from elsewhere", code)
		}
	})
}

// metricsAccess says whether a request may read the metrics: one with
// the configured bearer token, or one made directly from this machine —
// a loopback peer, not relayed by a proxy (which would make every
// client it serves look local) and not from a web page (a page on
// another origin, opened in a browser on the server, must not read
// them). It returns 200, 401 (a token is configured, or a wrong one was
// presented) or 403.
func (s *Server) metricsAccess(r *http.Request) int {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, _ := strings.Cut(auth, " ")
		want := s.cfg.MetricsToken
		if want != "" && strings.EqualFold(scheme, "Bearer") &&
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(want)) == 1 {
			return http.StatusOK
		}
		return http.StatusUnauthorized
	}
	if directLoopback(r) {
		return http.StatusOK
	}
	if s.cfg.MetricsToken != "" {
		return http.StatusUnauthorized
	}
	return http.StatusForbidden
}

// directLoopback reports whether r comes from a loopback address with no
// sign of having been forwarded or sent by a browser page.
func directLoopback(r *http.Request) bool {
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "Origin"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && peer.Addr().Unmap().IsLoopback()
}
