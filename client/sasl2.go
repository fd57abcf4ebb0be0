package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Namespaces of the modern login: XEP-0388 SASL2, XEP-0386 Bind2, XEP-0484
// FAST, XEP-0198 stream management (inline) and XEP-0440.
const (
	// NSSASL2 is XEP-0388's namespace (Extensible SASL Profile).
	NSSASL2 = "urn:xmpp:sasl:2"
	// NSBind2 is XEP-0386's namespace (Bind 2).
	NSBind2 = "urn:xmpp:bind:0"
	// NSFAST is XEP-0484's namespace (FAST tokens).
	NSFAST   = "urn:xmpp:fast:0"
	nsSASLCB = "urn:xmpp:sasl-cb:0"
)

// FASTToken is a XEP-0484 token the server issued: keep it (as secret as
// a password) and give it back in Config.FASTToken to log in without the
// password. It is bound to its Mechanism.
type FASTToken struct {
	// Mechanism is the HT mechanism the token is for, such as
	// "HT-SHA-256-EXPR".
	Mechanism string
	// Token is the secret.
	Token string
	// Expiry is when the server stops accepting it.
	Expiry time.Time
}

// sasl2Offer is what a server's <authentication/> feature offers.
type sasl2Offer struct {
	mechs []string // SASL2 mechanisms
	fast  []string // FAST mechanisms (inline)
	bind2 bool
}

func parseSASL2(f stream.Features) (sasl2Offer, bool) {
	var o sasl2Offer
	for _, e := range f.Other {
		if e.Name.Space != NSSASL2 || e.Name.Local != "authentication" {
			continue
		}
		for _, m := range e.ChildrenNS(NSSASL2) {
			if m.Name.Local == "mechanism" {
				o.mechs = append(o.mechs, strings.TrimSpace(m.Text()))
			}
		}
		if in := e.Child(NSSASL2, "inline"); in != nil {
			o.bind2 = in.Child(NSBind2, "bind") != nil
			if fast := in.Child(NSFAST, "fast"); fast != nil {
				for _, m := range fast.ChildrenNS(NSFAST) {
					if m.Name.Local == "mechanism" {
						o.fast = append(o.fast, strings.TrimSpace(m.Text()))
					}
				}
			}
		}
		return o, true
	}
	return o, false
}

// channelBindings returns the XEP-0440 types the server advertised, nil
// when it sent no advertisement.
func channelBindings(f stream.Features) []string {
	for _, e := range f.Other {
		if e.Name.Space == nsSASLCB && e.Name.Local == "sasl-channel-binding" {
			types := []string{}
			for _, cb := range e.ChildrenNS(nsSASLCB) {
				types = append(types, cb.Attribute("type"))
			}
			return types
		}
	}
	return nil
}

