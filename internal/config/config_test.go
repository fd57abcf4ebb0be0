package config_test

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"

	"github.com/ode-xmpp/ode/internal/config"
)

const examplePath = "../../ode.example.toml"

func TestDefault(t *testing.T) {
	want := config.Config{
		Server: config.Server{Domains: []string{"localhost"}, DataDir: "./ode-data", Admins: []string{}, PublicAddresses: []string{}},
		Log:    config.Log{Format: "text", Level: "info"},
		TLS:    config.TLS{CheckInterval: config.Duration(time.Minute)},
		ACME: config.ACME{Directory: config.LetsEncrypt, Challenge: "http-01",
			RenewBefore: config.Duration(30 * 24 * time.Hour)},
		C2S: config.C2S{
			Listen:               []string{"127.0.0.1:5222"},
			DirectTLS:            []string{"127.0.0.1:5223"},
			RequireTLS:           true,
			MaxStanzaBytes:       262144,
			AuthTimeout:          config.Duration(60 * time.Second),
			MaxAuthFailures:      3,
			OutboundQueueBytes:   1048576,
			ResumeTimeout:        config.Duration(300 * time.Second),
			MaxResumeTimeout:     config.Duration(time.Hour),
			MaxUnacked:           10000,
			FAST:                 true,
			FASTTokenLifetime:    config.Duration(21 * 24 * time.Hour),
			FASTTokenRotateAfter: config.Duration(24 * time.Hour),
		},
		S2S: config.S2S{
			Listen:         []string{"127.0.0.1:5269"},
			DirectTLS:      []string{},
			Enabled:        true,
			Dialback:       true,
			Refuse:         []string{},
			Hosts:          map[string]string{},
			ConnectTimeout: config.Duration(30 * time.Second),
			IdleTimeout:    config.Duration(10 * time.Minute),
			QueueBytes:     1048576,
			MaxStanzaBytes: 262144,
		},
		HTTP: config.HTTP{
			Listen:            []string{"127.0.0.1:5443"},
			ListenPlain:       []string{},
			TrustedProxies:    []string{},
			AllowedOrigins:    []string{},
			WebSocket:         true,
			BOSH:              true,
			BOSHMaxWait:       config.Duration(60 * time.Second),
			BOSHMaxInactivity: config.Duration(60 * time.Second),
			BOSHMaxRequests:   2,
		},
		Storage: config.Storage{Driver: "sqlite", Postgres: config.Postgres{
			MaxConns: 16, StatementTimeout: config.Duration(30 * time.Second), ConnectTimeout: config.Duration(10 * time.Second),
		}},
		Metrics: config.Metrics{Enabled: true},
		Modules: config.Modules{Settings: map[string]any{}},
	}
	got := config.Default()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	got.Server.Domains[0] = "changed"
	if d := config.Default().Server.Domains[0]; d != "localhost" {
		t.Errorf("Default() shares its slices: domain %q after a change to an earlier result", d)
	}
}

func TestParseEmpty(t *testing.T) {
	got, err := config.Parse(nil, "empty.toml")
	if err != nil {
		t.Fatalf("Parse(empty) = %v", err)
	}
	if diff := cmp.Diff(config.Default(), got); diff != "" {
		t.Errorf("Parse(empty) is not Default() (-want +got):\n%s", diff)
	}
}

