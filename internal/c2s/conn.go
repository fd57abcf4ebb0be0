package c2s

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/internal/certs"
	"github.com/ode-xmpp/ode/internal/metrics"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/transport"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// state is how far negotiation has gone.
type state int

const (
	stateStart  state = iota // waiting for a stream header, or TLS is required and not on
	stateTLS                 // TLS is on (or not required), not authenticated
	stateAuthed              // authenticated, not bound
	stateBound               // a resource is bound: stanzas flow
)

// conn is one client stream on its transport. The reader goroutine
// (serve) owns every field without a comment saying otherwise.
type conn struct {
	srv    *Server
	id     string
	log    *slog.Logger
	t      transport.Transport
	direct bool // TLS before the stream (XEP-0368)
	sent   bool // our stream header of the current stream was written
	// tlsCert is the DER of the certificate this connection's handshake
	// presented (for tls-server-end-point), which stays right when the
	// server's certificate is replaced while the stream runs.
	tlsCert []byte

	// link is this connection's attachment to a queue: its own until a
	// resumption attaches it to the resumed session's.
	link atomic.Pointer[session.Link]
	b    *binding // the session, once bound or resumed

	// batch defers the writers of what this reader's stanzas deliver to
	// many sessions (a room's message) until it reads again; nil when the
	// transport cannot tell (see session.Batch).
	batch *session.Batch
	sm    bool // stream management is enabled on this stream

	domain   string
	client   string // the SASL2 user-agent's software, "" when not given
	lang     string
	local    string // authenticated localpart
	failures int    // failed credential checks
	attempts int    // failed SASL exchanges of any kind
	state    state

	full   jid.JID      // set once, before the session is visible to others
	reason atomic.Value // string: why the stream was closed by us
	// endSession is set when the stream ends in a way that ends its
	// session too (a stream error from us, the client's </stream:stream>)
	// rather than by losing the connection, which detaches a resumable
	// session.
	endSession atomic.Bool

	streamID  string
	headerOut atomic.Bool // our header of the current stream went out (read by Close)

	tr    metrics.Transport  // what carries the stream, for the metrics
	mech  string             // the mechanism of the current SASL attempt, for the metrics
	timer metrics.RouteTimer // times a sample of the stanzas
}

func newConn(s *Server, t transport.Transport, directTLS bool) *conn {
	n := s.nextID.Add(1)
	c := &conn{srv: s, t: t, direct: directTLS, id: strconv.FormatUint(n, 10)}
	kind := ""
	if k, ok := t.(interface{ Kind() string }); ok {
		kind = k.Kind()
	}
	c.tr = metrics.TransportOf(kind, directTLS)
	c.log = s.conf().Log.With("component", "c2s", "conn", c.id, "remote", t.RemoteAddr().String())
	_, l := session.NewQueue(s.conf().OutboundQueueBytes, t)
	c.link.Store(l)
	return c
}

// info describes the connection for administrators (session.Info);
// client is kept when this connection does not name its software.
func (c *conn) info(since time.Time, client string) session.Info {
	kind := "tcp"
	if k, ok := c.t.(interface{ Kind() string }); ok {
		kind = k.Kind()
	} else if c.direct {
		kind = "tls"
	}
	if c.client != "" {
		client = c.client
	}
	return session.Info{Transport: kind, Remote: c.t.RemoteAddr().String(), Client: client, Since: since}
}

// kill closes the connection at once, even under a blocked write.
func (c *conn) kill() { c.t.Kill() }

// secure reports whether the stream runs over TLS (or, for a transport
// that says so, over a connection a trusted proxy encrypted).
func (c *conn) secure() bool {
	if s, ok := c.t.(interface{ Secure() bool }); ok {
		return s.Secure()
	}
	return c.t.TLS() != nil
}

// l returns the connection's current link to a queue.
func (c *conn) l() *session.Link { return c.link.Load() }

// send enqueues raw bytes for the client, never counted as a stanza.
func (c *conn) send(p []byte) error { return c.l().Send(p) }

// sendElement enqueues an element, serialised in the jabber:client scope.
func (c *conn) sendElement(e *xmlstream.Element) error { return c.l().SendElement(e) }

