// Package jid implements XMPP addresses (Jabber Identifiers, JIDs) as
// defined in RFC 7622.
//
// A JID has the form [localpart@]domainpart[/resourcepart]. Parse and New
// prepare and validate every part:
//
//   - The localpart is enforced with the PRECIS UsernameCaseMapped profile
//     (RFC 8265), so it is width-mapped, lower-cased and NFC-normalised; the
//     characters " & ' / : < > @ are then rejected (RFC 7622 §3.3.1). As
//     RFC 8265 specifies, the Bidi Rule is applied only to localparts that
//     contain right-to-left characters (precis.UsernameCaseMapped applies it
//     to all non-ASCII strings and would reject, e.g., "1é").
//   - The domainpart loses one trailing '.', and is then either an IPv4
//     address in dotted-decimal form, an IPv6 address enclosed in brackets
//     (stored in the canonical RFC 5952 form, e.g. "[2001:db8::1]"), or an
//     internationalised domain name processed with IDNA2008/UTS #46 (lookup
//     mapping, non-transitional, Bidi rule, label validation). Its ASCII
//     characters are restricted to a-z, 0-9, '-', '.' and '_'; the '_' is a
//     deliberate leniency (RFC 7622 allows only LDH labels) because real
//     deployments use host names such as "chat_server".
//   - The resourcepart is enforced with the PRECIS OpaqueString profile.
//
// Each part must be 1 to 1023 octets long after preparation; in addition, a
// domain name must fit the DNS limits (at most 63 octets per label and 253
// octets in total, measured in its A-label form). As a guard against hostile
// input, a part longer than 4092 octets before preparation is rejected as too
// long without being prepared.
//
// Domain names are stored as U-labels ("bücher.example", not
// "xn--bcher-kva.example"): RFC 7622 §3.2.1 requires A-labels to be converted
// to U-labels when preparing a domainpart, so the internationalised form is
// the canonical form used by String and for comparison.
//
// Because every part is stored in its prepared (canonical) form, two JIDs are
// equal exactly when their string forms are equal. JID values may be compared
// with == and used as map keys; == and Equal always agree.
package jid

import (
	"errors"
	"fmt"
	"strings"
)

// maxPartLen is the maximum length in octets of each prepared part
// (RFC 7622 §3.1).
const maxPartLen = 1023

// Sentinel errors. Errors returned by this package are never these values
// themselves: they wrap them with context and can be tested with errors.Is.
// Every error about a part wraps the ErrInvalid* value naming that part
// (ErrInvalidLocal, ErrInvalidDomain or ErrInvalidResource) and, where it
// applies, ErrEmpty or the Err*TooLong value for that part as well.
var (
	// ErrEmpty reports a part that is empty although it is required: an
	// empty domainpart (including empty input), an empty localpart after
	// an '@', or an empty resourcepart after a '/'.
	ErrEmpty = errors.New("empty part")

	// ErrLocalTooLong reports a localpart longer than 1023 octets after
	// preparation.
	ErrLocalTooLong = errors.New("localpart too long")

	// ErrDomainTooLong reports a domainpart longer than 1023 octets after
	// preparation, or a domain name exceeding the DNS limits (a label longer
	// than 63 octets, or more than 253 octets in total, in A-label form).
	ErrDomainTooLong = errors.New("domainpart too long")

	// ErrResourceTooLong reports a resourcepart longer than 1023 octets
	// after preparation.
	ErrResourceTooLong = errors.New("resourcepart too long")

	// ErrInvalidLocal reports a localpart that cannot be prepared: a
	// character disallowed by the UsernameCaseMapped profile or by RFC 7622
	// §3.3.1, invalid UTF-8, or a part that is empty or too long.
	ErrInvalidLocal = errors.New("invalid localpart")

	// ErrInvalidDomain reports a domainpart that is not a valid IP literal
	// or internationalised domain name, or that is empty or too long.
	ErrInvalidDomain = errors.New("invalid domainpart")

	// ErrInvalidResource reports a resourcepart that cannot be prepared
	// with the OpaqueString profile, or that is empty or too long.
	ErrInvalidResource = errors.New("invalid resourcepart")
)

