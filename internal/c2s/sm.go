package c2s

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strconv"
	"time"

	"github.com/ode-xmpp/ode/internal/metrics"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSCSI is XEP-0352's namespace (client state indication).
const NSCSI = "urn:xmpp:csi:0"

// smStart is the initial value of both XEP-0198 counters. It is 0; tests
// of the 2^32 wrap set it close to the end (see export_test.go).
var smStart uint32

// binding is the c2s side of a session: which connection carries it, and
// its expiry while detached. Its fields are guarded by Server.smMu.
type binding struct {
	srv   *Server
	sess  *session.Session
	conn  *conn       // the attached connection; nil while detached
	timer *time.Timer // expiry while detached
	ended bool
}

var _ session.Owner = (*binding)(nil)

// goneSession is what is kept of a resumable session that ended, so that
// a client resuming it late learns how many of its stanzas were handled
// (XEP-0198 §5, as Prosody does).
type goneSession struct {
	user jid.JID
	h    uint32
}

// maxGone bounds the ended sessions remembered for late resumptions.
const maxGone = 10000

func (s *Server) newBinding(c *conn, full jid.JID) *binding {
	b := &binding{srv: s, conn: c}
	b.sess = session.New(full, c.l().Queue(), b)
	b.sess.SetInfo(c.info(time.Now(), ""))
	return b
}

// CloseSession implements session.Owner.
func (b *binding) CloseSession(_ *session.Session, se *stream.Error) {
	b.srv.smMu.Lock()
	c, ended := b.conn, b.ended
	b.srv.smMu.Unlock()
	switch {
	case ended:
	case c == nil && se.Condition == stream.ConnectionTimeout:
		// A ping that a detached session could not answer: its
		// resumption timer decides.
	case c != nil:
		c.endSession.Store(true)
		c.Close(se)
	default:
		// Detached: end it now, off the caller's goroutine (a router
		// delivering to it).
		b.srv.wg.Add(1)
		go func() {
			defer b.srv.wg.Done()
			b.end("closed while detached: " + string(se.Condition))
		}()
	}
}

// resumable reports whether the connection's session would be detached,
// rather than ended, if the connection dropped now.
func (c *conn) resumable() bool {
	b := c.b
	if b == nil {
		return false
	}
	c.srv.smMu.Lock()
	defer c.srv.smMu.Unlock()
	return b.sess.SMID != "" && b.conn == c && !b.ended
}

// connEnded is called by a bound connection's reader when it ends: a
// resumable session whose connection was lost is detached; any other ends,
// unless another connection resumed it meanwhile.
func (s *Server) connEnded(c *conn, reason string) {
	b := c.b
	s.smMu.Lock()
	if b.conn != c || b.ended {
		s.smMu.Unlock()
		return // taken over by a resumption, or already over
	}
	if b.sess.SMID != "" && !c.endSession.Load() && !s.closing.Load() {
		b.conn = nil
		b.sess.SetDetached(true)
		timeout := b.sess.ResumeTimeout
		if keep, ok := session.KeepDetached.Get(b.sess.Values()); ok && keep > timeout {
			timeout = keep // a device that push notifications can wake
		}
		s.wg.Add(1)
		b.timer = time.AfterFunc(timeout, func() {
			defer s.wg.Done()
			b.expire()
		})
		user := b.sess.JID().Bare().String()
		s.detached[user] = append(s.detached[user], b)
		metrics.Detached()
		var evict *binding
		if list := s.detached[user]; len(list) > maxDetachedPerUser {
			evict = list[0]
		}
		s.smMu.Unlock()
		c.l().Detach()
		c.log.Info("session detached, waiting for resumption", "reason", reason, "timeout", timeout)
		s.conf().Router.SessionDetached(context.Background(), b.sess)
		if evict != nil {
			// Each detached session may hold its unacknowledged
			// stanzas: a user gets a bounded number of them.
			evict.end("too many detached sessions for the account")
		}
		return
	}
	s.smMu.Unlock()
	b.end(reason)
}

