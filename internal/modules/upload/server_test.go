package upload_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/upload"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// startServer starts a real server whose upload module has cfg (the
// defaults when nil) and fails the test when it has no HTTP listener.
func startServer(t testing.TB, cfg *upload.Config) *xmpptest.Server {
	t.Helper()
	srv := xmpptest.Start(t, func(c *config.Config) {
		if cfg != nil {
			c.Modules.Settings["upload"] = cfg
		}
	})
	if srv.HTTPAddr == "" {
		t.Fatal("the test server has no HTTPS listener")
	}
	return srv
}

// httpClient trusts the server's CA and dials its HTTPS listener whatever
// the URL's host (https://localhost:<port>).
func httpClient(srv *xmpptest.Server) *http.Client { return httpClientProto(srv, true) }

// httpClientProto is httpClient speaking HTTP/2 or HTTP/1.1.
func httpClientProto(srv *xmpptest.Server, h2 bool) *http.Client {
	var d net.Dialer
	tr := &http.Transport{
		TLSClientConfig: srv.TLSConfig(),
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, srv.HTTPAddr)
		},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr}
}

// protos runs a benchmark over HTTP/2 and HTTP/1.1.
func protos(b *testing.B, bench func(b *testing.B, hc *http.Client, srv *xmpptest.Server, c *client.Client)) {
	const size = 100 << 20
	cfg := *upload.Info.Config.(*upload.Config)
	cfg.MaxFileSize, cfg.DailyQuota = size, 0
	srv := startServer(b, &cfg)
	c := srv.Dial(b, srv.AddUser(b, "alice", "wonderland"), "wonderland")
	for _, h2 := range []bool{true, false} {
		name := "HTTP1.1"
		if h2 {
			name = "HTTP2"
		}
		b.Run(name, func(b *testing.B) {
			hc := httpClientProto(srv, h2)
			defer hc.CloseIdleConnections()
			bench(b, hc, srv, c)
		})
	}
}

// requestSlot asks the server's upload service for a slot over XMPP.
func requestSlot(ctx context.Context, c *client.Client, service, name string, size int64, ct string) (slot, error) {
	iq := stanza.NewIQ(stanza.NSClient, stanza.IQGet, service, "", "").Append(request(name, size, ct))
	res, err := c.IQ(ctx, iq)
	if err != nil {
		return slot{}, err
	}
	el := res.Child(upload.NSUpload, "slot")
	if el == nil {
		return slot{}, errors.New("no slot in " + res.String())
	}
	put := el.Child(upload.NSUpload, "put")
	return slot{
		put:  put.Attribute("url"),
		get:  el.Child(upload.NSUpload, "get").Attribute("url"),
		auth: put.Child(upload.NSUpload, "header").Text(),
	}, nil
}

func putBody(ctx context.Context, hc *http.Client, s slot, ct string, body io.Reader, size int64) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.put, body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = size
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("Content-Type", ct)
	res, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// TestServer: the module in the real server, through its HTTPS listener:
