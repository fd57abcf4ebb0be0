// Package config holds the server's typed configuration: one short TOML file
// decoded strictly into the structs below, over the defaults of [Default].
//
// [Load] and [Parse] reject unknown keys and values of the wrong type and then
// run [Config.Validate]; every problem is reported at once, each with the file,
// line and key it concerns (see [Error]). Feature modules' settings, in
// [modules.<name>] tables, are decoded the same way into the structs the
// modules describe with a [ModuleSchema] each; the caller passes the schemas
// in, since this package knows no module. Nothing in this package opens a file
// other than the configuration itself or a socket: certificates and the data
// directory are the server's business.
package config

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// Config is the whole server configuration. Each field is one TOML table.
type Config struct {
	Server  Server  `toml:"server"`
	Log     Log     `toml:"log"`
	TLS     TLS     `toml:"tls"`
	ACME    ACME    `toml:"acme"`
	C2S     C2S     `toml:"c2s"`
	S2S     S2S     `toml:"s2s"`
	HTTP    HTTP    `toml:"http"`
	Storage Storage `toml:"storage"`
	Admin   Admin   `toml:"admin"`
	Metrics Metrics `toml:"metrics"`
	Modules Modules `toml:"modules"`
}

// Metrics is the [metrics] table: the Prometheus metrics served at
// /metrics on the [http] listeners.
type Metrics struct {
	// Enabled serves /metrics. Requests made directly from this machine
	// (a loopback peer, not relayed by a proxy) need no token.
	Enabled bool `toml:"enabled"`
	// Token, when set, lets anyone presenting Authorization: Bearer
	// <token> read /metrics (a Prometheus server on another machine); at
	// least 32 characters, and not the admin token.
	Token string `toml:"token"`
}

// Admin is the [admin] table: the control socket that the ode commands
// (`ode user …`, `ode session …`, `ode reload`, …) use while the server
// runs, and the same commands over HTTPS under /admin/ on the [http]
// listeners.
type Admin struct {
	// Socket is the path of the control socket (a Unix socket, mode
	// 0600, accepting only the server's own user and root); empty means
	// ode.sock in the data directory, "off" turns it off.
	Socket string `toml:"socket"`
	// Token is the bearer token of the HTTPS admin API (Authorization:
	// Bearer <token>, at least 32 characters); empty turns the API off.
	Token string `toml:"token"`
}

// SocketPath returns the control socket's path, or "" when it is off.
func (c Config) SocketPath() string {
	switch c.Admin.Socket {
	case "off":
		return ""
	case "":
		return c.DataPath("ode.sock")
	}
	return c.Admin.Socket
}

// HTTP is the [http] table: the server's HTTP(S) listener, which carries
// XMPP over WebSocket (RFC 7395) and BOSH (XEP-0206), announces them
// (XEP-0156 host-meta) and serves the modules' handlers (HTTP upload).
type HTTP struct {
	// Listen are host:port addresses for HTTPS with the server's
	// certificates; an empty list (and no listen_plain) turns HTTP off.
	Listen []string `toml:"listen"`
	// ListenPlain are loopback host:port addresses for plain HTTP, for a
	// reverse proxy that terminates TLS in front of ode.
	ListenPlain []string `toml:"listen_plain"`
	// TrustedProxies are the IP addresses or CIDR ranges of reverse
	// proxies whose X-Forwarded-For and X-Forwarded-Proto headers are
	// believed (for the client's address in logs and limits, and for
	// treating a proxied request as secure).
	TrustedProxies []string `toml:"trusted_proxies"`
	// PublicURL is the URL clients reach the listener at, when a
	// reverse proxy changes it ("https://xmpp.example.org"); empty means
	// https://<first domain>:<port of the first listen address>.
	PublicURL string `toml:"public_url"`
	// AllowedOrigins lists the web origins ("https://chat.example.org")
	// whose pages may open WebSocket and BOSH sessions; empty allows any
	// (SASL carries the credentials; no cookie is involved).
	AllowedOrigins []string `toml:"allowed_origins"`
	// WebSocket serves XMPP over WebSocket at /xmpp-websocket.
	WebSocket bool `toml:"websocket"`
	// BOSH serves XMPP over BOSH at /http-bind.
	BOSH bool `toml:"bosh"`
	// BOSHMaxWait caps the time a BOSH request is held waiting for data
	// (XEP-0124 'wait').
	BOSHMaxWait Duration `toml:"bosh_max_wait"`
	// BOSHMaxInactivity is how long a BOSH session may have no request
	// pending before it ends (XEP-0124 'inactivity').
	BOSHMaxInactivity Duration `toml:"bosh_max_inactivity"`
	// BOSHMaxRequests is the most requests a BOSH client may have open
	// at once (XEP-0124 'requests'; 'hold' is one less).
	BOSHMaxRequests int `toml:"bosh_max_requests"`
}