func TestParseFull(t *testing.T) {
	const file = `
[server]
domains = ["Example.ORG.", "xn--bcher-kva.example", "chat.example.net"]
data_dir = "/var/lib/ode"
admins = ["Admin@Example.org"]
public_addresses = ["203.0.113.7", "2001:db8::7"]

[log]
format = "json"
level = "debug"

[tls]
cert = "/etc/ode/example.org.crt"
key = "/etc/ode/example.org.key"
check_interval = "10s"

[acme]
email = "admin@example.org"
directory = "https://acme.example.net/dir"
challenge = "tls-alpn-01"
renew_before = "240h"

[c2s]
listen = ["[::]:5222", "192.0.2.1:5222"]
direct_tls = []
require_tls = false
max_stanza_bytes = 10_000
auth_timeout = "1m30s"
max_auth_failures = 1
outbound_queue_bytes = 2097152
strict_channel_binding = true
resume_timeout = "1m"
max_resume_timeout = "10m"
max_unacked = 500

[s2s]
enabled = true
listen = ["[::]:5269"]
direct_tls = ["[::]:5270"]
dialback = false
refuse = ["Spam.Example."]
hosts = { "Example.NET" = "xmpp.example.net:5269", "private.example" = "[2001:db8::1]:5269" }
ca_file = "/etc/ode/private-ca.pem"
connect_timeout = "5s"
idle_timeout = "1h"
queue_bytes = 65536
max_stanza_bytes = 65536

[http]
listen = ["[::]:443"]
listen_plain = ["127.0.0.1:5280"]
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
public_url = "https://xmpp.example.org"
allowed_origins = ["https://chat.example.org"]
websocket = true
bosh = false
bosh_max_wait = "30s"
bosh_max_inactivity = "90s"
bosh_max_requests = 3

[storage]
driver = "postgres"

[storage.postgres]
dsn = "postgres://ode@db.example.org/ode"
max_conns = 40
statement_timeout = "5s"
connect_timeout = "3s"

[metrics]
enabled = false
token = "0123456789abcdef0123456789abcdef"

[modules]
disabled = ["vcard", "last"]

[modules.roster]
max_items = 50

[modules.ping]
interval = "0s"
timeout = "10s"
`
	want := config.Config{
		Server: config.Server{
			Domains:         []string{"example.org", "bücher.example", "chat.example.net"},
			DataDir:         "/var/lib/ode",
			Admins:          []string{"admin@example.org"},
			PublicAddresses: []string{"203.0.113.7", "2001:db8::7"},
		},
		Log: config.Log{Format: "json", Level: "debug"},
		TLS: config.TLS{Cert: "/etc/ode/example.org.crt", Key: "/etc/ode/example.org.key",
			CheckInterval: config.Duration(10 * time.Second)},
		ACME: config.ACME{Email: "admin@example.org", Directory: "https://acme.example.net/dir",
			Challenge: "tls-alpn-01", RenewBefore: config.Duration(240 * time.Hour)},
		C2S: config.C2S{
			Listen:               []string{"[::]:5222", "192.0.2.1:5222"},
			DirectTLS:            []string{},
			MaxStanzaBytes:       10000,
			AuthTimeout:          config.Duration(90 * time.Second),
			MaxAuthFailures:      1,
			OutboundQueueBytes:   2097152,
			StrictChannelBinding: true,
			ResumeTimeout:        config.Duration(60 * time.Second),
			MaxResumeTimeout:     config.Duration(10 * time.Minute),
			MaxUnacked:           500,
			FAST:                 true,
			FASTTokenLifetime:    config.Duration(21 * 24 * time.Hour),
			FASTTokenRotateAfter: config.Duration(24 * time.Hour),
		},
		S2S: config.S2S{
			Enabled:        true,
			Listen:         []string{"[::]:5269"},
			DirectTLS:      []string{"[::]:5270"},
			Refuse:         []string{"spam.example"},
			Hosts:          map[string]string{"example.net": "xmpp.example.net:5269", "private.example": "[2001:db8::1]:5269"},
			CAFile:         "/etc/ode/private-ca.pem",
			ConnectTimeout: config.Duration(5 * time.Second),
			IdleTimeout:    config.Duration(time.Hour),
			QueueBytes:     65536,
			MaxStanzaBytes: 65536,
		},
		HTTP: config.HTTP{
			Listen:            []string{"[::]:443"},
			ListenPlain:       []string{"127.0.0.1:5280"},
			TrustedProxies:    []string{"127.0.0.1", "10.0.0.0/8"},
			PublicURL:         "https://xmpp.example.org",
			AllowedOrigins:    []string{"https://chat.example.org"},
			WebSocket:         true,
			BOSH:              false,
			BOSHMaxWait:       config.Duration(30 * time.Second),
			BOSHMaxInactivity: config.Duration(90 * time.Second),
			BOSHMaxRequests:   3,
		},
		Storage: config.Storage{Driver: "postgres", Postgres: config.Postgres{
			DSN: "postgres://ode@db.example.org/ode", MaxConns: 40,
			StatementTimeout: config.Duration(5 * time.Second), ConnectTimeout: config.Duration(3 * time.Second),
		}},
		Metrics: config.Metrics{Token: "0123456789abcdef0123456789abcdef"},
		Modules: config.Modules{
			Disabled: []string{"vcard", "last"},
			Settings: map[string]any{
				"roster": &rosterSettings{MaxItems: 50},
				"ping":   &pingSettings{Interval: 0, Timeout: config.Duration(10 * time.Second), Peers: []string{"a"}},
			},
		},
	}
	got, err := config.Parse([]byte(file), "ode.toml", testModules()...)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}

func TestParsePartial(t *testing.T) {
	got, err := config.Parse([]byte("c2s.require_tls = false\n[log]\nlevel = \"warn\"\n"), "ode.toml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := config.Default()
	want.C2S.RequireTLS = false
	want.Log.Level = "warn"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys left out should keep their defaults (-want +got):\n%s", diff)
	}
}

