package bosh_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/bosh"
)

// rawSession creates a session by hand (wait 1s) and returns its sid and
// the next rid.
func (e *env) rawSession(t *testing.T, attrs string) (string, uint64) {
	t.Helper()
	status, b := e.post(t, fmt.Sprintf("<body rid='100' to='%s' wait='1' hold='1' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh' xmlns='%s'%s/>", domain, bosh.NS, attrs))
	resp := parse(t, b)
	if status != 200 || resp.Attribute("sid") == "" {
		t.Fatalf("creation: %d %s", status, b)
	}
	return resp.Attribute("sid"), 101
}

// req builds a request body.
func req(sid string, rid uint64, attrs, payload string) string {
	return fmt.Sprintf("<body rid='%d' sid='%s' xmlns='%s'%s>%s</body>", rid, sid, bosh.NS, attrs, payload)
}

// terminated checks that b is a terminate body with cond.
func terminated(t *testing.T, status int, b string, wantStatus int, cond string) {
	t.Helper()
	el := parse(t, b)
	if status != wantStatus || el.Attribute("type") != "terminate" || el.Attribute("condition") != cond {
		t.Fatalf("got %d %s, want %d and a terminate body with condition %q", status, b, wantStatus, cond)
	}
}

func TestRequestErrors(t *testing.T) {
	e := start(t, func(c *bosh.Config) { c.MaxBodyBytes = 4096 })
	for _, tc := range []struct {
		name   string
		body   string
		status int
		cond   string
	}{
		{"unknown sid", req("nosuchsid", 5, "", ""), 404, "item-not-found"},
		{"not well-formed", "<body rid='1' xmlns='" + bosh.NS + "'><message>", 400, "bad-request"},
		{"not a body", "<bodyx rid='1' xmlns='" + bosh.NS + "'/>", 400, "bad-request"},
		{"wrong namespace", "<body rid='1' xmlns='jabber:client'/>", 400, "bad-request"},
		{"no rid", "<body to='localhost' xmlns='" + bosh.NS + "'/>", 400, "bad-request"},
		{"rid too large", "<body rid='9007199254740992' to='localhost' xmlns='" + bosh.NS + "'/>", 400, "bad-request"},
		{"comment", "<body rid='1' to='localhost' xmlns='" + bosh.NS + "'><!-- x --></body>", 400, "bad-request"},
		{"entity", "<!DOCTYPE body [<!ENTITY a 'b'>]><body rid='1' xmlns='" + bosh.NS + "'/>", 400, "bad-request"},
		{"text", "<body rid='1' xmlns='" + bosh.NS + "'>hello</body>", 400, "bad-request"},
		{"huge", "<body rid='1' xmlns='" + bosh.NS + "'>" + strings.Repeat("<presence xmlns='jabber:client'/>", 200) + "</body>", 413, "bad-request"},
		{"restart without a session", "<body rid='1' to='localhost' xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh' xmlns='" + bosh.NS + "'/>", 400, "bad-request"},
		{"terminate without a session", "<body rid='1' type='terminate' xmlns='" + bosh.NS + "'/>", 400, "bad-request"},
		{"unknown host", "<body rid='1' to='example.net' wait='1' hold='1' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh' xmlns='" + bosh.NS + "'/>", 200, "host-unknown"},
		{"no host", "<body rid='1' wait='1' hold='1' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh' xmlns='" + bosh.NS + "'/>", 200, "host-unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := e.post(t, tc.body)
			terminated(t, status, b, tc.status, tc.cond)
		})
	}
	t.Run("methods", func(t *testing.T) {
		resp, err := e.http.Client().Get(e.http.URL + "/http-bind")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		r, _ := http.NewRequest(http.MethodPut, e.http.URL+"/http-bind", nil)
		resp, err = e.http.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Errorf("PUT: %d", resp.StatusCode)
		}
	})
	waitFor(t, func() bool { return e.bosh.Count() == 0 })
}