// userAgentID returns the configured id, or a random UUID for this Dial.
func (c *Client) userAgentID() string {
	if c.cfg.UserAgentID != "" {
		return c.cfg.UserAgentID
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// negotiate2 logs in with SASL2 (XEP-0388) and binds with Bind2 when
// offered: first with the FAST token if one is configured and usable,
// falling back to the password. It returns with the features after
// success read, bound or not.
func (c *Client) negotiate2(ctx context.Context, f stream.Features, o sasl2Offer) (bound bool, err error) {
	ua := c.userAgentID()
	if t := c.cfg.FASTToken; t != nil && containsString(o.fast, t.Mechanism) && time.Now().Before(t.Expiry) {
		mech, err := sasl.NewClient(t.Mechanism, sasl.ClientConfig{Username: c.cfg.JID.Local(), Token: t.Token, TLS: c.tls})
		if err == nil {
			bound, err = c.authenticate2(ctx, mech, ua, o, `<fast xmlns='`+NSFAST+`'/>`)
			var ae *AuthError
			if !errors.As(err, &ae) || c.cfg.Password == "" {
				return bound, err
			}
			// XEP-0484 §5.1: a refused token is dropped, and the
			// password used.
			c.fastFailed = true
		}
	}
	cc := sasl.ClientConfig{Username: c.cfg.JID.Local(), Password: c.cfg.Password, TLS: c.tls,
		SSDP: &sasl.SSDP{Mechanisms: o.mechs, ChannelBindings: channelBindings(f)}}
	var mech sasl.Client
	if c.cfg.Mechanism != "" {
		mech, err = sasl.NewClient(c.cfg.Mechanism, cc)
	} else {
		mech, err = sasl.ClientSelect(o.mechs, cc)
	}
	if err != nil {
		return false, fmt.Errorf("client: sasl2: %w", err)
	}
	extra := ""
	if c.cfg.RequestFASTToken {
		if m := sasl.SelectTokenMechanism(o.fast, c.tls); m != "" {
			extra = `<request-token xmlns='` + NSFAST + `' mechanism='` + m + `'/>`
			c.requested = m
		}
	}
	return c.authenticate2(ctx, mech, ua, o, extra)
}

// authenticate2 runs one SASL2 exchange with mech, asking for Bind2 when
// offered, and reads the features that follow success.
func (c *Client) authenticate2(_ context.Context, mech sasl.Client, ua string, o sasl2Offer, extra string) (bound bool, err error) {
	initial, err := mech.Start()
	if err != nil {
		return false, fmt.Errorf("client: sasl2: %w", err)
	}
	var b strings.Builder
	b.WriteString(`<authenticate xmlns='` + NSSASL2 + `' mechanism='` + mech.Mechanism() + `'>`)
	if initial != nil {
		b.WriteString(`<initial-response>` + base64.StdEncoding.EncodeToString(initial) + `</initial-response>`)
	}
	b.Write(xmlstream.NewElement(NSSASL2, "user-agent").SetAttr("id", ua).Append(
		xmlstream.NewElement(NSSASL2, "software").AppendText(c.software())).AppendXML(nil, NSSASL2))
	if o.bind2 && c.cfg.JID.Resource() == "" {
		// Bind2 cannot ask for a given resource: with one in the JID,
		// the client binds it with an IQ after success.
		bind := xmlstream.NewElement(NSBind2, "bind")
		if c.cfg.Software != "" {
			bind.Append(xmlstream.NewElement(NSBind2, "tag").AppendText(c.cfg.Software))
		}
		b.Write(bind.AppendXML(nil, NSSASL2))
	}
	b.WriteString(extra + `</authenticate>`)
	if err := c.write([]byte(b.String())); err != nil {
		return false, fmt.Errorf("client: sasl2: %w", err)
	}
	for {
		e, err := c.next()
		if err != nil {
			return false, err
		}
		if e.Name.Space != NSSASL2 {
			return false, fmt.Errorf("client: sasl2: unexpected <%s/>", e.Name.Local)
		}
		switch e.Name.Local {
		case "challenge":
			data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Text()))
			if err != nil {
				return false, fmt.Errorf("client: sasl2: bad base64 from server: %w", err)
			}
			resp, err := mech.Next(data)
			if err != nil {
				_ = c.write([]byte("<abort xmlns='" + NSSASL2 + "'/>"))
				return false, fmt.Errorf("client: sasl2: %w", err)
			}
			if err := c.write([]byte("<response xmlns='" + NSSASL2 + "'>" + base64.StdEncoding.EncodeToString(resp) + "</response>")); err != nil {
				return false, fmt.Errorf("client: sasl2: %w", err)
			}
		case "success":
			return c.success2(mech, e)
		case "failure":
			ae := &AuthError{Condition: sasl.NotAuthorized}
			for _, ch := range e.Children {
				switch el := ch.Elem; {
				case el == nil:
				case el.Name.Space == NSSASL2 && el.Name.Local == "text":
					ae.Text = el.Text()
				case el.Name.Space == stream.NSSASL:
					ae.Condition = sasl.Condition(el.Name.Local)
				}
			}
			return false, ae
		default:
			return false, fmt.Errorf("client: sasl2: unexpected <%s/> (tasks are not supported)", e.Name.Local)
		}
	}
}

// success2 verifies the server (the additional data), takes the JID and
// any FAST token, and reads the features of the authenticated stream.
func (c *Client) success2(mech sasl.Client, e *xmlstream.Element) (bool, error) {
	if ad := e.Child(NSSASL2, "additional-data"); ad != nil {
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ad.Text()))
		if err != nil {
			return false, fmt.Errorf("client: sasl2: bad base64 from server: %w", err)
		}
		if _, err := mech.Next(data); err != nil {
			return false, fmt.Errorf("client: sasl2: server not verified: %w", err)
		}
	} else if strings.HasPrefix(mech.Mechanism(), "SCRAM-") || sasl.IsTokenMechanism(mech.Mechanism()) {
		return false, fmt.Errorf("client: sasl2: %s success without the server's proof", mech.Mechanism())
	}
	if tok := e.Child(NSFAST, "token"); tok != nil {
		exp, _ := time.Parse(time.RFC3339, tok.Attribute("expiry"))
		m := ""
		if c.cfg.FASTToken != nil && sasl.IsTokenMechanism(mech.Mechanism()) {
			m = mech.Mechanism() // a rotation: the same mechanism
		} else {
			m = c.requested
		}
		c.fast = &FASTToken{Mechanism: m, Token: tok.Attribute("token"), Expiry: exp}
	}
	bound := e.Child(NSBind2, "bound") != nil
	if a := e.Child(NSSASL2, "authorization-identifier"); a != nil && bound {
		full, err := jid.Parse(strings.TrimSpace(a.Text()))
		if err != nil || full.Resource() == "" {
			return false, fmt.Errorf("client: bind2: server sent a bad JID %q", a.Text())
		}
		c.jid = full
	}
	f, err := c.next()
	if err != nil {
		return false, err
	}
	if f.Name.Space != stream.NS || f.Name.Local != "features" {
		return false, fmt.Errorf("client: sasl2: expected stream features after success, got <%s/>", f.Name.Local)
	}
	c.after, err = stream.ParseFeatures(f)
	return bound, err
}

func (c *Client) software() string {
	if c.cfg.Software != "" {
		return c.cfg.Software
	}
	return "ode client"
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// FASTToken returns the XEP-0484 token the server issued at this login
// (asked for with Config.RequestFASTToken, or a rotation of
// Config.FASTToken), or nil. Keep it for the next Dial.
func (c *Client) FASTToken() *FASTToken { return c.fast }

// FASTRefused reports whether the server refused Config.FASTToken at
// this login (the client then used the password): drop the token.
func (c *Client) FASTRefused() bool { return c.fastFailed }