// serve runs the connection to its end.
func (c *conn) serve() {
	start := time.Now()
	metrics.ConnOpened(c.tr)
	defer metrics.ConnClosed(c.tr)
	if k, ok := c.t.(interface{ Kind() string }); ok {
		c.log.Info("connection opened", "transport", k.Kind(), "secure", c.secure())
	} else {
		c.log.Info("connection opened", "direct_tls", c.direct)
	}
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
		if c.state == stateBound {
			metrics.SessionUnbound(c.tr)
		}
		t := time.NewTimer(c.srv.conf().WriteTimeout)
		defer t.Stop()
		select {
		case <-c.l().Close(nil):
		case <-t.C:
			c.kill()
		}
		c.log.Info("connection closed", "reason", reason, "duration", time.Since(start).Round(time.Millisecond))
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if c.direct {
		if err := c.startTLS(ctx, c.srv.dtls, nil); err != nil {
			reason = err.Error()
			return
		}
	}
	reason = c.run(ctx)
}

// startTLS runs the TLS handshake, after proceed, within the
// authentication timeout, on a copy of cfg (certs.ForConnection) whose
// session tickets use the keys of the server's STARTTLS configuration
// and carry the certificate for tls-server-end-point on resumed
// sessions.
func (c *conn) startTLS(ctx context.Context, cfg *tls.Config, proceed []byte) error {
	ts, ok := c.t.(transport.TLSStarter)
	if !ok {
		return errors.ErrUnsupported
	}
	ctx, cancel := context.WithTimeout(ctx, c.srv.conf().AuthTimeout)
	defer cancel()
	cfg, h := certs.ForConnection(cfg, c.srv.tls)
	if err := ts.StartTLS(ctx, cfg, proceed); err != nil {
		return err
	}
	c.tlsCert = h.Certificate(c.t.TLS())
	return nil
}

// run reads elements until the stream ends and returns the reason.
func (c *conn) run(ctx context.Context) string {
	if h, ok := c.t.(interface{ SetBeforeRead(func()) }); ok {
		c.batch = new(session.Batch)
		h.SetBeforeRead(c.batch.Flush)
		ctx = session.WithBatch(ctx, c.batch)
		defer c.batch.Flush()
	}
	for {
		if c.state < stateBound {
			_ = c.t.SetReadDeadline(time.Now().Add(c.srv.conf().AuthTimeout))
		}
		if !c.sent {
			if err := c.openStream(); err != nil {
				return c.fail(err)
			}
			continue
		}
		if c.state == stateBound && !c.l().Wait(c.batch, c.srv.conf().OutboundQueueBytes/2, c.srv.conf().WriteTimeout) {
			// Backpressure: the client does not read what it asks for.
			metrics.Overflow(metrics.C2SStalled)
			return c.fail(&stream.Error{Condition: stream.PolicyViolation, Text: "not reading its stream"})
		}
		e, err := c.t.Next()
		if c.batch != nil {
			c.batch.Begin()
		}
		if c.b != nil {
			c.b.sess.Touch()
		}
		if err != nil {
			if errors.Is(err, xmlstream.ErrStreamEnd) {
				c.endSession.Store(true)
				c.l().Close(c.t.AppendClose(nil))
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
		b = c.t.AppendOpen(b, stream.Header{From: c.srv.conf().Router.DefaultDomain(), ID: hex.EncodeToString(id[:]), Version: "1.0"})
	}
	b = se.AppendXML(b)
	b = c.t.AppendClose(b)
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
	open, err := c.t.ReadOpen()
	if err != nil {
		return err
	}
	h := open.Header
	var hdrErr error
	to := h.To
	if c.domain == "" && hdrErr == nil {
		d, perr := jid.Parse(to)
		switch {
		case to == "" || perr != nil || !d.IsDomain():
			hdrErr = &stream.Error{Condition: stream.HostUnknown}
		case !c.srv.conf().Router.Hosts(d.DomainString()):
			hdrErr = &stream.Error{Condition: stream.HostUnknown}
		default:
			c.domain = d.DomainString()
		}
	} else if hdrErr == nil {
		if d, perr := jid.Parse(to); perr != nil || d.DomainString() != c.domain {
			hdrErr = &stream.Error{Condition: stream.HostUnknown}
		}
	}
	if hdrErr == nil && open.ContentNS != stanza.NSClient {
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
	b := c.t.AppendOpen(nil, hdr)
	b = c.appendFeatures(b)
	c.sent = true
	c.headerOut.Store(true)
	if c.state == stateStart {
		c.state = stateTLS
		if c.mustStartTLS() {
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
