// Package httpd is the server's one HTTP(S) listener: XMPP over WebSocket
// (RFC 7395) at /xmpp-websocket, the announcement of the web transports
// (XEP-0156 host-meta, XML and JSON), Prometheus metrics at /metrics, and
// the handlers modules add (HTTP upload, XEP-0363; BOSH, XEP-0206, mounts
// here too).
//
// Every response carries CORS headers for web clients hosted elsewhere
// (any origin by default, or the configured ones); requests from trusted
// reverse proxies have their X-Forwarded-For and X-Forwarded-Proto
// believed.
package httpd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/internal/certs"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/transport"
)

// Config is what the listener needs.
type Config struct {
	// Domains are the hosted domains; the first names the default
	// public URL.
	Domains []string
	// PublicURL overrides the URL clients reach the listener at.
	PublicURL string
	// TrustedProxies are the addresses and ranges of reverse proxies.
	TrustedProxies []string
	// AllowedOrigins are the web origins allowed to open XMPP sessions;
	// empty allows any.
	AllowedOrigins []string
	// ServeStream runs one client stream (c2s.Server.ServeTransport);
	// with it set, XMPP over WebSocket is served at /xmpp-websocket.
	ServeStream func(transport.Transport)
	// Stream holds the limits of those streams.
	Stream transport.Options
	// KeepAlive is how long a WebSocket may be silent before it is
	// pinged (0: 50 s); it is closed if the pong does not come within
	// half of it.
	KeepAlive time.Duration
	// BOSH, if set, serves /http-bind with it.
	BOSH http.Handler
	// Metrics, if set, serves /metrics with it (Prometheus), to
	// requests made directly from this machine and to those bearing
	// MetricsToken.
	Metrics http.Handler
	// MetricsToken, when not empty, is the bearer token that lets
	// other machines read /metrics.
	MetricsToken string
	// Log is the component's logger.
	Log *slog.Logger
}

// Server is the HTTP listener.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	proxies []netip.Prefix
	origins map[string]bool
	srv     *http.Server

	mu      sync.Mutex
	added   map[string]*swappable // the handlers added through Handle, by pattern
	base    string                // the first HTTPS listener's https://domain:port
	plain   string                // the first plain listener's http://domain:port
	closing bool
	ws      map[*transport.WebSocket]struct{} // open WebSocket streams
	stop    chan struct{}                     // ends the keepalive loop
	loop    sync.WaitGroup

	handshakes sync.Map // accepted TLS connections' *certs.Handshake, until connContext
}

var _ module.HTTP = (*Server)(nil)

// New returns a listener for cfg; handlers may be added until Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 50 * time.Second
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), origins: make(map[string]bool),
		ws: make(map[*transport.WebSocket]struct{}), stop: make(chan struct{})}
	for _, p := range cfg.TrustedProxies {
		if a, err := netip.ParseAddr(p); err == nil {
			s.proxies = append(s.proxies, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pr, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("httpd: trusted proxy %q: %w", p, err)
		}
		s.proxies = append(s.proxies, pr)
	}
	for _, o := range cfg.AllowedOrigins {
		s.origins[strings.TrimSuffix(strings.ToLower(o), "/")] = true
	}
	s.mux.HandleFunc("GET /.well-known/host-meta", s.hostMeta)
	s.mux.HandleFunc("GET /.well-known/host-meta.json", s.hostMetaJSON)
	if cfg.ServeStream != nil {
		s.mux.HandleFunc("/xmpp-websocket", s.websocket)
		s.loop.Add(1)
		go s.keepAlive()
	}
	if cfg.BOSH != nil {
		s.mux.Handle("/http-bind", cfg.BOSH)
	}
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", s.metrics(cfg.Metrics))
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
		ConnContext:       s.connContext,
	}
	return s, nil
}

// handshakeKey is the context key of a connection's *certs.Handshake.
type handshakeKey struct{}

// connContext hands the Handshake that tlsListener recorded for c to c's
// requests, and forgets it in the listener's table.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return ctx
	}
	if h, ok := s.handshakes.LoadAndDelete(tc); ok {
		return context.WithValue(ctx, handshakeKey{}, h)
	}
	return ctx
}

