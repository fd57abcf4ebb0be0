package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/idna"

	"github.com/ode-xmpp/ode/jid"
)

// Limits on c2s.max_stanza_bytes. RFC 6120 §13.12 requires servers to accept
// stanzas of at least 10000 bytes.
const (
	minStanzaBytes = 10000
	maxStanzaBytes = 64 << 20
)

// Validate reports every invalid value in c as an Errors value whose entries
// name the key concerned (their File and Line are left empty), or nil.
// Domains are accepted in any case and with a trailing dot; Load and Parse
// store them lower-cased, without the dot and with U-labels.
//
// mods are the modules the server has, as given to Parse: modules.disabled
// may name only them, and each entry of c.Modules.Settings must be one of
// theirs, of the type of its defaults, and pass its Validate method (see
// ValidateModule).
func (c Config) Validate(mods ...ModuleSchema) error {
	return c.validate(mods).err()
}

func (c Config) validate(mods []ModuleSchema) Errors {
	var v validator
	v.domains(c.Server.Domains)
	for _, a := range c.Server.PublicAddresses {
		if net.ParseIP(a) == nil {
			v.add("server.public_addresses", "server.public_addresses: %q is not an IP address such as \"203.0.113.7\"", a)
		}
	}
	if c.Server.DataDir == "" {
		v.add("server.data_dir", "server.data_dir: must not be empty")
	}
	if !logFormats[c.Log.Format] {
		v.add("log.format", `log.format: unknown format %q; use "text" or "json"`, c.Log.Format)
	}
	if _, ok := logLevels[c.Log.Level]; !ok {
		v.add("log.level", `log.level: unknown level %q; use "debug", "info", "warn" or "error"`, c.Log.Level)
	}
	switch {
	case c.TLS.Cert != "" && c.TLS.Key == "":
		v.add("tls.cert", "tls.cert is set but tls.key is not: set both, or neither for a self-signed certificate")
	case c.TLS.Cert == "" && c.TLS.Key != "":
		v.add("tls.key", "tls.key is set but tls.cert is not: set both, or neither for a self-signed certificate")
	}
	if c.TLS.CheckInterval <= 0 {
		v.add("tls.check_interval", "tls.check_interval: must be positive, got %s", c.TLS.CheckInterval)
	}
	v.acme(c)
	v.addresses(map[string][]string{"c2s.listen": c.C2S.Listen, "c2s.direct_tls": c.C2S.DirectTLS,
		"s2s.listen": c.S2S.Listen, "s2s.direct_tls": c.S2S.DirectTLS,
		"http.listen": c.HTTP.Listen, "http.listen_plain": c.HTTP.ListenPlain})
	v.http(c.HTTP, c.ACME.Enabled)
	v.s2s(c.S2S)
	if n := c.C2S.MaxStanzaBytes; n < minStanzaBytes || n > maxStanzaBytes {
		v.add("c2s.max_stanza_bytes", "c2s.max_stanza_bytes: %d is out of range; use %d to %d",
			n, minStanzaBytes, maxStanzaBytes)
	}
	if c.C2S.AuthTimeout <= 0 {
		v.add("c2s.auth_timeout", "c2s.auth_timeout: must be positive, got %s", c.C2S.AuthTimeout)
	}
	if c.C2S.MaxAuthFailures < 1 {
		v.add("c2s.max_auth_failures", "c2s.max_auth_failures: must be at least 1, got %d", c.C2S.MaxAuthFailures)
	}
	if c.C2S.OutboundQueueBytes < c.C2S.MaxStanzaBytes {
		v.add("c2s.outbound_queue_bytes", "c2s.outbound_queue_bytes: %d is smaller than c2s.max_stanza_bytes (%d)",
			c.C2S.OutboundQueueBytes, c.C2S.MaxStanzaBytes)
	}
	if c.C2S.ResumeTimeout <= 0 {
		v.add("c2s.resume_timeout", "c2s.resume_timeout: must be positive, got %s", c.C2S.ResumeTimeout)
	}
	if c.C2S.MaxResumeTimeout < c.C2S.ResumeTimeout {
		v.add("c2s.max_resume_timeout", "c2s.max_resume_timeout: %s is shorter than c2s.resume_timeout (%s)",
			c.C2S.MaxResumeTimeout, c.C2S.ResumeTimeout)
	}
	if c.C2S.FAST && c.C2S.FASTTokenLifetime <= 0 {
		v.add("c2s.fast_token_lifetime", "c2s.fast_token_lifetime: must be positive, got %s", c.C2S.FASTTokenLifetime)
	}
	if c.C2S.FAST && (c.C2S.FASTTokenRotateAfter <= 0 || c.C2S.FASTTokenRotateAfter > c.C2S.FASTTokenLifetime) {
		v.add("c2s.fast_token_rotate_after", "c2s.fast_token_rotate_after: must be positive and at most c2s.fast_token_lifetime (%s), got %s",
			c.C2S.FASTTokenLifetime, c.C2S.FASTTokenRotateAfter)
	}
	if c.C2S.MaxUnacked < 10 {
		v.add("c2s.max_unacked", "c2s.max_unacked: must be at least 10, got %d", c.C2S.MaxUnacked)
	}
	v.storage(c.Storage)
	v.admin(c.Server.Admins, c.Admin)
	v.metrics(c.Metrics, c.Admin)
	v.modules(c.Modules, mods)
	return v.errs
}

