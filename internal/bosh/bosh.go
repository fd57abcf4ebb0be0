// Package bosh carries XMPP client streams over BOSH: XEP-0124
// (Bidirectional-streams Over Synchronous HTTP) with XEP-0206 (XMPP Over
// BOSH). A BOSH session is a transport.Transport of one XMPP stream, which
// c2s serves like a TCP one (negotiation, SASL, binding, stream
// management): request bodies yield their child elements in rid order,
// and what the stream writes answers the oldest held request.
//
// Implemented: session creation request and response (XEP-0124 §7,
// XEP-0206 §4: from, authid, xmpp:version, xmpp:restartlogic, the first
// response carrying the stream features), payloads and held requests
// (§8: 'hold', 'wait'), inactivity ending the session (§10, so that a
// stream-managed XMPP session is detached as for a dropped TCP
// connection) and 'pause' up to 'maxpause', overactivity for polling
// sessions (§12) and for unread input, client termination (§13), request
// ids (§14: in-order forwarding of out-of-order requests within the
// 'requests' window, item-not-found outside it, resent requests answered
// from the buffer of the last responses), the restart after SASL
// (XEP-0206 §5, xmpp:restart='true'), stream errors as terminal
// conditions (XEP-0206 §7: the XEP-0124 §17.2 condition of the same name,
// else remote-stream-error with the <stream:error/>), HTTP 400 for a
// malformed request and 404 for an unknown sid (§17.1), size limits
// (413).
//
// Left out: key sequencing (§15, optional; sessions run over HTTPS and
// their sid is unpredictable), request and response acknowledgements
// (§9, optional 'ack' and 'report'), multiple streams in one session
// (§16), the overactivity rule for non-polling sessions that send
// 'requests' requests within 'polling' (§11: the window and hold make it
// moot), compression ('accept') and charsets, the 'route' attribute (ode
// is the server), and the legacy script syntax (XEP-0124 Appendix).
package bosh

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/transport"
	"github.com/ode-xmpp/ode/stream"
)

// Config is what a Handler needs. Zero durations and counts take the
// defaults documented on each field.
type Config struct {
	// MaxWait caps how long a request is held waiting for data (the
	// client's 'wait'); default 60s.
	MaxWait time.Duration
	// MaxInactivity is how long a session may have no request held
	// before it ends ('inactivity'); default 60s.
	MaxInactivity time.Duration
	// MaxPause caps a client's 'pause' ('maxpause'); default 120s.
	MaxPause time.Duration
	// MaxRequests is the most requests a client may have open at once
	// ('requests'; 'hold' is at most one less); default 2.
	MaxRequests int
	// MaxBodyBytes bounds one request body (the c2s stanza limit and
	// some slack); default 256 KiB + 8 KiB.
	MaxBodyBytes int
	// MaxSessions bounds the open sessions; default 10000.
	MaxSessions int
	// WriteTimeout bounds how long the stream's writer waits for a
	// request to carry its output once more than MaxBodyBytes of it is
	// waiting; default 30s.
	WriteTimeout time.Duration
	// Serve runs one XMPP stream on t until it ends (c2s.Server's
	// ServeTransport).
	Serve func(t transport.Transport)
	// Log receives the handler's logs; nil discards them.
	Log *slog.Logger
	// TLS returns the TLS state of r's connection; nil means r.TLS.
	TLS func(r *http.Request) *tls.ConnectionState
	// Secure reports whether r came over TLS, to ode or to a trusted
	// proxy; nil means TLS(r) != nil.
	Secure func(r *http.Request) bool
	// RemoteAddr returns the client's address; nil means r.RemoteAddr.
	RemoteAddr func(r *http.Request) net.Addr
}

// Handler serves BOSH sessions at one URL (POST /http-bind).
type Handler struct {
	cfg         Config
	maxBuffered int // output waiting for a request before Write blocks
	maxUnread   int // input the stream has not read before policy-violation

	mu       sync.Mutex
	sessions map[string]*session
	closing  bool
	wg       sync.WaitGroup // Serve goroutines
}

