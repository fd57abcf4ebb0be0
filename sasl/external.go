package sasl

import (
	"context"
	"errors"
)

// externalServer is the server side of EXTERNAL (RFC 4422 Appendix A): the
// identity comes from outside SASL, ServerConfig.ExternalIdentity.
type externalServer struct {
	identity string
	done     bool // Next was called
	ok       bool // and succeeded
	authzid  string
}

// Mechanism returns "EXTERNAL".
func (s *externalServer) Mechanism() string { return "EXTERNAL" }

// Username returns the external identity once authenticated.
func (s *externalServer) Username() string {
	if !s.ok {
		return ""
	}
	return s.identity
}

// AuthzID returns the requested authorization identity, or "".
func (s *externalServer) AuthzID() string { return s.authzid }

// Next accepts an empty response (authenticate as the external identity)
// or an authorization identity, which must equal the external identity.
func (s *externalServer) Next(_ context.Context, response []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, fail(MalformedRequest, "exchange already finished")
	}
	s.done = true
	if len(response) > 0 {
		if !checkUTF8(response) {
			return nil, false, fail(MalformedRequest, "authzid is too long or not UTF-8")
		}
		if string(response) != s.identity {
			return nil, false, fail(InvalidAuthzID, "")
		}
		s.authzid = string(response)
	}
	s.ok = true
	return nil, true, nil
}

// externalClient is the client side of EXTERNAL.
type externalClient struct {
	authzid []byte
	state   int
}

// Mechanism returns "EXTERNAL".
func (c *externalClient) Mechanism() string { return "EXTERNAL" }

// Start returns the authorization identity, possibly empty.
func (c *externalClient) Start() ([]byte, error) {
	if c.state != 0 {
		return nil, errors.New("sasl: exchange already started")
	}
	c.state = 1
	return c.authzid, nil
}

// Next answers an empty challenge with the authorization identity.
func (c *externalClient) Next(challenge []byte) ([]byte, error) {
	if c.state != 1 || len(challenge) != 0 {
		return nil, errors.New("sasl: unexpected EXTERNAL challenge")
	}
	c.state = 2
	return c.authzid, nil
}
