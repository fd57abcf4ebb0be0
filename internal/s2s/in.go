package s2s

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/metrics"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// maxDialbackPending bounds the dialback verifications one inbound stream
// may have in flight.
const maxDialbackPending = 8

// inStream is a stream opened by another server. The goroutine running
// serve owns every field without a comment saying otherwise.
type inStream struct {
	m         *Manager
	c         *streamConn
	directTLS bool

	id       string // our stream id of the current stream
	local    string // the domain the peer's header addressed
	remote   string // the domain the peer's header claimed, or ""
	sasl     bool   // SASL EXTERNAL succeeded
	needOpen bool   // a stream header is expected next
	pending  chan struct{}

	mu     sync.Mutex
	authed map[string]map[string]bool // remote domain → local domains (guarded by mu)

	timer metrics.RouteTimer // times a sample of the stanzas
}

func newInStream(m *Manager, nc net.Conn, directTLS bool) *inStream {
	log := m.log.With("dir", "in", "remote_addr", nc.RemoteAddr().String())
	return &inStream{
		m: m, c: newStreamConn(m, nc, log), directTLS: directTLS, needOpen: true,
		pending: make(chan struct{}, maxDialbackPending),
		authed:  make(map[string]map[string]bool),
	}
}

// authorize records that remote is authenticated for traffic to local.
func (s *inStream) authorize(remote, local string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.authed) == 0 {
		metrics.S2SStream(metrics.In, metrics.S2SConnecting, metrics.S2SEstablished)
	}
	if s.authed[remote] == nil {
		s.authed[remote] = make(map[string]bool)
	}
	s.authed[remote][local] = true
}

// authorized reports whether stanzas from remote to local are accepted.
func (s *inStream) authorized(remote, local string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authed[remote][local]
}

// anyAuthorized reports whether any domain authenticated on the stream.
func (s *inStream) anyAuthorized() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.authed) > 0
}

// serve runs the stream to its end.
func (s *inStream) serve() {
	start := time.Now()
	reason := ""
	metrics.S2SStream(metrics.In, metrics.S2SNone, metrics.S2SConnecting)
	defer func() {
		if s.anyAuthorized() {
			metrics.S2SStream(metrics.In, metrics.S2SEstablished, metrics.S2SNone)
		} else {
			metrics.S2SStream(metrics.In, metrics.S2SConnecting, metrics.S2SNone)
		}
		if v := recover(); v != nil {
			s.c.log.Error("panic in server stream", "panic", v)
			s.c.closeWith(&stream.Error{Condition: stream.InternalServerError})
			reason = "internal error"
		}
		s.c.closeWith(nil)
		s.c.log.Info("inbound stream closed", "remote", s.remote, "reason", reason, "duration", time.Since(start).Round(time.Millisecond))
	}()
	s.c.local.Store(s.m.conf().Router.DefaultDomain())
	if s.directTLS {
		if err := s.c.handshake(s.m.ctx, s.m.serverTLS(true), false); err != nil {
			reason = "tls handshake: " + err.Error()
			return
		}
	}
	s.c.r = xmlstream.NewReader(s.c.nc, xmlstream.Limits{MaxElementBytes: s.m.conf().MaxStanzaBytes})
	reason = s.run()
}

// run reads until the stream ends and returns why it ended.
func (s *inStream) run() string {
	ctx := s.m.ctx
	// A stream that authenticates nobody (a dialback verification, or a
	// peer that never finishes) lives at most twice connect_timeout: time
	// for the negotiation and one dialback verification.
	authBy := time.Now().Add(2 * s.m.conf().ConnectTimeout)
	for {
		timeout := s.m.conf().IdleTimeout
		if !s.anyAuthorized() {
			timeout = min(s.m.conf().ConnectTimeout, time.Until(authBy))
			if timeout <= 0 {
				s.c.closeWith(&stream.Error{Condition: stream.ConnectionTimeout, Text: "not authenticated in time"})
				return "not authenticated in time"
			}
		}
		if s.needOpen {
			s.c.setReadTimeout(timeout)
			if err := s.open(); err != nil {
				return s.fail(err)
			}
			continue
		}
		e, err := s.c.next(timeout)
		if err != nil {
			if errors.Is(err, xmlstream.ErrStreamEnd) {
				return "closed by peer"
			}
			return s.fail(err)
		}
		if err := s.handle(ctx, e); err != nil {
			return s.fail(err)
		}
	}
}

