package s2s

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/metrics"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// target is one address to try for a remote domain.
type target struct {
	addr      string
	directTLS bool
}

// errNoService is returned for a domain whose SRV record says that it
// offers no XMPP server service (RFC 6120 §3.2.1, target ".").
var errNoService = errors.New("the domain's SRV record says it offers no server-to-server service")

// targets returns the addresses to try for domain, in order: a configured
// override; else the _xmpps-server (direct TLS, XEP-0368) and _xmpp-server
// SRV records merged by priority (net.Resolver already orders by weight
// within a priority); else the domain itself on port 5269 (RFC 6120 §3.2.2).
func (m *Manager) targets(ctx context.Context, domain string) ([]target, error) {
	if a, ok := m.conf().Hosts[domain]; ok {
		return []target{{addr: a}}, nil
	}
	type rec struct {
		srv       *net.SRV
		directTLS bool
	}
	var recs []rec
	noService := false
	for _, svc := range []struct {
		name      string
		directTLS bool
	}{{"xmpps-server", true}, {"xmpp-server", false}} {
		_, srvs, err := m.conf().Resolver.LookupSRV(ctx, svc.name, "tcp", domain)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			continue // no records (or a failed lookup): try the others
		}
		if len(srvs) == 1 && (srvs[0].Target == "." || srvs[0].Target == "") {
			noService = noService || !svc.directTLS
			continue
		}
		for _, s := range srvs {
			recs = append(recs, rec{s, svc.directTLS})
		}
	}
	if len(recs) == 0 {
		if noService {
			return nil, errNoService
		}
		return []target{{addr: net.JoinHostPort(domain, "5269")}}, nil
	}
	slices.SortStableFunc(recs, func(a, b rec) int { return int(a.srv.Priority) - int(b.srv.Priority) })
	out := make([]target, 0, len(recs))
	for _, r := range recs {
		host := strings.TrimSuffix(r.srv.Target, ".")
		out = append(out, target{addr: net.JoinHostPort(host, strconv.Itoa(int(r.srv.Port))), directTLS: r.directTLS})
	}
	return out, nil
}

