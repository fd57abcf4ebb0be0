package sasl

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The Hashed Token mechanisms (draft-schmaus-kitten-sasl-ht-09), which
// XEP-0484 (FAST) uses to log in with a token the server issued: one
// message each way, no challenge. The client sends
//
//	authcid NUL HMAC-SHA-256(token, "Initiator" || cb-data)
//
// and the server answers with HMAC-SHA-256(token, "Responder" || cb-data)
// as additional success data. cb-data is empty for -NONE, the
// tls-server-end-point binding for -ENDP and the tls-exporter one for
// -EXPR (RFC 5929, RFC 9266); -UNIQ (tls-unique) is not supported.
const (
	// HTSHA256None is HT-SHA-256-NONE: no channel binding.
	HTSHA256None = "HT-SHA-256-NONE"
	// HTSHA256Endp is HT-SHA-256-ENDP: tls-server-end-point.
	HTSHA256Endp = "HT-SHA-256-ENDP"
	// HTSHA256Expr is HT-SHA-256-EXPR: tls-exporter (TLS 1.3).
	HTSHA256Expr = "HT-SHA-256-EXPR"
)

// htMechanisms are the HT mechanisms, strongest first.
var htMechanisms = [...]string{HTSHA256Expr, HTSHA256Endp, HTSHA256None}

// htBinding returns the channel-binding type of an HT mechanism ("" for
// -NONE).
func htBinding(mechanism string) (typ string, ok bool) {
	switch mechanism {
	case HTSHA256None:
		return "", true
	case HTSHA256Endp:
		return cbEndPoint, true
	case HTSHA256Expr:
		return cbExporter, true
	}
	return "", false
}

// IsTokenMechanism reports whether mechanism is one of the HT mechanisms
// this package implements.
func IsTokenMechanism(mechanism string) bool {
	_, ok := htBinding(mechanism)
	return ok
}

// TokenLookup returns the keys (see TokenKey) of the tokens username may
// authenticate with using mechanism, or none. username is prepared as for
// CredentialLookup. An error is an internal failure.
type TokenLookup func(ctx context.Context, username, mechanism string) ([][]byte, error)

// TokenServer is the server side of an HT exchange: a Server that also
// says which of the keys the TokenLookup returned the client proved.
type TokenServer interface {
	Server
	// Token returns the index of the matching key after success, or -1.
	Token() int
}

// tokenBytes is the number of random bytes in a token from NewToken: its
// base64url text is 80 bytes, more than HMAC-SHA-256's 64-byte block, so
// that HMAC keys itself with SHA-256 of the token (RFC 2104 §2) and
// TokenKey is all a server needs to keep.
const tokenBytes = 60

// hmacBlock is SHA-256's block size: HMAC hashes longer keys first.
const hmacBlock = 64

