package sasl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// CredentialLookup returns the verifier for username and hash, or an error
// wrapping ErrUnknownUser if the user does not exist or has no verifier
// for h. Any other error is an internal failure. username is as the
// client sent it after PRECIS UsernameCasePreserved preparation: the
// lookup maps case or otherwise prepares it as its storage needs.
type CredentialLookup func(ctx context.Context, username string, h Hash) (Credential, error)

// ServerConfig configures the server side of an exchange.
type ServerConfig struct {
	// Lookup finds verifiers; SCRAM and PLAIN need it.
	Lookup CredentialLookup
	// TLS is the state of the connection, nil when no TLS; it enables the
	// -PLUS mechanisms and PLAIN.
	TLS *tls.ConnectionState
	// ServerCertificate is the DER of our leaf certificate, for
	// tls-server-end-point channel binding.
	ServerCertificate []byte
	// ExternalIdentity, if non-empty, makes EXTERNAL available; it
	// authenticates as this identity.
	ExternalIdentity string
	// StrictChannelBinding applies RFC 5802 §6's downgrade rule: the "y"
	// flag on a non-PLUS SCRAM mechanism fails when -PLUS is available.
	// Off by default, since clients that know only tls-unique send "y"
	// on TLS 1.3, where tls-unique does not exist.
	StrictChannelBinding bool
	// Encrypted says that the connection is encrypted although TLS is
	// nil: a trusted reverse proxy terminated TLS. It enables PLAIN (and
	// no -PLUS mechanism: there is no TLS state to bind to).
	Encrypted bool
	// Tokens, if set, makes the HT mechanisms (XEP-0484 FAST tokens)
	// available; see TokenMechanisms.
	Tokens TokenLookup
	// SSDP, if set, is what the server advertised: SCRAM then sends its
	// XEP-0474 downgrade-protection hash.
	SSDP *SSDP
}

// Server is the server side of one SASL exchange.
type Server interface {
	// Mechanism returns the mechanism name.
	Mechanism() string
	// Next consumes the client's response (the initial response for the
	// first call, possibly nil or empty) and returns a challenge, or
	// done=true with optional additional success data (the SCRAM
	// server-final-message). Protocol and authentication failures are
	// *Failure; other errors are internal problems (the caller reports
	// TemporaryAuthFailure). After done or an error the exchange is over.
	Next(ctx context.Context, response []byte) (challenge []byte, done bool, err error)
	// Username returns the authenticated username, valid after done.
	Username() string
	// AuthzID returns the requested authorization identity, "" if none.
	// The caller decides whether Username may act as it.
	AuthzID() string
}

// NewServer returns the server side of mechanism. It fails with a
// *Failure (InvalidMechanism, or EncryptionRequired for PLAIN without
// TLS) if the mechanism is unknown or unusable with cfg.
func NewServer(mechanism string, cfg ServerConfig) (Server, error) {
	if h, plus, ok := parseSCRAMName(mechanism); ok {
		return newSCRAMServer(h, plus, cfg)
	}
	if typ, ok := htBinding(mechanism); ok {
		return newHTServer(mechanism, typ, cfg)
	}
	switch mechanism {
	case "PLAIN":
		if cfg.Lookup == nil {
			return nil, &Failure{Condition: InvalidMechanism, Text: "no credential lookup configured"}
		}
		if cfg.TLS == nil && !cfg.Encrypted {
			return nil, &Failure{Condition: EncryptionRequired, Text: "PLAIN needs TLS"}
		}
		return &plainServer{cfg: cfg}, nil
	case "EXTERNAL":
		if cfg.ExternalIdentity == "" {
			return nil, &Failure{Condition: InvalidMechanism, Text: "no external identity"}
		}
		return &externalServer{identity: cfg.ExternalIdentity}, nil
	}
	return nil, &Failure{Condition: InvalidMechanism, Text: fmt.Sprintf("unsupported mechanism %q", mechanism)}
}

// ServerMechanisms lists the mechanisms to offer, strongest first:
// SCRAM-SHA-512-PLUS, SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS (only when TLS
// with a usable channel binding), SCRAM-SHA-512, SCRAM-SHA-256,
// SCRAM-SHA-1, PLAIN (only when tlsActive and cfg.TLS is set), EXTERNAL
// (when ExternalIdentity is set). SCRAM and PLAIN need cfg.Lookup.
func ServerMechanisms(cfg ServerConfig, tlsActive bool) []string {
	var out []string
	if cfg.Lookup != nil {
		if b := newServerBindings(&cfg); len(b.types) > 0 {
			for _, h := range hashes {
				out = append(out, scramName(h, true))
			}
		}
		for _, h := range hashes {
			out = append(out, scramName(h, false))
		}
		if tlsActive && (cfg.TLS != nil || cfg.Encrypted) {
			out = append(out, "PLAIN")
		}
	}
	if cfg.ExternalIdentity != "" {
		out = append(out, "EXTERNAL")
	}
	return out
}

