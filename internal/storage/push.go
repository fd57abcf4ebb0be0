package storage

import (
	"context"
	"time"
)

// PushRegistration is one XEP-0357 push registration of an account: the
// app server that wakes one of the user's devices, the node there that
// names the device, and the publish-options the client gave.
type PushRegistration struct {
	// Service is the app server's JID (XEP-0357 §5: the 'jid' of
	// <enable/>).
	Service string
	// Node is the app server's node for the device ('node' of <enable/>).
	Node string
	// Options is the publish-options data form (XEP-0004 <x/>, type
	// submit) serialised as XML, or nil when the client gave none; it is
	// sent with every notification.
	Options []byte
	// Created is when the registration was last enabled; kept to the
	// millisecond.
	Created time.Time
}

// PushRegistrations stores XEP-0357 registrations, per account. They go
// with the account when it is deleted.
type PushRegistrations interface {
	// PutPushRegistration records reg for local@domain, replacing one of
	// the same Service and Node. When the account then has more than max
	// registrations (max > 0), the oldest are removed and returned. The
	// account must exist (ErrNotFound); an empty Service or Node is
	// ErrInvalid.
	PutPushRegistration(ctx context.Context, local, domain string, reg PushRegistration, max int) (removed []PushRegistration, err error)
	// DeletePushRegistrations removes the account's registrations with
	// Service service and, unless node is "", Node node (XEP-0357 §6),
	// and reports how many there were. No account is not an error.
	DeletePushRegistrations(ctx context.Context, local, domain, service, node string) (int, error)
	// PushRegistrations returns the account's registrations, oldest
	// first (none for an unknown account).
	PushRegistrations(ctx context.Context, local, domain string) ([]PushRegistration, error)
}