// S2S is the [s2s] table: server-to-server streams (federation, RFC 6120
// with XEP-0220 dialback and XEP-0178 SASL EXTERNAL).
type S2S struct {
	// Listen are host:port addresses for inbound server streams that
	// upgrade with STARTTLS; an empty list turns inbound federation off.
	Listen []string `toml:"listen"`
	// DirectTLS are host:port addresses where inbound server streams start
	// with TLS at once (XEP-0368).
	DirectTLS []string `toml:"direct_tls"`
	// Enabled turns federation on; when false, stanzas to other domains
	// are bounced with remote-server-not-found and no listener starts.
	Enabled bool `toml:"enabled"`
	// Dialback allows Server Dialback (XEP-0220) when a peer's certificate
	// cannot be verified or it does not offer SASL EXTERNAL.
	Dialback bool `toml:"dialback"`
	// Refuse lists domains the server neither connects to nor accepts.
	Refuse []string `toml:"refuse"`
	// Hosts maps a remote domain to the host:port to connect to, instead
	// of looking up its DNS SRV records (for tests and private
	// federations).
	Hosts map[string]string `toml:"hosts"`
	// CAFile is a PEM file of certificate authorities trusted for peers'
	// certificates, in addition to the system's.
	CAFile string `toml:"ca_file"`
	// ConnectTimeout bounds setting up an outbound stream (DNS, TCP, TLS
	// and authentication).
	ConnectTimeout Duration `toml:"connect_timeout"`
	// IdleTimeout closes a server stream that carried nothing for this
	// long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// QueueBytes bounds the stanzas queued for one remote domain while its
	// stream is set up or slow; more are bounced.
	QueueBytes int `toml:"queue_bytes"`
	// MaxStanzaBytes is the largest stanza a peer server may send.
	MaxStanzaBytes int `toml:"max_stanza_bytes"`
}

// Modules is the [modules] table: which feature modules run, and their
// settings, each in a table of its own such as [modules.roster].
type Modules struct {
	// Disabled names modules to turn off (the names are listed in
	// ode.example.toml).
	Disabled []string `toml:"disabled"`
	// Settings holds each module's settings by module name: a pointer to
	// the struct of its ModuleSchema.Defaults. Parse fills in every module
	// that has settings, from the file's [modules.<name>] table over a copy
	// of the defaults; a module missing here runs with its defaults.
	// Default returns an empty map, so tests may set entries.
	Settings map[string]any `toml:"-"`
}

// Server is the [server] table: what the server hosts and where it keeps its data.
type Server struct {
	// Domains are the XMPP domains this server hosts, lower-cased and in
	// Unicode (U-label) form after Load or Parse.
	Domains []string `toml:"domains"`
	// DataDir holds the database and generated certificates. A relative
	// path is relative to the working directory of the process.
	DataDir string `toml:"data_dir"`
	// Admins are the bare JIDs of the accounts that may run the service
	// administration commands (XEP-0133) from their XMPP client.
	Admins []string `toml:"admins"`
	// PublicAddresses are the IP addresses the server is reached at from
	// the Internet when they are not this machine's own (behind NAT):
	// ode check and ACME's errors compare DNS records with them.
	PublicAddresses []string `toml:"public_addresses"`
}

// Log is the [log] table.
type Log struct {
	// Format is "text" or "json".
	Format string `toml:"format"`
	// Level is "debug", "info", "warn" or "error".
	Level string `toml:"level"`
}