// ClientConfig configures the client side of an exchange.
type ClientConfig struct {
	// Username is the authentication identity (the JID localpart in
	// XMPP); Password its password.
	Username, Password string
	// AuthzID is the authorization identity to request, "" for none.
	AuthzID string
	// TLS is the state of the connection, nil when no TLS.
	TLS *tls.ConnectionState
	// ChannelBinding is the channel-binding type for -PLUS mechanisms;
	// "" means tls-exporter on TLS 1.3, else tls-server-end-point.
	ChannelBinding string
	// Token is the token for the HT mechanisms (XEP-0484), which use it
	// instead of Password.
	Token string
	// SSDP, if set, is what the server advertised: a SCRAM client checks
	// the server's XEP-0474 downgrade-protection hash against it, when
	// the server sends one.
	SSDP *SSDP
}

// Client is the client side of one SASL exchange.
type Client interface {
	// Mechanism returns the mechanism name.
	Mechanism() string
	// Start returns the initial response, possibly empty.
	Start() (initial []byte, err error)
	// Next returns the response to a challenge. For SCRAM it is also
	// called with the server-final-message (the additional data of
	// success): it verifies the server signature and returns (nil, nil),
	// or an error on mismatch.
	Next(challenge []byte) (response []byte, err error)
}

// NewClient returns the client side of mechanism. Non-PLUS SCRAM
// mechanisms chosen this way send the "n" channel-binding flag (no
// downgrade signalling, since the offer is unknown); ClientSelect sends
// "y" when appropriate. PLAIN needs cfg.TLS.
func NewClient(mechanism string, cfg ClientConfig) (Client, error) {
	if h, plus, ok := parseSCRAMName(mechanism); ok {
		return newSCRAMClient(h, plus, &cfg)
	}
	if typ, ok := htBinding(mechanism); ok {
		return newHTClient(mechanism, typ, &cfg)
	}
	switch mechanism {
	case "PLAIN":
		return newPlainClient(&cfg)
	case "EXTERNAL":
		return &externalClient{authzid: []byte(cfg.AuthzID)}, nil
	}
	return nil, fmt.Errorf("sasl: unsupported mechanism %q", mechanism)
}

// ClientSelect picks the strongest offered mechanism the client supports:
// a -PLUS SCRAM when cfg.TLS is set and a channel binding is available,
// then SCRAM, then PLAIN (only with cfg.TLS), and EXTERNAL only when
// cfg.Username is empty. When it picks a SCRAM mechanism without -PLUS
// although it could bind the channel and the server offered no -PLUS
// mechanism, it sends the "y" flag so that a server that does support
// channel binding detects the downgrade (RFC 5802 §6). An explicit
// cfg.ChannelBinding that is unusable on cfg.TLS is an error rather than
// a reason to do without channel binding.
func ClientSelect(offered []string, cfg ClientConfig) (Client, error) {
	has := func(m string) bool { return slices.Contains(offered, m) }
	if cfg.Username == "" {
		if has("EXTERNAL") {
			return NewClient("EXTERNAL", cfg)
		}
		return nil, errors.New("sasl: no username and EXTERNAL not offered")
	}
	canBind := false
	if cfg.TLS != nil {
		if _, err := clientBindingType(&cfg); err == nil {
			canBind = true
		} else if cfg.ChannelBinding != "" {
			// An explicit type that does not work is an error, not a
			// reason to go without channel binding.
			return nil, err
		}
	}
	if canBind {
		for _, h := range hashes {
			if has(scramName(h, true)) {
				return NewClient(scramName(h, true), cfg)
			}
		}
	}
	anyPlus := slices.ContainsFunc(offered, func(m string) bool { return strings.HasSuffix(m, "-PLUS") })
	for _, h := range hashes {
		if has(scramName(h, false)) {
			c, err := newSCRAMClient(h, false, &cfg)
			if err != nil {
				return nil, err
			}
			if canBind && !anyPlus {
				c.flag = "y"
			}
			return c, nil
		}
	}
	if cfg.TLS != nil && has("PLAIN") {
		return NewClient("PLAIN", cfg)
	}
	return nil, fmt.Errorf("sasl: no usable mechanism among %q", offered)
}
