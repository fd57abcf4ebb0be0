package c2s

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSSASLChannelBinding is XEP-0440's namespace for advertising channel-binding types.
const NSSASLChannelBinding = "urn:xmpp:sasl-cb:0"

// state is how far negotiation has gone.
type state int

const (
	stateStart  state = iota // waiting for a stream header
	stateTLS                 // TLS is on (or not required), not authenticated
	stateAuthed              // authenticated, not bound
	stateBound               // a resource is bound: stanzas flow
)

// conn is one client connection. The reader goroutine (serve) owns every
// field without a comment saying otherwise.
type conn struct {
	srv  *Server
	id   string
	log  *slog.Logger
	tcp  net.Conn
	r    *xmlstream.Reader
	sent bool // our stream header of the current stream was written

	wmu sync.Mutex // guards nc swaps (STARTTLS) and socket writes
	nc  net.Conn   // tcp or a *tls.Conn over it

	// link is this connection's attachment to a queue: its own until a
	// resumption attaches it to the resumed session's.
	link atomic.Pointer[session.Link]
	b    *binding // the session, once bound or resumed
	sm   bool     // stream management is enabled on this stream
	csi  bool     // the client said it is inactive (XEP-0352)

	tlsOn    bool
	tlsState *tls.ConnectionState
	domain   string
	lang     string
	local    string // authenticated localpart
	failures int    // failed credential checks
	attempts int    // failed SASL exchanges of any kind
	state    state

	full   jid.JID // set once, before the session is visible to others
	bound  atomic.Bool
	reason atomic.Value // string: why the stream was closed by us
	// endSession is set when the stream ends in a way that ends its
	// session too (a stream error from us, the client's </stream:stream>)
	// rather than by losing the connection, which detaches a resumable
	// session.
	endSession atomic.Bool

	streamID  string
	headerOut atomic.Bool // our header of the current stream went out (read by Close)
}

// connWriter is a conn as its queue's session.Writer.
type connWriter conn

func (w *connWriter) Write(p []byte) error { return (*conn)(w).writeRaw(p) }
func (w *connWriter) Close()               { (*conn)(w).closeRaw() }

func newConn(s *Server, nc net.Conn, directTLS bool) *conn {
	n := s.nextID.Add(1)
	c := &conn{srv: s, tcp: nc, nc: nc, id: strconv.FormatUint(n, 10)}
	c.log = s.cfg.Log.With("component", "c2s", "conn", c.id, "remote", nc.RemoteAddr().String())
	c.tlsOn = directTLS
	_, l := session.NewQueue(s.cfg.OutboundQueueBytes, (*connWriter)(c))
	c.link.Store(l)
	return c
}

func (c *conn) writeRaw(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	_, err := c.nc.Write(p)
	return err
}

// closeRaw closes the connection after the last write (with a TLS
// close_notify when TLS is on).
func (c *conn) closeRaw() {
	c.wmu.Lock()
	nc := c.nc
	c.wmu.Unlock()
	nc.Close()
}

// kill closes the TCP socket at once, even under a blocked write.
func (c *conn) kill() { c.tcp.Close() }

// l returns the connection's current link to a queue.
func (c *conn) l() *session.Link { return c.link.Load() }

// send enqueues raw bytes for the client, never counted as a stanza.
func (c *conn) send(p []byte) error { return c.l().Send(p) }

// sendElement enqueues an element, serialised in the jabber:client scope.
func (c *conn) sendElement(e *xmlstream.Element) error { return c.l().SendElement(e) }

// serve runs the connection to its end.
func (c *conn) serve() {
	start := time.Now()
	c.log.Info("connection opened", "direct_tls", c.tlsOn)
	var reason string
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("panic in connection", "panic", v)
			c.Close(&stream.Error{Condition: stream.InternalServerError})
			reason = "internal error"
		}
		if r, ok := c.reason.Load().(string); ok && r != "" {
			reason = r
		}
		if c.b != nil {
			c.srv.connEnded(c, reason)
		}
		select {
		case <-c.l().Close(nil):
		case <-time.After(c.srv.cfg.WriteTimeout):
			c.kill()
		}
		c.log.Info("connection closed", "jid", c.full.String(), "reason", reason, "duration", time.Since(start).Round(time.Millisecond))
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if c.tlsOn {
		if err := c.handshake(ctx); err != nil {
			reason = "tls handshake: " + err.Error()
			return
		}
	}
	c.r = xmlstream.NewReader(c.nc, xmlstream.Limits{MaxElementBytes: c.srv.cfg.MaxStanzaBytes})
	reason = c.run(ctx)
}

