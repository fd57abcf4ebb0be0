package upload_test

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/modules/upload"
	"github.com/ode-xmpp/ode/internal/storage"
)

// TestPutGet: a file goes up once with its slot's token, size and type,
// and comes back whole, in ranges and with its safe headers.
func TestPutGet(t *testing.T) {
	e := newEnv(t, nil)
	const body = "hello, upload"
	s := e.slot(e.alice, "hello world.txt", int64(len(body)), "text/plain")

	res, _ := e.do(http.MethodGet, s.get, "", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET before the PUT: %s, want 404", res.Status)
	}
	if code := e.putFile(s, "text/plain", body); code != http.StatusCreated {
		t.Fatalf("PUT: %d, want 201", code)
	}
	if code := e.putFile(s, "text/plain", body); code != http.StatusConflict {
		t.Errorf("second PUT: %d, want 409", code)
	}

	res, got := e.do(http.MethodGet, s.get, "", nil)
	if res.StatusCode != http.StatusOK || got != body {
		t.Fatalf("GET: %s %q, want 200 %q", res.Status, got, body)
	}
	for k, want := range map[string]string{
		"Content-Type":                "text/plain",
		"Content-Length":              "13",
		"Content-Security-Policy":     "default-src 'none'; frame-ancestors 'none'; sandbox",
		"X-Content-Type-Options":      "nosniff",
		"Content-Disposition":         `inline; filename="hello world.txt"`,
		"Access-Control-Allow-Origin": "*",
		"Accept-Ranges":               "bytes",
	} {
		if v := res.Header.Get(k); v != want {
			t.Errorf("GET %s: %q, want %q", k, v, want)
		}
	}
	res, got = e.do(http.MethodGet, s.get, "", map[string]string{"Range": "bytes=7-12"})
	if res.StatusCode != http.StatusPartialContent || got != "upload" || res.Header.Get("Content-Range") != "bytes 7-12/13" {
		t.Errorf("GET range: %s %q %q, want 206 \"upload\"", res.Status, got, res.Header.Get("Content-Range"))
	}
	res, got = e.do(http.MethodHead, s.get, "", nil)
	if res.StatusCode != http.StatusOK || got != "" || res.Header.Get("Content-Length") != "13" {
		t.Errorf("HEAD: %s %q length %s", res.Status, got, res.Header.Get("Content-Length"))
	}
	res, _ = e.do(http.MethodGet, s.get, "", map[string]string{"If-None-Match": res.Header.Get("ETag")})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("GET If-None-Match: %s, want 304", res.Status)
	}
	for _, u := range []string{
		strings.TrimSuffix(s.get, "hello%20world.txt") + "other.txt",
		e.web.BaseURL() + upload.PathPrefix + "aaaaaaaaaaaaaaaaaaaaaaaaaa/hello%20world.txt",
		e.web.BaseURL() + upload.PathPrefix + "../ode.db",
	} {
		if res, _ := e.do(http.MethodGet, u, "", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", u, res.Status)
		}
	}
	res, _ = e.do(http.MethodDelete, s.get, "", nil)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") == "" {
		t.Errorf("DELETE: %s, Allow %q", res.Status, res.Header.Get("Allow"))
	}
}

