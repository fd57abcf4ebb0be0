package extdisco

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
)

// Config is the [modules.extdisco] table. With no services (the default)
// the module answers nothing and advertises nothing.
type Config struct {
	// Services are the STUN and TURN servers told to clients, in order.
	Services []Service `toml:"services"`
}

// Service is one STUN or TURN server, an element of
// [[modules.extdisco.services]].
type Service struct {
	// Type is "stun", "turn", "stuns" or "turns" (STUN or TURN over TLS).
	Type string `toml:"type"`
	// Host is the server's host name or IP address, as clients reach it.
	Host string `toml:"host"`
	// Port is the server's port; 0 is the standard port of Type: 3478,
	// or 5349 for stuns and turns.
	Port int `toml:"port"`
	// Transport is "udp" or "tcp"; empty is "udp" for stun and turn and
	// "tcp" for stuns and turns.
	Transport string `toml:"transport"`
	// Name is a human-readable label for the service; may be empty.
	Name string `toml:"name"`
	// Restricted services (TURN only) need credentials: each answer
	// carries a username and password made with Secret that expire after
	// TTL, in the TURN REST API scheme that coturn checks with
	// use-auth-secret.
	Restricted bool `toml:"restricted"`
	// Secret is the TURN server's shared secret (coturn's
	// static-auth-secret); required for a restricted service, and only
	// for one.
	Secret string `toml:"secret"`
	// TTL is how long credentials stay valid; 0 is DefaultTTL. Only for a
	// restricted service.
	TTL config.Duration `toml:"ttl"`
}

// DefaultTTL is the credentials' lifetime when a service sets none: one
// day, the TURN REST API draft's recommendation and Prosody's default.
const DefaultTTL = 24 * time.Hour

// Standard ports (RFC 8489 §18.1, RFC 8656 §19).
const (
	portPlain = 3478
	portTLS   = 5349
)

var types = []string{"stun", "turn", "stuns", "turns"}

// port is the service's port, or the standard one of its type.
func (s *Service) port() int {
	switch {
	case s.Port != 0:
		return s.Port
	case s.secure():
		return portTLS
	}
	return portPlain
}

// transport is the service's transport, or the usual one of its type.
func (s *Service) transport() string {
	switch {
	case s.Transport != "":
		return s.Transport
	case s.secure():
		return "tcp"
	}
	return "udp"
}

func (s *Service) ttl() time.Duration {
	if s.TTL == 0 {
		return DefaultTTL
	}
	return time.Duration(s.TTL)
}

func (s *Service) secure() bool { return s.Type == "stuns" || s.Type == "turns" }
func (s *Service) turn() bool   { return s.Type == "turn" || s.Type == "turns" }

// Validate implements config.Validator.
func (c *Config) Validate() []config.Problem {
	var ps []config.Problem
	for i := range c.Services {
		ps = append(ps, c.Services[i].validate(fmt.Sprintf("services[%d].", i))...)
	}
	return ps
}

// validate checks one service; its problems' keys start with prefix.
func (s *Service) validate(prefix string) []config.Problem {
	var ps []config.Problem
	bad := func(key, format string, args ...any) {
		ps = append(ps, config.Problem{Key: prefix + key, Msg: fmt.Sprintf(format, args...)})
	}
	if !slices.Contains(types, s.Type) {
		bad("type", "must be one of %s, got %q", strings.Join(types, ", "), s.Type)
	}
	if s.Host == "" || strings.ContainsAny(s.Host, " \t\r\n/") {
		bad("host", "must be a host name or IP address, got %q", s.Host)
	}
	if s.Port < 0 || s.Port > 65535 {
		bad("port", "must be between 1 and 65535 (or 0 for the standard port), got %d", s.Port)
	}
	if s.Transport != "" && s.Transport != "udp" && s.Transport != "tcp" {
		bad("transport", `must be "udp" or "tcp", got %q`, s.Transport)
	}
	switch {
	case s.Restricted && !s.turn():
		bad("restricted", "only TURN services (turn, turns) have credentials, this is %s", s.Type)
	case s.Restricted && s.Secret == "":
		bad("secret", "a restricted service needs the TURN server's shared secret (coturn's static-auth-secret)")
	case !s.Restricted && s.Secret != "":
		bad("secret", "is only used by a restricted service: set restricted = true")
	}
	switch {
	case s.TTL < 0 || (s.TTL > 0 && s.TTL < config.Duration(time.Second)):
		bad("ttl", "must be at least 1s (or 0 for %s), got %s", DefaultTTL, s.TTL)
	case s.TTL != 0 && !s.Restricted:
		bad("ttl", "is only used by a restricted service")
	}
	return ps
}