// handshake runs the server side of TLS on the connection.
func (c *conn) handshake(ctx context.Context) error {
	tc := c.srv.tls
	if c.tlsOn {
		tc = c.srv.dtls
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	t := tls.Server(c.tcp, tc)
	_ = c.tcp.SetDeadline(time.Now().Add(c.srv.cfg.AuthTimeout))
	hctx, cancel := context.WithTimeout(ctx, c.srv.cfg.AuthTimeout)
	defer cancel()
	if err := t.HandshakeContext(hctx); err != nil {
		return err
	}
	_ = c.tcp.SetDeadline(time.Time{})
	st := t.ConnectionState()
	c.tlsState = &st
	c.nc = t
	c.tlsOn = true
	return nil
}

// run reads elements until the stream ends and returns the reason.
func (c *conn) run(ctx context.Context) string {
	for {
		if c.state < stateBound {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.AuthTimeout))
		}
		if !c.sent {
			if err := c.openStream(); err != nil {
				return c.fail(err)
			}
			continue
		}
		if c.state == stateBound && !c.l().Wait(c.srv.cfg.OutboundQueueBytes/2, c.srv.cfg.WriteTimeout) {
			// Backpressure: the client does not read what it asks for.
			return c.fail(&stream.Error{Condition: stream.PolicyViolation, Text: "not reading its stream"})
		}
		e, err := c.r.Next()
		if c.b != nil {
			c.b.sess.Touch()
		}
		if err != nil {
			if errors.Is(err, xmlstream.ErrStreamEnd) {
				c.endSession.Store(true)
				c.l().Close([]byte("</stream:stream>"))
				return "closed by client"
			}
			return c.fail(err)
		}
		if err := c.handle(ctx, e); err != nil {
			return c.fail(err)
		}
	}
}

// fail turns a read or protocol error into the stream error to send, and
// returns the reason to log.
func (c *conn) fail(err error) string {
	se := stream.FromReadError(err)
	if se == nil {
		c.l().Close(nil)
		return "connection lost: " + err.Error()
	}
	c.Close(se)
	return "stream error " + string(se.Condition) + ": " + err.Error()
}

// Close sends the stream error (after our stream header if it was not sent
// yet) and closes the stream, ending its session too; but for
// connection-timeout, which only drops the connection of a resumable
// session. Safe from any goroutine.
func (c *conn) Close(se *stream.Error) {
	if se.Condition == stream.ConnectionTimeout && c.resumable() {
		c.reason.CompareAndSwap(nil, "connection timed out")
		c.kill()
		return
	}
	c.endSession.Store(true)
	c.reason.CompareAndSwap(nil, "stream error "+string(se.Condition))
	var b []byte
	if !c.sentHeader() {
		var id [12]byte
		_, _ = rand.Read(id[:])
		b = stream.Header{From: c.srv.cfg.Router.DefaultDomain(), ID: hex.EncodeToString(id[:]), Version: "1.0"}.AppendXML(b, stanza.NSClient)
	}
	b = se.AppendXML(b)
	b = append(b, "</stream:stream>"...)
	c.l().Close(b)
}

// sentHeader reports whether a stream header went out; read racily from
// other goroutines, where a wrong answer only adds or drops a header on a
// stream being torn down.
func (c *conn) sentHeader() bool { return c.headerOut.Load() }

