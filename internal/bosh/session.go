package bosh

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/transport"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// ErrInactive is what Next returns once a BOSH session ended because its
// client made no request for the inactivity period (XEP-0124 §10): an
// I/O error, as for a TCP connection that dropped, so a stream-managed
// XMPP session is detached rather than ended.
var ErrInactive = fmt.Errorf("bosh: session inactive: %w", net.ErrClosed)

// errGone is what Next and Write return once the session was killed or
// terminated.
var errGone = fmt.Errorf("bosh: session closed: %w", net.ErrClosed)

// errDeadline matches os.ErrDeadlineExceeded (stream.FromReadError).
var errDeadline = fmt.Errorf("bosh: read: %w", os.ErrDeadlineExceeded)

// itemKind is what the XMPP stream's reader gets next.
type itemKind int

const (
	itemElement itemKind = iota
	itemOpen             // session creation or xmpp:restart
	itemEnd              // type='terminate' from the client
)

type item struct {
	kind itemKind
	el   *xmlstream.Element
	open transport.Open
	size int
}

// pending is one HTTP request of the session waiting for its response.
type pending struct {
	rid uint64
	req *request    // not processed yet (it came before its predecessors)
	ch  chan []byte // the response; nil means superseded by a resent request
	// answered is set once the HTTP request was answered (or gave up)
	// while its payload is still to be processed in rid order.
	answered bool
}

// cached is a response kept for a resent request (XEP-0124 §14.3).
type cached struct {
	rid  uint64
	body []byte
}

// session is one BOSH session and the transport.Transport of its XMPP
// stream. The XMPP stream's reader calls ReadOpen, Next, Restart and
// SetReadDeadline; its queue's writer calls Write and Close; HTTP request
// goroutines call handle and wait on their pending response.
type session struct {
	h          *Handler
	sid        string
	log        *slog.Logger
	wait       time.Duration
	inactivity time.Duration
	hold       int
	requests   int
	polling    bool // hold is 0 (XEP-0124 §12)
	ver        string
	content    string
	tls        *tls.ConnectionState
	secure     bool
	remote     net.Addr
	open       transport.Open // the session creation request's

	wake chan struct{} // cap 1: there is input (or an end) for the reader

	mu sync.Mutex
	// Input.
	lastRID  uint64 // the last rid processed in order
	early    map[uint64]*pending
	in       []item
	inBytes  int
	readErr  error // returned once in is empty
	deadline time.Time
	// Output.
	held      []*pending // processed requests waiting for a response, oldest first
	buf       []byte     // payload for the next response
	opened    bool       // the XMPP stream's header was written
	first     []byte     // session creation attributes not sent yet
	firstSent bool       // the first response went out
	cache     []cached   // the last responses, at most requests of them
	drained   chan struct{}
	lastEmpty time.Time // a polling session's last empty request answered empty
	// End.
	ended    bool   // no more input or output: terminated, killed or inactive
	term     []byte // the terminate body for the next request, until delivered
	termCond string // its condition, for requests after that
	idleAt   time.Time
	idleFor  time.Duration // the inactivity period now (a pause changes it)
	idle     *time.Timer
	removed  bool
	streamEr []byte // a <stream:error/> written before the stream's end
}

// pollingInterval is the shortest interval between two empty requests of
// a polling session (XEP-0124 §12 'polling').
const pollingInterval = 2 * time.Second

var _ transport.Transport = (*session)(nil)

// ReadOpen returns the stream opening carried by the session creation
// request or by a restart request (XEP-0206 §5).
func (s *session) ReadOpen() (transport.Open, error) {
	it, err := s.next()
	if err != nil {
		return transport.Open{}, err
	}
	switch it.kind {
	case itemOpen:
		return it.open, nil
	case itemEnd:
		return transport.Open{}, xmlstream.ErrStreamEnd
	}
	return transport.Open{}, &stream.Error{Condition: stream.BadFormat, Text: "expected a request with xmpp:restart='true'"}
}

// Next returns the next element of the request bodies, in rid order.
func (s *session) Next() (*xmlstream.Element, error) {
	it, err := s.next()
	if err != nil {
		return nil, err
	}
	switch it.kind {
	case itemEnd:
		s.mu.Lock()
		s.readErr = xmlstream.ErrStreamEnd
		s.mu.Unlock()
		return nil, xmlstream.ErrStreamEnd
	case itemOpen:
		return nil, &stream.Error{Condition: stream.BadFormat, Text: "xmpp:restart='true' without a stream restart"}
	}
	return it.el, nil
}