// found in the domain's disco#items, a slot over XMPP, the PUT and GET
// through the listener (with its CORS), the account's deletion.
func TestServer(t *testing.T) {
	srv := startServer(t, nil)
	alice := srv.AddUser(t, "alice", "wonderland")
	c := srv.Dial(t, alice, "wonderland")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	items, err := c.IQ(ctx, stanza.NewIQ(stanza.NSClient, stanza.IQGet, srv.Domain, "", "").
		Append(xmlstream.NewElement(stanza.NSDiscoItems, "query")))
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, it := range items.Child(stanza.NSDiscoItems, "query").ChildrenNS(stanza.NSDiscoItems) {
		listed = listed || it.Attribute("jid") == "upload.localhost"
	}
	if !listed {
		t.Fatalf("disco#items of the domain: %s, want upload.localhost", items)
	}

	body := make([]byte, 1<<20+17)
	rand.Read(body)
	s, err := requestSlot(ctx, c, "upload.localhost", "photo.jpg", int64(len(body)), "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	hc := httpClient(srv)
	defer hc.CloseIdleConnections()

	pre, _ := http.NewRequestWithContext(ctx, http.MethodOptions, s.put, nil)
	pre.Header.Set("Origin", "https://web.example")
	pre.Header.Set("Access-Control-Request-Method", "PUT")
	pre.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	res, err := hc.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 || res.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("preflight through the listener: %s %v", res.Status, res.Header)
	}

	if code, err := putBody(ctx, hc, s, "image/jpeg", bytes.NewReader(body), int64(len(body))); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT: %d, %v", code, err)
	}
	if code, err := putBody(ctx, hc, s, "image/jpeg", bytes.NewReader(body), int64(len(body))); err != nil || code != http.StatusConflict {
		t.Errorf("second PUT: %d, %v; want 409", code, err)
	}
	get, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.get, nil)
	get.Header.Set("Origin", "https://web.example")
	res, err = hc.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET: %s, %d bytes (%v); want the %d bytes uploaded", res.Status, len(got), err, len(body))
	}
	if v := res.Header.Values("Access-Control-Allow-Origin"); len(v) != 1 {
		t.Errorf("Access-Control-Allow-Origin %q: want one value", v)
	}

	_, err = requestSlot(ctx, c, "upload.localhost", "big", 10<<20+1, "")
	se, ok := errors.AsType[*stanza.Error](err)
	if !ok || se.Condition != stanza.NotAcceptable || se.App == nil || se.App.Name.Local != "file-too-large" {
		t.Errorf("too large: %v, want not-acceptable with file-too-large", err)
	}

	// The account goes once its session has ended (the last module
	// records the logout).
	c.Close()
	for {
		if _, _, err := srv.Store().LastActivity(ctx, "alice", srv.Domain); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the session did not end")
		}
		time.Sleep(10 * time.Millisecond) // polling, until ctx's deadline
	}
	if err := srv.Store().DeleteAccount(ctx, "alice", srv.Domain); err != nil {
		t.Fatal(err)
	}
	res, err = hc.Get(s.get)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET after the account was deleted: %s, want 404", res.Status)
	}
}

// BenchmarkPut100MB uploads a 100 MB file per iteration through the
// server's HTTPS listener on loopback (TLS 1.3), written and fsynced to a
// temporary directory.
func BenchmarkPut100MB(b *testing.B) {
	protos(b, func(b *testing.B, hc *http.Client, _ *xmpptest.Server, c *client.Client) {
		const size = 100 << 20
		body := make([]byte, size)
		rand.Read(body)
		ctx := b.Context()
		b.SetBytes(size)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			s, err := requestSlot(ctx, c, "upload.localhost", "f"+strconv.Itoa(i), size, "application/octet-stream")
			if err != nil {
				b.Fatal(err)
			}
			if code, err := putBody(ctx, hc, s, "application/octet-stream", bytes.NewReader(body), size); err != nil || code != http.StatusCreated {
				b.Fatalf("PUT: %d, %v", code, err)
			}
		}
	})
}

// BenchmarkGet100MB downloads a 100 MB file per iteration through the
// server's HTTPS listener.
func BenchmarkGet100MB(b *testing.B) {
	protos(b, func(b *testing.B, hc *http.Client, _ *xmpptest.Server, c *client.Client) {
		const size = 100 << 20
		body := make([]byte, size)
		rand.Read(body)
		s, err := requestSlot(b.Context(), c, "upload.localhost", "f", size, "application/octet-stream")
		if err != nil {
			b.Fatal(err)
		}
		if code, err := putBody(b.Context(), hc, s, "application/octet-stream", bytes.NewReader(body), size); err != nil || code != http.StatusCreated {
			b.Fatalf("PUT: %d, %v", code, err)
		}
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			res, err := hc.Get(s.get)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err != nil || n != size || (res.ProtoMajor == 2) != strings.Contains(b.Name(), "HTTP2") {
				b.Fatalf("GET: %d bytes over %s, %v", n, res.Proto, err)
			}
		}
	})
}