// TestParseErrors checks the full text of the errors for files with unknown
// keys, values of the wrong type and syntax errors.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{{
		name: "unknown key",
		file: "[server]\ndata_dir = \"/tmp\"\n\n[c2s]\nrequire_tls = true\nmax_stanza_bytes = 20000\nlistn = [\"[::]:5222\"]\n",
		want: []string{"ode.toml:7: unknown key c2s.listn"},
	}, {
		name: "unknown table",
		file: "[server]\n[muc]\nlisten = []\ndial_timeout = \"5s\"\n",
		want: []string{"ode.toml:2: unknown key muc"},
	}, {
		name: "s2s values",
		file: "[s2s]\nrefuse = [\"a..b\"]\nhosts = { \"example.net\" = \"example.net\", \"x.example\" = \"h:0\" }\nconnect_timeout = \"0s\"\nqueue_bytes = 100\n",
		want: []string{
			"ode.toml:2: s2s.refuse: invalid domain name \"a..b\": idna: invalid label \"a..b\"",
			"ode.toml:3: s2s.hosts: \"example.net\" = \"example.net\": want host:port, such as \"xmpp.example.net:5269\"",
			"ode.toml:3: s2s.hosts: \"x.example\" = \"h:0\": want a port from 1 to 65535",
			"ode.toml:4: s2s.connect_timeout: must be positive, got 0s",
			"ode.toml:5: s2s.queue_bytes: must be at least s2s.max_stanza_bytes (262144), got 100",
		},
	}, {
		name: "http values",
		file: "[http]\nlisten_plain = [\"192.0.2.1:80\"]\ntrusted_proxies = [\"proxy\"]\npublic_url = \"xmpp.example.org\"\nallowed_origins = [\"https://chat.example.org/page\"]\nbosh_max_requests = 0\nlisten = [\"127.0.0.1:5222\"]\n",
		want: []string{
			"ode.toml:2: http.listen_plain: \"192.0.2.1:80\" is not a loopback address: plain HTTP is only for a reverse proxy on this machine; use http.listen for HTTPS",
			"ode.toml:3: http.trusted_proxies: \"proxy\" is neither an IP address nor a CIDR range such as \"10.0.0.0/8\"",
			"ode.toml:4: http.public_url: \"xmpp.example.org\" is not an absolute http(s) URL such as \"https://xmpp.example.org\"",
			"ode.toml:5: http.allowed_origins: \"https://chat.example.org/page\" is not an origin such as \"https://chat.example.org\"",
			"ode.toml:6: http.bosh_max_requests: must be at least 1, got 0",
			"ode.toml:7: http.listen: address \"127.0.0.1:5222\" is already in c2s.listen",
		},
	}, {
		name: "unknown dotted key",
		file: "# comment\nc2s.listen = []\nc2s.bogus.deep = 1\n",
		want: []string{"ode.toml:3: unknown key c2s.bogus"},
	}, {
		name: "unknown key in inline table",
		file: "log = { format = \"json\",\n  colour = true }\n",
		want: []string{"ode.toml:2: unknown key log.colour"},
	}, {
		name: "keys are case-sensitive",
		file: "[Server]\ndomains = [\"a.example\"]\n[log]\nLevel = \"debug\"\n",
		want: []string{"ode.toml:1: unknown key Server", "ode.toml:4: unknown key log.Level"},
	}, {
		name: "quoted unknown key",
		file: "[c2s]\n\"max stanza\" = 1\n",
		want: []string{`ode.toml:2: unknown key c2s."max stanza"`},
	}, {
		name: "quoted key with a dot",
		file: "[c2s]\nlisten = []\n\"a.b\".c = 1\n",
		want: []string{`ode.toml:3: unknown key c2s."a.b"`},
	}, {
		name: "every unknown key",
		file: "a = 1\n[c2s]\nb = 2\n[log]\nc = '''\nmulti\nline\n'''\nd = 4\n",
		want: []string{
			"ode.toml:1: unknown key a",
			"ode.toml:3: unknown key c2s.b",
			"ode.toml:5: unknown key log.c",
			"ode.toml:9: unknown key log.d",
		},
	}, {
		name: "string for integer",
		file: "[c2s]\nmax_stanza_bytes = \"256k\"\n",
		want: []string{"ode.toml:2: c2s.max_stanza_bytes: expected an integer, got a string"},
	}, {
		name: "float for integer",
		file: "[c2s]\nmax_auth_failures = 2.5\n",
		want: []string{"ode.toml:2: c2s.max_auth_failures: expected an integer, got a float"},
	}, {
		name: "integer for string",
		file: "[server]\ndata_dir = 5\n",
		want: []string{"ode.toml:2: server.data_dir: expected a string, got an integer"},
	}, {
		name: "string for boolean",
		file: "[c2s]\nrequire_tls = \"yes\"\n",
		want: []string{"ode.toml:2: c2s.require_tls: expected true or false, got a string"},
	}, {
		name: "string for array",
		file: "[server]\ndomains = \"example.org\"\n",
		want: []string{"ode.toml:2: server.domains: expected an array of strings, got a string"},
	}, {
		name: "array of mixed types",
		file: "[c2s]\nlisten = [\":5222\", 5223]\n",
		want: []string{"ode.toml:2: c2s.listen: expected an array of strings, got an array of mixed types"},
	}, {
		name: "array of integers",
		file: "[c2s]\ndirect_tls = [\n  5223,\n]\n",
		want: []string{"ode.toml:2: c2s.direct_tls: expected an array of strings, got an array of integers"},
	}, {
		name: "table for string",
		file: "[log.format]\nname = \"json\"\n",
		want: []string{"ode.toml:1: log.format: expected a string, got a table"},
	}, {
		name: "scalar for table",
		file: "tls = \"on\"\n",
		want: []string{"ode.toml:1: tls: expected a table, got a string"},
	}, {
		name: "array of tables for table",
		file: "[[storage]]\ndriver = \"sqlite\"\n",
		want: []string{"ode.toml:1: storage: expected a table, got an array of tables"},
	}, {
		name: "duration without unit",
		file: "[c2s]\nauth_timeout = 60\n",
		want: []string{`ode.toml:2: c2s.auth_timeout: invalid duration "60": write a number with a unit, such as "60s" or "5m"`},
	}, {
		name: "duration bad string",
		file: "[c2s]\nauth_timeout = \"a minute\"\n",
		want: []string{`ode.toml:2: c2s.auth_timeout: invalid duration "a minute": write a number with a unit, such as "60s" or "5m"`},
	}, {
		name: "every type error and unknown key",
		file: "[c2s]\nlisten = 1\nmax_stanza_bytes = true\nnope = 3\n",
		want: []string{
			"ode.toml:2: c2s.listen: expected an array of strings, got an integer",
			"ode.toml:3: c2s.max_stanza_bytes: expected an integer, got a boolean",
			"ode.toml:4: unknown key c2s.nope",
		},
	}, {
		name: "type errors with validation errors",
		file: "[log]\nlevel = 1\nformat = \"xml\"\n",
		want: []string{
			"ode.toml:2: log.level: expected a string, got an integer",
			`ode.toml:3: log.format: unknown format "xml"; use "text" or "json"`,
		},
	}, {
		name: "syntax error",
		file: "[c2s]\nlisten = [\":5222\"\nrequire_tls = true\n",
		want: []string{"ode.toml:3:19: expected a comma (',') or array terminator (']'), but got 'r'"},
	}, {
		name: "duplicate key",
		file: "[log]\nlevel = \"info\"\nlevel = \"debug\"\n",
		want: []string{"ode.toml:3:16: Key 'log.level' has already been defined."},
	}, {
		name: "integer overflow",
		file: "[c2s]\nmax_stanza_bytes = 99999999999999999999\n",
		want: []string{"ode.toml:2:20: 99999999999999999999 is out of range for int64"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.file), "ode.toml")
			if diff := cmp.Diff(tt.want, errorLines(err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// TestValidate checks each validation rule on its own, through Validate and
// through Parse (which adds the file and line).
func TestValidate(t *testing.T) {
	const acmeOK = "server.domains = [\"example.org\"]\nhttp.listen_plain = [\"[::]:80\"]\nacme.enabled = true\n"
	tests := []struct {
		name    string
		file    string // applied over the defaults
		wantKey string // "" when valid
		wantMsg string // what the Error's message contains
	}{
		{name: "no domains", file: "server.domains = []", wantKey: "server.domains", wantMsg: "at least one domain"},
		{name: "empty domain", file: `server.domains = [""]`, wantKey: "server.domains", wantMsg: `invalid domain name ""`},
		{name: "empty label", file: `server.domains = ["a..example"]`, wantKey: "server.domains", wantMsg: `invalid domain name "a..example"`},
		{name: "space in domain", file: `server.domains = ["my host"]`, wantKey: "server.domains", wantMsg: `invalid domain name "my host"`},
		{name: "at sign in domain", file: `server.domains = ["user@example.org"]`, wantKey: "server.domains", wantMsg: "invalid domain name"},
		{name: "label too long", file: `server.domains = ["` + strings.Repeat("a", 64) + `.example"]`, wantKey: "server.domains", wantMsg: "invalid domain name"},
		{name: "two trailing dots", file: `server.domains = ["example.org.."]`, wantKey: "server.domains", wantMsg: `invalid domain name "example.org.."`},
		{name: "only a dot", file: `server.domains = ["."]`, wantKey: "server.domains", wantMsg: `invalid domain name "."`},
		{name: "duplicate domain", file: `server.domains = ["example.org", "EXAMPLE.org."]`, wantKey: "server.domains", wantMsg: `"example.org" is listed twice`},
		{name: "idn domain", file: `server.domains = ["bücher.example", "xn--caf-dma.example"]`},
		{name: "ip domain", file: `server.domains = ["192.0.2.1"]`},
		{name: "admin not bare", file: `server.admins = ["a@example.org/phone"]`, wantKey: "server.admins", wantMsg: `"a@example.org/phone" is not a bare JID`},
		{name: "admin domain only", file: `server.admins = ["example.org"]`, wantKey: "server.admins", wantMsg: "not a bare JID"},
		{name: "admins", file: `server.admins = ["a@example.org", "b@example.net"]`},
		{name: "short admin token", file: `admin.token = "secret"`, wantKey: "admin.token", wantMsg: "at least 32 characters"},
		{name: "admin token", file: `admin.token = "` + strings.Repeat("x", 32) + `"`},
		{name: "admin socket off", file: `admin.socket = "off"`},
		{name: "short metrics token", file: `metrics.token = "secret"`, wantKey: "metrics.token", wantMsg: "at least 32 characters"},
		{name: "metrics token with space", file: `metrics.token = "` + strings.Repeat("x", 32) + ` y"`, wantKey: "metrics.token", wantMsg: "must not contain spaces"},
		{name: "metrics token is admin token", file: "admin.token = \"" + strings.Repeat("x", 32) + "\"\nmetrics.token = \"" + strings.Repeat("x", 32) + "\"", wantKey: "metrics.token", wantMsg: "must differ from admin.token"},
		{name: "metrics token", file: `metrics.token = "` + strings.Repeat("y", 32) + `"`},
		{name: "metrics off", file: `metrics.enabled = false`},
		{name: "empty data_dir", file: `server.data_dir = ""`, wantKey: "server.data_dir", wantMsg: "must not be empty"},
		{name: "log format", file: `log.format = "xml"`, wantKey: "log.format", wantMsg: `unknown format "xml"`},
		{name: "log level", file: `log.level = "INFO"`, wantKey: "log.level", wantMsg: `unknown level "INFO"`},
		{name: "cert without key", file: `tls.cert = "a.crt"`, wantKey: "tls.cert", wantMsg: "tls.key is not"},
		{name: "key without cert", file: `tls.key = "a.key"`, wantKey: "tls.key", wantMsg: "tls.cert is not"},
		{name: "cert and key", file: "tls.cert = \"a.crt\"\ntls.key = \"a.key\""},
		{name: "listen without port", file: `c2s.listen = ["127.0.0.1"]`, wantKey: "c2s.listen", wantMsg: `invalid address "127.0.0.1"`},
		{name: "listen port too big", file: `c2s.listen = [":65536"]`, wantKey: "c2s.listen", wantMsg: `invalid port in ":65536"`},
		{name: "listen port name", file: `c2s.listen = [":xmpp-client"]`, wantKey: "c2s.listen", wantMsg: "invalid port"},
		{name: "listen negative port", file: `c2s.listen = [":-1"]`, wantKey: "c2s.listen", wantMsg: "invalid port"},
		{name: "listen unbracketed ipv6", file: `c2s.listen = ["::1:5222"]`, wantKey: "c2s.listen", wantMsg: "invalid address"},
		{name: "direct_tls bad", file: `c2s.direct_tls = ["localhost:"]`, wantKey: "c2s.direct_tls", wantMsg: "invalid port"},
		{name: "same address twice", file: "c2s.listen = [\":5222\"]\nc2s.direct_tls = [\":5222\"]", wantKey: "c2s.direct_tls", wantMsg: `":5222" is already in c2s.listen`},
		{name: "listen forms", file: `c2s.listen = [":5222", "[::1]:5222", "0.0.0.0:0", "example.org:65535"]`},
		{name: "no listeners", file: "c2s.listen = []\nc2s.direct_tls = []"},
		{name: "stanza too small", file: "c2s.max_stanza_bytes = 9999", wantKey: "c2s.max_stanza_bytes", wantMsg: "9999 is out of range; use 10000 to 67108864"},
		{name: "stanza too big", file: "c2s.max_stanza_bytes = 67108865\nc2s.outbound_queue_bytes = 99999999", wantKey: "c2s.max_stanza_bytes", wantMsg: "out of range"},
		{name: "stanza limits", file: "c2s.max_stanza_bytes = 67108864\nc2s.outbound_queue_bytes = 67108864"},
		{name: "auth_timeout zero", file: `c2s.auth_timeout = "0s"`, wantKey: "c2s.auth_timeout", wantMsg: "must be positive, got 0s"},
		{name: "auth_timeout negative", file: `c2s.auth_timeout = "-1m"`, wantKey: "c2s.auth_timeout", wantMsg: "must be positive"},
		{name: "max_auth_failures zero", file: "c2s.max_auth_failures = 0", wantKey: "c2s.max_auth_failures", wantMsg: "at least 1"},
		{name: "queue smaller than stanza", file: "c2s.outbound_queue_bytes = 100000", wantKey: "c2s.outbound_queue_bytes", wantMsg: "smaller than c2s.max_stanza_bytes (262144)"},
		{name: "storage driver", file: `storage.driver = "mysql"`, wantKey: "storage.driver", wantMsg: `unknown driver "mysql"; use "sqlite" or "postgres"`},
		{name: "postgres", file: "storage.driver = \"postgres\"\nstorage.postgres.dsn = \"postgres://ode@localhost/ode\""},
		{name: "postgres key=value", file: "storage.driver = \"postgres\"\nstorage.postgres.dsn = \"host=/run/postgresql dbname=ode\""},
		{name: "postgres without dsn", file: "storage.driver = \"postgres\"\nstorage.postgres.dsn = \" \"", wantKey: "storage.postgres.dsn", wantMsg: "required"},
		{name: "postgres bad url", file: "storage.driver = \"postgres\"\nstorage.postgres.dsn = \"postgres://ode:s3cret@[::1/ode\"", wantKey: "storage.postgres.dsn", wantMsg: "not a valid URL"},
		{name: "postgres neither url nor pairs", file: "storage.driver = \"postgres\"\nstorage.postgres.dsn = \"localhost\"", wantKey: "storage.postgres.dsn", wantMsg: "key=value"},
		{name: "postgres max_conns", file: "storage.driver = \"postgres\"\nstorage.postgres.dsn = \"dbname=ode\"\nstorage.postgres.max_conns = 0", wantKey: "storage.postgres.max_conns", wantMsg: "from 1 to 10000, got 0"},
		{name: "postgres statement_timeout", file: "storage.driver = \"postgres\"\nstorage.postgres.dsn = \"dbname=ode\"\nstorage.postgres.statement_timeout = \"-1s\"", wantKey: "storage.postgres.statement_timeout", wantMsg: "negative"},
		{name: "postgres connect_timeout", file: "storage.driver = \"postgres\"\nstorage.postgres.dsn = \"dbname=ode\"\nstorage.postgres.connect_timeout = \"0s\"", wantKey: "storage.postgres.connect_timeout", wantMsg: "positive"},
		{name: "postgres settings unused with sqlite", file: "storage.postgres.max_conns = 0"},
		{name: "check_interval", file: `tls.check_interval = "0s"`, wantKey: "tls.check_interval", wantMsg: "must be positive"},
		{name: "public address", file: `server.public_addresses = ["example.org"]`, wantKey: "server.public_addresses", wantMsg: `"example.org" is not an IP address`},
		{name: "public plain without acme", file: `http.listen_plain = ["[::]:80"]`, wantKey: "http.listen_plain", wantMsg: "not a loopback address"},
		{name: "acme http-01", file: acmeOK},
		{name: "acme tls-alpn-01", file: "server.domains = [\"example.org\"]\nacme.enabled = true\nacme.challenge = \"tls-alpn-01\"\nacme.email = \"a@example.org\""},
		{name: "acme with cert", file: acmeOK + "tls.cert = \"a.crt\"\ntls.key = \"a.key\"", wantKey: "acme.enabled", wantMsg: "use ACME or your own certificate"},
		{name: "acme localhost", file: "http.listen_plain = [\"127.0.0.1:80\"]\nacme.enabled = true", wantKey: "server.domains", wantMsg: `"localhost" cannot get a certificate from a public CA`},
		{name: "acme ip", file: "server.domains = [\"192.0.2.1\"]\nacme.enabled = true\nacme.challenge = \"tls-alpn-01\"", wantKey: "server.domains", wantMsg: "cannot get a certificate"},
		{name: "acme http-01 without listener", file: "server.domains = [\"example.org\"]\nacme.enabled = true\nacme.challenge = \"http-01\"", wantKey: "acme.challenge", wantMsg: "needs http.listen_plain"},
		{name: "acme tls-alpn-01 without listener", file: "server.domains = [\"example.org\"]\nacme.enabled = true\nacme.challenge = \"tls-alpn-01\"\nhttp.listen = []\nc2s.direct_tls = []", wantKey: "acme.challenge", wantMsg: "needs a TLS listener"},
		{name: "acme challenge", file: acmeOK + "acme.challenge = \"dns-01\"", wantKey: "acme.challenge", wantMsg: `unknown challenge "dns-01"`},
		{name: "acme directory", file: acmeOK + "acme.directory = \"http://acme.example\"", wantKey: "acme.directory", wantMsg: "not an https:// URL"},
		{name: "acme email", file: acmeOK + "acme.email = \"admin\"", wantKey: "acme.email", wantMsg: "not an e-mail address"},
		{name: "acme renew_before", file: acmeOK + "acme.renew_before = \"0s\"", wantKey: "acme.renew_before", wantMsg: "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			if _, err := toml.Decode(tt.file, &cfg); err != nil {
				t.Fatal(err)
			}

			checkOne(t, "Validate", cfg.Validate(), tt.wantKey, tt.wantMsg, 0)
			_, err := config.Parse([]byte(tt.file), "ode.toml")
			checkOne(t, "Parse", err, tt.wantKey, tt.wantMsg, keyLine(tt.file, tt.wantKey))
		})
	}
}