// next waits for the reader's next item.
func (s *session) next() (item, error) {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if len(s.in) > 0 {
			it := s.in[0]
			s.in[0] = item{}
			s.in = s.in[1:]
			if len(s.in) == 0 {
				s.in = nil
			}
			s.inBytes -= it.size
			s.mu.Unlock()
			return it, nil
		}
		if s.readErr != nil {
			err := s.readErr
			s.mu.Unlock()
			return item{}, err
		}
		d := s.deadline
		s.mu.Unlock()
		var tc <-chan time.Time
		if !d.IsZero() {
			left := time.Until(d)
			if left <= 0 {
				return item{}, errDeadline
			}
			if t == nil {
				t = time.NewTimer(left)
			} else {
				t.Reset(left)
			}
			tc = t.C
		}
		select {
		case <-s.wake:
		case <-tc:
			return item{}, errDeadline
		}
	}
}

// Restart does nothing: the next ReadOpen takes the restart request.
func (s *session) Restart() {}

// SetReadDeadline bounds the next ReadOpen and Next.
func (s *session) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	s.notify()
	return nil
}

// AppendOpen appends a stream header, which Write turns into the session
// creation response's attributes (the first time) or nothing.
func (s *session) AppendOpen(dst []byte, h stream.Header) []byte {
	return h.AppendXML(dst, stanza.NSClient)
}

// AppendClose appends </stream:stream>, which Write turns into the
// terminate body.
func (s *session) AppendClose(dst []byte) []byte { return append(dst, "</stream:stream>"...) }

// Write takes whole top-level elements for the client and answers the
// oldest held request with them. It waits (up to the handler's write
// timeout) while more than the output limit is waiting for a request.
func (s *session) Write(p []byte) error {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return errGone
	}
	if err := s.output(p); err != nil {
		s.mu.Unlock()
		return err
	}
	s.flush()
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for len(s.buf) > s.h.maxBuffered && !s.ended {
		if s.drained == nil {
			s.drained = make(chan struct{})
		}
		ch := s.drained
		s.mu.Unlock()
		if t == nil {
			t = time.NewTimer(s.h.cfg.WriteTimeout)
		}
		select {
		case <-ch:
		case <-t.C:
			return fmt.Errorf("bosh: write: no request for %s: %w", s.h.cfg.WriteTimeout, os.ErrDeadlineExceeded)
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return nil
}

// output adds what the stream wrote to the next response; s.mu is held.
func (s *session) output(p []byte) error {
	closed := false
	for {
		kind, piece, rest, err := transport.NextPiece(p)
		if err != nil {
			return err
		}
		if piece == nil {
			break
		}
		p = rest
		switch kind {
		case transport.PieceOpen:
			if !s.opened {
				s.opened = true
				s.first = s.headerAttrs(s.first, piece)
			}
		case transport.PieceClose:
			closed = true
		case transport.PieceElement:
			if string(transport.TagName(piece)) == "stream:error" {
				s.streamEr = append(s.streamEr[:0], piece...)
				continue
			}
			s.buf = transport.AppendClientElement(s.buf, piece)
		}
	}
	if closed {
		cond := ""
		var payload []byte
		if s.streamEr != nil {
			cond, payload = errorCondition(s.streamEr)
		}
		s.end(cond, payload, errGone)
	}
	return nil
}

// errorCondition maps a <stream:error/> to the terminate condition
// (XEP-0124 §17.2, XEP-0206 §7) and what the terminate body carries.
func errorCondition(b []byte) (string, []byte) {
	el, err := xmlstream.ParseElement(b, stanza.NSClient)
	if err != nil {
		return "remote-stream-error", b
	}
	se, err := stream.ParseError(el)
	if err != nil {
		return "remote-stream-error", b
	}
	switch se.Condition {
	case stream.HostGone, stream.HostUnknown, stream.ImproperAddressing, stream.InternalServerError,
		stream.PolicyViolation, stream.RemoteConnectionFailed, stream.SystemShutdown, stream.UndefinedCondition:
		return string(se.Condition), nil
	}
	return "remote-stream-error", b
}

// Close ends the session after the last Write: a client still polling
// gets a terminate body.
func (s *session) Close() {
	s.mu.Lock()
	if !s.ended {
		cond, payload := "", []byte(nil)
		if s.streamEr != nil {
			cond, payload = errorCondition(s.streamEr)
		}
		s.end(cond, payload, errGone)
	}
	s.mu.Unlock()
}

// Kill ends the session at once (a resumption took it over, a shutdown
// gave up waiting).
func (s *session) Kill() {
	s.mu.Lock()
	if !s.ended {
		s.end("remote-connection-failed", nil, errGone)
	}
	s.mu.Unlock()
}

// TLS returns the TLS state of the session creation request.
func (s *session) TLS() *tls.ConnectionState { return s.tls }

// Secure reports whether the session creation request came over TLS, to
// ode or to a trusted proxy.
func (s *session) Secure() bool { return s.secure }

// RemoteAddr returns the client's address.
func (s *session) RemoteAddr() net.Addr { return s.remote }

// Kind names the transport in logs.
func (s *session) Kind() string { return "bosh" }

// notify wakes the reader.
func (s *session) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// push queues an item for the reader; s.mu is held.
func (s *session) push(it item) {
	s.in = append(s.in, it)
	s.inBytes += it.size
	s.notify()
}

// handle takes a request of the session: it returns the response at once
// (with its HTTP status), or the pending request to wait on.
func (s *session) handle(req *request) (resp []byte, status int, p *pending, ch chan []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return s.takeTerm(), 200, nil, nil
	}
	switch {
	case req.rid <= s.lastRID:
		// A resent request (XEP-0124 §14.3).
		for _, c := range s.cache {
			if c.rid == req.rid {
				return c.body, 200, nil, nil
			}
		}
		for _, h := range s.held {
			if h.rid == req.rid {
				return nil, 0, h, s.supersede(h)
			}
		}
		s.log.Debug("bosh: rid repeated and no longer buffered", "rid", req.rid)
		s.end("item-not-found", nil, ErrInactive)
		return s.takeTerm(), 200, nil, nil
	case req.rid > s.lastRID+uint64(s.window(req)):
		s.log.Debug("bosh: rid outside the window", "rid", req.rid, "last", s.lastRID)
		s.end("item-not-found", nil, ErrInactive)
		return s.takeTerm(), 200, nil, nil
	}
	if old, ok := s.early[req.rid]; ok && !old.answered {
		return nil, 0, old, s.supersede(old)
	}
	p = &pending{rid: req.rid, req: req, ch: make(chan []byte, 1)}
	if req.rid != s.lastRID+1 {
		if s.early == nil {
			s.early = make(map[uint64]*pending)
		}
		s.early[req.rid] = p
		s.stopIdle()
		return nil, 0, p, p.ch
	}
	s.process(p)
	for !s.ended {
		q, ok := s.early[s.lastRID+1]
		if !ok {
			break
		}
		delete(s.early, q.rid)
		s.process(q)
	}
	if !s.ended {
		s.flush()
	}
	return nil, 0, p, p.ch
}

