package jid

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/bidirule"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
)

const (
	// maxDNSLen is the maximum length of a domain name (without the root
	// label's dot) and maxLabelLen that of a label, both in A-label form.
	maxDNSLen   = 253
	maxLabelLen = 63

	// maxRawLen bounds the length of a part before preparation. Preparation
	// shrinks a part by at most a factor of three (width mapping, space
	// mapping, NFC composition) or four (UTS #46 compatibility mapping of
	// domain names), so no part that could be valid is rejected, except one
	// padded with characters that IDNA mapping deletes. It keeps hostile
	// input from being run through PRECIS/IDNA at all.
	maxRawLen = 4 * maxPartLen

	// maxFastLen is the longest input the fast path accepts: a full JID
	// with maximal localpart and resourcepart and an ASCII domain name.
	maxFastLen = maxPartLen + 1 + maxDNSLen + 1 + maxPartLen
)

// domainProfile maps and validates domain names (IDNA2008 with the UTS #46
// lookup mapping). DNS length limits are not enforced by the profile but by
// checkDNS, so that length violations can be reported as ErrDomainTooLong.
// StrictDomainName is off so that '_' is accepted; every other ASCII
// character outside LDH is rejected by checkDNS.
var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.VerifyDNSLength(false),
	idna.StrictDomainName(false),
)

// localProfile is the PRECIS UsernameCaseMapped profile (RFC 8265 §3.3)
// without its directionality rule, which prepareLocal applies as RFC 8265
// specifies: only to strings that contain right-to-left code points.
// precis.UsernameCaseMapped applies the Bidi Rule to every non-ASCII string
// and so rejects valid usernames such as "1é" or "_jörg".
var localProfile = precis.NewIdentifier(
	precis.FoldWidth,
	precis.LowerCase(),
	precis.Norm(norm.NFC),
)

// Character classes of ASCII bytes for the fast paths. A byte has a class
// bit if it is kept unchanged by the preparation of that part.
const (
	cLocal    = 1 << iota // localpart: UsernameCaseMapped + RFC 7622 §3.3.1
	cDomain               // domain label (the '.' separator is handled apart)
	cResource             // resourcepart: OpaqueString
)

var class = func() (t [256]uint8) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] |= cResource
	}
	for c := 0x21; c <= 0x7e; c++ {
		t[c] |= cLocal
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] &^= cLocal // case-mapped by UsernameCaseMapped
	}
	for _, c := range []byte(`"&'/:<>@`) {
		t[c] &^= cLocal // forbidden by RFC 7622 §3.3.1
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cDomain
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDomain
	}
	t['-'] |= cDomain
	t['_'] |= cDomain
	return t
}()

// parseFast parses s in a single scan if it is made only of ASCII that
// preparation would leave unchanged. It never reports an error: anything
// unusual (including every invalid input) makes it return false, and the
// caller falls back to the full parser. On success the JID uses s as its
// storage, so no allocation happens.
func parseFast(s string) (JID, bool) {
	n := len(s)
	if n == 0 || n > maxFastLen {
		return JID{}, false
	}
	at := -1          // index of the '@' ending the localpart
	acc := uint8(255) // AND of the classes of the current segment's bytes
	labelStart := 0   // start of the current domain label
	labelsOK := true  // all labels of the current segment so far are fine
	i := 0
scan:
	for ; i < n; i++ {
		switch c := s[i]; c {
		case '/':
			break scan
		case '@':
			if at >= 0 || i == 0 || i > maxPartLen || acc&cLocal == 0 {
				return JID{}, false
			}
			at, acc, labelStart, labelsOK = i, 255, i+1, true
		case '.':
			labelsOK = labelsOK && labelOK(s[labelStart:i])
			labelStart = i + 1
		default:
			acc &= class[c]
		}
	}
	dstart := at + 1
	if acc&cDomain == 0 || !labelsOK || !labelOK(s[labelStart:i]) || i-dstart > maxDNSLen {
		return JID{}, false
	}
	if i < n {
		r := s[i+1:]
		if len(r) == 0 || len(r) > maxPartLen {
			return JID{}, false
		}
		for k := 0; k < len(r); k++ {
			if class[r[k]]&cResource == 0 {
				return JID{}, false
			}
		}
	}
	return JID{s: s, lend: uint16(max(at, 0)), dend: uint16(i)}, true
}