type validator struct{ errs Errors }

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) domains(domains []string) {
	if len(domains) == 0 {
		v.add("server.domains", "server.domains: at least one domain is required")
	}
	seen := make(map[string]bool)
	for _, d := range domains {
		n, err := normalizeDomain(d)
		switch {
		case err != nil:
			v.add("server.domains", "server.domains: invalid domain name %q: %v", d, err)
		case seen[n]:
			v.add("server.domains", "server.domains: %q is listed twice", n)
		}
		seen[n] = true
	}
}

// addresses checks listen addresses, each list under its key, and that no
// address appears twice.
func (v *validator) addresses(lists map[string][]string) {
	seen := make(map[string]string) // address → key
	for _, key := range []string{"c2s.listen", "c2s.direct_tls", "s2s.listen", "s2s.direct_tls", "http.listen", "http.listen_plain"} {
		for _, a := range lists[key] {
			if err := checkAddress(a); err != nil {
				v.add(key, "%s: %v", key, err)
				continue
			}
			if prev, ok := seen[a]; ok {
				v.add(key, "%s: address %q is already in %s", key, a, prev)
				continue
			}
			seen[a] = key
		}
	}
}

// http checks the [http] table. With publicPlain (ACME, for its http-01
// challenge) plain listeners may be public: there they answer only the
// challenges and redirect the rest to HTTPS.
func (v *validator) http(c HTTP, publicPlain bool) {
	for _, a := range c.ListenPlain {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			continue // reported by addresses
		}
		if ip := net.ParseIP(host); !publicPlain && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			v.add("http.listen_plain", "http.listen_plain: %q is not a loopback address: plain HTTP is only for a reverse proxy on this machine; use http.listen for HTTPS", a)
		}
	}
	for _, p := range c.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				v.add("http.trusted_proxies", "http.trusted_proxies: %q is neither an IP address nor a CIDR range such as \"10.0.0.0/8\"", p)
			}
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			v.add("http.public_url", "http.public_url: %q is not an absolute http(s) URL such as \"https://xmpp.example.org\"", c.PublicURL)
		}
	}
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			v.add("http.allowed_origins", "http.allowed_origins: %q is not an origin such as \"https://chat.example.org\"", o)
		}
	}
	if c.BOSHMaxWait <= 0 {
		v.add("http.bosh_max_wait", "http.bosh_max_wait: must be positive, got %s", c.BOSHMaxWait)
	}
	if c.BOSHMaxInactivity <= 0 {
		v.add("http.bosh_max_inactivity", "http.bosh_max_inactivity: must be positive, got %s", c.BOSHMaxInactivity)
	}
	if c.BOSHMaxRequests < 1 {
		v.add("http.bosh_max_requests", "http.bosh_max_requests: must be at least 1, got %d", c.BOSHMaxRequests)
	}
}

