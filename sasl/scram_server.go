package sasl

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Server states.
const (
	stateStart     = iota // nothing received yet
	stateWaitFirst        // sent an empty challenge, waiting for the first message
	stateWaitFinal        // sent server-first-message, waiting for client-final-message
	stateDone             // finished, successfully or not
)

// scramServer is the server side of a SCRAM exchange (RFC 5802 §5).
type scramServer struct {
	cfg      ServerConfig
	hash     Hash
	plus     bool
	bindings serverBindings

	// nonce is the server's part of the nonce; tests set it before the
	// first message, otherwise it is random.
	nonce string

	state           int
	gs2Header       string // exactly as the client sent it
	cbData          []byte // channel-binding data for "p=", else nil
	clientFirstBare string
	serverFirst     string
	fullNonce       string
	cred            Credential
	unknown         bool   // the user does not exist: fail at the end
	user            string // prepared username, once known
	username        string // user, once authenticated
	authzid         string
}

func newSCRAMServer(h Hash, plus bool, cfg ServerConfig) (*scramServer, error) {
	if cfg.Lookup == nil {
		return nil, &Failure{Condition: InvalidMechanism, Text: "no credential lookup configured"}
	}
	s := &scramServer{cfg: cfg, hash: h, plus: plus, bindings: newServerBindings(&cfg)}
	if plus && len(s.bindings.types) == 0 {
		return nil, &Failure{Condition: InvalidMechanism, Text: scramName(h, true) + " needs TLS with a usable channel binding"}
	}
	return s, nil
}

// Mechanism returns the mechanism name.
func (s *scramServer) Mechanism() string { return scramName(s.hash, s.plus) }

// Username returns the authenticated (prepared) username, or "" before
// success.
func (s *scramServer) Username() string { return s.username }

// AuthzID returns the requested authorization identity, or "".
func (s *scramServer) AuthzID() string { return s.authzid }

// Next runs one step of the exchange.
func (s *scramServer) Next(ctx context.Context, response []byte) ([]byte, bool, error) {
	switch s.state {
	case stateStart, stateWaitFirst:
		if len(response) == 0 {
			if s.state == stateStart {
				// No initial response: ask for the client-first-message.
				s.state = stateWaitFirst
				return []byte{}, false, nil
			}
			s.state = stateDone
			return nil, false, fail(MalformedRequest, "empty client-first-message")
		}
		challenge, err := s.first(ctx, response)
		if err != nil {
			s.state = stateDone
			return nil, false, err
		}
		s.state = stateWaitFinal
		return challenge, false, nil
	case stateWaitFinal:
		s.state = stateDone
		v, err := s.final(response)
		if err != nil {
			return nil, false, err
		}
		return v, true, nil
	}
	return nil, false, fail(MalformedRequest, "exchange already finished")
}