// JID is an XMPP address. It is an immutable value type; the zero value is
// the empty JID, which is not a valid address (IsZero reports true for it).
//
// A JID stores its canonical string form together with the offsets of the
// part boundaries, so the accessors, Bare, Domain and String do not allocate.
type JID struct {
	s    string // canonical form: [local@]domain[/resource]
	lend uint16 // length of the localpart; 0 if there is none
	dend uint16 // offset in s where the domainpart ends
}

// Parse parses and prepares the JID s.
//
// The first '/' starts the resourcepart, which may itself contain '@' and
// '/'; an '@' before that '/' ends the localpart. Each part is prepared as
// described in the package documentation. The returned JID may share memory
// with s.
func Parse(s string) (JID, error) {
	if j, ok := parseFast(s); ok {
		return j, nil
	}
	j, err := parse(s, true)
	if err != nil {
		return JID{}, fmt.Errorf("jid: parse %s: %w", quote(s), err)
	}
	return j, nil
}

// MustParse is like Parse but panics if s is not a valid JID. It is intended
// for tests and for initialising variables from constants.
func MustParse(s string) JID {
	j, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return j
}

// New builds a JID from its parts, preparing and validating each of them
// exactly as Parse does. An empty local or resource means that the JID has
// no localpart or no resourcepart; the domain is required.
func New(local, domain, resource string) (JID, error) {
	l, d, r, err := prepareParts(local, domain, resource, true)
	if err != nil {
		return JID{}, fmt.Errorf("jid: new (%s, %s, %s): %w", quote(local), quote(domain), quote(resource), err)
	}
	return build(l, d, r), nil
}

// Local returns the localpart, or "" if there is none.
func (j JID) Local() string {
	return j.s[:j.lend]
}

// dstart returns the offset in j.s where the domainpart begins.
func (j JID) dstart() int {
	if j.lend == 0 {
		return 0
	}
	return int(j.lend) + 1
}

// Domain returns the domain-only JID made of j's domainpart. It returns the
// zero JID if j is zero.
func (j JID) Domain() JID {
	d := j.s[j.dstart():j.dend]
	return JID{s: d, dend: uint16(len(d))}
}

// DomainString returns the domainpart in its prepared form.
func (j JID) DomainString() string {
	return j.s[j.dstart():j.dend]
}

// Resource returns the resourcepart, or "" if there is none.
func (j JID) Resource() string {
	if int(j.dend) >= len(j.s) {
		return ""
	}
	return j.s[j.dend+1:]
}

// Bare returns j without its resourcepart.
func (j JID) Bare() JID {
	return JID{s: j.s[:j.dend], lend: j.lend, dend: j.dend}
}

// WithResource returns a copy of j whose resourcepart is r, prepared as by
// Parse. An empty r yields the bare JID. It fails if j is the zero JID or if
// r is not a valid resourcepart.
func (j JID) WithResource(r string) (JID, error) {
	if j.IsZero() {
		return JID{}, fmt.Errorf("jid: with resource %s: zero JID: %w: %w", quote(r), ErrInvalidDomain, ErrEmpty)
	}
	if r == "" {
		return j.Bare(), nil
	}
	pr, err := prepareResource(r, true)
	if err != nil {
		return JID{}, fmt.Errorf("jid: with resource %s: %w", quote(r), err)
	}
	if pr == j.Resource() {
		return j, nil
	}
	return build(j.Local(), j.DomainString(), pr), nil
}

// IsBare reports whether j is a valid JID without a resourcepart. It
// reports false for the zero JID.
func (j JID) IsBare() bool {
	return j.s != "" && int(j.dend) == len(j.s)
}

// IsDomain reports whether j is a valid JID made of a domainpart only (no
// localpart and no resourcepart). It reports false for the zero JID.
func (j JID) IsDomain() bool {
	return j.lend == 0 && j.IsBare()
}