func TestRIDs(t *testing.T) {
	e := start(t, nil)
	t.Run("outside the window", func(t *testing.T) {
		sid, rid := e.rawSession(t, "")
		status, b := e.post(t, req(sid, rid+2, "", ""))
		terminated(t, status, b, 200, "item-not-found")
		// The session is gone.
		status, b = e.post(t, req(sid, rid, "", ""))
		terminated(t, status, b, 404, "item-not-found")
	})
	t.Run("far below", func(t *testing.T) {
		sid, rid := e.rawSession(t, "")
		status, b := e.post(t, req(sid, rid-50, "", ""))
		terminated(t, status, b, 200, "item-not-found")
	})
	t.Run("replay", func(t *testing.T) {
		sid, rid := e.rawSession(t, "")
		auth := "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHdyb25n</auth>"
		_, first := e.post(t, req(sid, rid, "", auth))
		if !strings.Contains(first, "failure") {
			t.Fatalf("got %s", first)
		}
		// The same request again gets the same response, and the
		// payload is not processed twice.
		for range 3 {
			if _, again := e.post(t, req(sid, rid, "", auth)); again != first {
				t.Fatalf("replay: %s, want %s", again, first)
			}
		}
		_, b := e.post(t, req(sid, rid+1, "", ""))
		if el := parse(t, b); el.Attribute("type") != "" || len(el.Children) != 0 {
			t.Fatalf("after the replays: %s", b)
		}
	})
	t.Run("out of order", func(t *testing.T) {
		sid, rid := e.rawSession(t, "")
		// rid+1 comes first: it waits for rid. Once both are in, rid is
		// answered (at once: two are held, hold is 1) and rid+1 carries
		// what rid's payload brought.
		type result struct {
			status int
			body   string
		}
		later := make(chan result, 1)
		go func() {
			s, b := e.post(t, req(sid, rid+1, "", ""))
			later <- result{s, b}
		}()
		time.Sleep(100 * time.Millisecond) // let rid+1 arrive first; the test holds either way
		_, b := e.post(t, req(sid, rid, "", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHdyb25n</auth>"))
		r := <-later
		if !strings.Contains(b+r.body, "failure") || r.status != 200 {
			t.Fatalf("rid: %s, rid+1: %d %s", b, r.status, r.body)
		}
	})
}

func TestStreamErrors(t *testing.T) {
	e := start(t, nil)
	t.Run("stanza before authentication", func(t *testing.T) {
		sid, rid := e.rawSession(t, "")
		status, b := e.post(t, req(sid, rid, "", "<message to='bob@localhost' xmlns='jabber:client'><body>x</body></message>"))
		terminated(t, status, b, 200, "remote-stream-error")
		el := parse(t, b)
		se := el.Child("http://etherx.jabber.org/streams", "error")
		if se == nil || se.Child("urn:ietf:params:xml:ns:xmpp-streams", "not-authorized") == nil {
			t.Fatalf("no not-authorized stream error: %s", b)
		}
	})
	t.Run("restart out of place", func(t *testing.T) {
		sid, rid := e.rawSession(t, "")
		status, b := e.post(t, req(sid, rid, " xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh'", ""))
		terminated(t, status, b, 200, "remote-stream-error")
	})
	t.Run("payload in a restart", func(t *testing.T) {
		sid, rid := e.rawSession(t, "")
		status, b := e.post(t, req(sid, rid, " xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh'", "<presence xmlns='jabber:client'/>"))
		terminated(t, status, b, 400, "bad-request")
	})
	waitFor(t, func() bool { return e.bosh.Count() == 0 && e.c2s.Count() == 0 })
}

func TestPolling(t *testing.T) {
	e := start(t, nil)
	status, b := e.post(t, fmt.Sprintf("<body rid='100' to='%s' wait='0' hold='0' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh' xmlns='%s'/>", domain, bosh.NS))
	resp := parse(t, b)
	if status != 200 || resp.Attribute("hold") != "0" || resp.Attribute("wait") != "0" {
		t.Fatalf("creation: %s", b)
	}
	sid := resp.Attribute("sid")
	// The first empty poll is answered at once, the second too soon is
	// overactivity (XEP-0124 §12).
	if _, b := e.post(t, req(sid, 101, "", "")); parse(t, b).Attribute("type") != "" {
		t.Fatalf("first poll: %s", b)
	}
	status, b = e.post(t, req(sid, 102, "", ""))
	terminated(t, status, b, 200, "policy-violation")
}

func TestInactivityAndPause(t *testing.T) {
	e := start(t, func(c *bosh.Config) { c.MaxInactivity = 500 * time.Millisecond; c.MaxPause = 2 * time.Second })
	t.Run("inactive", func(t *testing.T) {
		sid, rid := e.rawSession(t, "")
		waitFor(t, func() bool { return e.bosh.Count() == 0 })
		status, b := e.post(t, req(sid, rid, "", ""))
		terminated(t, status, b, 404, "item-not-found")
	})
	t.Run("pause", func(t *testing.T) {
		sid, rid := e.rawSession(t, "")
		start := time.Now()
		status, b := e.post(t, req(sid, rid, " pause='2'", ""))
		if el := parse(t, b); status != 200 || el.Attribute("type") != "" || time.Since(start) > 900*time.Millisecond {
			t.Fatalf("pause: %d %s after %s", status, b, time.Since(start))
		}
		time.Sleep(time.Second) // longer than the inactivity, shorter than the pause
		if _, b := e.post(t, req(sid, rid+1, "", "")); parse(t, b).Attribute("type") != "" {
			t.Fatalf("after the pause: %s", b)
		}
	})
	waitFor(t, func() bool { return e.bosh.Count() == 0 && e.c2s.Count() == 0 })
}

func TestLimitsAndShutdown(t *testing.T) {
	e := start(t, func(c *bosh.Config) { c.MaxSessions = 1 })
	sid, rid := e.rawSession(t, "")
	status, b := e.post(t, fmt.Sprintf("<body rid='7' to='%s' wait='1' hold='1' xmlns='%s'/>", domain, bosh.NS))
	terminated(t, status, b, 200, "policy-violation")

	held := make(chan string, 1)
	go func() {
		_, b := e.post(t, req(sid, rid, "", ""))
		held <- b
	}()
	waitFor(t, func() bool { return e.c2s.Count() == 1 })
	time.Sleep(50 * time.Millisecond) // the request is held (if not yet, it gets the same answer)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.bosh.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	b = <-held
	terminated(t, 200, b, 200, "system-shutdown")
	status, b = e.post(t, fmt.Sprintf("<body rid='7' to='%s' wait='1' hold='1' xmlns='%s'/>", domain, bosh.NS))
	terminated(t, status, b, 200, "system-shutdown")
}