// SlogLevel returns l.Level as a slog.Level; an unknown level (which
// Validate rejects) is reported as slog.LevelInfo.
func (l Log) SlogLevel() slog.Level {
	return logLevels[l.Level]
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

var logFormats = map[string]bool{"text": true, "json": true}

// TLS is the [tls] table. When Cert and Key are both empty (and ACME is
// off) the server generates a self-signed certificate in the data
// directory.
type TLS struct {
	// Cert is the path of a PEM certificate chain, leaf first.
	Cert string `toml:"cert"`
	// Key is the path of the PEM private key for Cert.
	Key string `toml:"key"`
	// CheckInterval is how often Cert and Key are checked for changes
	// (modification time and size); a changed pair is loaded without a
	// restart, and a pair that does not load leaves the old one in use.
	CheckInterval Duration `toml:"check_interval"`
}

// ACME is the [acme] table: certificates obtained and renewed from an
// ACME certificate authority (RFC 8555) such as Let's Encrypt, for every
// hosted domain and its service sub-domains.
type ACME struct {
	// Enabled turns ACME on; tls.cert and tls.key must then be empty.
	Enabled bool `toml:"enabled"`
	// Email is the contact address given to the CA (expiry warnings);
	// empty registers without one.
	Email string `toml:"email"`
	// Directory is the URL of the CA's ACME directory.
	Directory string `toml:"directory"`
	// CAFile is a PEM file of the authorities that sign the ACME
	// server's own HTTPS certificate, when the system's do not (a test
	// CA such as pebble).
	CAFile string `toml:"ca_file"`
	// Challenge is how the CA checks that a name is ours: "http-01" (on
	// http.listen_plain, which must be reached on port 80) or
	// "tls-alpn-01" (on the TLS listeners, reached on port 443).
	Challenge string `toml:"challenge"`
	// RenewBefore is how long before its expiry a certificate is renewed.
	RenewBefore Duration `toml:"renew_before"`
}

// LetsEncrypt is the ACME directory of Let's Encrypt, acme.directory's
// default.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// C2S is the [c2s] table: client-to-server listeners and their limits.
type C2S struct {
	// Listen are host:port addresses for plain streams upgraded with
	// STARTTLS (RFC 6120 §5). Port 0 picks a free port (for tests).
	Listen []string `toml:"listen"`
	// DirectTLS are host:port addresses where TLS starts at once (XEP-0368).
	DirectTLS []string `toml:"direct_tls"`
	// RequireTLS refuses authentication on streams that have not negotiated TLS.
	RequireTLS bool `toml:"require_tls"`
	// MaxStanzaBytes is the largest top-level element a client may send.
	MaxStanzaBytes int `toml:"max_stanza_bytes"`
	// AuthTimeout is how long an unauthenticated stream may stay idle
	// before it is closed.
	AuthTimeout Duration `toml:"auth_timeout"`
	// MaxAuthFailures is how many failed SASL attempts close the stream.
	MaxAuthFailures int `toml:"max_auth_failures"`
	// OutboundQueueBytes bounds each session's outbound queue; a session
	// whose queue overflows is closed.
	OutboundQueueBytes int `toml:"outbound_queue_bytes"`
	// StrictChannelBinding refuses SCRAM logins whose GS2 flag "y" says the
	// client supports channel binding while the server offered -PLUS
	// (RFC 5802 §6). Off by default: clients that know only tls-unique
	// (slixmpp 1.8) send "y" over TLS 1.3 and would fall back to PLAIN.
	StrictChannelBinding bool `toml:"strict_channel_binding"`
	// ResumeTimeout is how long a session with stream management
	// (XEP-0198) waits for its client to resume after the connection
	// drops, when the client asks for no other value.
	ResumeTimeout Duration `toml:"resume_timeout"`
	// MaxResumeTimeout caps the resumption time a client may ask for.
	MaxResumeTimeout Duration `toml:"max_resume_timeout"`
	// MaxUnacked is how many stanzas a session with stream management may
	// have sent but not had acknowledged; past it the session ends with
	// resource-constraint (XEP-0198 §5).
	MaxUnacked int `toml:"max_unacked"`
	// FAST offers XEP-0484 tokens in SASL2: a client that logged in
	// with its password gets a token and logs in with it afterwards in
	// one round trip, without PBKDF2.
	FAST bool `toml:"fast"`
	// FASTTokenLifetime is how long a FAST token is valid.
	FASTTokenLifetime Duration `toml:"fast_token_lifetime"`
	// FASTTokenRotateAfter is the age after which a login with a token
	// gets a new one (the old one stays valid until the new one is used).
	FASTTokenRotateAfter Duration `toml:"fast_token_rotate_after"`
}

// Storage is the [storage] table.
type Storage struct {
	// Driver names the storage backend: "sqlite" (the file ode.db in
	// the data directory) or "postgres" (the database of [storage.postgres]).
	Driver string `toml:"driver"`
	// Postgres is the [storage.postgres] table, used when Driver is
	// "postgres".
	Postgres Postgres `toml:"postgres"`
}

// Postgres is the [storage.postgres] table: the PostgreSQL database and
// the pool of connections to it.
type Postgres struct {
	// DSN names the database as libpq does: a URL such as
	// "postgres://ode@db.example.org/ode?sslmode=verify-full" or
	// "host=/run/postgresql dbname=ode" key=value pairs. A password is
	// better kept in PGPASSWORD or ~/.pgpass than here.
	DSN string `toml:"dsn"`
	// MaxConns is the most connections the server opens to the
	// database.
	MaxConns int `toml:"max_conns"`
	// StatementTimeout aborts a statement that runs longer (the
	// sessions' statement_timeout); "0s" for none.
	StatementTimeout Duration `toml:"statement_timeout"`
	// ConnectTimeout bounds opening one connection.
	ConnectTimeout Duration `toml:"connect_timeout"`
}

// Default returns the configuration used when no file is given. Load and
// Parse decode a file over it, so a key missing from the file keeps its
// default; an array in the file replaces the default array. Its
// Modules.Settings is empty: modules run with their own defaults.
func Default() Config {
	return Config{
		Server: Server{
			Domains:         []string{"localhost"},
			DataDir:         "./ode-data",
			Admins:          []string{},
			PublicAddresses: []string{},
		},
		Log: Log{Format: "text", Level: "info"},
		TLS: TLS{CheckInterval: Duration(time.Minute)},
		ACME: ACME{
			Directory:   LetsEncrypt,
			Challenge:   "http-01",
			RenewBefore: Duration(30 * 24 * time.Hour),
		},
		C2S: C2S{
			Listen:               []string{"127.0.0.1:5222"},
			DirectTLS:            []string{"127.0.0.1:5223"},
			RequireTLS:           true,
			MaxStanzaBytes:       262144,
			AuthTimeout:          Duration(60 * time.Second),
			MaxAuthFailures:      3,
			OutboundQueueBytes:   1 << 20,
			ResumeTimeout:        Duration(300 * time.Second),
			MaxResumeTimeout:     Duration(time.Hour),
			MaxUnacked:           10000,
			FAST:                 true,
			FASTTokenLifetime:    Duration(21 * 24 * time.Hour),
			FASTTokenRotateAfter: Duration(24 * time.Hour),
		},
		S2S: S2S{
			Listen:         []string{"127.0.0.1:5269"},
			DirectTLS:      []string{},
			Enabled:        true,
			Dialback:       true,
			Refuse:         []string{},
			Hosts:          map[string]string{},
			ConnectTimeout: Duration(30 * time.Second),
			IdleTimeout:    Duration(10 * time.Minute),
			QueueBytes:     1 << 20,
			MaxStanzaBytes: 262144,
		},
		HTTP: HTTP{
			Listen:            []string{"127.0.0.1:5443"},
			ListenPlain:       []string{},
			TrustedProxies:    []string{},
			AllowedOrigins:    []string{},
			WebSocket:         true,
			BOSH:              true,
			BOSHMaxWait:       Duration(60 * time.Second),
			BOSHMaxInactivity: Duration(60 * time.Second),
			BOSHMaxRequests:   2,
		},
		Storage: Storage{Driver: "sqlite", Postgres: Postgres{
			MaxConns:         16,
			StatementTimeout: Duration(30 * time.Second),
			ConnectTimeout:   Duration(10 * time.Second),
		}},
		Metrics: Metrics{Enabled: true},
		Modules: Modules{Settings: map[string]any{}},
	}
}

// DataPath returns name joined to the data directory.
func (c Config) DataPath(name string) string {
	return filepath.Join(c.Server.DataDir, name)
}

// Duration is a time.Duration written in TOML as a string such as "60s",
// "5m" or "1h30m" (see time.ParseDuration).
type Duration time.Duration

// UnmarshalText parses a duration string such as "60s".
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q: write a number with a unit, such as \"60s\" or \"5m\"", text)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// String formats d as time.Duration.String does.
func (d Duration) String() string {
	return time.Duration(d).String()
}