// IsZero reports whether j is the zero (empty) JID.
func (j JID) IsZero() bool {
	return j.s == ""
}

// Equal reports whether j and o are the same address. Since all parts are
// stored in prepared form, this is a comparison of the canonical strings.
func (j JID) Equal(o JID) bool {
	return j.s == o.s
}

// String returns the canonical string form of j, "[local@]domain[/resource]",
// or "" for the zero JID.
func (j JID) String() string {
	return j.s
}

// MarshalText implements encoding.TextMarshaler. It returns the canonical
// string form; the zero JID marshals to an empty text.
func (j JID) MarshalText() ([]byte, error) {
	return []byte(j.s), nil
}

// UnmarshalText implements encoding.TextUnmarshaler by parsing b with Parse.
// An empty text yields the zero JID, so that MarshalText and UnmarshalText
// round-trip every value, including the zero JID.
func (j *JID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*j = JID{}
		return nil
	}
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*j = p
	return nil
}

// parse is the general (slow) parser. With shortcuts set, parts that are
// already in prepared ASCII form skip PRECIS/IDNA processing; without it,
// every part goes through the full preparation (tests use this to check
// the shortcuts).
func parse(s string, shortcuts bool) (JID, error) {
	local, domain, resource, err := split(s)
	if err != nil {
		return JID{}, err
	}
	l, d, r, err := prepareParts(local, domain, resource, shortcuts)
	if err != nil {
		return JID{}, err
	}
	// Reuse the input as storage when preparation changed nothing.
	if l == local && d == domain && r == resource {
		return JID{s: s, lend: uint16(len(l)), dend: uint16(len(s) - len(r) - boolInt(r != ""))}, nil
	}
	return build(l, d, r), nil
}

// split separates s into its raw parts, rejecting empty parts whose
// delimiter is present.
func split(s string) (local, domain, resource string, err error) {
	bare := s
	hasSlash := false
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			bare, resource, hasSlash = s[:i], s[i+1:], true
			break
		}
	}
	domain = bare
	hasAt := false
	for i := 0; i < len(bare); i++ {
		if bare[i] == '@' {
			local, domain, hasAt = bare[:i], bare[i+1:], true
			break
		}
	}
	switch {
	case hasAt && local == "":
		return "", "", "", fmt.Errorf("%w: %w", ErrInvalidLocal, ErrEmpty)
	case domain == "":
		return "", "", "", fmt.Errorf("%w: %w", ErrInvalidDomain, ErrEmpty)
	case hasSlash && resource == "":
		return "", "", "", fmt.Errorf("%w: %w", ErrInvalidResource, ErrEmpty)
	}
	return local, domain, resource, nil
}

// prepareParts prepares the parts of a JID; empty local and resource mean
// the part is absent.
func prepareParts(local, domain, resource string, shortcuts bool) (l, d, r string, err error) {
	if local != "" {
		if l, err = prepareLocal(local, shortcuts); err != nil {
			return "", "", "", err
		}
	}
	if d, err = prepareDomain(domain, shortcuts); err != nil {
		return "", "", "", err
	}
	if resource != "" {
		if r, err = prepareResource(resource, shortcuts); err != nil {
			return "", "", "", err
		}
	}
	return l, d, r, nil
}

// build assembles a JID from prepared parts with a single allocation.
func build(l, d, r string) JID {
	n := len(d)
	if l != "" {
		n += len(l) + 1
	}
	if r != "" {
		n += len(r) + 1
	}
	var b strings.Builder
	b.Grow(n)
	if l != "" {
		b.WriteString(l)
		b.WriteByte('@')
	}
	b.WriteString(d)
	dend := b.Len()
	if r != "" {
		b.WriteByte('/')
		b.WriteString(r)
	}
	return JID{s: b.String(), lend: uint16(len(l)), dend: uint16(dend)}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// quote quotes s for an error message, truncating long input.
func quote(s string) string {
	const maxQuoted = 64
	if len(s) > maxQuoted {
		return fmt.Sprintf("%q...", s[:maxQuoted])
	}
	return fmt.Sprintf("%q", s)
}
