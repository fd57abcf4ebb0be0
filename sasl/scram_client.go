package sasl

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// scramClient is the client side of a SCRAM exchange (RFC 5802 §5).
type scramClient struct {
	hash     Hash
	plus     bool
	flag     string // gs2-cbind-flag: "n", "y" or "p=<type>"
	cbData   []byte
	username string // prepared, not escaped
	password string // prepared
	authzid  string
	ssdp     *SSDP // what the server advertised, for XEP-0474

	// nonce is the client nonce; tests set it before Start, otherwise it
	// is random.
	nonce string

	state           int
	gs2Header       string
	clientFirstBare string
	serverSig       []byte
}

func newSCRAMClient(h Hash, plus bool, cfg *ClientConfig) (*scramClient, error) {
	if cfg.Username == "" {
		return nil, errors.New("sasl: SCRAM needs a username")
	}
	user, err := prepareUsername(cfg.Username)
	if err != nil {
		return nil, err
	}
	pass, err := preparePassword(cfg.Password)
	if err != nil {
		return nil, err
	}
	c := &scramClient{hash: h, plus: plus, flag: "n", username: user, password: pass, authzid: cfg.AuthzID, ssdp: cfg.SSDP}
	if plus {
		typ, err := clientBindingType(cfg)
		if err != nil {
			return nil, err
		}
		data, err := clientBindingData(cfg.TLS, typ)
		if err != nil {
			return nil, err
		}
		c.flag = "p=" + typ
		c.cbData = data
	}
	return c, nil
}

// Mechanism returns the mechanism name.
func (c *scramClient) Mechanism() string { return scramName(c.hash, c.plus) }

// Start returns the client-first-message.
func (c *scramClient) Start() ([]byte, error) {
	if c.state != 0 {
		return nil, errors.New("sasl: exchange already started")
	}
	c.state = 1
	if c.nonce == "" {
		c.nonce = newNonce()
	}
	c.gs2Header = c.flag + ","
	if c.authzid != "" {
		c.gs2Header += "a=" + encodeSASLName(c.authzid)
	}
	c.gs2Header += ","
	c.clientFirstBare = "n=" + encodeSASLName(c.username) + ",r=" + c.nonce
	return []byte(c.gs2Header + c.clientFirstBare), nil
}

// Next answers the server-first-message with the client-final-message,
// then verifies the server-final-message and returns (nil, nil).
func (c *scramClient) Next(challenge []byte) ([]byte, error) {
	switch c.state {
	case 1:
		c.state = 3
		resp, err := c.final(challenge)
		if err != nil {
			return nil, err
		}
		c.state = 2
		return resp, nil
	case 2:
		c.state = 3
		return nil, c.verify(challenge)
	}
	return nil, errors.New("sasl: unexpected challenge")
}

// final computes the client-final-message from the server-first-message.
func (c *scramClient) final(msg []byte) ([]byte, error) {
	if !checkText(msg) {
		return nil, errors.New("sasl: server-first-message is too long or not UTF-8 text")
	}
	serverFirst := string(msg)
	attrs, err := parseAttributes(serverFirst)
	if err != nil {
		return nil, err
	}
	if attrs[0].key == 'm' {
		return nil, errors.New("sasl: server requires an unsupported extension")
	}
	if len(attrs) < 3 || attrs[0].key != 'r' || attrs[1].key != 's' || attrs[2].key != 'i' {
		return nil, errSyntax
	}
	nonce := attrs[0].val
	if len(nonce) <= len(c.nonce) || !strings.HasPrefix(nonce, c.nonce) || !printable(nonce) {
		return nil, errors.New("sasl: server nonce does not extend the client nonce")
	}
	salt, err := base64.StdEncoding.DecodeString(attrs[1].val)
	if err != nil || len(salt) == 0 {
		return nil, errors.New("sasl: bad salt from server")
	}
	iter, err := parseIterations(attrs[2].val)
	if err != nil {
		return nil, err
	}
	if err := c.checkSSDP(attrs[3:]); err != nil {
		return nil, err
	}

	sp, err := saltedPassword(c.hash, c.password, salt, iter)
	if err != nil {
		return nil, err
	}
	clientKey, storedKey, serverKey := deriveKeys(c.hash, sp)
	cb := make([]byte, 0, len(c.gs2Header)+len(c.cbData))
	cb = append(append(cb, c.gs2Header...), c.cbData...)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(cb) + ",r=" + nonce
	authMessage := c.clientFirstBare + "," + serverFirst + "," + withoutProof
	proof := hmacSum(c.hash, storedKey, authMessage)
	xorInto(proof, clientKey)
	c.serverSig = hmacSum(c.hash, serverKey, authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// parseIterations parses the iteration count and checks its bounds.
func parseIterations(s string) (int, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("sasl: bad iteration count from server")
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxClientIterations {
		return 0, errors.New("sasl: iteration count from server is too large")
	}
	if n < minClientIterations {
		return 0, fmt.Errorf("sasl: iteration count %d from server is below %d", n, minClientIterations)
	}
	return n, nil
}

// verify checks the server-final-message.
func (c *scramClient) verify(msg []byte) error {
	if !checkText(msg) {
		return errors.New("sasl: server-final-message is too long or not UTF-8 text")
	}
	attrs, err := parseAttributes(string(msg))
	if err != nil {
		return err
	}
	switch attrs[0].key {
	case 'e':
		return fmt.Errorf("sasl: server error %q", attrs[0].val)
	case 'v':
		sig, err := base64.StdEncoding.DecodeString(attrs[0].val)
		if err != nil || subtle.ConstantTimeCompare(sig, c.serverSig) != 1 {
			return errors.New("sasl: server signature mismatch")
		}
		return nil
	}
	return errSyntax
}

// checkSSDP compares the server's XEP-0474 hash, among the extensions of
// its server-first-message, with the hash of what it advertised. A server
// that sends none does not implement XEP-0474: nothing to check.
func (c *scramClient) checkSSDP(ext []attribute) error {
	if c.ssdp == nil {
		return nil
	}
	for _, a := range ext {
		if a.key == 'h' {
			if subtle.ConstantTimeCompare([]byte(a.val), []byte(c.ssdp.Hash(c.hash))) != 1 {
				return errors.New("sasl: the server advertised other mechanisms or channel bindings than it says (XEP-0474 downgrade protection)")
			}
			return nil
		}
	}
	return nil
}