// window is how far past the last rid req's may be: 'requests', and one
// more to pause or terminate (XEP-0124 §11).
func (s *session) window(req *request) int {
	if req.typ == "terminate" || req.pause >= 0 {
		return s.requests + 1
	}
	return s.requests
}

// supersede makes a resent request take the place of the one it repeats,
// whose HTTP request gets an empty body, and returns the channel of its
// response; s.mu is held.
func (s *session) supersede(old *pending) chan []byte {
	close(old.ch)
	old.ch = make(chan []byte, 1)
	return old.ch
}

// process handles a request in rid order; s.mu is held.
func (s *session) process(p *pending) {
	req := p.req
	p.req = nil
	s.lastRID = p.rid
	s.idleFor = s.inactivity
	if s.polling && len(req.payload) == 0 && req.pause < 0 && req.typ == "" && !req.restart && !s.lastEmpty.IsZero() &&
		time.Since(s.lastEmpty) < pollingInterval {
		// XEP-0124 §12: two empty polls closer than 'polling'.
		s.end("policy-violation", nil, ErrInactive)
		s.answer(p, s.takeTerm())
		return
	}
	for i, e := range req.payload {
		size := 0
		if i == len(req.payload)-1 {
			size = req.size
		}
		s.push(item{kind: itemElement, el: e, size: size})
	}
	switch {
	case req.typ == "terminate":
		// XEP-0124 §13: the payload goes to the server, then the end.
		s.push(item{kind: itemEnd})
		s.end("", nil, nil)
		s.answer(p, s.takeTerm())
		return
	case req.restart:
		// The restart repeats the stream's attributes, or may leave
		// them out.
		open := openOf(req)
		if open.Header.To == "" {
			open.Header.To = s.open.Header.To
		}
		if open.Header.Lang == "" {
			open.Header.Lang = s.open.Header.Lang
		}
		if open.Header.Version == "" {
			open.Header.Version = s.open.Header.Version
		}
		s.push(item{kind: itemOpen, open: open})
	case req.pause >= 0:
		// XEP-0124 §10: answer everything now, the pause request empty.
		pause := min(time.Duration(req.pause)*time.Second, s.h.cfg.MaxPause)
		for _, h := range s.held {
			s.answer(h, s.body(s.takeBuf()))
		}
		s.held = nil
		s.answer(p, s.body(nil))
		s.idleFor = pause
		return
	}
	if s.inBytes > s.h.maxUnread {
		// The stream does not read what the client sends.
		s.end("policy-violation", nil, &stream.Error{Condition: stream.PolicyViolation, Text: "too much unread input"})
		s.answer(p, s.takeTerm())
		return
	}
	if p.answered {
		return
	}
	s.held = append(s.held, p)
}

