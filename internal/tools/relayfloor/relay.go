// Command relayfloor is the least a Go XMPP server does for a routed 1:1
// message, to measure under ode bench chat what ode's CPU per message is
// made of: a relay that accepts any user over STARTTLS (SASL PLAIN, one
// resource bind, its own presence echoed back) and writes each
// <message/> it reads to the connection bound to its 'to', from the
// reading goroutine, under that connection's lock. No routing table but
// one map, no modules, no storage, no queue, no writer goroutine, no
// stamped 'from'. It is a measuring tool, not a server: it checks
// nothing and trusts everyone. docs/performance.md reports what it
// measured.
//
//	go run ./internal/tools/relayfloor -addr 127.0.0.1:5399 -domain relay.test
//	ode bench chat -addr 127.0.0.1:5399 -domain relay.test -insecure -accounts FILE ...
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/ode-xmpp/ode/xmlstream"
)

const (
	nsClient = "jabber:client"
	nsTLS    = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL   = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind   = "urn:ietf:params:xml:ns:xmpp-bind"
)

// Relay relays messages between the users logged in to it.
type Relay struct {
	// Domain is the domain it serves; TLS its STARTTLS configuration.
	Domain string
	TLS    *tls.Config
	// Log gets one line per connection that failed; nil: none.
	Log *slog.Logger
	// Writers writes each connection's messages from a goroutine
	// started for each burst (as ode's session queue does), instead of
	// from the goroutine that read them.
	Writers bool

	mu    sync.RWMutex
	bound map[string]*conn // bare JID → its connection
}

// conn is one client's connection once it is bound.
type conn struct {
	mu sync.Mutex // held while writing
	c  net.Conn

	qmu     sync.Mutex
	queue   []byte // for Writers: what waits for the writer
	writing bool   // a writer goroutine runs
}

// enqueue hands b to the connection's writer, starting one if none runs.
func (c *conn) enqueue(b []byte) {
	c.qmu.Lock()
	c.queue = append(c.queue, b...)
	start := !c.writing
	c.writing = true
	c.qmu.Unlock()
	if start {
		go c.drain()
	}
}

// drain writes what is queued until nothing is, then ends.
func (c *conn) drain() {
	var out []byte
	for {
		c.qmu.Lock()
		if len(c.queue) == 0 {
			c.writing = false
			c.qmu.Unlock()
			return
		}
		out, c.queue = c.queue, out[:0]
		c.qmu.Unlock()
		_ = c.write(out) // a receiver that went away loses it
	}
}

// Serve accepts connections on ln until it is closed.
func (r *Relay) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("relayfloor: accept: %w", err)
		}
		go func() {
			defer c.Close()
			if err := r.serve(c); err != nil && r.Log != nil {
				r.Log.Debug("relayfloor: connection", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// open reads a stream header on rd and answers with ours and features.
func (r *Relay) open(rd *xmlstream.Reader, w io.Writer, features string) error {
	if _, err := rd.ReadStart(); err != nil {
		return fmt.Errorf("stream header: %w", err)
	}
	_, err := io.WriteString(w, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' id='relay' from='`+
		r.Domain+`'><stream:features>`+features+`</stream:features>`)
	return err
}

// next reads the next element, which must be local in space.
func next(rd *xmlstream.Reader, space, local string) (*xmlstream.Element, error) {
	e, err := rd.Next()
	if err != nil {
		return nil, err
	}
	if e.Name.Space != space || e.Name.Local != local {
		return nil, fmt.Errorf("want {%s}%s, got %s", space, local, e)
	}
	return e, nil
}

func (r *Relay) serve(nc net.Conn) error {
	rd := xmlstream.NewReader(nc, xmlstream.Limits{})
	if err := r.open(rd, nc, `<starttls xmlns='`+nsTLS+`'><required/></starttls>`); err != nil {
		return err
	}
	if _, err := next(rd, nsTLS, "starttls"); err != nil {
		return err
	}
	if _, err := io.WriteString(nc, `<proceed xmlns='`+nsTLS+`'/>`); err != nil {
		return err
	}
	tc := tls.Server(nc, r.TLS)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	rd.Reset(tc)
	if err := r.open(rd, tc, `<mechanisms xmlns='`+nsSASL+`'><mechanism>PLAIN</mechanism></mechanisms>`); err != nil {
		return err
	}
	auth, err := next(rd, nsSASL, "auth")
	if err != nil {
		return err
	}
	plain, err := base64.StdEncoding.DecodeString(auth.Text())
	parts := bytes.Split(plain, []byte{0})
	if err != nil || len(parts) != 3 {
		return errors.New("bad PLAIN")
	}
	bare := string(parts[1]) + "@" + r.Domain
	if _, err := io.WriteString(tc, `<success xmlns='`+nsSASL+`'/>`); err != nil {
		return err
	}
	rd.Reset(tc)
	if err := r.open(rd, tc, `<bind xmlns='`+nsBind+`'/>`); err != nil {
		return err
	}
	iq, err := next(rd, nsClient, "iq")
	if err != nil {
		return err
	}
	full := bare + "/relay"
	c := &conn{c: tc}
	r.mu.Lock()
	if r.bound == nil {
		r.bound = make(map[string]*conn)
	}
	r.bound[bare] = c
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		if r.bound[bare] == c {
			delete(r.bound, bare)
		}
		r.mu.Unlock()
	}()
	if err := c.write([]byte(`<iq type='result' id='` + iq.Attribute("id") + `'><bind xmlns='` + nsBind + `'><jid>` + full + `</jid></bind></iq>`)); err != nil {
		return err
	}
	var buf []byte
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch e.Name.Local {
		case "presence": // the initial presence, back from the full JID
			if err := c.write([]byte(`<presence from='` + full + `' to='` + full + `'/>`)); err != nil {
				return err
			}
		case "message":
			r.mu.RLock()
			to := r.bound[e.Attribute("to")]
			r.mu.RUnlock()
			if to == nil {
				continue
			}
			buf = e.AppendXML(buf[:0], nsClient)
			if r.Writers {
				to.enqueue(buf)
			} else {
				_ = to.write(buf) // a receiver that went away loses it
			}
		}
	}
}

func (c *conn) write(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.c.Write(b)
	return err
}