// NewToken returns a new random token for the HT mechanisms (480 bits, 80
// base64url characters).
func NewToken() string {
	var b [tokenBytes]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// TokenKey returns the HMAC-SHA-256 key that the HT-SHA-256 mechanisms
// derive from token: SHA-256 of it when it is longer than 64 bytes (as
// NewToken's are), else the token itself. A server stores TokenKey of the
// tokens it issues rather than the tokens. Like any HT verifier the key
// is enough to compute a proof: the storage that holds it is as sensitive
// as one that holds sessions.
func TokenKey(token string) []byte {
	if len(token) > hmacBlock {
		sum := sha256.Sum256([]byte(token))
		return sum[:]
	}
	return []byte(token)
}

// TokenMechanisms lists the HT mechanisms to offer for XEP-0484 on a
// connection with cfg, strongest first: -EXPR on TLS 1.3, -ENDP when the
// server's certificate is known, and -NONE; none without cfg.Tokens or
// without an encrypted connection (a token is replayable by anyone who
// sees it go by).
func TokenMechanisms(cfg ServerConfig) []string {
	if cfg.Tokens == nil || (cfg.TLS == nil && !cfg.Encrypted) {
		return nil
	}
	b := newServerBindings(&cfg)
	var out []string
	for _, m := range htMechanisms {
		if typ, _ := htBinding(m); typ == "" || slices.Contains(b.types, typ) {
			out = append(out, m)
		}
	}
	return out
}

// SelectTokenMechanism returns the strongest of the offered HT mechanisms
// that can be used on state (nil without TLS), or "" if none can.
func SelectTokenMechanism(offered []string, state *tls.ConnectionState) string {
	for _, m := range htMechanisms {
		if !slices.Contains(offered, m) {
			continue
		}
		typ, _ := htBinding(m)
		if typ == "" {
			return m
		}
		if _, err := clientBindingType(&ClientConfig{TLS: state, ChannelBinding: typ}); err == nil {
			return m
		}
	}
	return ""
}

// htServer is the server side of an HT exchange.
type htServer struct {
	cfg      ServerConfig
	mech     string
	cbData   []byte
	done     bool
	username string
	token    int
}

func newHTServer(mech, cbType string, cfg ServerConfig) (*htServer, error) {
	if cfg.Tokens == nil {
		return nil, &Failure{Condition: InvalidMechanism, Text: "no token lookup configured"}
	}
	if cfg.TLS == nil && !cfg.Encrypted {
		return nil, &Failure{Condition: EncryptionRequired, Text: mech + " needs TLS"}
	}
	s := &htServer{cfg: cfg, mech: mech, token: -1}
	if cbType != "" {
		b := newServerBindings(&cfg)
		if !slices.Contains(b.types, cbType) {
			return nil, &Failure{Condition: InvalidMechanism, Text: mech + " needs the " + cbType + " channel binding"}
		}
		data, err := b.data(cfg.TLS, cbType)
		if err != nil {
			return nil, err
		}
		s.cbData = data
	}
	return s, nil
}

// Mechanism returns the mechanism name.
func (s *htServer) Mechanism() string { return s.mech }

// Username returns the authenticated username, or "" before success.
func (s *htServer) Username() string { return s.username }

// AuthzID returns "": the HT mechanisms carry no authorization identity.
func (s *htServer) AuthzID() string { return "" }

// Token returns the index of the key the client proved, or -1.
func (s *htServer) Token() int { return s.token }

// Next checks the client's only message. A proof that matches no token
// fails with CredentialsExpired, so that the client falls back to its
// password rather than report a wrong one (XEP-0484 §5.2).
func (s *htServer) Next(ctx context.Context, response []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, fail(MalformedRequest, "exchange already finished")
	}
	s.done = true
	user, proof, err := parseHTInitial(response)
	if err != nil {
		return nil, false, err
	}
	prepared, err := prepareUsername(user)
	if err != nil {
		return nil, false, fail(CredentialsExpired, "")
	}
	keys, err := s.cfg.Tokens(ctx, prepared, s.mech)
	if err != nil {
		return nil, false, fmt.Errorf("sasl: token lookup: %w", err)
	}
	match := -1
	for i, k := range keys {
		if subtle.ConstantTimeCompare(htSum(k, "Initiator", s.cbData), proof) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return nil, false, fail(CredentialsExpired, "no valid token")
	}
	s.username, s.token = prepared, match
	return htSum(keys[match], "Responder", s.cbData), true, nil
}

// parseHTInitial splits the initial response "authcid NUL proof".
func parseHTInitial(msg []byte) (user string, proof []byte, err error) {
	if len(msg) > maxMessage {
		return "", nil, fail(MalformedRequest, "initial response too long")
	}
	i := bytes.IndexByte(msg, 0)
	if i <= 0 {
		return "", nil, fail(MalformedRequest, "want authcid NUL proof")
	}
	if !checkText(msg[:i]) {
		return "", nil, fail(MalformedRequest, "authcid is not UTF-8 text")
	}
	if len(msg)-i-1 != sha256.Size {
		return "", nil, fail(MalformedRequest, "proof is not a SHA-256 HMAC")
	}
	return string(msg[:i]), msg[i+1:], nil
}

// htSum returns HMAC-SHA-256(key, label || cb).
func htSum(key []byte, label string, cb []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write(cb)
	return m.Sum(nil)
}

// htClient is the client side of an HT exchange.
type htClient struct {
	mech     string
	username string
	key      []byte
	cbData   []byte
	state    int
}

func newHTClient(mech, cbType string, cfg *ClientConfig) (*htClient, error) {
	if cfg.Username == "" || cfg.Token == "" {
		return nil, errors.New("sasl: " + mech + " needs a username and a token")
	}
	if strings.IndexByte(cfg.Username, 0) >= 0 {
		return nil, errors.New("sasl: username with NUL")
	}
	c := &htClient{mech: mech, username: cfg.Username, key: TokenKey(cfg.Token)}
	if cbType != "" {
		typ, err := clientBindingType(&ClientConfig{TLS: cfg.TLS, ChannelBinding: cbType})
		if err != nil {
			return nil, err
		}
		if c.cbData, err = clientBindingData(cfg.TLS, typ); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Mechanism returns the mechanism name.
func (c *htClient) Mechanism() string { return c.mech }

// Start returns the initial response.
func (c *htClient) Start() ([]byte, error) {
	if c.state != 0 {
		return nil, errors.New("sasl: exchange already started")
	}
	c.state = 1
	out := append([]byte(c.username), 0)
	return append(out, htSum(c.key, "Initiator", c.cbData)...), nil
}

// Next verifies the server's answer (the additional data of success).
func (c *htClient) Next(challenge []byte) ([]byte, error) {
	if c.state != 1 {
		return nil, errors.New("sasl: unexpected challenge")
	}
	c.state = 2
	if subtle.ConstantTimeCompare(challenge, htSum(c.key, "Responder", c.cbData)) != 1 {
		return nil, errors.New("sasl: server did not prove it knows the token")
	}
	return nil, nil
}