// expire ends a session still detached when its resumption time is over.
func (b *binding) expire() {
	b.srv.smMu.Lock()
	still := b.conn == nil && !b.ended
	b.srv.smMu.Unlock()
	if still {
		b.end("resumption timed out")
	}
}

// end ends the session: it leaves the router (unavailable presence and
// the other session-end hooks), and what it never acknowledged is handled
// as if sent to an unavailable resource: messages go to offline storage,
// IQ requests are answered with an error, the rest is dropped (XEP-0198
// §5).
func (b *binding) end(reason string) {
	s := b.srv
	s.smMu.Lock()
	if b.ended {
		s.smMu.Unlock()
		return
	}
	b.ended = true
	detached := b.conn == nil
	if detached {
		s.undetach(b)
	}
	if b.timer != nil {
		if b.timer.Stop() {
			s.wg.Done() // the expiry will not run
		}
		b.timer = nil
	}
	if id := b.sess.SMID; id != "" {
		delete(s.resumable, id)
		s.rememberGone(id, goneSession{user: b.sess.JID().Bare(), h: b.sess.HandledCount()})
	}
	s.smMu.Unlock()

	q := b.sess.Queue()
	q.Close()
	// What the client did not acknowledge is handled before the session
	// leaves the router, so that once it is gone from there its messages
	// are in offline storage (or with the user's other resources). The
	// session-end hooks (unavailable presence, last activity) and
	// offline storage outlive any connection's context.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unacked := q.TakeUnacked()
	bare := b.sess.JID().Bare()
	archived, _ := session.QueriedArchive.Get(b.sess.Values())
	for _, st := range unacked {
		if archived && hasStanzaID(st, bare) {
			continue // in the archive, where this client catches up
		}
		s.unackedStanza(ctx, st, bare)
	}
	s.conf().Router.SessionEnded(ctx, b.sess)
	if detached || len(unacked) > 0 {
		s.conf().Log.Info("session ended", "component", "c2s", "jid", b.sess.JID().String(), "reason", reason, "unacked", len(unacked))
	}
}

// unackedStanza handles a stanza the client of an ended session never
// acknowledged.
func (s *Server) unackedStanza(ctx context.Context, st *xmlstream.Element, to jid.JID) {
	switch st.Name.Local {
	case "message":
		switch stanza.Type(st) {
		case stanza.MessageError, stanza.MessageHeadline, stanza.MessageGroupchat:
			return
		}
		if serverCopy(st, to) {
			return // a carbon or archive result: the original is kept elsewhere
		}
		// As for a message to a full JID whose resource is gone (RFC
		// 6121 §8.5.3.2.1): the user's other available resources, or
		// offline storage (with its XEP-0203 delay).
		s.conf().Router.Redeliver(ctx, st, to)
	case "iq":
		if t := stanza.Type(st); t == stanza.IQGet || t == stanza.IQSet {
			s.conf().Router.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
		}
	}
}

// hasStanzaID reports whether st carries a XEP-0359 stanza-id given by
// the account's archive.
func hasStanzaID(st *xmlstream.Element, account jid.JID) bool {
	for _, ch := range st.Children {
		if e := ch.Elem; e != nil && e.Name.Space == "urn:xmpp:sid:0" && e.Name.Local == "stanza-id" && e.Attribute("by") == account.String() {
			return true
		}
	}
	return false
}

// serverCopy reports whether st is a copy the server made for the
// account to (a XEP-0280 carbon, a XEP-0313 archive result): from the
// account's bare JID, wrapping another message.
func serverCopy(st *xmlstream.Element, to jid.JID) bool {
	if stanza.From(st) != to.Bare().String() {
		return false
	}
	for _, ch := range st.Children {
		if e := ch.Elem; e != nil {
			switch {
			case e.Name.Space == "urn:xmpp:carbons:2" && (e.Name.Local == "received" || e.Name.Local == "sent"),
				e.Name.Space == "urn:xmpp:mam:2" && e.Name.Local == "result":
				return true
			}
		}
	}
	return false
}

