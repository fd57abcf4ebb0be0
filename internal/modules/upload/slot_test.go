package upload_test

import (
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules/upload"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// wantError checks that res is an IQ error with cond and returns the
// error.
func wantError(t *testing.T, res *xmlstream.Element, cond stanza.Condition) *stanza.Error {
	t.Helper()
	se, ok := stanza.ParseError(res)
	if !ok || se.Condition != cond {
		t.Fatalf("got %s, want a %s error", res, cond)
	}
	return se
}

// TestDiscoInfo: the identity, the feature and the max-file-size form
// (XEP-0363 §3, XEP-0128).
func TestDiscoInfo(t *testing.T) {
	e := newEnv(t, nil)
	res := e.iq(e.alice, "upload.localhost", xmlstream.NewElement(stanza.NSDiscoInfo, "query"))
	if stanza.Type(res) != stanza.IQResult || res.Attribute("from") != "upload.localhost" || res.Attribute("to") != "alice@localhost/phone" {
		t.Fatalf("disco#info answer %s", res)
	}
	q := res.Child(stanza.NSDiscoInfo, "query")
	id := q.Child(stanza.NSDiscoInfo, "identity")
	if id == nil || id.Attribute("category") != "store" || id.Attribute("type") != "file" {
		t.Errorf("identity %v, want store/file", id)
	}
	var features []string
	for _, f := range q.ChildrenNS(stanza.NSDiscoInfo) {
		if f.Name.Local == "feature" {
			features = append(features, f.Attribute("var"))
		}
	}
	if !slices.Contains(features, upload.NSUpload) || !slices.Contains(features, stanza.NSDiscoInfo) {
		t.Errorf("features %q", features)
	}
	form := q.Child(upload.NSData, "x")
	if form == nil || form.Attribute("type") != "result" {
		t.Fatalf("no result form in %s", q)
	}
	fields := map[string]string{}
	for _, f := range form.ChildrenNS(upload.NSData) {
		fields[f.Attribute("var")] = f.Child(upload.NSData, "value").Text()
	}
	if fields["FORM_TYPE"] != upload.NSUpload || fields["max-file-size"] != "10485760" {
		t.Errorf("form fields %v", fields)
	}

	res = e.iq(e.alice, "upload.localhost", xmlstream.NewElement(stanza.NSDiscoItems, "query"))
	if q := res.Child(stanza.NSDiscoItems, "query"); stanza.Type(res) != stanza.IQResult || q == nil || q.FirstChild() != nil {
		t.Errorf("disco#items answer %s, want an empty list", res)
	}
	res = e.iq(e.alice, "upload.localhost", xmlstream.NewElement(stanza.NSDiscoInfo, "query").SetAttr("node", "x"))
	wantError(t, res, stanza.ItemNotFound)
	// Remote entities may discover the service.
	iq := stanza.NewIQ(stanza.NSClient, stanza.IQGet, "upload.localhost", "eve@remote.example/x", "r1").
		Append(xmlstream.NewElement(stanza.NSDiscoInfo, "query"))
	e.r.Route(t.Context(), iq)
	if res := e.remote.take(t); stanza.Type(res) != stanza.IQResult {
		t.Errorf("disco#info from a remote entity: %s", res)
	}
}

// TestSlotRules: what a slot request may ask for (XEP-0363 §4).
func TestSlotRules(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name    string
		to      string
		payload *xmlstream.Element
		want    stanza.Condition
		typ     stanza.ErrorType
	}{
		{"too large", "upload.localhost", request("big.bin", 10<<20+1, ""), stanza.NotAcceptable, stanza.Modify},
		{"no size", "upload.localhost", request("a.txt", -1, ""), stanza.BadRequest, ""},
		{"negative size", "upload.localhost", request("a.txt", 0, "").SetAttr("size", "-5"), stanza.BadRequest, ""},
		{"size not a number", "upload.localhost", request("a.txt", 0, "").SetAttr("size", "12kB"), stanza.BadRequest, ""},
		{"no filename", "upload.localhost", request("", 10, ""), stanza.BadRequest, ""},
		{"bad content type", "upload.localhost", request("a.txt", 10, "text/"), stanza.BadRequest, ""},
		{"unknown payload", "upload.localhost", xmlstream.NewElement("urn:example", "q"), stanza.ServiceUnavailable, ""},
		{"to a node of the service", "x@upload.localhost", request("a.txt", 10, ""), stanza.ServiceUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := wantError(t, e.iq(e.alice, tt.to, tt.payload), tt.want)
			if tt.typ != "" && se.Type != tt.typ {
				t.Errorf("error type %s, want %s", se.Type, tt.typ)
			}
		})
	}

	t.Run("file-too-large", func(t *testing.T) {
		se := wantError(t, e.iq(e.alice, "upload.localhost", request("big.bin", 20<<20, "")), stanza.NotAcceptable)
		if se.App == nil || se.App.Name.Space != upload.NSUpload || se.App.Name.Local != "file-too-large" ||
			se.App.Child(upload.NSUpload, "max-file-size").Text() != "10485760" {
			t.Errorf("application condition %v, want <file-too-large><max-file-size>10485760", se.App)
		}
	})
	t.Run("set", func(t *testing.T) {
		iq := stanza.NewIQ(stanza.NSClient, stanza.IQSet, "upload.localhost", "alice@localhost/phone", "s1").Append(request("a", 1, ""))
		e.r.RouteFrom(t.Context(), e.alice, iq)
		wantError(t, e.alice.take(t), stanza.ServiceUnavailable)
	})
	t.Run("remote user", func(t *testing.T) {
		iq := stanza.NewIQ(stanza.NSClient, stanza.IQGet, "upload.localhost", "eve@remote.example/x", "r1").Append(request("a.txt", 10, ""))
		e.r.Route(t.Context(), iq)
		wantError(t, e.remote.take(t), stanza.Forbidden)
	})
	t.Run("message", func(t *testing.T) {
		m := stanza.NewMessage(stanza.NSClient, "chat", "upload.localhost", "alice@localhost/phone", "m1")
		e.r.RouteFrom(t.Context(), e.alice, m)
		wantError(t, e.alice.take(t), stanza.ServiceUnavailable)
	})
	t.Run("granted", func(t *testing.T) {
		s := e.slot(e.alice, "../../etc/passwd", 10, "Text/Plain; Charset=UTF-8")
		if s.put != s.get {
			t.Errorf("PUT %s and GET %s differ", s.put, s.get)
		}
		prefix := e.web.BaseURL() + upload.PathPrefix
		id, name, _ := strings.Cut(strings.TrimPrefix(s.put, prefix), "/")
		if !strings.HasPrefix(s.put, prefix) || len(id) != 26 || name != "passwd" {
			t.Errorf("URL %s: want %s<26-character id>/passwd", s.put, prefix)
		}
		if !strings.HasPrefix(s.auth, "Bearer ") {
			t.Errorf("Authorization %q", s.auth)
		}
		if other := e.slot(e.alice, "passwd", 10, ""); other.put == s.put {
			t.Error("two slots with one URL")
		}
	})
}