// TestPutRefused: a PUT must carry the slot's token (unexpired), size and
// content type.
func TestPutRefused(t *testing.T) {
	e := newEnv(t, nil)
	const body = "0123456789"
	s := e.slot(e.alice, "a.bin", 10, "application/octet-stream")
	other := e.slot(e.alice, "b.bin", 10, "application/octet-stream")
	ct := "application/octet-stream"
	tests := []struct {
		name   string
		header map[string]string
		body   string
		want   int
	}{
		{"no token", map[string]string{"Content-Type": ct}, body, http.StatusForbidden},
		{"another slot's token", map[string]string{"Content-Type": ct, "Authorization": other.auth}, body, http.StatusForbidden},
		{"forged token", map[string]string{"Content-Type": ct, "Authorization": s.auth[:len(s.auth)-2] + "AA"}, body, http.StatusForbidden},
		{"longer", map[string]string{"Content-Type": ct, "Authorization": s.auth}, body + "x", http.StatusRequestEntityTooLarge},
		{"shorter", map[string]string{"Content-Type": ct, "Authorization": s.auth}, body[1:], http.StatusBadRequest},
		{"other type", map[string]string{"Content-Type": "text/html", "Authorization": s.auth}, body, http.StatusBadRequest},
		{"no type", map[string]string{"Authorization": s.auth}, body, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res, msg := e.do(http.MethodPut, s.put, tt.body, tt.header); res.StatusCode != tt.want {
				t.Errorf("PUT: %s %q, want %d", res.Status, msg, tt.want)
			}
		})
	}
	t.Run("chunked", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, s.put, strings.NewReader(body))
		req.ContentLength = -1 // sent chunked
		req.Header.Set("Authorization", s.auth)
		req.Header.Set("Content-Type", ct)
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusLengthRequired {
			t.Errorf("PUT without Content-Length: %s, want 411", res.Status)
		}
	})
	t.Run("expired", func(t *testing.T) {
		late := e.slot(e.alice, "late.bin", 10, ct)
		e.clock.Add(5*time.Minute + time.Second)
		if code := e.putFile(late, ct, body); code != http.StatusForbidden {
			t.Errorf("PUT after slot_timeout: %d, want 403", code)
		}
	})
	// Nothing was stored: the right PUT still works (with a fresh slot's
	// clock: the first slot's token was granted 5 minutes ago).
	e.clock.Add(-5*time.Minute - time.Second)
	if code := e.putFile(s, "application/octet-stream", body); code != http.StatusCreated {
		t.Errorf("PUT after the refusals: %d, want 201", code)
	}
	if code := e.putFile(s, "application/octet-stream", body); code != http.StatusConflict {
		t.Errorf("second PUT: %d, want 409", code)
	}
	// Parameters of the type are compared in canonical form.
	p := e.slot(e.alice, "p.txt", 2, "text/plain; charset=UTF-8")
	if code := e.putFile(p, "Text/Plain;Charset=\"UTF-8\"", "hi"); code != http.StatusCreated {
		t.Errorf("PUT with the type written differently: %d, want 201", code)
	}
	// No type asked for: any type is accepted, octet-stream served.
	n := e.slot(e.alice, "n", 2, "")
	if code := e.putFile(n, "", "hi"); code != http.StatusCreated {
		t.Errorf("PUT without a type: %d, want 201", code)
	}
	res, _ := e.do(http.MethodGet, n.get, "", nil)
	if res.Header.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("GET untyped: %q %q", res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"))
	}
}

// TestDisposition: only media and plain text are shown inline.
func TestDisposition(t *testing.T) {
	e := newEnv(t, nil)
	for ct, want := range map[string]string{
		"image/png":             `inline; filename=f`,
		"audio/ogg":             `inline; filename=f`,
		"video/mp4":             `inline; filename=f`,
		"text/plain":            `inline; filename=f`,
		"text/html":             `attachment; filename=f`,
		"image/svg+xml":         `attachment; filename=f`,
		"application/pdf":       `attachment; filename=f`,
		"application/xhtml+xml": `attachment; filename=f`,
	} {
		s := e.slot(e.alice, "f", 1, ct)
		if code := e.putFile(s, ct, "x"); code != http.StatusCreated {
			t.Fatalf("PUT %s: %d", ct, code)
		}
		res, _ := e.do(http.MethodGet, s.get, "", nil)
		if got := res.Header.Get("Content-Disposition"); got != want || res.Header.Get("Content-Type") != ct {
			t.Errorf("%s: Content-Disposition %q, Content-Type %q; want %q", ct, got, res.Header.Get("Content-Type"), want)
		}
	}
	s := e.slot(e.alice, "Ünï ☺.png", 1, "image/png")
	e.putFile(s, "image/png", "x")
	res, _ := e.do(http.MethodGet, s.get, "", nil)
	if got := res.Header.Get("Content-Disposition"); got != "inline; filename*=utf-8''%C3%9Cn%C3%AF%20%E2%98%BA.png" {
		t.Errorf("non-ASCII name: %q", got)
	}
}