// labelOK reports whether an ASCII label made of cDomain bytes is a valid
// LDH (or underscore) label that IDNA processing leaves unchanged. Labels
// with "--" in the third and fourth positions (such as A-labels) are left
// to the full parser.
func labelOK(l string) bool {
	n := len(l)
	return n > 0 && n <= maxLabelLen && l[0] != '-' && l[n-1] != '-' &&
		!(n >= 4 && l[2] == '-' && l[3] == '-')
}

// asciiLocalOK reports whether s is a localpart already in prepared form.
func asciiLocalOK(s string) bool {
	if len(s) == 0 || len(s) > maxPartLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if class[s[i]]&cLocal == 0 {
			return false
		}
	}
	return true
}

// asciiDomainOK reports whether s (without trailing dot) is an ASCII domain
// name already in prepared form.
func asciiDomainOK(s string) bool {
	if len(s) == 0 || len(s) > maxDNSLen {
		return false
	}
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if !labelOK(s[start:i]) {
				return false
			}
			start = i + 1
		} else if class[c]&cDomain == 0 {
			return false
		}
	}
	return labelOK(s[start:])
}

// asciiResourceOK reports whether s is a resourcepart already in prepared
// form.
func asciiResourceOK(s string) bool {
	if len(s) == 0 || len(s) > maxPartLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if class[s[i]]&cResource == 0 {
			return false
		}
	}
	return true
}

// lowerASCII returns s with A-Z mapped to a-z, and whether s is all ASCII
// and contains an upper-case letter. For such strings this is exactly what
// the localpart and domainpart preparations do to the letters.
func lowerASCII(s string) (string, bool) {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return "", false
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if !upper {
		return "", false
	}
	return strings.ToLower(s), true
}

// prepareLocal prepares a localpart (RFC 7622 §3.3): PRECIS
// UsernameCaseMapped (see localProfile), then the additional forbidden
// characters.
func prepareLocal(s string, shortcut bool) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: %w", ErrInvalidLocal, ErrEmpty)
	}
	if shortcut {
		if asciiLocalOK(s) {
			return s, nil
		}
		if l, ok := lowerASCII(s); ok && asciiLocalOK(l) {
			return l, nil
		}
	}
	if len(s) > maxRawLen {
		return "", tooLong(ErrInvalidLocal, ErrLocalTooLong, len(s))
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: invalid UTF-8", ErrInvalidLocal)
	}
	p, err := localProfile.String(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidLocal, err)
	}
	if bidirule.DirectionString(p) == bidi.RightToLeft && !bidirule.ValidString(p) {
		return "", fmt.Errorf("%w: %w", ErrInvalidLocal, bidirule.ErrInvalid)
	}
	if i := strings.IndexAny(p, `"&'/:<>@`); i >= 0 {
		return "", fmt.Errorf("%w: character %q not allowed", ErrInvalidLocal, p[i])
	}
	if p == "" {
		return "", fmt.Errorf("%w: %w", ErrInvalidLocal, ErrEmpty)
	}
	if len(p) > maxPartLen {
		return "", tooLong(ErrInvalidLocal, ErrLocalTooLong, len(p))
	}
	return p, nil
}