// TestQuotas: the daily quota per user and the total quota answer
// resource-constraint with the time room frees up (XEP-0363 §4.2).
func TestQuotas(t *testing.T) {
	cfg := *upload.Info.Config.(*upload.Config)
	cfg.MaxFileSize, cfg.DailyQuota, cfg.TotalQuota = 100, 250, 400
	e := newEnv(t, &cfg)
	first := e.clock.Now()
	e.slot(e.alice, "1", 100, "")
	e.clock.Add(time.Hour)
	e.slot(e.alice, "2", 100, "")
	e.slot(e.alice, "3", 50, "") // exactly the daily quota
	se := wantError(t, e.iq(e.alice, "upload.localhost", request("4", 1, "")), stanza.ResourceConstraint)
	if se.Type != stanza.Wait || se.App == nil || se.App.Name.Local != "retry" ||
		se.App.Attribute("stamp") != first.Add(24*time.Hour+time.Second).Format(time.RFC3339) {
		t.Errorf("error %+v, retry %v: want wait, retry at %s", se, se.App, first.Add(24*time.Hour+time.Second).Format(time.RFC3339))
	}
	// Bob has his own daily quota, but the total is shared.
	e.slot(e.bob, "b1", 100, "")
	se = wantError(t, e.iq(e.bob, "upload.localhost", request("b2", 100, "")), stanza.ResourceConstraint)
	// The total frees up when alice's first upload expires (30 days, and
	// the next hourly cleanup).
	if want := first.Add(30*24*time.Hour + time.Hour).Format(time.RFC3339); se.App.Attribute("stamp") != want {
		t.Errorf("total quota retry %v, want %s", se.App, want)
	}
	// A day later alice's first upload has left her window (but still
	// counts in the total, until it expires).
	e.clock.Add(23*time.Hour - time.Millisecond)
	wantError(t, e.iq(e.alice, "upload.localhost", request("5", 50, "")), stanza.ResourceConstraint)
	e.clock.Add(time.Second + time.Millisecond)
	e.slot(e.alice, "5", 50, "")
	wantError(t, e.iq(e.alice, "upload.localhost", request("6", 100, "")), stanza.ResourceConstraint)
}