// acme checks the [acme] table, and that what ACME needs is there: names
// a public CA can certify and a listener for the challenge.
func (v *validator) acme(c Config) {
	a := c.ACME
	if !a.Enabled {
		return
	}
	if c.TLS.Cert != "" || c.TLS.Key != "" {
		v.add("acme.enabled", "acme.enabled: tls.cert and tls.key are set too: use ACME or your own certificate, not both")
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t<>")) {
		v.add("acme.email", "acme.email: %q is not an e-mail address such as \"admin@example.org\"", a.Email)
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		v.add("acme.directory", "acme.directory: %q is not an https:// URL such as %q", a.Directory, LetsEncrypt)
	}
	switch a.Challenge {
	case "http-01":
		if len(c.HTTP.ListenPlain) == 0 {
			v.add("acme.challenge", `acme.challenge: "http-01" needs http.listen_plain (such as ["[::]:80"], or a proxy forwarding port 80 to it); or use "tls-alpn-01"`)
		}
	case "tls-alpn-01":
		if len(c.HTTP.Listen)+len(c.C2S.DirectTLS) == 0 {
			v.add("acme.challenge", `acme.challenge: "tls-alpn-01" needs a TLS listener on port 443 (http.listen or c2s.direct_tls); or use "http-01"`)
		}
	default:
		v.add("acme.challenge", `acme.challenge: unknown challenge %q; use "http-01" or "tls-alpn-01"`, a.Challenge)
	}
	if a.RenewBefore <= 0 {
		v.add("acme.renew_before", "acme.renew_before: must be positive, got %s", a.RenewBefore)
	}
	for _, d := range c.Server.Domains {
		n, err := normalizeDomain(d)
		if err != nil {
			continue // reported by domains
		}
		if net.ParseIP(n) != nil || !strings.Contains(n, ".") || n == "localhost" || strings.HasSuffix(n, ".localhost") {
			v.add("server.domains", "server.domains: %q cannot get a certificate from a public CA (acme.enabled): use a registered domain name", d)
		}
	}
}

