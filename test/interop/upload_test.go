package interop_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/xmpptest"
)

type uploadResult struct {
	Version     string            `json:"version"`
	Events      []string          `json:"events"`
	Error       string            `json:"error"`
	Discovery   string            `json:"discovery"`
	Service     string            `json:"service"`
	MaxFileSize int64             `json:"max_file_size"`
	URL         string            `json:"url"`
	GetStatus   int               `json:"get_status"`
	GetHeaders  map[string]string `json:"get_headers"`
	GetEqual    bool              `json:"get_equal"`
	GetLength   int               `json:"get_length"`
	TooLarge    struct {
		Condition    string `json:"condition"`
		Type         string `json:"type"`
		FileTooLarge bool   `json:"file_too_large"`
		MaxFileSize  string `json:"max_file_size"`
	} `json:"too_large"`
}

// needAiohttp fails the test unless Debian's python3-aiohttp, which
// slixmpp's XEP-0363 plugin uploads with, is installed.
func needAiohttp(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import aiohttp").CombinedOutput(); err != nil {
		t.Fatalf("python3-aiohttp is not installed for %s (%v: %s): slixmpp's xep_0363 plugin needs it; apt-get install python3-aiohttp", python, err, out)
	}
}

// TestSlixmppUpload: slixmpp 1.8.3 and 1.10.0 upload a file with their
// XEP-0363 plugin (service found in the domain's disco#items, max-file-size
// from its form, slot, PUT with aiohttp over the HTTPS listener) and the GET
// returns the same bytes; a slot one byte over max-file-size is refused with
// not-acceptable and <file-too-large/>. slixmpp 1.8.3's service discovery
// (xep_0030 get_info_from_domain) fails on Debian 12's Python 3.11, so the
// script finds the service for it. It needs the HTTP listener, which
// xmpptest starts on loopback.
func TestSlixmppUpload(t *testing.T) {
	needAiohttp(t)
	for _, peer := range []slixmppPeer{slixmppDebian, slixmppBackports} {
		t.Run(peer.version, func(t *testing.T) {
			peer.need(t)
			srv := xmpptest.Start(t, nil)
			if srv.HTTPAddr == "" {
				t.Fatal("the test server has no HTTPS listener")
			}
			alice := srv.AddUser(t, "alice", "wonderland")
			file := filepath.Join(t.TempDir(), "photo of us.bin")
			data := make([]byte, 3<<20+5)
			rand.Read(data)
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			host, port, _ := strings.Cut(srv.Addr, ":")
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			cmd := peer.command(ctx, t, "slixmpp_upload.py", host, port, srv.CAFile, alice.String(), "wonderland", file)
			cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+srv.CAFile)
			out, err := cmd.Output()
			var res uploadResult
			if jerr := json.Unmarshal(out, &res); jerr != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("slixmpp script: %v / %v\nstdout: %s\nstderr: %s", err, jerr, out, stderr)
			}
			if err != nil || res.Error != "" {
				t.Fatalf("slixmpp %s failed: %v: %s\nevents: %s", res.Version, err, res.Error, strings.Join(res.Events, "\n  "))
			}
			t.Logf("slixmpp %s: service found by the %s", res.Version, res.Discovery)
			if res.Service != "upload.localhost" || res.MaxFileSize != 10<<20 {
				t.Errorf("service %q with max-file-size %d, want upload.localhost with %d", res.Service, res.MaxFileSize, 10<<20)
			}
			if res.GetStatus != http.StatusOK || !res.GetEqual || res.GetLength != len(data) {
				t.Errorf("slixmpp's GET: %d, %d bytes, equal %v; want 200 and the %d bytes", res.GetStatus, res.GetLength, res.GetEqual, len(data))
			}
			if !strings.HasSuffix(res.URL, "/photo%20of%20us.bin") || res.GetHeaders["X-Content-Type-Options"] != "nosniff" ||
				!strings.HasPrefix(res.GetHeaders["Content-Disposition"], "attachment") {
				t.Errorf("URL %s, headers %v", res.URL, res.GetHeaders)
			}
			if tl := res.TooLarge; tl.Condition != "not-acceptable" || tl.Type != "modify" || !tl.FileTooLarge || tl.MaxFileSize != "10485760" {
				t.Errorf("too-large request: %+v, want not-acceptable (modify) with file-too-large, max-file-size 10485760", tl)
			}
			// And from Go: the same bytes.
			var d net.Dialer
			hc := &http.Client{Transport: &http.Transport{
				TLSClientConfig: srv.TLSConfig(),
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return d.DialContext(ctx, network, srv.HTTPAddr)
				},
			}}
			defer hc.CloseIdleConnections()
			r, err := hc.Get(res.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("GET from Go: %s, %d bytes, %v", r.Status, len(got), err)
			}
		})
	}
}
