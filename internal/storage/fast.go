package storage

import (
	"context"
	"fmt"
	"time"
)

// FASTToken is one XEP-0484 (FAST) token of an account: what the server
// issued to one client (its XEP-0388 user-agent id) for one HT mechanism.
// The token itself is never stored: Key is its HMAC key, SHA-256 of the
// token (sasl.TokenKey), which checks a proof.
type FASTToken struct {
	// ClientID is the SASL2 <user-agent id> the token was issued to, ""
	// for a client that sent none.
	ClientID string
	// Key is sasl.TokenKey of the token (32 bytes).
	Key []byte
	// Mechanism is the HT mechanism the token is bound to
	// (XEP-0484 §4.4), such as "HT-SHA-256-NONE".
	Mechanism string
	// Created and Expires bound the token's validity; kept to the
	// millisecond.
	Created, Expires time.Time
}

// FASTTokens stores XEP-0484 tokens per account and client. They go with
// the account when it is deleted, and SetCredentials (a password change)
// deletes them all in the same transaction.
type FASTTokens interface {
	// PutFASTToken stores tok for local@domain and removes the client's
	// other tokens but the one whose Key is keep (nil keeps none): a
	// client holds at most the token it authenticated with and the new
	// one (XEP-0484 §6, two slots). The account's expired tokens go too,
	// and when it then has more than max tokens (max > 0) the ones
	// created first are removed. The account must exist (ErrNotFound);
	// an empty Key or Mechanism is ErrInvalid.
	PutFASTToken(ctx context.Context, local, domain string, tok FASTToken, keep []byte, max int) error
	// FASTTokens returns the client's tokens, the one expiring last
	// first, expired ones included (none for an unknown account).
	FASTTokens(ctx context.Context, local, domain, clientID string) ([]FASTToken, error)
	// UseFASTToken records that the client authenticated with the token
	// whose Key is key: its tokens that expire before that one are
	// removed (XEP-0484 §4.5), and with invalidate that one too. It
	// reports whether the token was still stored: false when another
	// request removed it meanwhile, and the authentication must fail.
	UseFASTToken(ctx context.Context, local, domain, clientID string, key []byte, invalidate bool) (bool, error)
	// DeleteFASTTokens removes every token of the account (an
	// administrator's "log out everywhere") and reports how many there
	// were. An unknown account has none.
	DeleteFASTTokens(ctx context.Context, local, domain string) (int, error)
}

// CheckFASTToken returns an error wrapping ErrInvalid if tok cannot be
// stored. Backends call it before writing.
func CheckFASTToken(tok FASTToken) error {
	if len(tok.Key) == 0 || tok.Mechanism == "" {
		return fmt.Errorf("%w: FAST token without a key or mechanism", ErrInvalid)
	}
	return nil
}
