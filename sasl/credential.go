package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/text/secure/precis"
)

// Hash names the hash function of a SCRAM mechanism as it appears in the
// mechanism name (RFC 5802 §4).
type Hash string

// The hash functions of the supported SCRAM mechanisms.
const (
	// SHA1 is SHA-1, for SCRAM-SHA-1 (RFC 5802).
	SHA1 Hash = "SHA-1"
	// SHA256 is SHA-256, for SCRAM-SHA-256 (RFC 7677).
	SHA256 Hash = "SHA-256"
	// SHA512 is SHA-512, for SCRAM-SHA-512.
	SHA512 Hash = "SHA-512"
)

const (
	// defaultIterations is the PBKDF2 iteration count NewCredentials uses
	// by default, the minimum RFC 7677 §4 recommends.
	defaultIterations = 4096
	// saltSize is the size of the random salts NewCredentials makes.
	saltSize = 16
)

// hashes lists the supported hashes, strongest first.
var hashes = [...]Hash{SHA512, SHA256, SHA1}

// newHash returns the constructor of h, or nil if h is not supported.
func (h Hash) newHash() func() hash.Hash {
	switch h {
	case SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return nil
}

// size returns the output size of h in bytes, or 0 if h is not supported.
func (h Hash) size() int {
	switch h {
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	case SHA512:
		return sha512.Size
	}
	return 0
}

// Credential is a SCRAM verifier for one hash function (RFC 5802 §3): what
// a server stores to check a password without storing the password.
// StoredKey is H(ClientKey) and ServerKey is HMAC(SaltedPassword,
// "Server Key").
type Credential struct {
	// Hash is the hash function the verifier is for.
	Hash Hash
	// Salt and Iterations are the PBKDF2 parameters.
	Salt       []byte
	Iterations int
	// StoredKey and ServerKey have the size of Hash's output.
	StoredKey []byte
	ServerKey []byte
}

// valid reports whether c is usable: a supported hash, a salt, a positive
// iteration count and keys of the hash's size.
func (c *Credential) valid() bool {
	n := c.Hash.size()
	return n > 0 && len(c.Salt) > 0 && c.Iterations > 0 && len(c.StoredKey) == n && len(c.ServerKey) == n
}

// preparePassword applies the PRECIS OpaqueString profile (RFC 8265 §4.2),
// which RFC 7677 and RFC 8265 recommend in place of SASLprep.
func preparePassword(password string) (string, error) {
	p, err := precis.OpaqueString.String(password)
	if err != nil {
		return "", fmt.Errorf("sasl: password: %w", err)
	}
	return p, nil
}

// prepareUsername applies the PRECIS UsernameCasePreserved profile
// (RFC 8265 §3.4), which normalizes width and Unicode composition without
// case mapping; callers map case themselves when they prepare JIDs.
func prepareUsername(username string) (string, error) {
	u, err := precis.UsernameCasePreserved.String(username)
	if err != nil {
		return "", fmt.Errorf("sasl: username: %w", err)
	}
	return u, nil
}

// saltedPassword computes Hi(password, salt, iterations) (RFC 5802 §2.2),
// which is PBKDF2 with HMAC-h; password must be prepared.
func saltedPassword(h Hash, password string, salt []byte, iterations int) ([]byte, error) {
	k, err := pbkdf2.Key(h.newHash(), password, salt, iterations, h.size())
	if err != nil {
		return nil, fmt.Errorf("sasl: pbkdf2: %w", err)
	}
	return k, nil
}

// hmacSum returns HMAC-h(key, msg).
func hmacSum(h Hash, key []byte, msg string) []byte {
	m := hmac.New(h.newHash(), key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// hashSum returns h(b).
func hashSum(h Hash, b []byte) []byte {
	d := h.newHash()()
	d.Write(b)
	return d.Sum(nil)
}

// deriveKeys computes ClientKey, StoredKey and ServerKey from a salted
// password (RFC 5802 §3).
func deriveKeys(h Hash, salted []byte) (clientKey, storedKey, serverKey []byte) {
	clientKey = hmacSum(h, salted, "Client Key")
	storedKey = hashSum(h, clientKey)
	serverKey = hmacSum(h, salted, "Server Key")
	return clientKey, storedKey, serverKey
}

// NewCredential derives the SCRAM verifier of password for hash h with
// salt and iterations. The password is prepared with the PRECIS
// OpaqueString profile; an empty password is an error.
func NewCredential(password string, h Hash, salt []byte, iterations int) (Credential, error) {
	if h.size() == 0 {
		return Credential{}, fmt.Errorf("sasl: unsupported hash %q", string(h))
	}
	if len(salt) == 0 {
		return Credential{}, fmt.Errorf("sasl: empty salt")
	}
	if iterations <= 0 {
		return Credential{}, fmt.Errorf("sasl: iteration count %d is not positive", iterations)
	}
	p, err := preparePassword(password)
	if err != nil {
		return Credential{}, err
	}
	sp, err := saltedPassword(h, p, salt, iterations)
	if err != nil {
		return Credential{}, err
	}
	_, stored, server := deriveKeys(h, sp)
	return Credential{Hash: h, Salt: bytes.Clone(salt), Iterations: iterations, StoredKey: stored, ServerKey: server}, nil
}

// NewCredentials makes one verifier per supported hash (SHA-512, SHA-256
// and SHA-1, in that order) with random 16-byte salts; iterations<=0
// means the default (4096).
func NewCredentials(password string, iterations int) ([]Credential, error) {
	if iterations <= 0 {
		iterations = defaultIterations
	}
	out := make([]Credential, 0, len(hashes))
	for _, h := range hashes {
		salt := make([]byte, saltSize)
		rand.Read(salt)
		c, err := NewCredential(password, h, salt, iterations)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// VerifyPassword checks a plaintext password against a verifier in
// constant time (used by PLAIN). It returns false for an unusable
// verifier or a password the OpaqueString profile rejects.
func VerifyPassword(c Credential, password string) bool {
	if !c.valid() {
		return false
	}
	p, err := preparePassword(password)
	if err != nil {
		return false
	}
	sp, err := saltedPassword(c.Hash, p, c.Salt, c.Iterations)
	if err != nil {
		return false
	}
	_, stored, server := deriveKeys(c.Hash, sp)
	return subtle.ConstantTimeCompare(stored, c.StoredKey)&subtle.ConstantTimeCompare(server, c.ServerKey) == 1
}

// processSecret keys the fake salts of unknown users, so that they are
// stable for the life of the process but unpredictable.
var processSecret = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
})

// fakeCredential returns a verifier for a user that does not exist: its
// salt is deterministic per user and hash so that repeated attempts look
// like those against a real account, and its keys are random so that no
// proof or password matches them.
func fakeCredential(h Hash, username string) Credential {
	m := hmac.New(sha256.New, processSecret())
	m.Write([]byte(h))
	m.Write([]byte{0})
	m.Write([]byte(username))
	salt := m.Sum(nil)[:saltSize]
	keys := make([]byte, 2*h.size())
	rand.Read(keys)
	return Credential{Hash: h, Salt: salt, Iterations: defaultIterations, StoredKey: keys[:h.size()], ServerKey: keys[h.size():]}
}