// peerError is a stream error the peer sent.
type peerError struct{ se *stream.Error }

func (e *peerError) Error() string { return fmt.Sprintf("stream error from peer: %v", e.se) }

// fail closes the stream with the stream error err calls for.
func (s *inStream) fail(err error) string {
	var pe *peerError
	if errors.As(err, &pe) {
		s.c.closeWith(nil)
		return pe.Error()
	}
	se := stream.FromReadError(err)
	if se == nil {
		s.c.kill()
		return "connection lost: " + err.Error()
	}
	if se.Condition == stream.ConnectionTimeout && s.anyAuthorized() {
		// Idle: close without an error.
		s.c.closeWith(nil)
		return "idle"
	}
	s.c.closeWith(se)
	return "stream error " + string(se.Condition) + ": " + err.Error()
}

// open reads the peer's stream header and answers with ours and the
// features of the current state.
func (s *inStream) open() error {
	s.c.headerOut.Store(false)
	start, err := s.c.r.ReadStart()
	if err != nil {
		return err
	}
	h, err := stream.ParseHeader(start)
	if err != nil {
		return err
	}
	if s.c.r.DefaultNS() != stanza.NSServer {
		return &stream.Error{Condition: stream.InvalidNamespace, Text: "server streams use jabber:server"}
	}
	to := h.To
	if to == "" {
		to = s.m.conf().Router.DefaultDomain()
	}
	d, err := jid.Parse(to)
	if err != nil || !d.IsDomain() || !s.m.hosts(d.DomainString()) {
		return &stream.Error{Condition: stream.HostUnknown}
	}
	if s.local != "" && d.DomainString() != s.local {
		return &stream.Error{Condition: stream.HostUnknown, Text: "the stream restarted for another domain"}
	}
	s.local = d.DomainString()
	s.c.local.Store(s.local)
	if h.From != "" {
		f, err := jid.Parse(h.From)
		if err != nil || !f.IsDomain() {
			return &stream.Error{Condition: stream.InvalidFrom}
		}
		if s.m.refused(f.DomainString()) {
			return &stream.Error{Condition: stream.PolicyViolation, Text: "federation with this domain is refused"}
		}
		s.remote = f.DomainString()
	}
	v, err := stream.NegotiateVersion(h.Version)
	if err != nil {
		return err
	}
	if v == "" {
		// No version: no STARTTLS, which this server requires.
		return &stream.Error{Condition: stream.UnsupportedVersion, Text: "XMPP 1.0 streams with TLS are required"}
	}
	s.id = newID()
	if err := s.c.writeHeader(s.local, s.remote, s.id); err != nil {
		return err
	}
	s.needOpen = false
	return s.c.write(s.features())
}

// features returns <stream:features/> for the current state.
func (s *inStream) features() []byte {
	b := []byte("<stream:features>")
	switch {
	case !s.c.tlsOn:
		b = append(b, "<starttls xmlns='"+stream.NSTLS+"'><required/></starttls>"...)
	default:
		if !s.sasl && s.remote != "" && VerifyPeer(s.c.state.PeerCertificates, s.remote, s.m.conf().Roots) == nil {
			b = append(b, "<mechanisms xmlns='"+stream.NSSASL+"'><mechanism>EXTERNAL</mechanism></mechanisms>"...)
		}
		if s.m.conf().Dialback {
			b = append(b, "<dialback xmlns='"+NSDialbackFeature+"'><errors/></dialback>"...)
		}
	}
	return append(b, "</stream:features>"...)
}

// handle processes one top-level element.
func (s *inStream) handle(ctx context.Context, e *xmlstream.Element) error {
	switch {
	case e.Name.Space == stream.NS && e.Name.Local == "error":
		// The peer ends the stream (RFC 6120 §4.9): no error in return.
		se, _ := stream.ParseError(e)
		return &peerError{se}
	case e.Name.Space == stream.NSTLS && e.Name.Local == "starttls":
		return s.startTLS()
	case !s.c.tlsOn:
		// RFC 6120 §5.3.1: nothing but STARTTLS before TLS, which is
		// required.
		return &stream.Error{Condition: stream.PolicyViolation, Text: "STARTTLS is required"}
	case e.Name.Space == stream.NSSASL && e.Name.Local == "auth":
		return s.auth(e)
	case e.Name.Space == stream.NSSASL:
		return s.saslFailure("malformed-request")
	case isDB(e, "result"):
		return s.dialbackResult(e)
	case isDB(e, "verify"):
		return s.dialbackVerify(e)
	case e.Name.Space == stanza.NSServer && stanza.IsStanza(e):
		return s.stanza(ctx, e)
	}
	return &stream.Error{Condition: stream.UnsupportedStanzaType}
}