func TestSanitizeFilename(t *testing.T) {
	long := strings.Repeat("é", 150) + ".jpeg" // 300 bytes of stem
	for in, want := range map[string]string{
		"photo.jpg":              "photo.jpg",
		"../../etc/passwd":       "passwd",
		`C:\Users\me\doc.pdf`:    "doc.pdf",
		".htaccess":              "htaccess",
		"  spaced out . ":        "spaced out",
		"a\x00b\nc\td.txt":       "ab c d.txt",
		"evil\u202Egpj.exe":      "evilgpj.exe",
		`what?*:"<>|.txt`:        "what_______.txt",
		"..":                     "file",
		"\xff\xfe":               "file",
		"Ünïcödé ☺ 写真.png":       "Ünïcödé ☺ 写真.png",
		long:                     strings.Repeat("é", 97) + ".jpeg",
		strings.Repeat("x", 250): strings.Repeat("x", 200),
	} {
		if got := upload.SanitizeFilename(in); got != want {
			t.Errorf("SanitizeFilename(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := *upload.Info.Config.(*upload.Config)
	if ps := good.Validate(); ps != nil {
		t.Fatalf("defaults: %v", ps)
	}
	tests := []struct {
		key  string
		edit func(*upload.Config)
	}{
		{"subdomain", func(c *upload.Config) { c.Subdomain = "" }},
		{"subdomain", func(c *upload.Config) { c.Subdomain = "up.load" }},
		{"subdomain", func(c *upload.Config) { c.Subdomain = "Upload" }},
		{"max_file_size", func(c *upload.Config) { c.MaxFileSize = 0 }},
		{"daily_quota", func(c *upload.Config) { c.DailyQuota = c.MaxFileSize - 1 }},
		{"total_quota", func(c *upload.Config) { c.TotalQuota = -1 }},
		{"expire_after", func(c *upload.Config) { c.ExpireAfter = -1 }},
		{"slot_timeout", func(c *upload.Config) { c.SlotTimeout = 0 }},
		{"slot_timeout", func(c *upload.Config) { c.SlotTimeout = config.Duration(48 * time.Hour) }},
	}
	for _, tt := range tests {
		c := good
		tt.edit(&c)
		ps := c.Validate()
		if len(ps) != 1 || ps[0].Key != tt.key {
			t.Errorf("%+v: problems %v, want one for %s", c, ps, tt.key)
		}
	}
	c := good
	c.DailyQuota, c.TotalQuota, c.ExpireAfter = 0, 0, 0
	if ps := c.Validate(); ps != nil {
		t.Errorf("no limits: %v", ps)
	}
}

// TestNoHTTP: without an HTTP listener the module registers nothing and
// logs why.
func TestNoHTTP(t *testing.T) {
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	r := router.New([]string{domain}, log)
	m, err := upload.New(module.Deps{Router: r, Log: log, Now: time.Now}, *upload.Info.Config.(*upload.Config))
	if err != nil {
		t.Fatal(err)
	}
	m.Register(r)
	m.Stop()
	if s := r.Services(); len(s) != 0 {
		t.Errorf("services %v without HTTP", s)
	}
	if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), "no HTTP listener") {
		t.Errorf("log %q: want a warning naming the missing HTTP listener", logged.String())
	}
}