// flush answers held requests: the oldest with the buffered payload, and
// any beyond 'hold' (empty). The creation request waits for the stream's
// header. s.mu is held.
func (s *session) flush() {
	for len(s.held) > 0 && s.opened && (len(s.buf) > 0 || len(s.held) > s.hold) {
		p := s.held[0]
		s.held[0] = nil
		s.held = s.held[1:]
		payload := s.takeBuf()
		if s.polling && len(payload) == 0 {
			s.lastEmpty = time.Now()
		} else {
			s.lastEmpty = time.Time{}
		}
		s.answer(p, s.body(payload))
	}
	if len(s.held) == 0 {
		s.held = nil
		s.startIdle()
	}
}

// takeBuf returns the buffered payload and empties the buffer; s.mu is
// held.
func (s *session) takeBuf() []byte {
	b := s.buf
	s.buf = nil
	if s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
	return b
}

// answer gives p its response and keeps it for a resent request; s.mu is
// held.
func (s *session) answer(p *pending, body []byte) {
	if p.answered {
		return
	}
	p.answered = true
	s.cache = append(s.cache, cached{rid: p.rid, body: body})
	if len(s.cache) > s.requests {
		s.cache = append(s.cache[:0], s.cache[len(s.cache)-s.requests:]...)
	}
	p.ch <- body
}

// giveUp answers p, whose wait ended or whose client went away, empty,
// unless it was answered or superseded (ch is no longer its channel);
// s.mu is not held.
func (s *session) giveUp(p *pending, ch chan []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.answered || p.ch != ch {
		return
	}
	for i, h := range s.held {
		if h == p {
			s.held = append(s.held[:i], s.held[i+1:]...)
			break
		}
	}
	// A request not processed yet (p.req) keeps its place: its payload
	// still goes in rid order.
	s.answer(p, s.body(nil))
	if len(s.held) == 0 && !s.ended {
		s.held = nil
		s.startIdle()
	}
}

// end ends the session; s.mu is held. cond and payload make the terminate
// body ("" is a clean end); readErr is what the reader gets once it has
// read what is queued (nil when an itemEnd was queued).
func (s *session) end(cond string, payload []byte, readErr error) {
	if s.ended {
		return
	}
	s.ended = true
	pl := append(s.takeBuf(), payload...)
	s.termCond = cond
	s.term = s.wrapFirst(terminateBody(cond, pl))
	if readErr != nil && s.readErr == nil {
		s.readErr = readErr
		s.notify()
	}
	for _, p := range s.held {
		s.answer(p, s.takeTerm())
	}
	s.held = nil
	for _, p := range s.early {
		s.answer(p, s.takeTerm())
	}
	s.early = nil
	if s.term != nil {
		// Kept for the client's next request, within the inactivity
		// period.
		s.idleFor = s.inactivity
		s.startIdle()
	}
}

// takeTerm returns the terminate body: the first time with what it
// carries (then the session leaves the handler's table), afterwards only
// its condition. s.mu is held.
func (s *session) takeTerm() []byte {
	b := s.term
	if b == nil {
		return terminateBody(s.termCond, nil)
	}
	s.term = nil
	s.stopIdle()
	s.remove()
	return b
}

// remove takes the session out of the handler's table; s.mu is held.
func (s *session) remove() {
	if s.removed {
		return
	}
	s.removed = true
	s.h.remove(s)
}