// tlsCertificate returns the DER of the certificate the client of r's
// connection holds (on a resumed TLS session, the one its first
// handshake presented), or nil.
func tlsCertificate(r *http.Request) []byte {
	h, ok := r.Context().Value(handshakeKey{}).(*certs.Handshake)
	if !ok || r.TLS == nil {
		return nil
	}
	return h.Certificate(r.TLS)
}

// tlsListener accepts TLS connections, each with its own copy of the
// listener's configuration (certs.ForConnection: tickets with the
// listener's keys, carrying the certificate of the session's first
// handshake), and keeps each connection's Handshake in handshakes until
// the HTTP server takes it (connContext, right after Accept).
type tlsListener struct {
	net.Listener
	cfg        *tls.Config
	handshakes *sync.Map // *tls.Conn → *certs.Handshake
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cfg, h := certs.ForConnection(l.cfg, l.cfg)
	tc := tls.Server(c, cfg)
	l.handshakes.Store(tc, h)
	return tc, nil
}

// Handle implements module.HTTP. Handling a pattern again replaces its
// handler (a module built again by a reload); a nil h answers 404 Not
// Found (a module turned off).
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.added == nil {
		s.added = make(map[string]*swappable)
	}
	sw := s.added[pattern]
	if sw == nil {
		sw = new(swappable)
		s.added[pattern] = sw
		s.mux.Handle(pattern, sw)
	}
	if h == nil {
		h = http.NotFoundHandler()
	}
	sw.h.Store(&h)
}

// swappable is a handler that Handle may replace while requests run.
type swappable struct{ h atomic.Pointer[http.Handler] }

func (sw *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*sw.h.Load()).ServeHTTP(w, r)
}

// BaseURL implements module.HTTP: the public URL, or the first HTTPS
// listener's (the first plain one's when there is none).
func (s *Server) BaseURL() string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.base != "" {
		return s.base
	}
	return s.plain
}

// Serve accepts HTTP connections on ln, over TLS with tc when it is not
// nil, until Shutdown.
func (s *Server) Serve(ln net.Listener, tc *tls.Config) error {
	scheme := "http"
	if tc != nil {
		scheme = "https"
		tc = tc.Clone()
		tc.NextProtos = []string{"h2", "http/1.1"}
		ln = &tlsListener{Listener: ln, cfg: tc, handshakes: &s.handshakes}
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	host := "localhost"
	if len(s.cfg.Domains) > 0 {
		host = s.cfg.Domains[0]
	}
	u := scheme + "://" + net.JoinHostPort(host, port)
	if scheme == "https" && s.base == "" {
		s.base = u
	}
	if scheme == "http" && s.plain == "" {
		s.plain = u
	}
	s.mu.Unlock()
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for the requests in flight (not
// for hijacked WebSocket connections: c2s ends those).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.stop)
	}
	s.mu.Unlock()
	err := s.srv.Shutdown(ctx)
	s.loop.Wait()
	return err
}

// ServeHTTP applies the listener's rules, then the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil && !loopbackLocal(r) {
		s.publicPlain(w, r)
		return
	}
	r = s.fromProxy(r)
	if origin := r.Header.Get("Origin"); origin != "" {
		if !s.originAllowed(origin) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		h := w.Header()
		if len(s.origins) == 0 {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// ACMEChallengePath is where ACME's HTTP-01 challenges are asked
// (RFC 8555 §8.3).
const ACMEChallengePath = "/.well-known/acme-challenge/"

// loopbackLocal reports whether the request came to a loopback address.
func loopbackLocal(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	return !ok || a.IP.IsLoopback()
}

// publicPlain serves a plain listener on a public address, which exists
// for ACME's HTTP-01 challenge on port 80: the challenges, and a
// redirect to HTTPS for anything else (nothing of XMPP goes in plain
// text over the Internet).
func (s *Server) publicPlain(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, ACMEChallengePath) {
		s.mux.ServeHTTP(w, r)
		return
	}
	base := s.BaseURL()
	if !strings.HasPrefix(base, "https://") {
		http.Error(w, "use HTTPS", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "use HTTPS", http.StatusForbidden)
		return
	}
	http.Redirect(w, r, base+r.URL.RequestURI(), http.StatusMovedPermanently)
}

// originAllowed reports whether a page from origin may use the listener.
func (s *Server) originAllowed(origin string) bool {
	return len(s.origins) == 0 || s.origins[strings.TrimSuffix(strings.ToLower(origin), "/")]
}

// OriginAllowed is originAllowed for the WebSocket handler, which checks
// the Origin itself.
func (s *Server) OriginAllowed(origin string) bool { return origin == "" || s.originAllowed(origin) }

type ctxKey struct{}

// proxied is what a trusted proxy said about a request.
type proxied struct {
	remote netip.AddrPort
	https  bool
}

// fromProxy applies X-Forwarded-For and X-Forwarded-Proto when the
// request comes from a trusted proxy.
func (s *Server) fromProxy(r *http.Request) *http.Request {
	if len(s.proxies) == 0 {
		return r
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !s.trusted(peer.Addr()) {
		return r
	}
	p := proxied{remote: peer}
	// The right-most address that is not a trusted proxy is the client.
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		p.remote = netip.AddrPortFrom(a, 0)
		if !s.trusted(a) {
			break
		}
	}
	p.https = strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, p))
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	return slices.ContainsFunc(s.proxies, func(p netip.Prefix) bool { return p.Contains(a) })
}