// startTLS answers <starttls/> and upgrades the stream (RFC 6120 §5.4).
func (s *inStream) startTLS() error {
	if s.c.tlsOn {
		_ = s.c.write([]byte("<failure xmlns='" + stream.NSTLS + "'/>"))
		return &stream.Error{Condition: stream.UnsupportedFeature}
	}
	if s.c.r.Buffered() > 0 {
		return &stream.Error{Condition: stream.PolicyViolation, Text: "data sent before TLS negotiation"}
	}
	if err := s.c.write([]byte("<proceed xmlns='" + stream.NSTLS + "'/>")); err != nil {
		return err
	}
	if err := s.c.handshake(s.m.ctx, s.m.serverTLS(false), false); err != nil {
		s.c.kill()
		return fmt.Errorf("tls handshake: %w", err)
	}
	s.c.r.Reset(s.c.nc)
	s.needOpen = true
	return nil
}

// auth runs SASL EXTERNAL (XEP-0178): the identity is the authzid, or the
// stream's 'from', and the peer's certificate must be valid for it.
func (s *inStream) auth(e *xmlstream.Element) error {
	if s.sasl {
		return s.saslFailure("malformed-request")
	}
	if e.Attribute("mechanism") != "EXTERNAL" {
		return s.saslFailure("invalid-mechanism")
	}
	identity := s.remote
	switch text := e.Text(); text {
	case "", "=":
	default:
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return s.saslFailure("incorrect-encoding")
		}
		identity = string(b)
	}
	d, err := jid.Parse(identity)
	if identity == "" || err != nil || !d.IsDomain() {
		return s.saslFailure("invalid-authzid")
	}
	identity = d.DomainString()
	if s.remote != "" && identity != s.remote {
		return s.saslFailure("invalid-authzid")
	}
	if err := VerifyPeer(s.c.state.PeerCertificates, identity, s.m.conf().Roots); err != nil {
		s.c.log.Info("sasl external refused", "identity", identity, "err", err)
		return s.saslFailure("not-authorized")
	}
	if err := s.c.write([]byte("<success xmlns='" + stream.NSSASL + "'/>")); err != nil {
		return err
	}
	s.sasl = true
	s.remote = identity
	s.authorize(identity, s.local)
	s.c.log.Info("authenticated", "remote", identity, "local", s.local, "method", "EXTERNAL")
	s.c.r.Reset(s.c.nc)
	s.needOpen = true
	return nil
}

func (s *inStream) saslFailure(cond string) error {
	return s.c.write([]byte("<failure xmlns='" + stream.NSSASL + "'><" + cond + "/></failure>"))
}

// stanza accepts a stanza from an authenticated domain and routes it.
func (s *inStream) stanza(ctx context.Context, e *xmlstream.Element) error {
	if !s.anyAuthorized() {
		return &stream.Error{Condition: stream.NotAuthorized, Text: "authenticate before sending stanzas"}
	}
	fromS, toS := stanza.From(e), stanza.To(e)
	if fromS == "" || toS == "" {
		// RFC 6120 §8.1.1.1, §8.1.2.1: both are required between servers.
		return &stream.Error{Condition: stream.ImproperAddressing}
	}
	from, err := jid.Parse(fromS)
	if err != nil {
		return &stream.Error{Condition: stream.InvalidFrom}
	}
	to, err := jid.Parse(toS)
	if err != nil {
		stanza.TranslateInPlace(e, stanza.NSServer, stanza.NSClient)
		s.m.conf().Router.Bounce(ctx, e, stanza.NewError(stanza.JIDMalformed, ""))
		return nil
	}
	if !s.m.hosts(to.DomainString()) {
		return &stream.Error{Condition: stream.HostUnknown, Text: "this server does not host " + to.DomainString()}
	}
	if !s.authorized(from.DomainString(), to.DomainString()) {
		return &stream.Error{Condition: stream.InvalidFrom, Text: from.DomainString() + " is not authenticated on this stream"}
	}
	stanza.TranslateInPlace(e, stanza.NSServer, stanza.NSClient)
	kind := e.Name.Local
	metrics.S2SIn(kind)
	s.timer.Start()
	s.m.conf().Router.Route(ctx, e)
	s.timer.S2SDone(kind)
	return nil
}