// checkOne checks that err holds exactly one Error, for key and with a
// message containing msg, or is nil when key is "".
func checkOne(t *testing.T, what string, err error, key, msg string, line int) {
	t.Helper()
	if key == "" {
		if err != nil {
			t.Errorf("%s: unexpected error: %v", what, err)
		}
		return
	}
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("%s: got %v, want one config.Error", what, err)
	}
	e := errs[0]
	if e.Key != key || !strings.Contains(e.Msg, msg) || !strings.HasPrefix(e.Msg, key) || e.Line != line {
		t.Errorf("%s: got Key %q, Line %d, Msg %q; want Key %q, Line %d, Msg starting with the key and containing %q",
			what, e.Key, e.Line, e.Msg, key, line, msg)
	}
}

// keyLine finds the line of a dotted key written out in full in file.
func keyLine(file, key string) int {
	for i, l := range strings.Split(file, "\n") {
		if strings.HasPrefix(l, key+" ") {
			return i + 1
		}
	}
	return 0
}

func TestValidateCollectsEverything(t *testing.T) {
	cfg := config.Default()
	cfg.Server.Domains = nil
	cfg.Log.Level = "loud"
	cfg.C2S.MaxAuthFailures = 0
	cfg.Storage.Driver = ""
	var errs config.Errors
	if !errors.As(cfg.Validate(), &errs) {
		t.Fatalf("Validate() = %v, want config.Errors", cfg.Validate())
	}
	var keys []string
	for _, e := range errs {
		keys = append(keys, e.Key)
		if e.File != "" || e.Line != 0 {
			t.Errorf("Validate set File %q and Line %d; want them empty", e.File, e.Line)
		}
	}
	want := []string{"server.domains", "log.level", "c2s.max_auth_failures", "storage.driver"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("keys mismatch (-want +got):\n%s", diff)
	}
}