// New returns a handler for cfg.
func New(cfg Config) *Handler {
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 60 * time.Second
	}
	if cfg.MaxInactivity <= 0 {
		cfg.MaxInactivity = 60 * time.Second
	}
	if cfg.MaxPause <= 0 {
		cfg.MaxPause = 120 * time.Second
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = 2
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 256<<10 + 8<<10
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10000
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.TLS == nil {
		cfg.TLS = func(r *http.Request) *tls.ConnectionState { return r.TLS }
	}
	if cfg.Secure == nil {
		tlsOf := cfg.TLS
		cfg.Secure = func(r *http.Request) bool { return tlsOf(r) != nil }
	}
	if cfg.RemoteAddr == nil {
		cfg.RemoteAddr = remoteAddr
	}
	return &Handler{
		cfg:         cfg,
		maxBuffered: cfg.MaxBodyBytes,
		maxUnread:   4 * cfg.MaxBodyBytes,
		sessions:    make(map[string]*session),
	}
}

// remoteAddr parses r.RemoteAddr.
func remoteAddr(r *http.Request) net.Addr {
	if a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		return a
	}
	return &net.TCPAddr{}
}

const page = `<!DOCTYPE html>
<html><head><title>XMPP over BOSH</title></head><body>
<p>This is an XMPP over BOSH endpoint (XEP-0124, XEP-0206). XMPP clients
POST &lt;body/&gt; elements here; there is nothing to see in a browser.</p>
</body></html>
`

// ServeHTTP answers POST requests carrying <body/> elements; GET gets a
// short page saying what the URL is.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodGet, http.MethodHead:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
		return
	case http.MethodOptions:
		w.Header().Set("Allow", "GET, HEAD, POST, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := readBody(w, r, h.cfg.MaxBodyBytes)
	if err != nil {
		var me *http.MaxBytesError
		if errors.As(err, &me) {
			reply(w, http.StatusRequestEntityTooLarge, "", terminateBody("bad-request", nil))
			return
		}
		return // the client went away
	}
	req, err := parseBody(b)
	if err != nil {
		h.cfg.Log.Debug("bosh: bad request", "remote", h.cfg.RemoteAddr(r).String(), "err", err)
		reply(w, http.StatusBadRequest, "", terminateBody("bad-request", nil))
		return
	}
	if req.sid == "" {
		h.create(w, r, req)
		return
	}
	h.mu.Lock()
	s := h.sessions[req.sid]
	h.mu.Unlock()
	if s == nil {
		reply(w, http.StatusNotFound, "", terminateBody("item-not-found", nil))
		return
	}
	s.serve(w, r, req)
}