// openStream reads the client's stream header and answers with ours and
// the features of the current state (RFC 6120 §4.2, §4.3).
func (c *conn) openStream() error {
	c.sent = false
	c.headerOut.Store(false)
	start, err := c.r.ReadStart()
	if err != nil {
		return err
	}
	h, err := stream.ParseHeader(start)
	hdrErr := err
	to := h.To
	if c.domain == "" && hdrErr == nil {
		d, perr := jid.Parse(to)
		switch {
		case to == "" || perr != nil || !d.IsDomain():
			hdrErr = &stream.Error{Condition: stream.HostUnknown}
		case !c.srv.cfg.Router.Hosts(d.DomainString()):
			hdrErr = &stream.Error{Condition: stream.HostUnknown}
		default:
			c.domain = d.DomainString()
		}
	} else if hdrErr == nil {
		if d, perr := jid.Parse(to); perr != nil || d.DomainString() != c.domain {
			hdrErr = &stream.Error{Condition: stream.HostUnknown}
		}
	}
	if hdrErr == nil && c.r.DefaultNS() != stanza.NSClient {
		hdrErr = &stream.Error{Condition: stream.InvalidNamespace}
	}
	version := "1.0"
	if hdrErr == nil {
		v, verr := stream.NegotiateVersion(h.Version)
		switch {
		case verr != nil:
			hdrErr = verr
		case v == "":
			// RFC 6120 §4.7.5: a peer without version 1.0 cannot do SASL.
			hdrErr = &stream.Error{Condition: stream.UnsupportedVersion}
		}
	}
	c.lang = h.Lang
	if c.lang == "" {
		c.lang = "en"
	}
	if hdrErr != nil {
		return hdrErr
	}
	c.newStreamID()
	hdr := stream.Header{From: c.domain, ID: c.streamID, Version: version, Lang: c.lang}
	if h.From != "" {
		hdr.To = h.From
	}
	b := hdr.AppendXML(nil, stanza.NSClient)
	b = c.appendFeatures(b)
	c.sent = true
	c.headerOut.Store(true)
	if c.state == stateStart {
		c.state = stateTLS
		if !c.tlsOn && c.srv.tls != nil && c.srv.cfg.RequireTLS {
			c.state = stateStart // only STARTTLS is allowed
		}
	}
	return c.send(b)
}

func (c *conn) newStreamID() {
	var b [12]byte
	_, _ = rand.Read(b[:])
	c.streamID = hex.EncodeToString(b[:])
}

// appendFeatures writes <stream:features> for the current state.
func (c *conn) appendFeatures(b []byte) []byte {
	b = append(b, "<stream:features>"...)
	switch {
	case c.local == "":
		if !c.tlsOn && c.srv.tls != nil {
			st := xmlstream.NewElement(stream.NSTLS, "starttls")
			if c.srv.cfg.RequireTLS {
				st.Append(xmlstream.NewElement(stream.NSTLS, "required"))
			}
			b = st.AppendXML(b, stanza.NSClient)
		}
		if c.tlsOn || !c.srv.cfg.RequireTLS || c.srv.tls == nil {
			mechs := xmlstream.NewElement(stream.NSSASL, "mechanisms")
			for _, m := range sasl.ServerMechanisms(c.saslConfig(), c.tlsOn) {
				mechs.Append(xmlstream.NewElement(stream.NSSASL, "mechanism").AppendText(m))
			}
			b = mechs.AppendXML(b, stanza.NSClient)
			if p := c.srv.cfg.PreAuth; p != nil {
				if f := p.PreAuthFeature(); f != nil {
					b = f.AppendXML(b, stanza.NSClient)
				}
			}
			if c.tlsState != nil {
				if types := sasl.ChannelBindingTypes(c.tlsState); len(types) > 0 {
					cb := xmlstream.NewElement(NSSASLChannelBinding, "sasl-channel-binding")
					for _, t := range types {
						cb.Append(xmlstream.NewElement(NSSASLChannelBinding, "channel-binding").SetAttr("type", t))
					}
					b = cb.AppendXML(b, stanza.NSClient)
				}
			}
		}
	default:
		b = xmlstream.NewElement(stream.NSBind, "bind").AppendXML(b, stanza.NSClient)
		sess := xmlstream.NewElement(stream.NSSession, "session").Append(xmlstream.NewElement(stream.NSSession, "optional"))
		b = sess.AppendXML(b, stanza.NSClient)
		b = xmlstream.NewElement(session.NSSM, "sm").AppendXML(b, stanza.NSClient)
		b = xmlstream.NewElement(NSCSI, "csi").AppendXML(b, stanza.NSClient)
		for _, f := range c.srv.cfg.Router.StreamFeatures() {
			b = f.AppendXML(b, stanza.NSClient)
		}
	}
	return append(b, "</stream:features>"...)
}

