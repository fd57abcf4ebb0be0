// Package client is an XMPP client: it dials a server (DNS SRV lookup of
// _xmpps-client._tcp and _xmpp-client._tcp per RFC 6120 §3.2 and XEP-0368,
// or a given address), negotiates STARTTLS or direct TLS, authenticates
// with SASL (SCRAM or PLAIN, RFC 6120 §6) and binds a resource (RFC 6120
// §7) — or, when the server offers them, logs in with SASL2 (XEP-0388)
// and Bind2 (XEP-0386) in one round trip, and with FAST tokens (XEP-0484)
// without the password — checking the server's XEP-0474 downgrade
// protection either way; then sends and receives stanzas, matching IQ
// responses to requests by id.
package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Config says how to connect and authenticate.
type Config struct {
	// JID is the account; a resourcepart, if any, is the resource asked for
	// (the server picks one otherwise).
	JID jid.JID
	// Password is the account's password.
	Password string
	// Addr is the server's host:port. Empty means DNS SRV lookup, falling
	// back to the domain on port 5222.
	Addr string
	// DirectTLS starts TLS at once (XEP-0368) instead of STARTTLS.
	DirectTLS bool
	// TLS is the TLS configuration; ServerName defaults to the JID's domain.
	TLS *tls.Config
	// TLSSessionCache, if set, keeps the TLS session tickets the server
	// issues, and the next Dial with the same cache resumes the session
	// (a TLS 1.3 pre-shared key, RFC 8446 §2.2): the server sends no
	// certificate and signs nothing, and the client verifies no
	// certificate chain; the key exchange still runs, so the session
	// keys are new (forward secrecy). It overrides TLS.ClientSessionCache.
	// Keep one cache per account and device beside its FASTToken: a
	// reconnect with both is the cheapest login on either side.
	// Client.TLSState().DidResume says whether a Dial resumed. Channel
	// bindings work on a resumed session: tls-exporter is new for each
	// connection, and tls-server-end-point is the certificate of the
	// session's first handshake (which ode's server keeps in its tickets).
	// A ticket links the connections that use it, as a FAST token does.
	TLSSessionCache tls.ClientSessionCache
	// AllowPlaintext permits a stream without TLS (for tests against a
	// server without a certificate). Off by default.
	AllowPlaintext bool
	// Mechanism forces one SASL mechanism; empty picks the strongest offered.
	Mechanism string
	// Lang is the stream's xml:lang.
	Lang string
	// MaxStanzaBytes bounds one received element (default 1 MiB).
	MaxStanzaBytes int
	// Resolver looks up SRV records; nil means net.DefaultResolver.
	Resolver *net.Resolver

	// NoSASL2 makes the client log in with RFC 6120 SASL even when the
	// server offers XEP-0388 SASL2. With SASL2 the client binds with
	// XEP-0386 Bind2 in the same round trip when JID has no
	// resourcepart (the server picks the resource, with Software as its
	// prefix), and with an IQ after success when it has one.
	NoSASL2 bool
	// UserAgentID identifies this installation of the client in SASL2
	// (a UUID that stays the same across logins): FAST tokens and
	// Bind2's stable resources are per id. Empty means a random id per
	// Dial.
	UserAgentID string
	// Software names the client in SASL2's <user-agent/>.
	Software string
	// RequestFASTToken asks for a XEP-0484 token at this login, when the
	// server offers FAST; see Client.FASTToken.
	RequestFASTToken bool
	// FASTToken, if set and offered, is used instead of Password: one
	// round trip and no PBKDF2. If the server refuses it, the client
	// logs in with Password (when set) and Client.FASTRefused reports it.
	FASTToken *FASTToken
}

// Client is an established XMPP session. Its methods are safe for
// concurrent use.
type Client struct {
	cfg    Config
	conn   net.Conn
	r      *xmlstream.Reader
	jid    jid.JID
	domain string
	tls    *tls.ConnectionState

	wmu sync.Mutex

	mu      sync.Mutex
	pending map[string]chan *xmlstream.Element
	err     error // why the receive loop ended

	in      chan *xmlstream.Element
	done    chan struct{}
	closeMu sync.Once

	fast       *FASTToken      // issued at this login
	fastFailed bool            // Config.FASTToken was refused
	requested  string          // the mechanism of our <request-token/>
	after      stream.Features // offered after SASL2 success
}

