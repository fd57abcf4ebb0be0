package s2s

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

// FuzzOtherNames feeds arbitrary subjectAltName extension values (from a
// peer's certificate, untrusted) to the otherName parser and the identity
// check: they must not panic, and an XmppAddr they report for the domain
// must make the check pass.
func FuzzOtherNames(f *testing.F) {
	seed := func(oid asn1.ObjectIdentifier, tag int, v string) []byte {
		inner, _ := asn1.Marshal(asn1.RawValue{Tag: tag, Bytes: []byte(v)})
		oidDER, _ := asn1.Marshal(oid)
		val, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner})
		der, _ := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oidDER, val...)}})
		return der
	}
	f.Add(seed(oidXMPPAddr, asn1.TagUTF8String, "example.net"))
	f.Add(seed(oidSRVName, asn1.TagIA5String, "_xmpp-server.example.net"))
	f.Add(seed(oidXMPPAddr, asn1.TagIA5String, "example.net"))
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x03, 0x82, 0x01, 0x61}) // dNSName "a"
	f.Fuzz(func(t *testing.T, ext []byte) {
		cert := &x509.Certificate{Extensions: []pkix.Extension{{Id: oidSubjectAltName, Value: ext}}}
		addrs, _ := otherNames(cert)
		ok := namesDomain(cert, "example.net")
		for _, a := range addrs {
			if a == "example.net" && !ok {
				t.Fatalf("XmppAddr example.net found but namesDomain is false")
			}
		}
		_ = describeNames(cert)
	})
}