// handle processes one top-level element according to the state.
func (c *conn) handle(ctx context.Context, e *xmlstream.Element) error {
	switch {
	case e.Name.Space == stream.NSTLS && e.Name.Local == "starttls":
		return c.startTLS(ctx)
	case e.Name.Space == stream.NSSASL && e.Name.Local == "auth":
		return c.auth(ctx, e)
	case e.Name.Space == stream.NSSASL:
		// A response or abort outside an exchange.
		return c.saslFailure(sasl.MalformedRequest, "")
	case e.Name.Space == session.NSSM || e.Name.Space == NSCSI:
		if c.state < stateAuthed {
			return &stream.Error{Condition: stream.NotAuthorized, Text: "authenticate first"}
		}
		_, err := c.smElement(ctx, e)
		return err
	}
	if c.state < stateTLS || (c.state == stateTLS && !c.tlsOn && c.srv.cfg.RequireTLS && c.srv.tls != nil) {
		// RFC 6120 §5.3.1: nothing but STARTTLS before TLS when it is required.
		return &stream.Error{Condition: stream.PolicyViolation, Text: "STARTTLS is required"}
	}
	if !stanza.IsStanza(e) || e.Name.Space != stanza.NSClient {
		return &stream.Error{Condition: stream.UnsupportedStanzaType}
	}
	switch c.state {
	case stateTLS:
		if c.srv.cfg.PreAuth != nil && e.Name.Local == "iq" {
			return c.preAuthIQ(ctx, e)
		}
		// RFC 6120 §6.4.1: no stanzas before authentication.
		return &stream.Error{Condition: stream.NotAuthorized}
	case stateAuthed:
		return c.beforeBind(ctx, e)
	}
	return c.stanza(ctx, e)
}

// startTLS answers <starttls/> (RFC 6120 §5.4.2) and upgrades the stream.
func (c *conn) startTLS(ctx context.Context) error {
	if c.tlsOn || c.srv.tls == nil || c.local != "" {
		// RFC 6120 §5.4.2.2: failure then close.
		_ = c.send([]byte("<failure xmlns='" + stream.NSTLS + "'/>"))
		return &stream.Error{Condition: stream.UnsupportedFeature}
	}
	if c.r.Buffered() > 0 {
		// The client sent data before our <proceed/>: it must not (§5.4.3.3).
		return &stream.Error{Condition: stream.PolicyViolation, Text: "data sent before TLS negotiation"}
	}
	if err := c.sendSync([]byte("<proceed xmlns='" + stream.NSTLS + "'/>")); err != nil {
		return err
	}
	if err := c.handshake(ctx); err != nil {
		c.reason.CompareAndSwap(nil, "tls handshake: "+err.Error())
		c.l().Close(nil)
		return io.EOF
	}
	c.r.Reset(c.nc)
	c.state = stateTLS
	c.sent = false
	return nil
}

// sendSync enqueues p and waits until it was written to the socket, for
// the last bytes before a change of layer.
func (c *conn) sendSync(p []byte) error {
	if err := c.send(p); err != nil {
		return err
	}
	if err := c.l().Flush(c.srv.cfg.WriteTimeout); err != nil {
		return io.EOF
	}
	return nil
}

func (c *conn) saslConfig() sasl.ServerConfig {
	cfg := sasl.ServerConfig{
		Lookup:               c.lookupCredential,
		TLS:                  c.tlsState,
		StrictChannelBinding: c.srv.cfg.StrictChannelBinding,
	}
	if c.tlsState != nil {
		if cert := c.serverCert(); cert != nil {
			cfg.ServerCertificate = cert
		}
	}
	return cfg
}