// dialbackResult handles <db:result/> from an initiating server (XEP-0220
// §2.1.2): the key is checked with the sender's authoritative server, in
// the background, and the verdict sent back on this stream.
func (s *inStream) dialbackResult(e *xmlstream.Element) error {
	fromS, toS, key := e.Attribute("from"), e.Attribute("to"), e.Text()
	to, err := jid.Parse(toS)
	if err != nil || !to.IsDomain() || !s.m.hosts(to.DomainString()) {
		return &stream.Error{Condition: stream.HostUnknown}
	}
	from, err := jid.Parse(fromS)
	if err != nil || !from.IsDomain() {
		return &stream.Error{Condition: stream.InvalidFrom}
	}
	local, remote := to.DomainString(), from.DomainString()
	reply := func(typ, cond string) error {
		if cond == "" {
			return s.c.write(appendDB(nil, "result", local, remote, "", typ, ""))
		}
		b := []byte("<db:result from='")
		b = xmlstream.AppendEscaped(b, local, true)
		b = append(b, "' to='"...)
		b = xmlstream.AppendEscaped(b, remote, true)
		b = append(b, "' type='error'><error type='cancel'><"+cond+" xmlns='"+stanza.NSStanzas+"'/></error></db:result>"...)
		return s.c.write(b)
	}
	switch {
	case !s.m.conf().Dialback, s.m.refused(remote):
		return reply("error", "not-allowed")
	case key == "":
		return reply("error", "bad-request")
	case s.authorized(remote, local):
		return reply("valid", "")
	}
	select {
	case s.pending <- struct{}{}:
	default:
		return reply("error", "resource-constraint")
	}
	id := s.id
	s.m.wg.Add(1)
	go func() {
		defer s.m.wg.Done()
		defer func() { <-s.pending }()
		ctx, cancel := context.WithTimeout(s.m.ctx, s.m.conf().ConnectTimeout)
		defer cancel()
		valid, err := s.m.verifyKey(ctx, local, remote, id, key)
		switch {
		case err != nil:
			s.c.log.Warn("dialback verification failed", "remote", remote, "err", err)
			_ = reply("error", "remote-server-not-found")
		case valid:
			s.authorize(remote, local)
			s.c.log.Info("authenticated", "remote", remote, "local", local, "method", "dialback")
			_ = reply("valid", "")
		default:
			s.c.log.Warn("dialback key invalid", "remote", remote)
			_ = reply("invalid", "")
		}
	}()
	return nil
}

// verifyKey asks the authoritative server of remote whether key is the one
// it generated for our stream id (XEP-0220 §2.1.3), over a new stream.
func (m *Manager) verifyKey(ctx context.Context, local, remote, id, key string) (bool, error) {
	c, err := m.connectOut(ctx, local, remote, false)
	if err != nil {
		return false, err
	}
	defer c.closeWith(nil)
	if err := c.write(appendDB(nil, "verify", local, remote, id, "", key)); err != nil {
		return false, err
	}
	for {
		e, err := c.r.Next()
		if err != nil {
			return false, err
		}
		if !isDB(e, "verify") || e.Attribute("id") != id {
			continue
		}
		switch e.Attribute("type") {
		case "valid":
			return true, nil
		case "invalid":
			return false, nil
		default:
			return false, fmt.Errorf("verification error: %s", dbError(e))
		}
	}
}

// dialbackVerify answers <db:verify/> as the authoritative server for one
// of our domains (XEP-0220 §2.1.4).
func (s *inStream) dialbackVerify(e *xmlstream.Element) error {
	receiving, originating, id := e.Attribute("from"), e.Attribute("to"), e.Attribute("id")
	if !s.m.hosts(originating) {
		return &stream.Error{Condition: stream.HostUnknown}
	}
	want := s.m.dialbackKey(receiving, originating, id)
	typ := "invalid"
	if id != "" && subtle.ConstantTimeCompare([]byte(want), []byte(e.Text())) == 1 {
		typ = "valid"
	}
	s.c.log.Info("dialback verify request", "receiving", receiving, "originating", originating, "result", typ)
	return s.c.write(appendDB(nil, "verify", originating, receiving, id, typ, ""))
}
