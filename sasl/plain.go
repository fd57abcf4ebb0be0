package sasl

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// plainServer is the server side of PLAIN (RFC 4616).
type plainServer struct {
	cfg      ServerConfig
	state    int
	username string
	authzid  string
}

// Mechanism returns "PLAIN".
func (s *plainServer) Mechanism() string { return "PLAIN" }

// Username returns the authenticated (prepared) authcid, or "" before
// success.
func (s *plainServer) Username() string { return s.username }

// AuthzID returns the requested authorization identity, or "".
func (s *plainServer) AuthzID() string { return s.authzid }

// Next checks the message authzid NUL authcid NUL passwd.
func (s *plainServer) Next(ctx context.Context, response []byte) ([]byte, bool, error) {
	switch s.state {
	case stateStart, stateWaitFirst:
		if len(response) == 0 {
			if s.state == stateStart {
				s.state = stateWaitFirst
				return []byte{}, false, nil
			}
			s.state = stateDone
			return nil, false, fail(MalformedRequest, "empty PLAIN message")
		}
	default:
		return nil, false, fail(MalformedRequest, "exchange already finished")
	}
	s.state = stateDone
	if !checkUTF8(response) {
		return nil, false, fail(MalformedRequest, "PLAIN message is too long or not UTF-8")
	}
	authz, rest, ok1 := strings.Cut(string(response), "\x00")
	authc, pass, ok2 := strings.Cut(rest, "\x00")
	if !ok1 || !ok2 || strings.IndexByte(pass, 0) >= 0 {
		return nil, false, fail(MalformedRequest, "PLAIN message needs exactly two NULs")
	}
	if authc == "" {
		return nil, false, fail(MalformedRequest, "empty authcid")
	}
	if pass == "" {
		return nil, false, fail(NotAuthorized, "")
	}
	user, err := prepareUsername(authc)
	found := false
	var cred Credential
	if err == nil {
		cred, found, err = s.lookup(ctx, user)
		if err != nil {
			return nil, false, err
		}
	}
	if !found {
		// Spend the same work as for a real account.
		cred = fakeCredential(SHA256, authc)
	}
	if !VerifyPassword(cred, pass) || !found {
		return nil, false, fail(NotAuthorized, "")
	}
	s.username = user
	s.authzid = authz
	return nil, true, nil
}

// lookup returns the user's SHA-256 credential, or else its SHA-512 or
// SHA-1 one.
func (s *plainServer) lookup(ctx context.Context, user string) (Credential, bool, error) {
	for _, h := range [...]Hash{SHA256, SHA512, SHA1} {
		cred, err := s.cfg.Lookup(ctx, user, h)
		switch {
		case errors.Is(err, ErrUnknownUser):
			continue
		case err != nil:
			return Credential{}, false, fmt.Errorf("sasl: credential lookup: %w", err)
		case cred.Hash != h || !cred.valid():
			return Credential{}, false, fmt.Errorf("sasl: unusable %s credential for %q", h, user)
		}
		return cred, true, nil
	}
	return Credential{}, false, nil
}

// plainClient is the client side of PLAIN (RFC 4616).
type plainClient struct {
	msg   []byte
	state int
}

func newPlainClient(cfg *ClientConfig) (*plainClient, error) {
	if cfg.Username == "" {
		return nil, errors.New("sasl: PLAIN needs a username")
	}
	if cfg.TLS == nil {
		return nil, errors.New("sasl: PLAIN needs TLS")
	}
	user, err := prepareUsername(cfg.Username)
	if err != nil {
		return nil, err
	}
	pass, err := preparePassword(cfg.Password)
	if err != nil {
		return nil, err
	}
	if strings.IndexByte(cfg.AuthzID, 0) >= 0 {
		return nil, errors.New("sasl: authzid contains NUL")
	}
	return &plainClient{msg: []byte(cfg.AuthzID + "\x00" + user + "\x00" + pass)}, nil
}

// Mechanism returns "PLAIN".
func (c *plainClient) Mechanism() string { return "PLAIN" }

// Start returns the PLAIN message.
func (c *plainClient) Start() ([]byte, error) {
	if c.state != 0 {
		return nil, errors.New("sasl: exchange already started")
	}
	c.state = 1
	return c.msg, nil
}

// Next sends the message again if the server asks for it with an empty
// challenge (it did not receive the initial response); PLAIN has no
// other challenges.
func (c *plainClient) Next(challenge []byte) ([]byte, error) {
	if c.state != 1 || len(challenge) != 0 {
		return nil, errors.New("sasl: unexpected PLAIN challenge")
	}
	c.state = 2
	return c.msg, nil
}
