package s2s_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/s2s"
)

// testCA signs leaf certificates built from templates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert, key, pool}
}

func (ca *testCA) leaf(t *testing.T, cn string, dns []string, extra ...pkix.Extension) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: dns, ExtraExtensions: extra,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// otherNameSAN builds a subjectAltName extension holding otherName
// entries: XmppAddr (UTF8String) and SRVName (IA5String), RFC 6120
// §13.7.1.4 and RFC 4985.
func otherNameSAN(t *testing.T, xmppAddrs, srvNames []string) pkix.Extension {
	t.Helper()
	var names []asn1.RawValue
	add := func(oid asn1.ObjectIdentifier, tag int, v string) {
		inner, err := asn1.Marshal(asn1.RawValue{Tag: tag, Bytes: []byte(v)})
		if err != nil {
			t.Fatal(err)
		}
		oidDER, _ := asn1.Marshal(oid)
		val, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner})
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oidDER, val...)})
	}
	for _, a := range xmppAddrs {
		add(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5}, asn1.TagUTF8String, a)
	}
	for _, s := range srvNames {
		add(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 7}, asn1.TagIA5String, s)
	}
	der, err := asn1.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: der}
}

func TestVerifyPeer(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	tests := []struct {
		name   string
		cert   *x509.Certificate
		pool   *x509.CertPool
		domain string
		want   string // "" for valid, else part of the error
	}{
		{"DNS-ID", ca.leaf(t, "x", []string{"example.net"}), ca.pool, "example.net", ""},
		{"DNS-ID case", ca.leaf(t, "x", []string{"Example.NET"}), ca.pool, "example.net", ""},
		{"wildcard", ca.leaf(t, "x", []string{"*.example.net"}), ca.pool, "chat.example.net", ""},
		{"wildcard one label only", ca.leaf(t, "x", []string{"*.example.net"}), ca.pool, "a.b.example.net", "not valid for"},
		{"wildcard not the domain", ca.leaf(t, "x", []string{"*.example.net"}), ca.pool, "example.net", "not valid for"},
		{"IDN", ca.leaf(t, "x", []string{"xn--bcher-kva.example"}), ca.pool, "bücher.example", ""},
		{"common name ignored", ca.leaf(t, "example.net", nil), ca.pool, "example.net", "not valid for"},
		{"other name", ca.leaf(t, "x", []string{"other.example"}), ca.pool, "example.net", "it names other.example"},
		{"untrusted", other.leaf(t, "x", []string{"example.net"}), ca.pool, "example.net", "certificate chain"},
		{"XmppAddr", ca.leaf(t, "x", nil, otherNameSAN(t, []string{"example.net"}, nil)), ca.pool, "example.net", ""},
		{"XmppAddr other", ca.leaf(t, "x", nil, otherNameSAN(t, []string{"example.org"}, nil)), ca.pool, "example.net", "it names example.org"},
		{"SRV-ID", ca.leaf(t, "x", nil, otherNameSAN(t, nil, []string{"_xmpp-server.example.net"})), ca.pool, "example.net", ""},
		{"SRV-ID direct TLS", ca.leaf(t, "x", nil, otherNameSAN(t, nil, []string{"_xmpps-server.example.net"})), ca.pool, "example.net", ""},
		{"SRV-ID client service", ca.leaf(t, "x", nil, otherNameSAN(t, nil, []string{"_xmpp-client.example.net"})), ca.pool, "example.net", "not valid for"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s2s.VerifyPeer([]*x509.Certificate{tt.cert}, tt.domain, tt.pool)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("VerifyPeer: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("VerifyPeer = %v, want an error with %q", err, tt.want)
			}
		})
	}
	if err := s2s.VerifyPeer(nil, "example.net", ca.pool); err == nil {
		t.Error("VerifyPeer accepted no certificate")
	}
}