// Dial connects, negotiates the stream and binds a resource.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.JID.IsZero() || cfg.JID.Local() == "" {
		return nil, errors.New("client: config needs an account JID")
	}
	if cfg.MaxStanzaBytes == 0 {
		cfg.MaxStanzaBytes = 1 << 20
	}
	c := &Client{cfg: cfg, domain: cfg.JID.DomainString(), pending: make(map[string]chan *xmlstream.Element),
		in: make(chan *xmlstream.Element, 64), done: make(chan struct{})}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err = c.negotiate(ctx)
	stopped := stop()
	if err == nil && !stopped {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	go c.receive()
	return c, nil
}

// dial opens the TCP (and, for direct TLS, TLS) connection.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	addrs := []string{c.cfg.Addr}
	if c.cfg.Addr == "" {
		addrs = c.lookup(ctx)
	}
	var errs []error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c.cfg.DirectTLS {
			tc := tls.Client(conn, c.tlsConfig(true))
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				errs = append(errs, fmt.Errorf("client: tls handshake with %s: %w", a, err))
				continue
			}
			st := tc.ConnectionState()
			c.tls = &st
			return tc, nil
		}
		return conn, nil
	}
	return nil, fmt.Errorf("client: connect to %s: %w", c.domain, errors.Join(errs...))
}

// lookup returns the addresses to try: SRV targets in RFC 2782 order for
// the chosen transport, then the domain itself on the default port.
func (c *Client) lookup(ctx context.Context) []string {
	res := c.cfg.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	service, port := "xmpp-client", "5222"
	if c.cfg.DirectTLS {
		service, port = "xmpps-client", "5223"
	}
	var out []string
	if _, srvs, err := res.LookupSRV(ctx, service, "tcp", c.domain); err == nil {
		for _, s := range srvs {
			if s.Target == "." {
				return nil // RFC 2782: the service is decidedly not available
			}
			out = append(out, net.JoinHostPort(s.Target, strconv.Itoa(int(s.Port))))
		}
	}
	return append(out, net.JoinHostPort(c.domain, port))
}

func (c *Client) tlsConfig(direct bool) *tls.Config {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.cfg.TLS != nil {
		tc = c.cfg.TLS.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = c.domain
	}
	if c.cfg.TLSSessionCache != nil {
		tc.ClientSessionCache = c.cfg.TLSSessionCache
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	if direct && len(tc.NextProtos) == 0 {
		tc.NextProtos = []string{"xmpp-client"}
	}
	return tc
}

// write sends raw bytes on the stream.
func (c *Client) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(b)
	return err
}

// open sends our stream header, reads the server's and its features.
func (c *Client) open() (stream.Features, error) {
	h := stream.Header{To: c.domain, Version: "1.0", Lang: c.cfg.Lang}
	if c.tls != nil {
		h.From = c.cfg.JID.Bare().String()
	}
	if err := c.write(h.AppendXML(nil, stanza.NSClient)); err != nil {
		return stream.Features{}, fmt.Errorf("client: send stream header: %w", err)
	}
	start, err := c.r.ReadStart()
	if err != nil {
		return stream.Features{}, fmt.Errorf("client: read stream header: %w", err)
	}
	if _, err := stream.ParseHeader(start); err != nil {
		return stream.Features{}, fmt.Errorf("client: stream header: %w", err)
	}
	e, err := c.next()
	if err != nil {
		return stream.Features{}, err
	}
	if e.Name.Space != stream.NS || e.Name.Local != "features" {
		return stream.Features{}, fmt.Errorf("client: expected stream features, got <%s xmlns='%s'>", e.Name.Local, e.Name.Space)
	}
	return stream.ParseFeatures(e)
}