// connectOut sets up a stream from local to remote, trying each target in
// turn. With auth it authenticates (SASL EXTERNAL or dialback); without,
// it stops once TLS is on, for a dialback verification. The whole setup is
// bounded by ctx.
func (m *Manager) connectOut(ctx context.Context, local, remote string, auth bool) (*streamConn, error) {
	ts, err := m.targets(ctx, remote)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", remote, err)
	}
	var errs []error
	for _, t := range ts {
		c, err := m.negotiateOut(ctx, t, local, remote, auth)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", t.addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// negotiateOut runs the initiating side of RFC 6120 §4-§6 with one target.
func (m *Manager) negotiateOut(ctx context.Context, t target, local, remote string, auth bool) (_ *streamConn, err error) {
	var d net.Dialer
	tcp, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	log := m.log.With("dir", "out", "local", local, "remote", remote, "addr", t.addr)
	c := newStreamConn(m, tcp, log)
	if dl, ok := ctx.Deadline(); ok {
		_ = tcp.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = tcp.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		if err != nil {
			var se *stream.Error
			if !errors.As(err, &se) {
				se = nil
			}
			c.closeWith(se)
		}
	}()
	if t.directTLS {
		if err := c.handshake(ctx, m.clientTLS(local, remote, true), true); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	c.r = xmlstream.NewReader(c.nc, xmlstream.Limits{MaxElementBytes: m.conf().MaxStanzaBytes})
	authed := false
	for {
		id, f, err := c.openOut(local, remote)
		if err != nil {
			return nil, err
		}
		switch {
		case !c.tlsOn:
			if !f.StartTLS {
				return nil, errors.New("the server does not offer STARTTLS, which ode requires")
			}
			if err := c.write([]byte("<starttls xmlns='" + stream.NSTLS + "'/>")); err != nil {
				return nil, err
			}
			e, err := c.r.Next()
			if err != nil {
				return nil, err
			}
			if e.Name.Space != stream.NSTLS || e.Name.Local != "proceed" {
				return nil, fmt.Errorf("STARTTLS refused (%s)", e.Name.Local)
			}
			if err := c.handshake(ctx, m.clientTLS(local, remote, false), true); err != nil {
				return nil, fmt.Errorf("tls: %w", err)
			}
			c.r.Reset(c.nc)
			continue
		case !auth:
			c.streamID = id
			return c, nil
		case authed:
			_ = tcp.SetDeadline(time.Time{})
			c.streamID = id
			return c, nil
		}
		certErr := VerifyPeer(c.state.PeerCertificates, remote, m.conf().Roots)
		if certErr == nil && slices.Contains(f.Mechanisms, "EXTERNAL") {
			ok, err := c.external(local)
			if err != nil {
				return nil, err
			}
			if ok {
				log.Info("authenticated", "method", "EXTERNAL")
				authed = true
				c.r.Reset(c.nc)
				continue
			}
			certErr = errors.New("the server refused SASL EXTERNAL")
		} else if certErr == nil {
			certErr = errors.New("the server does not offer SASL EXTERNAL")
		}
		if !m.conf().Dialback {
			return nil, fmt.Errorf("cannot authenticate (%v) and dialback is off", certErr)
		}
		if !hasDialback(f) {
			return nil, fmt.Errorf("cannot authenticate (%v) and the server does not offer dialback", certErr)
		}
		if err := c.dialback(local, remote, id); err != nil {
			return nil, err
		}
		log.Info("authenticated", "method", "dialback", "certificate", errString(certErr))
		_ = tcp.SetDeadline(time.Time{})
		c.streamID = id
		return c, nil
	}
}

func errString(err error) string {
	if err == nil {
		return "verified"
	}
	return err.Error()
}

// openOut writes our stream header and reads the peer's header and
// features; it returns the peer's stream id.
func (c *streamConn) openOut(local, remote string) (string, stream.Features, error) {
	if err := c.writeHeader(local, remote, ""); err != nil {
		return "", stream.Features{}, err
	}
	start, err := c.r.ReadStart()
	if err != nil {
		return "", stream.Features{}, err
	}
	h, err := stream.ParseHeader(start)
	if err != nil {
		return "", stream.Features{}, err
	}
	if c.r.DefaultNS() != stanza.NSServer {
		return "", stream.Features{}, &stream.Error{Condition: stream.InvalidNamespace}
	}
	if h.Version == "" {
		return "", stream.Features{}, errors.New("the server does not support XMPP 1.0 streams (no TLS)")
	}
	if h.ID == "" {
		return "", stream.Features{}, errors.New("the server's stream header has no id")
	}
	e, err := c.r.Next()
	if err != nil {
		return "", stream.Features{}, err
	}
	if e.Name.Space == stream.NS && e.Name.Local == "error" {
		se, _ := stream.ParseError(e)
		return "", stream.Features{}, fmt.Errorf("stream error from the server: %v", se)
	}
	f, err := stream.ParseFeatures(e)
	if err != nil {
		return "", stream.Features{}, fmt.Errorf("expected stream features: %w", err)
	}
	return h.ID, f, nil
}

// hasDialback reports whether the features announce XEP-0220.
func hasDialback(f stream.Features) bool {
	for _, o := range f.Other {
		if o.Name.Space == NSDialbackFeature && o.Name.Local == "dialback" {
			return true
		}
	}
	return false
}

// external authenticates with SASL EXTERNAL as local (XEP-0178); it reports
// whether the server accepted.
func (c *streamConn) external(local string) (bool, error) {
	b := []byte("<auth xmlns='" + stream.NSSASL + "' mechanism='EXTERNAL'>")
	b = base64.StdEncoding.AppendEncode(b, []byte(local))
	b = append(b, "</auth>"...)
	if err := c.write(b); err != nil {
		return false, err
	}
	for {
		e, err := c.r.Next()
		if err != nil {
			return false, err
		}
		switch {
		case e.Name.Space == stream.NSSASL && e.Name.Local == "success":
			return true, nil
		case e.Name.Space == stream.NSSASL && e.Name.Local == "failure":
			return false, nil
		case e.Name.Space == stream.NSSASL && e.Name.Local == "challenge":
			// An empty challenge asks for the authzid again.
			b := []byte("<response xmlns='" + stream.NSSASL + "'>")
			b = base64.StdEncoding.AppendEncode(b, []byte(local))
			if err := c.write(append(b, "</response>"...)); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("unexpected <%s/> during SASL", e.Name.Local)
		}
	}
}

// dialback asks the receiving server to verify our key (XEP-0220 §2.1) and
// waits for its verdict.
func (c *streamConn) dialback(local, remote, id string) error {
	if err := c.write(appendDB(nil, "result", local, remote, "", "", c.m.dialbackKey(remote, local, id))); err != nil {
		return err
	}
	for {
		e, err := c.r.Next()
		if err != nil {
			return err
		}
		if !isDB(e, "result") {
			continue
		}
		if e.Attribute("from") != remote || e.Attribute("to") != local {
			continue
		}
		switch e.Attribute("type") {
		case "valid":
			return nil
		case "invalid":
			return errors.New("dialback: the server found our key invalid")
		default:
			return fmt.Errorf("dialback failed: %s", dbError(e))
		}
	}
}

// dbError describes the error inside a dialback element of type error.
func dbError(e *xmlstream.Element) string {
	if se, ok := stanza.ParseError(e); ok {
		return string(se.Condition)
	}
	return "type " + strconv.Quote(e.Attribute("type"))
}

// outState is the life of an outbound stream.
type outState int

const (
	outConnecting outState = iota
	outReady
	outClosed
)

type queued struct {
	st *xmlstream.Element
	b  []byte // st serialised in jabber:server
}

// outStream carries stanzas from one local domain to one remote domain.
type outStream struct {
	m *Manager
	pair

	mu           sync.Mutex
	state        outState
	pending      []queued // stanzas waiting for the stream to be set up
	pendingBytes int
	buf          []byte // serialised stanzas waiting for the writer
	last         time.Time
	c            *streamConn
	wake         chan struct{}
	done         chan struct{}
}

func newOutStream(m *Manager, p pair) *outStream {
	metrics.S2SStream(metrics.Out, metrics.S2SNone, metrics.S2SConnecting)
	return &outStream{m: m, pair: p, last: time.Now(), wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// outStates are the metrics' names of the states.
var outStates = [...]metrics.S2SState{outConnecting: metrics.S2SConnecting, outReady: metrics.S2SEstablished, outClosed: metrics.S2SNone}

// setState moves the stream to st; o.mu is held.
func (o *outStream) setState(st outState) {
	metrics.S2SStream(metrics.Out, outStates[o.state], outStates[st])
	o.state = st
}

// send queues st; it reports false when the stream is closed, so that the
// caller starts another.
func (o *outStream) send(ctx context.Context, st *xmlstream.Element) bool {
	b := stanza.Translate(st, stanza.NSClient, stanza.NSServer).AppendXML(nil, stanza.NSServer)
	o.mu.Lock()
	full := false
	switch o.state {
	case outClosed:
		o.mu.Unlock()
		return false
	case outConnecting:
		if o.pendingBytes+len(b) > o.m.conf().QueueBytes {
			full = true
			break
		}
		o.pending = append(o.pending, queued{st, b})
		o.pendingBytes += len(b)
	case outReady:
		if len(o.buf)+len(b) > o.m.conf().QueueBytes {
			full = true
			break
		}
		o.buf = append(o.buf, b...)
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	o.last = time.Now()
	o.mu.Unlock()
	if !full {
		metrics.S2SOut(st.Name.Local)
	}
	if full {
		metrics.Overflow(metrics.S2SQueue)
		o.m.conf().Router.Bounce(ctx, st, stanza.NewError(stanza.ResourceConstraint, "too much queued for "+o.remote))
	}
	return true
}

// run sets the stream up, then writes what is queued until the stream
// closes or goes idle.
func (o *outStream) run() {
	ctx, cancel := context.WithTimeout(o.m.ctx, o.m.conf().ConnectTimeout)
	c, err := o.m.connectOut(ctx, o.local, o.remote, true)
	timedOut := ctx.Err() == context.DeadlineExceeded
	cancel()
	if err != nil {
		o.fail(err, timedOut)
		return
	}
	o.mu.Lock()
	if o.state == outClosed { // Shutdown came first
		o.mu.Unlock()
		c.closeWith(&stream.Error{Condition: stream.SystemShutdown})
		return
	}
	o.c = c
	o.setState(outReady)
	for _, q := range o.pending {
		o.buf = append(o.buf, q.b...)
	}
	if len(o.buf) > 0 {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	o.pending, o.pendingBytes = nil, 0
	o.mu.Unlock()
	o.m.wg.Add(1)
	go func() {
		defer o.m.wg.Done()
		o.read()
	}()
	o.write()
}

// fail bounces everything queued after the stream could not be set up.
func (o *outStream) fail(err error, timedOut bool) {
	o.mu.Lock()
	o.setState(outClosed)
	pending := o.pending
	o.pending, o.pendingBytes = nil, 0
	o.mu.Unlock()
	o.m.forget(o)
	close(o.done)
	cond := stanza.RemoteServerNotFound
	if timedOut || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		cond = stanza.RemoteServerTimeout
	}
	metrics.S2SConnectFailed()
	o.m.log.Warn("cannot connect to remote server", "local", o.local, "remote", o.remote, "err", err, "bounced", len(pending))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, q := range pending {
		o.m.conf().Router.Bounce(ctx, q.st, stanza.NewError(cond, ""))
	}
}

// write drains the queue to the socket; it closes the stream after
// IdleTimeout without traffic.
func (o *outStream) write() {
	idle := time.NewTimer(o.m.conf().IdleTimeout)
	defer idle.Stop()
	var spare []byte
	for {
		select {
		case <-o.wake:
		case <-o.done:
			return
		case <-idle.C:
			o.mu.Lock()
			since := time.Since(o.last)
			if since >= o.m.conf().IdleTimeout && len(o.buf) == 0 {
				o.mu.Unlock()
				o.m.log.Info("closing idle stream", "local", o.local, "remote", o.remote)
				o.close(nil)
				return
			}
			o.mu.Unlock()
			idle.Reset(max(o.m.conf().IdleTimeout-since, time.Second))
			continue
		}
		o.mu.Lock()
		b := o.buf
		o.buf = spare[:0]
		o.mu.Unlock()
		if len(b) == 0 {
			// A stale wake-up: o.buf now holds spare, so spare must
			// become b, or the next swap hands one buffer to both the
			// writer and send.
			spare = b
			continue
		}
		if err := o.c.write(b); err != nil {
			o.m.log.Warn("write to remote server failed", "local", o.local, "remote", o.remote, "err", err)
			o.close(nil)
			return
		}
		if cap(b) <= 64<<10 {
			spare = b
		} else {
			spare = nil
		}
	}
}

// read consumes what the receiving server sends on our outbound stream:
// nothing but a stream error or the end of the stream is expected.
func (o *outStream) read() {
	for {
		e, err := o.c.next(0)
		if err != nil {
			if !errors.Is(err, xmlstream.ErrStreamEnd) && !errors.Is(err, net.ErrClosed) && !o.c.closed.Load() {
				o.m.log.Info("outbound stream ended", "local", o.local, "remote", o.remote, "err", err)
			}
			o.close(nil)
			return
		}
		if e.Name.Space == stream.NS && e.Name.Local == "error" {
			se, _ := stream.ParseError(e)
			level := slog.LevelWarn
			if se != nil && (se.Condition == stream.SystemShutdown || se.Condition == stream.Reset) {
				level = slog.LevelInfo // the peer restarts: nothing wrong
			}
			o.m.log.Log(context.Background(), level, "stream error from remote server", "local", o.local, "remote", o.remote, "err", se)
			o.close(nil)
			return
		}
		o.mu.Lock()
		o.last = time.Now()
		o.mu.Unlock()
	}
}

// close ends the stream (with se, if not nil) and removes it from the
// table; stanzas sent later start a new stream.
func (o *outStream) close(se *stream.Error) {
	o.mu.Lock()
	if o.state == outClosed {
		o.mu.Unlock()
		return
	}
	wasReady := o.state == outReady
	o.setState(outClosed)
	c := o.c
	rest := o.buf
	o.buf = nil
	o.mu.Unlock()
	o.m.forget(o)
	if wasReady {
		close(o.done)
		if len(rest) > 0 {
			_ = c.write(rest) // what was queued before the close
		}
		c.closeWith(se)
	}
}

// kill drops the connection at once.
func (o *outStream) kill() {
	o.mu.Lock()
	c := o.c
	o.mu.Unlock()
	if c != nil {
		c.kill()
	}
}