// s2s checks the [s2s] table.
func (v *validator) s2s(c S2S) {
	for _, d := range c.Refuse {
		if _, err := normalizeDomain(d); err != nil {
			v.add("s2s.refuse", "s2s.refuse: invalid domain name %q: %v", d, err)
		}
	}
	domains := make([]string, 0, len(c.Hosts))
	for d := range c.Hosts {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	for _, d := range domains {
		if _, err := normalizeDomain(d); err != nil {
			v.add("s2s.hosts", "s2s.hosts: invalid domain name %q: %v", d, err)
		}
		host, port, err := net.SplitHostPort(c.Hosts[d])
		if err != nil || host == "" {
			v.add("s2s.hosts", "s2s.hosts: %q = %q: want host:port, such as \"xmpp.example.net:5269\"", d, c.Hosts[d])
			continue
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			v.add("s2s.hosts", "s2s.hosts: %q = %q: want a port from 1 to 65535", d, c.Hosts[d])
		}
	}
	if c.ConnectTimeout <= 0 {
		v.add("s2s.connect_timeout", "s2s.connect_timeout: must be positive, got %s", c.ConnectTimeout)
	}
	if c.IdleTimeout <= 0 {
		v.add("s2s.idle_timeout", "s2s.idle_timeout: must be positive, got %s", c.IdleTimeout)
	}
	if n := c.MaxStanzaBytes; n < minStanzaBytes || n > maxStanzaBytes {
		v.add("s2s.max_stanza_bytes", "s2s.max_stanza_bytes: must be from %d to %d, got %d", minStanzaBytes, maxStanzaBytes, n)
	}
	if c.QueueBytes < c.MaxStanzaBytes {
		v.add("s2s.queue_bytes", "s2s.queue_bytes: must be at least s2s.max_stanza_bytes (%d), got %d", c.MaxStanzaBytes, c.QueueBytes)
	}
}

// minTokenLength is the shortest admin.token accepted: 32 characters of a
// random token are out of reach of guessing.
const minTokenLength = 32

// admin checks server.admins and the [admin] table.
func (v *validator) admin(admins []string, c Admin) {
	for _, a := range admins {
		j, err := jid.Parse(a)
		if err != nil || j.Local() == "" || !j.IsBare() {
			v.add("server.admins", "server.admins: %q is not a bare JID such as \"admin@example.org\"", a)
		}
	}
	if c.Token != "" && len(c.Token) < minTokenLength {
		v.add("admin.token", "admin.token: must be at least %d characters (such as the output of `openssl rand -hex 32`), got %d", minTokenLength, len(c.Token))
	}
	if c.Socket != "" && c.Socket != "off" && strings.ContainsRune(c.Socket, 0) {
		v.add("admin.socket", "admin.socket: not a valid path")
	}
}

// metrics checks the [metrics] table.
func (v *validator) metrics(c Metrics, admin Admin) {
	switch {
	case c.Token == "":
	case len(c.Token) < minTokenLength:
		v.add("metrics.token", "metrics.token: must be at least %d characters (such as the output of `openssl rand -hex 32`), got %d", minTokenLength, len(c.Token))
	case strings.ContainsFunc(c.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		v.add("metrics.token", "metrics.token: must not contain spaces or control characters")
	case c.Token == admin.Token:
		v.add("metrics.token", "metrics.token: must differ from admin.token (whoever scrapes metrics must not be able to administer the server)")
	}
}

// storage checks the [storage] table; [storage.postgres] only when it is
// the driver.
func (v *validator) storage(c Storage) {
	switch c.Driver {
	case "sqlite":
		return
	case "postgres":
	default:
		v.add("storage.driver", `storage.driver: unknown driver %q; use "sqlite" or "postgres"`, c.Driver)
		return
	}
	p := c.Postgres
	switch {
	case strings.TrimSpace(p.DSN) == "":
		v.add("storage.postgres.dsn", `storage.postgres.dsn: required with storage.driver = "postgres", such as "postgres://ode@localhost/ode"`)
	case strings.HasPrefix(p.DSN, "postgres://") || strings.HasPrefix(p.DSN, "postgresql://"):
		if _, err := url.Parse(p.DSN); err != nil {
			v.add("storage.postgres.dsn", "storage.postgres.dsn: not a valid URL") // the error would show a password
		}
	case !strings.Contains(p.DSN, "="):
		v.add("storage.postgres.dsn", `storage.postgres.dsn: want a postgres:// URL or key=value pairs such as "host=localhost dbname=ode"`)
	}
	if p.MaxConns < 1 || p.MaxConns > 10000 {
		v.add("storage.postgres.max_conns", "storage.postgres.max_conns: must be from 1 to 10000, got %d", p.MaxConns)
	}
	if p.StatementTimeout < 0 {
		v.add("storage.postgres.statement_timeout", "storage.postgres.statement_timeout: must not be negative, got %s", p.StatementTimeout)
	}
	if p.ConnectTimeout <= 0 {
		v.add("storage.postgres.connect_timeout", "storage.postgres.connect_timeout: must be positive, got %s", p.ConnectTimeout)
	}
}

// checkAddress checks a host:port listen address. The host may be empty
// (every interface); port 0 picks a free port.
func checkAddress(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port, such as \"[::]:5222\"", a)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("invalid port in %q: want a number from 0 to 65535", a)
	}
	return nil
}

// domainProfile checks hosted domain names: IDNA2008 lookup rules with DNS
// length limits (without them "a..b" passes).
var domainProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true))

// normalizeDomain returns the canonical form of a domain name: lower case,
// U-labels, no trailing dot.
func normalizeDomain(d string) (string, error) {
	a, err := domainProfile.ToASCII(d)
	if err != nil {
		return "", err
	}
	a = strings.TrimSuffix(a, ".") // the root label (RFC 7622 §3.2)
	if a == "" || strings.HasSuffix(a, ".") {
		return "", errors.New("empty label")
	}
	return domainProfile.ToUnicode(a)
}

// normalize puts valid domains in canonical form; validate reports the others.
func (c *Config) normalize() {
	for i, d := range c.Server.Domains {
		if n, err := normalizeDomain(d); err == nil {
			c.Server.Domains[i] = n
		}
	}
	for i, a := range c.Server.Admins {
		if j, err := jid.Parse(a); err == nil {
			c.Server.Admins[i] = j.String()
		}
	}
	for i, d := range c.S2S.Refuse {
		if n, err := normalizeDomain(d); err == nil {
			c.S2S.Refuse[i] = n
		}
	}
	if len(c.S2S.Hosts) > 0 {
		hosts := make(map[string]string, len(c.S2S.Hosts))
		for d, a := range c.S2S.Hosts {
			if n, err := normalizeDomain(d); err == nil {
				d = n
			}
			hosts[d] = a
		}
		c.S2S.Hosts = hosts
	}
}