// next reads one element during negotiation, turning a stream error into
// a Go error.
func (c *Client) next() (*xmlstream.Element, error) {
	e, err := c.r.Next()
	if err != nil {
		return nil, fmt.Errorf("client: read: %w", err)
	}
	if e.Name.Space == stream.NS && e.Name.Local == "error" {
		se, perr := stream.ParseError(e)
		if perr != nil {
			return nil, fmt.Errorf("client: stream error: %w", perr)
		}
		return nil, se
	}
	return e, nil
}

// secure opens the stream and negotiates TLS, returning the features
// offered on the encrypted stream.
func (c *Client) secure() (stream.Features, error) {
	c.r = xmlstream.NewReader(c.conn, xmlstream.Limits{MaxElementBytes: c.cfg.MaxStanzaBytes})
	f, err := c.open()
	if err != nil {
		return f, err
	}
	if c.tls == nil {
		if f.StartTLS {
			if err := c.startTLS(); err != nil {
				return f, err
			}
			if f, err = c.open(); err != nil {
				return f, err
			}
		} else if !c.cfg.AllowPlaintext {
			return f, errors.New("client: server does not offer STARTTLS")
		}
	}
	return f, nil
}

func (c *Client) negotiate(ctx context.Context) error {
	f, err := c.secure()
	if err != nil {
		return err
	}
	if o, ok := parseSASL2(f); ok && !c.cfg.NoSASL2 {
		bound, err := c.negotiate2(ctx, f, o)
		if err != nil || bound {
			return err
		}
		if !c.after.Bind {
			return errors.New("client: server does not offer resource binding")
		}
		return c.bind(c.after)
	}
	if err := c.authenticate(ctx, f); err != nil {
		return err
	}
	c.r.Reset(c.conn)
	if f, err = c.open(); err != nil {
		return err
	}
	if !f.Bind {
		return errors.New("client: server does not offer resource binding")
	}
	return c.bind(f)
}

func (c *Client) startTLS() error {
	if err := c.write([]byte("<starttls xmlns='" + stream.NSTLS + "'/>")); err != nil {
		return fmt.Errorf("client: starttls: %w", err)
	}
	e, err := c.next()
	if err != nil {
		return err
	}
	if e.Name.Space != stream.NSTLS || e.Name.Local != "proceed" {
		return errors.New("client: server refused STARTTLS")
	}
	tc := tls.Client(c.conn, c.tlsConfig(false))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("client: tls handshake: %w", err)
	}
	st := tc.ConnectionState()
	c.tls = &st
	c.conn = tc
	c.r.Reset(tc)
	return nil
}

// AuthError is a SASL <failure/> from the server.
type AuthError struct {
	Condition sasl.Condition
	Text      string
}

// Error describes the failure.
func (e *AuthError) Error() string {
	if e.Text != "" {
		return "client: authentication failed: " + string(e.Condition) + ": " + e.Text
	}
	return "client: authentication failed: " + string(e.Condition)
}