// serverCert returns the DER of the leaf certificate this connection's
// TLS handshake presented.
func (c *conn) serverCert() []byte {
	tc := c.srv.tls
	if tc == nil {
		return nil
	}
	if tc.GetCertificate != nil {
		cert, err := tc.GetCertificate(&tls.ClientHelloInfo{ServerName: c.tlsState.ServerName})
		if err == nil && cert != nil && len(cert.Certificate) > 0 {
			return cert.Certificate[0]
		}
	}
	if len(tc.Certificates) > 0 && len(tc.Certificates[0].Certificate) > 0 {
		return tc.Certificates[0].Certificate[0]
	}
	return nil
}

func (c *conn) lookupCredential(ctx context.Context, username string, h sasl.Hash) (sasl.Credential, error) {
	u, err := jid.New(username, c.domain, "")
	if err != nil {
		return sasl.Credential{}, fmt.Errorf("c2s: username: %w", sasl.ErrUnknownUser)
	}
	cr, err := c.srv.cfg.Accounts.Credential(ctx, u.Local(), c.domain, string(h))
	if err != nil {
		if errors.Is(err, storageNotFound) {
			return sasl.Credential{}, fmt.Errorf("c2s: lookup %s: %w", username, sasl.ErrUnknownUser)
		}
		return sasl.Credential{}, err
	}
	return sasl.Credential{Hash: sasl.Hash(cr.Hash), Salt: cr.Salt, Iterations: cr.Iterations, StoredKey: cr.StoredKey, ServerKey: cr.ServerKey}, nil
}

// auth runs a SASL exchange (RFC 6120 §6.4).
func (c *conn) auth(ctx context.Context, e *xmlstream.Element) error {
	if c.local != "" {
		return c.saslFailure(sasl.MalformedRequest, "")
	}
	if !c.tlsOn && c.srv.tls != nil && c.srv.cfg.RequireTLS {
		return c.saslFailure(sasl.EncryptionRequired, "")
	}
	if c.state != stateTLS {
		return c.saslFailure(sasl.MalformedRequest, "")
	}
	mech := e.Attribute("mechanism")
	offered := false
	for _, m := range sasl.ServerMechanisms(c.saslConfig(), c.tlsOn) {
		if m == mech {
			offered = true
		}
	}
	if !offered {
		if mech == "PLAIN" && !c.tlsOn {
			return c.saslFailure(sasl.EncryptionRequired, "")
		}
		return c.saslFailure(sasl.InvalidMechanism, "")
	}
	srv, err := sasl.NewServer(mech, c.saslConfig())
	if err != nil {
		return c.saslFailure(sasl.InvalidMechanism, "")
	}
	resp, ok := decodeSASL(e.Text(), true)
	if !ok {
		return c.saslFailure(sasl.IncorrectEncoding, "")
	}
	for {
		chal, done, err := srv.Next(ctx, resp)
		if err != nil {
			var f *sasl.Failure
			if errors.As(err, &f) {
				if errors.Is(err, sasl.ErrChannelBinding) {
					// No credential was tried: say why, and do not count
					// it as a failed login. Clients such as slixmpp try
					// each -PLUS mechanism with a binding type they know
					// before falling back.
					c.log.Info("sasl channel binding not negotiated", "mechanism", mech, "why", f.Text)
					return c.saslAttemptFailed(f.Condition, f.Text, false)
				}
				c.log.Info("sasl failure", "mechanism", mech, "condition", string(f.Condition), "why", f.Text)
				return c.saslFailure(f.Condition, "")
			}
			c.log.Error("sasl", "err", err)
			return c.saslFailure(sasl.TemporaryAuthFailure, "")
		}
		if done {
			return c.authenticated(srv, chal)
		}
		if err := c.send(appendSASL(nil, "challenge", chal)); err != nil {
			return err
		}
		next, err := c.r.Next()
		if err != nil {
			return err
		}
		switch {
		case next.Name.Space == stream.NSSASL && next.Name.Local == "response":
			if resp, ok = decodeSASL(next.Text(), false); !ok {
				return c.saslFailure(sasl.IncorrectEncoding, "")
			}
		case next.Name.Space == stream.NSSASL && next.Name.Local == "abort":
			return c.saslFailure(sasl.Aborted, "")
		default:
			return c.saslFailure(sasl.MalformedRequest, "")
		}
	}
}