// maxDetachedPerUser bounds the detached sessions of one account; past it
// the oldest ends (as Prosody's smacks_max_hibernated_sessions does).
const maxDetachedPerUser = 10

// undetach removes b from its user's detached sessions; s.smMu is held.
func (s *Server) undetach(b *binding) {
	metrics.Undetached()
	user := b.sess.JID().Bare().String()
	if list := slices.DeleteFunc(s.detached[user], func(d *binding) bool { return d == b }); len(list) > 0 {
		s.detached[user] = list
	} else {
		delete(s.detached, user)
	}
}

// rememberGone keeps the last h of an ended resumable session; s.smMu is
// held.
func (s *Server) rememberGone(id string, g goneSession) {
	if len(s.goneOrder) >= maxGone {
		delete(s.gone, s.goneOrder[0])
		s.goneOrder = s.goneOrder[1:]
	}
	s.gone[id] = g
	s.goneOrder = append(s.goneOrder, id)
}

// endDetached ends every detached session (at shutdown).
func (s *Server) endDetached() {
	s.smMu.Lock()
	var list []*binding
	for _, b := range s.resumable {
		if b.conn == nil {
			list = append(list, b)
		}
	}
	s.smMu.Unlock()
	for _, b := range list {
		b.end("server shutdown")
	}
}

// smFeature is stream management (XEP-0198): <enable/> once bound,
// <resume/> instead of binding, and the <r/> and <a/> of acknowledgements.
var smFeature = feature{
	name: "sm",
	offer: func(c *conn) *xmlstream.Element {
		if c.local == "" || c.sm {
			// Not offered again once enabled (by Bind2 or a
			// resumption inline in SASL2): a client seeing it would
			// enable it twice.
			return nil
		}
		return xmlstream.NewElement(session.NSSM, "sm")
	},
	match:  inSpace(session.NSSM),
	handle: func(ctx context.Context, c *conn, e *xmlstream.Element) error { return c.smElement(ctx, e) },
}

// csiFeature is client state indication (XEP-0352): <active/> and
// <inactive/> once bound.
var csiFeature = feature{
	name: "csi",
	offer: func(c *conn) *xmlstream.Element {
		if c.local == "" {
			return nil
		}
		return xmlstream.NewElement(NSCSI, "csi")
	},
	match:  inSpace(NSCSI),
	handle: func(_ context.Context, c *conn, e *xmlstream.Element) error { return c.csiElement(e) },
}

// errAuthFirst is the stream error for stream-management and CSI
// elements before authentication.
func errAuthFirst() error {
	return &stream.Error{Condition: stream.NotAuthorized, Text: "authenticate first"}
}

// csiElement handles <active/> and <inactive/> (XEP-0352 §3).
func (c *conn) csiElement(e *xmlstream.Element) error {
	switch {
	case c.state < stateAuthed:
		return errAuthFirst()
	case c.state != stateBound:
		return &stream.Error{Condition: stream.NotAuthorized, Text: "bind a resource first"}
	}
	switch e.Name.Local {
	case "active":
		c.b.sess.Queue().SetInactive(false)
	case "inactive":
		c.b.sess.Queue().SetInactive(true)
	default:
		return &stream.Error{Condition: stream.UnsupportedStanzaType}
	}
	return nil
}

