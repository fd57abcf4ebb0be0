package s2s

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// OIDs of the XMPP identifiers in a certificate's subjectAltName otherName
// entries: id-on-xmppAddr (RFC 6120 §13.7.1.4) and id-on-dnsSRV, the
// SRV-ID of RFC 4985 (RFC 7590 §3.2 and RFC 6125 §6.4 use it for XMPP).
var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidXMPPAddr       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5}
	oidSRVName        = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 7}
)

// errNoCertificate is returned when the peer presented no certificate.
var errNoCertificate = errors.New("no certificate presented")

// VerifyPeer checks a peer server's certificate chain (leaf first) for
// domain, per RFC 6125 as RFC 7590 §3.2 applies it to XMPP: the chain must
// lead to one of roots (the system's when roots is nil), and the leaf must
// name domain as a DNS-ID (a wildcard only as the whole left-most label),
// an SRV-ID for _xmpp-server or _xmpps-server, or an XmppAddr. The common
// name is not consulted.
func VerifyPeer(chain []*x509.Certificate, domain string, roots *x509.CertPool) error {
	if len(chain) == 0 {
		return errNoCertificate
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		// Servers present their certificate on both ends of a
		// stream; many carry only serverAuth.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("certificate chain: %w", err)
	}
	if !namesDomain(leaf, domain) {
		return fmt.Errorf("certificate is not valid for %s (it names %s)", domain, describeNames(leaf))
	}
	return nil
}

// namesDomain reports whether the certificate carries an XMPP identifier
// for domain.
func namesDomain(cert *x509.Certificate, domain string) bool {
	want, err := idna.Lookup.ToASCII(strings.TrimSuffix(domain, "."))
	if err != nil || want == "" {
		return false
	}
	for _, n := range cert.DNSNames {
		if matchDNSID(n, want) {
			return true
		}
	}
	xmppAddrs, srvNames := otherNames(cert)
	for _, a := range xmppAddrs {
		if d, err := idna.Lookup.ToASCII(a); err == nil && strings.EqualFold(d, want) {
			return true
		}
	}
	for _, s := range srvNames {
		for _, svc := range []string{"_xmpp-server.", "_xmpps-server."} {
			if len(s) > len(svc) && strings.EqualFold(s[:len(svc)], svc) {
				if d, err := idna.Lookup.ToASCII(s[len(svc):]); err == nil && strings.EqualFold(d, want) {
					return true
				}
			}
		}
	}
	return false
}

// matchDNSID matches a DNS-ID, in A-labels, against the domain (RFC 6125
// §6.4.3): exact, or "*." followed by the domain's parent with exactly one
// label in place of the star.
func matchDNSID(pattern, domain string) bool {
	pattern = strings.TrimSuffix(pattern, ".")
	if strings.EqualFold(pattern, domain) {
		return true
	}
	rest, ok := strings.CutPrefix(pattern, "*.")
	if !ok || !strings.Contains(rest, ".") {
		return false
	}
	_, parent, ok := strings.Cut(domain, ".")
	return ok && strings.EqualFold(rest, parent)
}

// otherNames returns the XmppAddr and SRVName entries of the certificate's
// subjectAltName, which crypto/x509 does not parse.
func otherNames(cert *x509.Certificate) (xmppAddrs, srvNames []string) {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &seq); err != nil || len(rest) > 0 || !seq.IsCompound || seq.Tag != asn1.TagSequence {
			return nil, nil
		}
		data := seq.Bytes
		for len(data) > 0 {
			var gn asn1.RawValue
			rest, err := asn1.Unmarshal(data, &gn)
			if err != nil {
				return xmppAddrs, srvNames
			}
			data = rest
			if gn.Class != asn1.ClassContextSpecific || gn.Tag != 0 { // otherName [0]
				continue
			}
			var id asn1.ObjectIdentifier
			rest, err = asn1.Unmarshal(gn.Bytes, &id)
			if err != nil {
				continue
			}
			var val asn1.RawValue // value [0] EXPLICIT
			if _, err := asn1.Unmarshal(rest, &val); err != nil || val.Class != asn1.ClassContextSpecific || val.Tag != 0 {
				continue
			}
			var s string
			switch {
			case id.Equal(oidXMPPAddr):
				if _, err := asn1.UnmarshalWithParams(val.Bytes, &s, "utf8"); err == nil {
					xmppAddrs = append(xmppAddrs, s)
				}
			case id.Equal(oidSRVName):
				if _, err := asn1.UnmarshalWithParams(val.Bytes, &s, "ia5"); err == nil {
					srvNames = append(srvNames, s)
				}
			}
		}
	}
	return xmppAddrs, srvNames
}

// describeNames lists the identifiers of a certificate for error messages.
func describeNames(cert *x509.Certificate) string {
	names := append([]string(nil), cert.DNSNames...)
	a, s := otherNames(cert)
	names = append(append(names, a...), s...)
	if len(names) == 0 {
		return "no DNS, SRV or XMPP name"
	}
	if len(names) > 5 {
		names = append(names[:5], "…")
	}
	return strings.Join(names, ", ")
}
