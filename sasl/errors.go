package sasl

import "errors"

// ErrUnknownUser is wrapped by the error a CredentialLookup returns when
// the user does not exist or has no credential for the requested hash.
var ErrUnknownUser = errors.New("sasl: unknown user")

// ErrChannelBinding is wrapped by the Failure for a channel-binding
// negotiation that cannot succeed on this connection: a type the server
// cannot check, "n" or "y" on a -PLUS mechanism, a binding mismatch, or
// (with StrictChannelBinding) "y" while -PLUS is offered (RFC 5802 §6). No
// credential was tried, so a server need not count it as a failed login,
// and its Text may be shown to the client.
var ErrChannelBinding = errors.New("sasl: channel binding not negotiated")

// Condition is a SASL failure condition (RFC 6120 §6.5); its value is the
// name of the child element of <failure/>.
type Condition string

// The SASL failure conditions of RFC 6120 §6.5.
const (
	// Aborted means the client aborted the exchange.
	Aborted Condition = "aborted"
	// AccountDisabled means the account is temporarily disabled.
	AccountDisabled Condition = "account-disabled"
	// CredentialsExpired means the credentials have expired.
	CredentialsExpired Condition = "credentials-expired"
	// EncryptionRequired means the mechanism needs an encrypted stream.
	EncryptionRequired Condition = "encryption-required"
	// IncorrectEncoding means the data was not valid base64.
	IncorrectEncoding Condition = "incorrect-encoding"
	// InvalidAuthzID means the authorization identity is malformed or the
	// authenticated user may not act as it.
	InvalidAuthzID Condition = "invalid-authzid"
	// InvalidMechanism means the mechanism is not supported or offered.
	InvalidMechanism Condition = "invalid-mechanism"
	// MalformedRequest means the request violates the mechanism's syntax.
	MalformedRequest Condition = "malformed-request"
	// MechanismTooWeak means policy requires a stronger mechanism.
	MechanismTooWeak Condition = "mechanism-too-weak"
	// NotAuthorized means the credentials were wrong, without saying
	// whether the user exists.
	NotAuthorized Condition = "not-authorized"
	// TemporaryAuthFailure means an internal error on the server.
	TemporaryAuthFailure Condition = "temporary-auth-failure"
)

// Failure is a SASL failure that the server reports to the client with
// Condition. Text is a human-readable explanation, safe to log but not
// meant to tell the client more than Condition does; Err, if set, is an
// underlying cause.
type Failure struct {
	// Condition is what to report in <failure/>.
	Condition Condition
	// Text explains the failure; it may be empty.
	Text string
	// Err is the underlying cause, or nil.
	Err error
}

// Error describes the failure.
func (f *Failure) Error() string {
	s := "sasl: " + string(f.Condition)
	if f.Text != "" {
		s += ": " + f.Text
	}
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause, if any.
func (f *Failure) Unwrap() error { return f.Err }

// fail returns a *Failure with cond and text.
func fail(cond Condition, text string) *Failure {
	return &Failure{Condition: cond, Text: text}
}