// first handles the client-first-message and returns the
// server-first-message.
func (s *scramServer) first(ctx context.Context, msg []byte) ([]byte, error) {
	if !checkText(msg) {
		return nil, fail(MalformedRequest, "client-first-message is too long or not UTF-8 text")
	}
	m := string(msg)
	flag, rest, ok1 := strings.Cut(m, ",")
	authz, bare, ok2 := strings.Cut(rest, ",")
	if !ok1 || !ok2 {
		return nil, fail(MalformedRequest, "missing GS2 header")
	}
	s.gs2Header = m[:len(flag)+len(authz)+2]

	// Channel binding (RFC 5802 §6).
	switch {
	case flag == "n", flag == "y":
		if s.plus {
			// slixmpp 1.10 tries each -PLUS mechanism with "n" when its
			// Python exposes no binding: refuse, but as a negotiation
			// failure, so that the client may try its next mechanism.
			return nil, &Failure{Condition: MalformedRequest, Text: "-PLUS mechanism without channel binding", Err: ErrChannelBinding}
		}
		if flag == "y" && s.cfg.StrictChannelBinding && len(s.bindings.types) > 0 {
			// RFC 5802 §6: the client supports channel binding and thinks
			// we do not, yet we offered -PLUS: someone removed it from
			// the list. Clients that know only tls-unique (slixmpp 1.8)
			// send "y" over TLS 1.3 too, so this is off by default.
			return nil, &Failure{Condition: NotAuthorized, Text: "the client thinks the server does not support channel binding, but -PLUS was offered (downgrade?)", Err: ErrChannelBinding}
		}
	case strings.HasPrefix(flag, "p="):
		typ := flag[2:]
		if !validCBName(typ) {
			return nil, fail(MalformedRequest, "bad channel binding name")
		}
		if !s.plus {
			return nil, fail(MalformedRequest, "channel binding requested with a non-PLUS mechanism")
		}
		if !slices.Contains(s.bindings.types, typ) {
			return nil, &Failure{Condition: NotAuthorized, Text: "unsupported channel binding type " + typ + " (supported: " + strings.Join(s.bindings.types, ", ") + ")", Err: ErrChannelBinding}
		}
		data, err := s.bindings.data(s.cfg.TLS, typ)
		if err != nil {
			return nil, err
		}
		s.cbData = data
	default:
		return nil, fail(MalformedRequest, "bad channel binding flag")
	}

	if authz != "" {
		v, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return nil, fail(MalformedRequest, "bad GS2 header")
		}
		z, ok := decodeSASLName(v)
		if !ok {
			return nil, fail(InvalidAuthzID, "bad authzid encoding")
		}
		s.authzid = z
	}

	attrs, err := parseAttributes(bare)
	if err != nil {
		return nil, &Failure{Condition: MalformedRequest, Text: "bad client-first-message", Err: err}
	}
	if attrs[0].key == 'm' {
		// RFC 5802 §5.1: a server must fail on mandatory extensions it
		// does not understand, and there are none it understands.
		return nil, fail(MalformedRequest, "mandatory extension not supported")
	}
	if len(attrs) < 2 || attrs[0].key != 'n' || attrs[1].key != 'r' {
		return nil, fail(MalformedRequest, "bad client-first-message")
	}
	name, ok := decodeSASLName(attrs[0].val)
	if !ok {
		return nil, fail(MalformedRequest, "bad username encoding")
	}
	cnonce := attrs[1].val
	if !printable(cnonce) {
		return nil, fail(MalformedRequest, "bad nonce")
	}

	user, err := prepareUsername(name)
	if err != nil {
		// No such name can exist; go on so as not to tell.
		s.unknown = true
	} else {
		s.user = user
		cred, err := s.cfg.Lookup(ctx, user, s.hash)
		switch {
		case errors.Is(err, ErrUnknownUser):
			s.unknown = true
		case err != nil:
			return nil, fmt.Errorf("sasl: credential lookup: %w", err)
		case cred.Hash != s.hash || !cred.valid():
			return nil, fmt.Errorf("sasl: unusable %s credential for %q", s.hash, user)
		default:
			s.cred = cred
		}
	}
	if s.unknown {
		s.cred = fakeCredential(s.hash, name)
	}

	if s.nonce == "" {
		s.nonce = newNonce()
	}
	s.fullNonce = cnonce + s.nonce
	s.clientFirstBare = bare
	s.serverFirst = "r=" + s.fullNonce + ",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) + ",i=" + strconv.Itoa(s.cred.Iterations)
	if s.cfg.SSDP != nil {
		// XEP-0474: the advertised lists, signed by the SCRAM proofs.
		s.serverFirst += ",h=" + s.cfg.SSDP.Hash(s.hash)
	}
	return []byte(s.serverFirst), nil
}

// final handles the client-final-message and returns the
// server-final-message.
func (s *scramServer) final(msg []byte) ([]byte, error) {
	if !checkText(msg) {
		return nil, fail(MalformedRequest, "client-final-message is too long or not UTF-8 text")
	}
	m := string(msg)
	attrs, err := parseAttributes(m)
	if err != nil {
		return nil, &Failure{Condition: MalformedRequest, Text: "bad client-final-message", Err: err}
	}
	last := attrs[len(attrs)-1]
	if len(attrs) < 3 || attrs[0].key != 'c' || attrs[1].key != 'r' || last.key != 'p' {
		return nil, fail(MalformedRequest, "bad client-final-message")
	}
	withoutProof := m[:len(m)-len(",p=")-len(last.val)]
	cbind, err := base64.StdEncoding.DecodeString(attrs[0].val)
	if err != nil {
		return nil, fail(MalformedRequest, "bad channel binding encoding")
	}
	proof, err := base64.StdEncoding.DecodeString(last.val)
	if err != nil {
		return nil, fail(MalformedRequest, "bad proof encoding")
	}

	want := make([]byte, 0, len(s.gs2Header)+len(s.cbData))
	want = append(append(want, s.gs2Header...), s.cbData...)
	if subtle.ConstantTimeCompare(cbind, want) != 1 {
		return nil, &Failure{Condition: NotAuthorized, Text: "channel binding mismatch", Err: ErrChannelBinding}
	}
	if attrs[1].val != s.fullNonce {
		return nil, fail(NotAuthorized, "nonce mismatch")
	}

	// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage), and the
	// proof is right if H(ClientKey) = StoredKey (RFC 5802 §3).
	authMessage := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	clientKey := hmacSum(s.hash, s.cred.StoredKey, authMessage)
	if len(proof) != len(clientKey) {
		return nil, fail(NotAuthorized, "")
	}
	xorInto(clientKey, proof)
	ok := subtle.ConstantTimeCompare(hashSum(s.hash, clientKey), s.cred.StoredKey) == 1
	if !ok || s.unknown {
		return nil, fail(NotAuthorized, "")
	}
	s.username = s.user
	sig := hmacSum(s.hash, s.cred.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(sig)), nil
}