// smElement handles a stream-management element (XEP-0198).
func (c *conn) smElement(ctx context.Context, e *xmlstream.Element) error {
	if c.state < stateAuthed {
		return errAuthFirst()
	}
	switch e.Name.Local {
	case "enable":
		return c.enableSM(e)
	case "resume":
		return c.resume(ctx, e)
	case "r":
		if !c.sm {
			return c.smFailed(stanza.UnexpectedRequest, nil)
		}
		h := c.b.sess.HandledCount()
		c.sync(ctx)
		return c.send(session.AckElement(h))
	case "a":
		if !c.sm {
			return nil
		}
		h, err := parseH(e.Attribute("h"))
		if err != nil {
			return &stream.Error{Condition: stream.InvalidXML, Text: "bad h"}
		}
		if err := c.b.sess.Queue().Ack(h); err != nil {
			sent, _ := c.b.sess.Queue().Counts()
			return handledTooHigh(h, sent)
		}
		return nil
	}
	return &stream.Error{Condition: stream.UnsupportedStanzaType}
}

// syncTimeout bounds how long an acknowledgement waits for the stanzas
// it counts to be durable.
const syncTimeout = 10 * time.Second

// sync waits until the stanzas handled so far are durable (the archive
// writes behind), before the client is told they were handled: what the
// server acknowledged survives a crash. Past syncTimeout it logs and the
// acknowledgement goes out anyway: the stanzas were delivered.
func (c *conn) sync(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if err := c.srv.conf().Router.Sync(ctx); err != nil {
		c.log.Warn("acknowledging stanzas not yet durable", "err", err)
	}
}

// handledTooHigh is the stream error for an acknowledgement of stanzas
// never sent (XEP-0198 §6).
func handledTooHigh(h, sent uint32) *stream.Error {
	app := xmlstream.NewElement(session.NSSM, "handled-count-too-high").
		SetAttr("h", strconv.FormatUint(uint64(h), 10)).
		SetAttr("send-count", strconv.FormatUint(uint64(sent), 10))
	return &stream.Error{Condition: stream.UndefinedCondition, Text: "you acknowledged more stanzas than were sent", App: app}
}

func parseH(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	return uint32(n), err
}

// smFailed sends <failed/> with a stanza error condition and, if known,
// the count of handled stanzas (XEP-0198 §5).
func (c *conn) smFailed(cond stanza.Condition, h *uint32) error {
	return c.sendElement(smFailure(cond, h))
}

// smFailure returns <failed/> with a stanza error condition and, if
// known, the count of handled stanzas.
func smFailure(cond stanza.Condition, h *uint32) *xmlstream.Element {
	f := xmlstream.NewElement(session.NSSM, "failed")
	if h != nil {
		f.SetAttr("h", strconv.FormatUint(uint64(*h), 10))
	}
	return f.Append(xmlstream.NewElement(stanza.NSStanzas, string(cond)))
}

// smOwnElement returns the bytes that carry e by itself.
func smOwnElement(e *xmlstream.Element) []byte { return e.AppendXML(nil, stanza.NSClient) }

// enableSM answers <enable/> (XEP-0198 §3).
func (c *conn) enableSM(e *xmlstream.Element) error {
	if c.state != stateBound || c.sm {
		// Before binding, or a second time.
		return c.smFailed(stanza.UnexpectedRequest, nil)
	}
	return c.startSM(e, smOwnElement)
}

// startSM turns stream management on for the bound session as <enable/>
// e asks. wrap returns the bytes that carry the <enabled/> answer (the
// element itself, or XEP-0386's <success/> around it), written as the
// counting starts.
func (c *conn) startSM(e *xmlstream.Element, wrap func(enabled *xmlstream.Element) []byte) error {
	en := xmlstream.NewElement(session.NSSM, "enabled")
	b := c.b
	if r := e.Attribute("resume"); r == "true" || r == "1" {
		timeout := c.srv.conf().ResumeTimeout
		if m, err := strconv.ParseUint(e.Attribute("max"), 10, 32); err == nil && m > 0 {
			timeout = min(time.Duration(m)*time.Second, c.srv.conf().MaxResumeTimeout)
		}
		id := newSMID()
		c.srv.smMu.Lock()
		b.sess.SMID = id
		b.sess.ResumeTimeout = timeout
		c.srv.resumable[id] = b
		c.srv.smMu.Unlock()
		en.SetAttr("id", id).SetAttr("resume", "true").
			SetAttr("max", strconv.FormatInt(int64(timeout/time.Second), 10))
	}
	c.sm = true
	b.sess.SetHandledCount(smStart)
	if err := c.l().EnableSM(c.srv.conf().MaxUnacked, smStart, wrap(en)); err != nil {
		return err
	}
	c.log.Debug("stream management enabled", "resumable", b.sess.SMID != "")
	return nil
}