// TestPreflight: the PUT URL answers CORS preflights itself.
func TestPreflight(t *testing.T) {
	e := newEnv(t, nil)
	s := e.slot(e.alice, "a.bin", 1, "")
	res, _ := e.do(http.MethodOptions, s.put, "", map[string]string{
		"Origin":                         "https://web.example",
		"Access-Control-Request-Method":  "PUT",
		"Access-Control-Request-Headers": "authorization, content-type",
	})
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("OPTIONS: %s, want 204", res.Status)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "GET, HEAD, PUT, OPTIONS",
		"Access-Control-Allow-Headers": "Authorization, Content-Type",
	} {
		if v := res.Header.Get(k); v != want {
			t.Errorf("OPTIONS %s: %q, want %q", k, v, want)
		}
	}
}

// files lists the uploaded files on disk (not the key nor temporary files).
func files(t *testing.T, e *env) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(e.dir, "uploads"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			out = append(out, d.Name())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExpiry: files older than expire_after go, slots never filled go,
// abandoned temporary files go.
func TestExpiry(t *testing.T) {
	e := newEnv(t, nil)
	old := e.slot(e.alice, "old", 1, "")
	e.putFile(old, "", "o")
	e.clock.Add(29 * 24 * time.Hour)
	recent := e.slot(e.alice, "recent", 1, "")
	e.putFile(recent, "", "r")
	never := e.slot(e.alice, "never", 1, "")
	tmp := filepath.Join(e.dir, "uploads", ".tmp-abandoned")
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stale := e.clock.Now().Add(-2 * time.Hour)
	os.Chtimes(tmp, stale, stale)
	if err := e.m.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(files(t, e)); n != 2 {
		t.Errorf("%d files after a sweep that had nothing to expire, want 2", n)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("abandoned temporary file: %v", err)
	}

	e.clock.Add(24*time.Hour + 2*time.Hour)
	if err := e.m.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.do(http.MethodGet, old.get, "", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET of a file 31 days old: %s, want 404", res.Status)
	}
	if res, got := e.do(http.MethodGet, recent.get, "", nil); res.StatusCode != http.StatusOK || got != "r" {
		t.Errorf("GET of a file 2 days old: %s %q", res.Status, got)
	}
	if _, err := e.store.Upload(t.Context(), strings.Split(strings.TrimPrefix(never.put, e.web.BaseURL()+upload.PathPrefix), "/")[0]); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("slot never filled: %v, want it deleted", err)
	}
	if got := files(t, e); len(got) != 1 {
		t.Errorf("files %v, want only the recent one", got)
	}
}

// TestAccountDeleted: a deleted account's files stop being served at once
// and are removed from disk by the next sweep.
func TestAccountDeleted(t *testing.T) {
	e := newEnv(t, nil)
	a := e.slot(e.alice, "a", 1, "")
	e.putFile(a, "", "a")
	b := e.slot(e.bob, "b", 1, "")
	e.putFile(b, "", "b")
	if err := e.store.DeleteAccount(t.Context(), "alice", domain); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.do(http.MethodGet, a.get, "", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET after the account was deleted: %s, want 404", res.Status)
	}
	if err := e.m.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := files(t, e); len(got) != 1 {
		t.Errorf("files %v, want bob's only", got)
	}
	if res, got := e.do(http.MethodGet, b.get, "", nil); res.StatusCode != http.StatusOK || got != "b" {
		t.Errorf("bob's file: %s %q", res.Status, got)
	}
}

// TestRestart: GET URLs and unexpired PUT URLs survive a restart (the key
// is kept in the data directory).
func TestRestart(t *testing.T) {
	e := newEnv(t, nil)
	done := e.slot(e.alice, "done", 4, "")
	e.putFile(done, "", "done")
	pending := e.slot(e.alice, "pending", 4, "")
	oldBase := e.web.BaseURL()
	e.m.Stop()
	e.start(nil)
	moved := func(u string) string { return e.web.BaseURL() + strings.TrimPrefix(u, oldBase) }
	if res, got := e.do(http.MethodGet, moved(done.get), "", nil); res.StatusCode != http.StatusOK || got != "done" {
		t.Errorf("GET after a restart: %s %q", res.Status, got)
	}
	pending.put = moved(pending.put)
	if code := e.putFile(pending, "", "late"); code != http.StatusCreated {
		t.Errorf("PUT granted before a restart: %d, want 201", code)
	}
}