// readBody reads r's body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, error) {
	if r.ContentLength > int64(limit) {
		return nil, &http.MaxBytesError{Limit: int64(limit)}
	}
	n := 512
	if r.ContentLength > 0 {
		n = int(r.ContentLength) + 1
	}
	buf := make([]byte, 0, n)
	body := http.MaxBytesReader(w, r.Body, int64(limit))
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// reply writes a response body.
func reply(w http.ResponseWriter, status int, content string, b []byte) {
	if content == "" {
		content = "text/xml; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", content)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// create starts a session for a session creation request (XEP-0124 §7.1).
func (h *Handler) create(w http.ResponseWriter, r *http.Request, req *request) {
	if req.typ == "terminate" || req.restart {
		reply(w, http.StatusBadRequest, "", terminateBody("bad-request", nil))
		return
	}
	s := h.newSession(r, req)
	h.mu.Lock()
	switch {
	case h.closing:
		h.mu.Unlock()
		reply(w, http.StatusOK, "", terminateBody("system-shutdown", nil))
		return
	case len(h.sessions) >= h.cfg.MaxSessions:
		h.mu.Unlock()
		h.cfg.Log.Warn("bosh: too many sessions", "remote", s.remote.String(), "max", h.cfg.MaxSessions)
		reply(w, http.StatusOK, "", terminateBody("policy-violation", nil))
		return
	}
	h.sessions[s.sid] = s
	h.wg.Add(1)
	h.mu.Unlock()
	s.log.Debug("bosh session created", "wait", s.wait, "hold", s.hold)

	s.mu.Lock()
	p := &pending{rid: req.rid, ch: make(chan []byte, 1)}
	s.lastRID = req.rid
	s.push(item{kind: itemOpen, open: s.open})
	s.held = append(s.held, p)
	ch := p.ch
	s.mu.Unlock()
	go func() {
		defer h.wg.Done()
		h.cfg.Serve(s)
		s.Kill()
	}()
	s.wait1(w, r, p, ch, max(s.wait, h.cfg.MaxWait))
}

// newSession returns the session a creation request asks for.
func (h *Handler) newSession(r *http.Request, req *request) *session {
	var id [16]byte
	_, _ = rand.Read(id[:])
	s := &session{
		h:          h,
		sid:        hex.EncodeToString(id[:]),
		inactivity: h.cfg.MaxInactivity,
		idleFor:    h.cfg.MaxInactivity,
		requests:   h.cfg.MaxRequests,
		ver:        version(req.ver),
		content:    content(req.content),
		tls:        h.cfg.TLS(r),
		secure:     h.cfg.Secure(r),
		remote:     h.cfg.RemoteAddr(r),
		wake:       make(chan struct{}, 1),
		open:       openOf(req),
	}
	s.wait = h.cfg.MaxWait
	if req.wait >= 0 {
		s.wait = min(time.Duration(req.wait)*time.Second, h.cfg.MaxWait)
	}
	s.hold = 1
	if req.hold >= 0 {
		s.hold = req.hold
	}
	s.hold = min(s.hold, s.requests-1)
	s.polling = s.hold == 0
	s.log = h.cfg.Log.With("component", "bosh", "sid", s.sid, "remote", s.remote.String())
	s.first = s.creationAttrs()
	return s
}

// version returns the BOSH version to answer with: the client's or ours
// (1.11), whichever is lower (XEP-0124 §7.2 'ver').
func version(client string) string {
	const ours = "1.11"
	major, minor, ok := strings.Cut(client, ".")
	mj, err1 := strconv.Atoi(major)
	mn, err2 := strconv.Atoi(minor)
	if !ok || err1 != nil || err2 != nil || mj > 1 || (mj == 1 && mn >= 11) || mj < 1 {
		return ours
	}
	return "1." + strconv.Itoa(mn)
}

// content returns the Content-Type of the responses: the client's
// 'content' when it is XML in UTF-8, else text/xml.
func content(c string) string {
	switch strings.ToLower(strings.ReplaceAll(c, " ", "")) {
	case "text/xml;charset=utf-8", "application/xml;charset=utf-8":
		return c
	}
	return "text/xml; charset=utf-8"
}

// remove takes s out of the table.
func (h *Handler) remove(s *session) {
	h.mu.Lock()
	if h.sessions[s.sid] == s {
		delete(h.sessions, s.sid)
	}
	h.mu.Unlock()
}

// Count returns the number of sessions.
func (h *Handler) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// Shutdown refuses new sessions, ends every session with system-shutdown
// (a held request gets the terminate body, the XMPP stream a
// system-shutdown stream error) and waits for their XMPP streams to end
// or ctx to be done.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	all := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.shutdown()
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serve answers one request of the session.
func (s *session) serve(w http.ResponseWriter, r *http.Request, req *request) {
	resp, status, p, ch := s.handle(req)
	if p == nil {
		reply(w, status, s.content, resp)
		return
	}
	s.wait1(w, r, p, ch, s.wait)
}

// wait1 waits for p's response on ch, for at most wait, and writes it.
func (s *session) wait1(w http.ResponseWriter, r *http.Request, p *pending, ch chan []byte, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	var b []byte
	ok, got := false, false
	select {
	case b, ok = <-ch:
		got = true
	case <-t.C:
	case <-r.Context().Done():
	}
	if !got {
		s.giveUp(p, ch)
		b, ok = <-ch
	}
	if !ok {
		// Superseded by the same request sent again.
		b = []byte("<body xmlns='" + NS + "'/>")
	}
	reply(w, http.StatusOK, s.content, b)
}

// shutdown ends the session with system-shutdown.
func (s *session) shutdown() {
	s.mu.Lock()
	s.end("system-shutdown", nil, &stream.Error{Condition: stream.SystemShutdown})
	s.mu.Unlock()
}