func newSMID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// resume answers <resume/> (XEP-0198 §5): a session of the authenticated
// user, detached or still attached to a connection that is dying, moves
// to this connection with every stanza it did not acknowledge.
func (c *conn) resume(ctx context.Context, e *xmlstream.Element) error {
	failed, err := c.resumeWith(ctx, e, smOwnElement)
	if failed != nil {
		return c.sendElement(failed)
	}
	return err
}

// resumeWith resumes the session <resume/> e names; wrap returns the
// bytes that carry the <resumed/> answer (the element itself, or
// XEP-0388's <success/> around it), written before the stanzas resent.
// A resumption that cannot be done returns the <failed/> to send.
func (c *conn) resumeWith(ctx context.Context, e *xmlstream.Element, wrap func(resumed *xmlstream.Element) []byte) (failed *xmlstream.Element, err error) {
	if c.state != stateAuthed {
		return smFailure(stanza.UnexpectedRequest, nil), nil
	}
	h, err := parseH(e.Attribute("h"))
	if err != nil {
		return smFailure(stanza.BadRequest, nil), nil
	}
	id := e.Attribute("previd")
	user, err := jid.New(c.local, c.domain, "")
	if err != nil {
		return nil, &stream.Error{Condition: stream.InternalServerError}
	}
	s := c.srv
	s.smMu.Lock()
	b := s.resumable[id]
	if b == nil || b.ended || !b.sess.JID().Bare().Equal(user) {
		g, ok := s.gone[id]
		s.smMu.Unlock()
		if ok && g.user.Equal(user) {
			return smFailure(stanza.ItemNotFound, &g.h), nil
		}
		return smFailure(stanza.ItemNotFound, nil), nil
	}
	old := b.conn
	if old == nil {
		s.undetach(b)
	}
	b.conn = c
	b.sess.SetInfo(c.info(b.sess.Info().Since, b.sess.Info().Client))
	b.sess.SetDetached(false) // before anything is resent: what is routed now is for a connected client
	if b.timer != nil {
		if b.timer.Stop() {
			s.wg.Done()
		}
		b.timer = nil
	}
	s.smMu.Unlock()
	q := b.sess.Queue()
	if old != nil {
		// XEP-0198 §5: the old connection is dead or dying; this one
		// takes over.
		old.reason.CompareAndSwap(nil, "replaced by a resumption")
		old.l().Detach()
		old.kill()
	}
	if err := q.Ack(h); err != nil {
		sent, _ := q.Counts()
		c.b, c.full = b, b.sess.JID()
		c.endSession.Store(true)
		return nil, handledTooHigh(h, sent)
	}
	if err := c.l().Flush(c.srv.conf().WriteTimeout); err != nil {
		c.b = b
		return nil, err
	}
	handled := b.sess.HandledCount()
	c.sync(ctx)
	res := xmlstream.NewElement(session.NSSM, "resumed").SetAttr("previd", id).
		SetAttr("h", strconv.FormatUint(uint64(handled), 10))
	// The state first: wrap may write the stream features of it.
	c.b, c.full = b, b.sess.JID()
	c.sm = true
	c.state = stateBound
	metrics.SessionBound(c.tr)
	metrics.Resumed()
	c.link.Store(q.Attach(c.t, wrap(res)))
	_ = c.t.SetReadDeadline(time.Time{})
	c.log = c.log.With("jid", c.full.String())
	sent, acked := q.Counts()
	c.log.Info("session resumed", "resent", sent-acked)
	return nil, nil
}