func (c *Client) authenticate(ctx context.Context, f stream.Features) error {
	offered := f.Mechanisms
	cc := sasl.ClientConfig{Username: c.cfg.JID.Local(), Password: c.cfg.Password, TLS: c.tls,
		SSDP: &sasl.SSDP{Mechanisms: offered, ChannelBindings: channelBindings(f)}}
	var mech sasl.Client
	var err error
	if c.cfg.Mechanism != "" {
		mech, err = sasl.NewClient(c.cfg.Mechanism, cc)
	} else {
		mech, err = sasl.ClientSelect(offered, cc)
	}
	if err != nil {
		return fmt.Errorf("client: sasl: %w", err)
	}
	initial, err := mech.Start()
	if err != nil {
		return fmt.Errorf("client: sasl: %w", err)
	}
	payload := "="
	if len(initial) > 0 {
		payload = base64.StdEncoding.EncodeToString(initial)
	}
	if err := c.write([]byte("<auth xmlns='" + stream.NSSASL + "' mechanism='" + mech.Mechanism() + "'>" + payload + "</auth>")); err != nil {
		return fmt.Errorf("client: sasl: %w", err)
	}
	challenges := 0
	for {
		e, err := c.next()
		if err != nil {
			return err
		}
		if e.Name.Space != stream.NSSASL {
			return fmt.Errorf("client: sasl: unexpected <%s/>", e.Name.Local)
		}
		data, derr := base64.StdEncoding.DecodeString(e.Text())
		if derr != nil {
			return fmt.Errorf("client: sasl: bad base64 from server: %w", derr)
		}
		switch e.Name.Local {
		case "challenge":
			challenges++
			resp, err := mech.Next(data)
			if err != nil {
				_ = c.write([]byte("<abort xmlns='" + stream.NSSASL + "'/>"))
				return fmt.Errorf("client: sasl: %w", err)
			}
			if err := c.write([]byte("<response xmlns='" + stream.NSSASL + "'>" + base64.StdEncoding.EncodeToString(resp) + "</response>")); err != nil {
				return fmt.Errorf("client: sasl: %w", err)
			}
		case "success":
			if len(data) > 0 {
				if _, err := mech.Next(data); err != nil {
					return fmt.Errorf("client: sasl: server not verified: %w", err)
				}
			} else if strings.HasPrefix(mech.Mechanism(), "SCRAM-") && challenges < 2 {
				// RFC 5802 §5: the server proves it knows the password in
				// server-final-message (in <success/> or, RFC 6120 §6.3.10,
				// in a last challenge); a bare <success/> proves nothing.
				return fmt.Errorf("client: sasl: %s success without server signature", mech.Mechanism())
			}
			return nil
		case "failure":
			ae := &AuthError{Condition: sasl.NotAuthorized}
			for _, ch := range e.ChildrenNS(stream.NSSASL) {
				if ch.Name.Local == "text" {
					ae.Text = ch.Text()
				} else {
					ae.Condition = sasl.Condition(ch.Name.Local)
				}
			}
			return ae
		default:
			return fmt.Errorf("client: sasl: unexpected <%s/>", e.Name.Local)
		}
	}
}

func (c *Client) bind(f stream.Features) error {
	b := xmlstream.NewElement(stream.NSBind, "bind")
	if r := c.cfg.JID.Resource(); r != "" {
		b.Append(xmlstream.NewElement(stream.NSBind, "resource").AppendText(r))
	}
	iq := stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", newID())
	iq.Append(b)
	if err := c.write(iq.AppendXML(nil, stanza.NSClient)); err != nil {
		return fmt.Errorf("client: bind: %w", err)
	}
	res, err := c.next()
	if err != nil {
		return err
	}
	if se, ok := stanza.ParseError(res); ok {
		return fmt.Errorf("client: bind: %w", se)
	}
	j := res.Child(stream.NSBind, "bind")
	if j != nil {
		j = j.Child(stream.NSBind, "jid")
	}
	if j == nil {
		return errors.New("client: bind: no jid in the result")
	}
	full, err := jid.Parse(j.Text())
	if err != nil {
		return fmt.Errorf("client: bind: server sent a bad JID: %w", err)
	}
	c.jid = full
	return nil
}

// JID returns the bound full JID.
func (c *Client) JID() jid.JID { return c.jid }

// TLSState returns the connection's TLS state, or nil without TLS.
func (c *Client) TLSState() *tls.ConnectionState { return c.tls }

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// receive is the read loop: IQ responses go to their waiters, everything
// else to Recv.
func (c *Client) receive() {
	defer close(c.in)
	for {
		e, err := c.r.Next()
		if err != nil {
			if errors.Is(err, xmlstream.ErrStreamEnd) {
				err = io.EOF
			}
			c.stop(err)
			return
		}
		if e.Name.Space == stream.NS && e.Name.Local == "error" {
			if se, perr := stream.ParseError(e); perr == nil {
				c.stop(se)
			} else {
				c.stop(perr)
			}
			return
		}
		if e.Name.Local == "iq" {
			if t := stanza.Type(e); t == stanza.IQResult || t == stanza.IQError {
				c.mu.Lock()
				ch := c.pending[stanza.ID(e)]
				delete(c.pending, stanza.ID(e))
				c.mu.Unlock()
				if ch != nil {
					ch <- e
					continue
				}
			}
		}
		select {
		case c.in <- e:
		case <-c.done:
			return
		}
	}
}

