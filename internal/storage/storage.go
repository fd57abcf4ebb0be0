// Package storage defines what the server keeps on disk, as one small
// interface per aggregate, and the errors every backend returns.
//
// Backends live in sub-packages (sqlite; postgres later) and must pass the
// conformance tests in storagetest. Every method takes a context first and
// returns an error wrapping ctx.Err() once the context is done; a method that
// writes either commits all of its change or none of it.
//
// Addresses are passed as their parts: local is the localpart and domain the
// domainpart of a bare JID, both already in canonical form (RFC 7622
// enforcement and case mapping are the caller's job). Backends compare them
// byte for byte, so "Alice" and "alice" are different accounts.
package storage

import (
	"context"
	"errors"
	"fmt"
)

// Errors returned by backends, wrapped with context; test them with errors.Is.
var (
	// ErrNotFound means the account (or other item) does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrExists means an account with that address already exists.
	ErrExists = errors.New("storage: already exists")
	// ErrInvalid means an argument cannot be stored, such as an empty
	// localpart or two credentials for one hash; nothing was written.
	ErrInvalid = errors.New("storage: invalid argument")
)

// Credential is a SCRAM verifier for one hash function (RFC 5802 §3,
// RFC 7677): what the server needs to check a password without storing it.
type Credential struct {
	// Hash names the hash function as SCRAM mechanisms do: "SHA-1",
	// "SHA-256" or "SHA-512".
	Hash       string
	Salt       []byte
	Iterations int
	// StoredKey is H(ClientKey) and ServerKey is HMAC(SaltedPassword, "Server Key").
	StoredKey []byte
	ServerKey []byte
}

// NewAccount is one account to create with Accounts.CreateAccounts.
type NewAccount struct {
	Local, Domain string
	Creds         []Credential
}

// Accounts stores user accounts and their SCRAM credentials, never passwords.
type Accounts interface {
	// CreateAccount creates the account local@domain with creds, which may
	// be empty (the account then exists but cannot authenticate). It
	// returns ErrExists if the account exists.
	CreateAccount(ctx context.Context, local, domain string, creds []Credential) error

	// CreateAccounts creates many accounts in one transaction, for imports.
	// Accounts that already exist, or appear earlier in accounts, are
	// skipped and left as they are; existed holds their indexes in
	// accounts, in ascending order. On error nothing is created. If any
	// entry is invalid, CreateAccounts returns ErrInvalid before writing.
	CreateAccounts(ctx context.Context, accounts []NewAccount) (existed []int, err error)

	// SetCredentials replaces all the credentials of an account with
	// creds and, in the same transaction, deletes its FAST tokens
	// (FASTTokens): a password change logs every client out. It returns
	// ErrNotFound if there is no such account.
	SetCredentials(ctx context.Context, local, domain string, creds []Credential) error

	// DeleteAccount deletes an account and everything stored for it. It
	// returns ErrNotFound if there is no such account.
	DeleteAccount(ctx context.Context, local, domain string) error

	// Credential returns the account's credential for hash. It returns
	// ErrNotFound if there is no such account or it has no credential
	// for hash.
	Credential(ctx context.Context, local, domain, hash string) (Credential, error)

	// AccountExists reports whether the account exists.
	AccountExists(ctx context.Context, local, domain string) (bool, error)

	// ListAccounts returns the localparts of the accounts in domain,
	// sorted by byte order. With domain "" it returns every account as
	// "local@domain", sorted by domain and then by localpart.
	ListAccounts(ctx context.Context, domain string) ([]string, error)
}

// Store is everything the server stores. Its methods are safe for
// concurrent use.
type Store interface {
	Accounts
	Rosters
	Subscriptions
	Offline
	XMLStore
	Blocklists
	LastActivity
	Uploads
	Archive
	PushRegistrations
	PubSub
	Rooms
	RoomArchive
	FASTTokens
	// Close releases the store. No method may be called after Close.
	Close() error
}

// CheckAccount returns an error wrapping ErrInvalid if an account cannot be
// stored: an empty localpart or domain, a credential with an empty hash
// name, salt or key, or a non-positive iteration count, or two credentials
// for the same hash. Backends call it before writing.
func CheckAccount(local, domain string, creds []Credential) error {
	if local == "" || domain == "" {
		return fmt.Errorf("%w: empty localpart or domain", ErrInvalid)
	}
	return CheckCredentials(creds)
}

// CheckCredentials checks creds as CheckAccount does.
func CheckCredentials(creds []Credential) error {
	for i, c := range creds {
		switch {
		case c.Hash == "":
			return fmt.Errorf("%w: credential without a hash name", ErrInvalid)
		case len(c.Salt) == 0 || len(c.StoredKey) == 0 || len(c.ServerKey) == 0:
			return fmt.Errorf("%w: %s credential without a salt or key", ErrInvalid, c.Hash)
		case c.Iterations <= 0:
			return fmt.Errorf("%w: %s credential with %d iterations", ErrInvalid, c.Hash, c.Iterations)
		}
		for _, prev := range creds[:i] {
			if prev.Hash == c.Hash {
				return fmt.Errorf("%w: two %s credentials", ErrInvalid, c.Hash)
			}
		}
	}
	return nil
}