func TestErrorLocation(t *testing.T) {
	// A key that is missing from the file is located at its table, a table
	// implied by a dotted key at that key.
	_, err := config.Parse([]byte("[tls]\n# no key\ncert = 'a.crt'\n\n[c2s]\nmax_stanza_bytes = 2000000\n"), "x.toml")
	want := []string{
		"x.toml:3: tls.cert is set but tls.key is not: set both, or neither for a self-signed certificate",
		"x.toml:5: c2s.outbound_queue_bytes: 1048576 is smaller than c2s.max_stanza_bytes (2000000)",
	}
	if diff := cmp.Diff(want, errorLines(err)); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
	_, err = config.Parse([]byte("# comment\n\nc2s.max_stanza_bytes = 2000000"), "x.toml")
	want = []string{"x.toml:3: c2s.outbound_queue_bytes: 1048576 is smaller than c2s.max_stanza_bytes (2000000)"}
	if diff := cmp.Diff(want, errorLines(err)); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  config.Error
		want string
	}{
		{config.Error{File: "a.toml", Line: 3, Col: 7, Msg: "bad"}, "a.toml:3:7: bad"},
		{config.Error{File: "a.toml", Line: 3, Key: "k", Msg: "k: bad"}, "a.toml:3: k: bad"},
		{config.Error{File: "a.toml", Key: "k", Msg: "k: bad"}, "a.toml: k: bad"},
		{config.Error{Key: "k", Msg: "k: bad"}, "k: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestErrorsAs(t *testing.T) {
	_, err := config.Parse([]byte("[c2s]\nlisten = [\"nope\"]\n"), "ode.toml")
	var e *config.Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v, *config.Error) = false", err)
	}
	want := &config.Error{File: "ode.toml", Line: 2, Key: "c2s.listen",
		Msg: `c2s.listen: invalid address "nope": want host:port, such as "[::]:5222"`}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("Error mismatch (-want +got):\n%s", diff)
	}

	_, err = config.Parse([]byte("[c2s\n"), "ode.toml")
	if !errors.As(err, &e) || e.Line == 0 || e.Col == 0 || e.Key != "" {
		t.Errorf("syntax error = %#v, want a line and column and no key", e)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ode.toml")
	if err := os.WriteFile(path, []byte("[server]\ndomains = [\"example.org\"]\nbad = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	if diff := cmp.Diff([]string{path + ":3: unknown key server.bad"}, errorLines(err)); diff != "" {
		t.Errorf("Load errors mismatch (-want +got):\n%s", diff)
	}

	_, err = config.Load(filepath.Join(t.TempDir(), "missing.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestDataPath(t *testing.T) {
	cfg := config.Default()
	cfg.Server.DataDir = "/var/lib/ode"
	if got, want := cfg.DataPath("ode.db"), filepath.Join("/var/lib/ode", "ode.db"); got != want {
		t.Errorf("DataPath = %q, want %q", got, want)
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
	} {
		if got := (config.Log{Level: level}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v, want %v", level, got, want)
		}
	}
}

func TestDurationText(t *testing.T) {
	var d config.Duration
	if err := d.UnmarshalText([]byte("1h2m3s")); err != nil {
		t.Fatal(err)
	}
	if time.Duration(d) != time.Hour+2*time.Minute+3*time.Second {
		t.Errorf("UnmarshalText(1h2m3s) = %v", d)
	}
	text, err := d.MarshalText()
	if err != nil || string(text) != "1h2m3s" {
		t.Errorf("MarshalText = %q, %v", text, err)
	}
}

// FuzzParse checks that Parse never panics, that what it accepts is valid,
// and that an accepted configuration survives a round trip through TOML.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(examplePath); err == nil {
		f.Add(string(data))
	}
	for _, s := range []string{
		"",
		"[c2s]\nlistn = 1\n",
		"[server]\ndomains = \"x\"\n",
		"server = 5\n",
		"[[storage]]\ndriver = 'sqlite'\n",
		"log = { format = \"json\", level = 'debug' }\n",
		"c2s.auth_timeout = 60\n",
		"c2s.max_stanza_bytes = 99999999999999999999\n",
		"server.domains = ['A..b', 'xn--bcher-kva.example', 'EXAMPLE.org.']\n",
		"[tls]\ncert = '''\nx'''\n",
		"a = 1979-05-27 07:32:00Z\nb = [1, [2, {c = 3}]]\n[c2s\n",
		"\"quoted key\" = 1\n'lit' = 2\n",
		"[modules]\ndisabled = ['disco']\n[modules.roster]\nmax_items = 5\n[modules.ping]\npeers = []\n",
		"modules.ping = { interval = '1s', bogus = 1 }\n[roster]\nmax_items = 0\n",
		"[modules.disco]\n[modules.roster]\nmax_items = 0\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mods := testModules()
		cfg, err := config.Parse([]byte(s), "fuzz.toml", mods...)
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse error %v is not a non-empty config.Errors", err)
			}
			return
		}
		if err := cfg.Validate(mods...); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		if diff := cmp.Diff(testModules(), mods); diff != "" {
			t.Fatalf("Parse changed the modules' defaults (-before +after):\n%s", diff)
		}
		text, err := toml.Marshal(cfg)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		for _, m := range mods { // Settings has no toml tag: each is its own table
			if m.Defaults == nil {
				continue
			}
			table, err := toml.Marshal(cfg.Modules.Settings[m.Name])
			if err != nil {
				t.Fatalf("Marshal %s: %v", m.Name, err)
			}
			text = append(append(text, "\n[modules."+m.Name+"]\n"...), table...)
		}
		again, err := config.Parse(text, "round-trip.toml", mods...)
		if err != nil {
			t.Fatalf("Parse(Marshal(cfg)): %v\n%s", err, text)
		}
		if diff := cmp.Diff(cfg, again); diff != "" {
			t.Fatalf("round trip mismatch (-first +second):\n%s", diff)
		}
	})
}