// startIdle starts the inactivity timer; s.mu is held.
func (s *session) startIdle() {
	if s.removed || len(s.early) > 0 {
		return
	}
	d := s.idleFor
	s.idleAt = time.Now().Add(d)
	if s.idle == nil {
		s.idle = time.AfterFunc(d, s.expire)
	} else {
		s.idle.Reset(d)
	}
}

// stopIdle stops the inactivity timer; s.mu is held.
func (s *session) stopIdle() {
	s.idleAt = time.Time{}
	if s.idle != nil {
		s.idle.Stop()
	}
}

// expire ends a session without requests for the inactivity period.
func (s *session) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idleAt.IsZero() || len(s.held) > 0 || s.removed {
		return
	}
	if left := time.Until(s.idleAt); left > 0 {
		s.idle.Reset(left)
		return
	}
	if !s.ended {
		s.log.Info("bosh session inactive")
		s.end("", nil, ErrInactive)
	}
	s.term = nil
	s.remove()
}

// body wraps payload in a response body; s.mu is held.
func (s *session) body(payload []byte) []byte {
	b := make([]byte, 0, 128+len(payload)+len(s.first))
	b = append(b, "<body xmlns='"+NS+"'"...)
	b = append(b, s.first...)
	s.first = nil
	s.firstSent = true
	if len(payload) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, " xmlns:stream='"+stream.NS+"'>"...)
	b = append(b, payload...)
	return append(b, "</body>"...)
}

// wrapFirst adds the creation attributes to a terminate body if they
// were not sent yet; s.mu is held.
func (s *session) wrapFirst(b []byte) []byte {
	if len(s.first) == 0 {
		return b
	}
	n := len("<body xmlns='" + NS + "'")
	out := make([]byte, 0, len(b)+len(s.first))
	out = append(out, b[:n]...)
	out = append(out, s.first...)
	s.first = nil
	s.firstSent = true
	return append(out, b[n:]...)
}

// creationAttrs returns the session creation response's attributes
// (XEP-0124 §7.2, XEP-0206 §4) but those of the stream header.
func (s *session) creationAttrs() []byte {
	b := make([]byte, 0, 400)
	attr := func(name, v string) {
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, "='"...)
		b = xmlstream.AppendEscaped(b, v, true)
		b = append(b, '\'')
	}
	attr("sid", s.sid)
	attr("wait", strconv.Itoa(int(s.wait/time.Second)))
	attr("requests", strconv.Itoa(s.requests))
	attr("hold", strconv.Itoa(s.hold))
	attr("inactivity", strconv.Itoa(int(s.inactivity/time.Second)))
	attr("polling", strconv.Itoa(int(pollingInterval/time.Second)))
	attr("maxpause", strconv.Itoa(int(s.h.cfg.MaxPause/time.Second)))
	attr("ver", s.ver)
	attr("secure", "true")
	attr("xmpp:restartlogic", "true")
	return append(b, " xmlns:xmpp='"+NSXBOSH+"'"...)
}

// headerAttrs appends to b the attributes of the first response taken
// from the stream header hdr written by the XMPP stream: 'from', 'authid'
// (the stream id) and xmpp:version; s.mu is held.
func (s *session) headerAttrs(b, hdr []byte) []byte {
	if s.firstSent {
		b = append(b, " xmlns:xmpp='"+NSXBOSH+"'"...)
	}
	// The header's values are already escaped.
	transport.Attrs(hdr, func(name, v []byte) {
		var to string
		switch string(name) {
		case "from":
			to = "from"
		case "id":
			to = "authid"
		case "version":
			to = "xmpp:version"
		default:
			return
		}
		b = append(b, ' ')
		b = append(b, to...)
		b = append(b, "='"...)
		b = append(b, v...)
		b = append(b, '\'')
	})
	return b
}

// terminateBody returns <body type='terminate'/> with cond ("" for none)
// and payload.
func terminateBody(cond string, payload []byte) []byte {
	b := make([]byte, 0, 128+len(payload))
	b = append(b, "<body xmlns='"+NS+"' type='terminate'"...)
	if cond != "" {
		b = append(b, " condition='"...)
		b = append(b, cond...)
		b = append(b, '\'')
	}
	if len(payload) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, " xmlns:stream='"+stream.NS+"'>"...)
	b = append(b, payload...)
	return append(b, "</body>"...)
}

// openOf returns the stream opening a creation or restart request
// carries.
func openOf(req *request) transport.Open {
	v := req.xmppVersion
	return transport.Open{Header: stream.Header{To: req.to, Lang: req.lang, Version: v}, ContentNS: stanza.NSClient}
}