func (c *Client) stop(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.closeMu.Do(func() { close(c.done) })
}

// Err returns why the stream ended (io.EOF for a clean close by the
// server, a *stream.Error for a stream error), or nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Send writes a stanza.
func (c *Client) Send(e *xmlstream.Element) error {
	if err := c.write(e.AppendXML(nil, stanza.NSClient)); err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	return nil
}

// SendRaw writes bytes as they are (for tests of a server's error handling).
func (c *Client) SendRaw(b []byte) error {
	if err := c.write(b); err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	return nil
}

// Recv returns the next received stanza that is not a response to IQ.
// It returns the stream's end reason (see Err) once the stream is over.
func (c *Client) Recv(ctx context.Context) (*xmlstream.Element, error) {
	select {
	case e, ok := <-c.in:
		if !ok {
			return nil, c.Err()
		}
		return e, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// IQ sends an IQ get or set (an id is set if missing) and waits for its
// response. A response of type error is returned with a *stanza.Error.
func (c *Client) IQ(ctx context.Context, iq *xmlstream.Element) (*xmlstream.Element, error) {
	id := stanza.ID(iq)
	if id == "" {
		id = newID()
		iq.SetAttr("id", id)
	}
	ch := make(chan *xmlstream.Element, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("client: stream closed: %w", err)
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.Send(iq); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, err
	}
	select {
	case res := <-ch:
		if se, ok := stanza.ParseError(res); ok {
			return res, se
		}
		return res, nil
	case <-c.done:
		return nil, fmt.Errorf("client: stream closed: %w", c.Err())
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Close ends the stream (RFC 6120 §4.4): it sends the closing tag, waits a
// moment for the server's, and closes the connection.
func (c *Client) Close() error {
	err := c.write([]byte("</stream:stream>"))
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
	c.stop(io.EOF)
	if cerr := c.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// NSRegister is XEP-0077 in-band registration's namespace.
const NSRegister = "jabber:iq:register"

// Register creates the account cfg.JID with cfg.Password by in-band
// registration (XEP-0077 §3.1) and closes the stream. A refusal is
// returned as a *stanza.Error (conflict: the username is taken).
func Register(ctx context.Context, cfg Config) error {
	if cfg.JID.IsZero() || cfg.JID.Local() == "" {
		return errors.New("client: config needs an account JID")
	}
	if cfg.MaxStanzaBytes == 0 {
		cfg.MaxStanzaBytes = 1 << 20
	}
	c := &Client{cfg: cfg, domain: cfg.JID.DomainString(), done: make(chan struct{})}
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	c.conn = conn
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	f, err := c.secure()
	if err != nil {
		return err
	}
	offered := false
	for _, o := range f.Other {
		if o.Name.Space == "http://jabber.org/features/iq-register" && o.Name.Local == "register" {
			offered = true
		}
	}
	if !offered {
		return errors.New("client: the server does not offer in-band registration")
	}
	id := newID()
	q := xmlstream.NewElement(NSRegister, "query").Append(
		xmlstream.NewElement(NSRegister, "username").AppendText(cfg.JID.Local()),
		xmlstream.NewElement(NSRegister, "password").AppendText(cfg.Password))
	if err := c.write(stanza.NewIQ(stanza.NSClient, stanza.IQSet, "", "", id).Append(q).AppendXML(nil, stanza.NSClient)); err != nil {
		return fmt.Errorf("client: register: %w", err)
	}
	for {
		e, err := c.next()
		if err != nil {
			return err
		}
		if e.Name.Local != "iq" || stanza.ID(e) != id {
			continue
		}
		_ = c.write([]byte("</stream:stream>"))
		if stanza.Type(e) == stanza.IQError {
			if se, ok := stanza.ParseError(e); ok {
				return se
			}
			return errors.New("client: register: error without a condition")
		}
		return nil
	}
}
