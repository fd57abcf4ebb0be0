package httpd_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/httpd"
)

// TestMetricsAccess checks the rules of /metrics on requests from any
// peer address, with a trusted proxy in front (internal/metrics
// TestAccess checks them over real sockets).
func TestMetricsAccess(t *testing.T) {
	tok := strings.Repeat("k", 32)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("series")) })
	newServer := func(token string) *httpd.Server {
		s, err := httpd.New(httpd.Config{Domains: []string{"localhost"}, TrustedProxies: []string{"127.0.0.1"},
			Metrics: ok, MetricsToken: token})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	withToken, noToken := newServer(tok), newServer("")
	for _, tt := range []struct {
		name   string
		srv    *httpd.Server
		remote string
		header []string
		method string
		want   int
	}{
		{"loopback v4", noToken, "127.0.0.1:4000", nil, "GET", 200},
		{"loopback v6", noToken, "[::1]:4000", nil, "GET", 200},
		{"loopback v4-mapped", noToken, "[::ffff:127.0.0.1]:4000", nil, "GET", 200},
		{"head", noToken, "127.0.0.1:4000", nil, "HEAD", 200},
		{"post", noToken, "127.0.0.1:4000", nil, "POST", 405},
		{"remote", noToken, "192.0.2.1:4000", nil, "GET", 403},
		{"remote, token configured", withToken, "192.0.2.1:4000", nil, "GET", 401},
		{"remote with the token", withToken, "192.0.2.1:4000", []string{"Authorization", "Bearer " + tok}, "GET", 200},
		{"remote with the token and spaces", withToken, "192.0.2.1:4000", []string{"Authorization", "Bearer  " + tok + " "}, "GET", 200},
		{"remote with a prefix of the token", withToken, "192.0.2.1:4000", []string{"Authorization", "Bearer " + tok[:31]}, "GET", 401},
		{"remote with an empty bearer", withToken, "192.0.2.1:4000", []string{"Authorization", "Bearer"}, "GET", 401},
		{"remote, token where none is configured", noToken, "192.0.2.1:4000", []string{"Authorization", "Bearer "}, "GET", 401},
		// Through the trusted proxy on loopback: the client is elsewhere.
		{"proxied remote client", noToken, "127.0.0.1:4000", []string{"X-Forwarded-For", "192.0.2.9"}, "GET", 403},
		{"proxied remote client with the token", withToken, "127.0.0.1:4000", []string{"X-Forwarded-For", "192.0.2.9", "Authorization", "Bearer " + tok}, "GET", 200},
		{"proxied loopback client", noToken, "127.0.0.1:4000", []string{"X-Forwarded-For", "127.0.0.1"}, "GET", 403},
		{"x-real-ip", noToken, "127.0.0.1:4000", []string{"X-Real-IP", "192.0.2.9"}, "GET", 403},
		{"web page", noToken, "127.0.0.1:4000", []string{"Origin", "https://chat.example.org"}, "GET", 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/metrics", nil)
			r.RemoteAddr = tt.remote
			for i := 0; i+1 < len(tt.header); i += 2 {
				r.Header.Set(tt.header[i], tt.header[i+1])
			}
			w := httptest.NewRecorder()
			tt.srv.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.want == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 without a Bearer challenge: %q", w.Header().Get("WWW-Authenticate"))
			}
			if tt.want != 200 && strings.Contains(w.Body.String(), "series") {
				t.Error("a refused request got the metrics")
			}
		})
	}
	for _, s := range []*httpd.Server{withToken, noToken} {
		if err := s.Shutdown(t.Context()); err != nil {
			t.Error(err)
		}
	}
}
