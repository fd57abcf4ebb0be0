package metrics_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

const nsBOSH = "http://jabber.org/protocol/httpbind"

// boshConn is a sequential XMPP over BOSH client (XEP-0206): one request
// at a time, each held by the server for at most a second.
type boshConn struct {
	t   *testing.T
	srv *xmpptest.Server
	hc  *http.Client
	sid string
	rid int
}

func (c *boshConn) post(attrs, payload string) *xmlstream.Element {
	c.t.Helper()
	body := fmt.Sprintf("<body rid='%d' xmlns='%s' xmlns:xmpp='urn:xmpp:xbosh'%s>%s</body>", c.rid, nsBOSH, attrs, payload)
	if c.sid != "" {
		body = fmt.Sprintf("<body rid='%d' sid='%s' xmlns='%s' xmlns:xmpp='urn:xmpp:xbosh'%s>%s</body>", c.rid, c.sid, nsBOSH, attrs, payload)
	}
	c.rid++
	resp, err := c.hc.Post("https://"+c.srv.HTTPAddr+"/http-bind", "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		c.t.Fatalf("bosh request: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		c.t.Fatalf("bosh response: %d %v %s", resp.StatusCode, err, b)
	}
	el, err := xmlstream.ParseElement(b, stanza.NSClient)
	if err != nil || el.Attribute("type") == "terminate" {
		c.t.Fatalf("bosh response %s: %v", b, err)
	}
	return el
}

// until posts (the first request with attrs and payload, then empty
// polls) until a response holds the element named local.
func (c *boshConn) until(local, attrs, payload string) *xmlstream.Element {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		el := c.post(attrs, payload)
		attrs, payload = "", ""
		if c.sid == "" {
			c.sid = el.Attribute("sid")
		}
		for _, ch := range el.ChildrenNS("") {
			if ch.Name.Local == local {
				return ch
			}
			if ch.Name.Local == "failure" {
				c.t.Fatalf("bosh: %s while waiting for <%s/>", ch, local)
			}
		}
	}
	c.t.Fatalf("bosh: no <%s/>", local)
	return nil
}

// boshLogin opens a BOSH session, logs in with PLAIN and binds.
func boshLogin(t *testing.T, srv *xmpptest.Server, user, pw string) *boshConn {
	t.Helper()
	c := &boshConn{t: t, srv: srv, hc: metricsClient(srv), rid: 1000}
	c.until("features", fmt.Sprintf(" to='%s' xml:lang='en' wait='1' hold='1' ver='1.11' xmpp:version='1.0'", srv.Domain), "")
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pw))
	c.until("success", "", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+auth+"</auth>")
	c.until("features", fmt.Sprintf(" xmpp:restart='true' to='%s' xml:lang='en'", srv.Domain), "")
	c.until("iq", "", "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	return c
}

// TestScrapeBOSH checks the bosh transport's series: a session over BOSH
// is a connection and a bound session, and stops being both when it
// terminates.
func TestScrapeBOSH(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "dana", "pw")
	before := scrape(t, srv)
	c := boshLogin(t, srv, "dana", "pw")
	during := scrape(t, srv)
	for _, name := range []string{"ode_c2s_connections", "ode_c2s_sessions"} {
		if d := delta(before, during, name, "transport=bosh"); d != 1 {
			t.Errorf("%s{transport=bosh} moved by %v with one BOSH session, want 1", name, d)
		}
	}
	if d := delta(before, during, "ode_c2s_logins_total", "profile=sasl", "mechanism=PLAIN"); d < 1 {
		t.Errorf("the BOSH login was not counted (%v)", d)
	}
	// The client ends the session (XEP-0124 §12).
	body := fmt.Sprintf("<body rid='%d' sid='%s' type='terminate' xmlns='%s'><presence type='unavailable' xmlns='jabber:client'/></body>", c.rid, c.sid, nsBOSH)
	resp, err := c.hc.Post("https://"+srv.HTTPAddr+"/http-bind", "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	xmpptest.WaitFor(t, 20*time.Second, "the BOSH session to be uncounted", func() bool {
		after := scrape(t, srv)
		return delta(before, after, "ode_c2s_sessions", "transport=bosh") == 0 &&
			delta(before, after, "ode_c2s_connections", "transport=bosh") == 0
	})
}