// prepareResource prepares a resourcepart (RFC 7622 §3.4): PRECIS
// OpaqueString.
func prepareResource(s string, shortcut bool) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: %w", ErrInvalidResource, ErrEmpty)
	}
	if shortcut && asciiResourceOK(s) {
		return s, nil
	}
	if len(s) > maxRawLen {
		return "", tooLong(ErrInvalidResource, ErrResourceTooLong, len(s))
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: invalid UTF-8", ErrInvalidResource)
	}
	p, err := precis.OpaqueString.String(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidResource, err)
	}
	if len(p) > maxPartLen {
		return "", tooLong(ErrInvalidResource, ErrResourceTooLong, len(p))
	}
	return p, nil
}

// prepareDomain prepares a domainpart (RFC 7622 §3.2): one trailing dot is
// removed, IP literals are validated and canonicalised, domain names are
// mapped with IDNA and stored as U-labels.
func prepareDomain(s string, shortcut bool) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", fmt.Errorf("%w: %w", ErrInvalidDomain, ErrEmpty)
	}
	if shortcut {
		if asciiDomainOK(s) {
			return s, nil
		}
		if l, ok := lowerASCII(s); ok && asciiDomainOK(l) {
			return l, nil
		}
	}
	if len(s) > maxRawLen {
		return "", tooLong(ErrInvalidDomain, ErrDomainTooLong, len(s))
	}
	if s[0] == '[' {
		return prepareIPv6(s)
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Is4() {
			return ip.String(), nil
		}
		return "", fmt.Errorf("%w: IPv6 address %q must be enclosed in brackets", ErrInvalidDomain, s)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: invalid UTF-8", ErrInvalidDomain)
	}
	a, err := domainProfile.ToASCII(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidDomain, err)
	}
	if err := checkDNS(a); err != nil {
		return "", err
	}
	u := a
	if strings.Contains(a, "xn--") {
		if u, err = domainProfile.ToUnicode(a); err != nil {
			return "", fmt.Errorf("%w: %w", ErrInvalidDomain, err)
		}
	}
	if len(u) > maxPartLen {
		return "", tooLong(ErrInvalidDomain, ErrDomainTooLong, len(u))
	}
	return u, nil
}

// prepareIPv6 validates a bracketed IPv6 literal and returns it in
// canonical form. Zones and IPv4 addresses in brackets are rejected.
func prepareIPv6(s string) (string, error) {
	if len(s) < 2 || s[len(s)-1] != ']' {
		return "", fmt.Errorf("%w: unterminated IPv6 literal", ErrInvalidDomain)
	}
	ip, err := netip.ParseAddr(s[1 : len(s)-1])
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidDomain, err)
	}
	if !ip.Is6() || ip.Zone() != "" {
		return "", fmt.Errorf("%w: %q is not an IPv6 address without zone", ErrInvalidDomain, s)
	}
	return "[" + ip.String() + "]", nil
}

// checkDNS checks the A-label form of a domain name: only LDH characters
// and '_', no empty labels, and the DNS length limits.
func checkDNS(a string) error {
	if len(a) > maxDNSLen {
		return fmt.Errorf("%w: %w (%d octets in A-label form, max %d)", ErrInvalidDomain, ErrDomainTooLong, len(a), maxDNSLen)
	}
	start := 0
	for i := 0; i <= len(a); i++ {
		if i < len(a) && a[i] != '.' {
			if class[a[i]]&cDomain == 0 {
				return fmt.Errorf("%w: character %q not allowed", ErrInvalidDomain, a[i])
			}
			continue
		}
		switch n := i - start; {
		case n == 0:
			return fmt.Errorf("%w: empty label", ErrInvalidDomain)
		case n > maxLabelLen:
			return fmt.Errorf("%w: %w (label of %d octets, max %d)", ErrInvalidDomain, ErrDomainTooLong, n, maxLabelLen)
		}
		start = i + 1
	}
	return nil
}

// tooLong builds the error for a part of n octets exceeding its limit.
func tooLong(part, kind error, n int) error {
	return fmt.Errorf("%w: %w (%d octets, max %d)", part, kind, n, maxPartLen)
}