// authenticated finishes a successful exchange: checks the authzid, sends
// <success/> and expects a stream restart (RFC 6120 §6.4.6).
func (c *conn) authenticated(srv sasl.Server, final []byte) error {
	u, err := jid.New(srv.Username(), c.domain, "")
	if err != nil {
		return c.saslFailure(sasl.NotAuthorized, "")
	}
	if z := srv.AuthzID(); z != "" {
		zj, err := jid.Parse(z)
		if err != nil || !zj.Equal(u) {
			return c.saslFailure(sasl.InvalidAuthzID, "")
		}
	}
	if err := c.send(appendSASL(nil, "success", final)); err != nil {
		return err
	}
	c.local = u.Local()
	c.state = stateAuthed
	c.r.Reset(c.nc)
	c.sent = false
	c.log.Info("authenticated", "jid", u.String(), "mechanism", srv.Mechanism())
	return nil
}

// maxSASLAttempts bounds the SASL attempts of one stream, whatever their
// outcome.
const maxSASLAttempts = 10

// saslFailure sends <failure/> and counts it; too many failures close the
// stream with not-authorized (RFC 6120 §6.4.5).
func (c *conn) saslFailure(cond sasl.Condition, text string) error {
	return c.saslAttemptFailed(cond, text, cond != sasl.Aborted)
}

// saslAttemptFailed sends <failure/>; credential failures count toward
// the configured limit, every attempt toward maxSASLAttempts.
func (c *conn) saslAttemptFailed(cond sasl.Condition, text string, credential bool) error {
	f := xmlstream.NewElement(stream.NSSASL, "failure")
	f.Append(xmlstream.NewElement(stream.NSSASL, string(cond)))
	if text != "" {
		f.Append(xmlstream.NewElement(stream.NSSASL, "text").AppendText(text))
	}
	if err := c.sendElement(f); err != nil {
		return err
	}
	c.attempts++
	if credential {
		c.failures++
	}
	if c.failures >= c.srv.cfg.MaxAuthFailures || c.attempts >= maxSASLAttempts {
		return &stream.Error{Condition: stream.NotAuthorized, Text: "too many failed authentication attempts"}
	}
	return nil
}

// decodeSASL decodes the base64 payload of auth/response: "" is no data
// (nil) for auth, "=" is an empty response.
func decodeSASL(text string, initial bool) ([]byte, bool) {
	switch text {
	case "":
		if initial {
			return nil, true
		}
		return []byte{}, true
	case "=":
		return []byte{}, true
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, false
	}
	return b, true
}

func appendSASL(b []byte, name string, data []byte) []byte {
	b = append(b, "<"+name+" xmlns='"+stream.NSSASL+"'"...)
	if len(data) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = base64.StdEncoding.AppendEncode(b, data)
	return append(b, "</"+name+">"...)
}

// preAuthIQ answers an IQ sent before authentication through the PreAuth
// handler; anything but an IQ get or set goes unanswered.
func (c *conn) preAuthIQ(ctx context.Context, iq *xmlstream.Element) error {
	if err := stanza.ValidateIQ(iq); err != nil {
		return c.reply(stanza.ErrorReply(iq, asStanzaError(err)))
	}
	typ := stanza.Type(iq)
	if typ != stanza.IQGet && typ != stanza.IQSet {
		return nil
	}
	// No addresses before authentication: the reply carries only the id.
	iq.RemoveAttr("from")
	iq.RemoveAttr("to")
	res, err := c.srv.cfg.PreAuth.HandlePreAuth(ctx, c.tcp.RemoteAddr(), c.domain, iq)
	if err != nil {
		var se *stanza.Error
		if !errors.As(err, &se) {
			c.log.Error("pre-auth iq", "err", err)
			se = stanza.NewError(stanza.InternalServerError, "")
		}
		return c.reply(stanza.ErrorReply(iq, se))
	}
	reply := stanza.NewIQ(stanza.NSClient, stanza.IQResult, "", "", stanza.ID(iq))
	if res != nil {
		reply.Append(res)
	}
	return c.reply(reply)
}