// RemoteAddr returns the client's address: the peer's, or what a trusted
// proxy said.
func RemoteAddr(r *http.Request) net.Addr {
	if p, ok := r.Context().Value(ctxKey{}).(proxied); ok {
		return net.TCPAddrFromAddrPort(p.remote)
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.TCPAddr{}
}

// Secure reports whether the request came over TLS, to ode or to a
// trusted proxy.
func Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	p, ok := r.Context().Value(ctxKey{}).(proxied)
	return ok && p.https
}

// wsURL and boshURL are the announced URLs.
func (s *Server) urls() (ws, bosh string) {
	base := s.BaseURL()
	if base == "" {
		return "", ""
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", ""
	}
	if s.cfg.ServeStream != nil {
		w := *u
		w.Scheme = map[string]string{"https": "wss", "http": "ws"}[u.Scheme]
		w.Path = strings.TrimSuffix(u.Path, "/") + "/xmpp-websocket"
		ws = w.String()
	}
	if s.cfg.BOSH != nil {
		bosh = base + "/http-bind"
	}
	return ws, bosh
}

// hostMeta serves XEP-0156's XRD document.
func (s *Server) hostMeta(w http.ResponseWriter, r *http.Request) {
	ws, bosh := s.urls()
	var b strings.Builder
	b.WriteString("<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n")
	if ws != "" {
		b.WriteString("  <Link rel='urn:xmpp:alt-connections:websocket' href='" + xmlEscape(ws) + "'/>\n")
	}
	if bosh != "" {
		b.WriteString("  <Link rel='urn:xmpp:alt-connections:xbosh' href='" + xmlEscape(bosh) + "'/>\n")
	}
	b.WriteString("</XRD>\n")
	w.Header().Set("Content-Type", "application/xrd+xml; charset=utf-8")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write([]byte(b.String()))
}

// hostMetaJSON serves XEP-0156's JSON document.
func (s *Server) hostMetaJSON(w http.ResponseWriter, r *http.Request) {
	ws, bosh := s.urls()
	type link struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
	}
	doc := struct {
		Links []link `json:"links"`
	}{Links: []link{}}
	if ws != "" {
		doc.Links = append(doc.Links, link{"urn:xmpp:alt-connections:websocket", ws})
	}
	if bosh != "" {
		doc.Links = append(doc.Links, link{"urn:xmpp:alt-connections:xbosh", bosh})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_ = json.NewEncoder(w).Encode(doc)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&apos;", "<", "&lt;", ">", "&gt;").Replace(s)
}
