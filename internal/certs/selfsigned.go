package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// loadOrCreateSelfSigned returns the self-signed certificate in dataDir
// when it covers names and is valid for another day, else makes (and
// stores) a new one for the domains among names and their sub-domains.
func loadOrCreateSelfSigned(dataDir string, names []string, now time.Time) (*tls.Certificate, error) {
	certFile := filepath.Join(dataDir, "selfsigned.crt")
	keyFile := filepath.Join(dataDir, "selfsigned.key")
	certPEM, err := os.ReadFile(certFile)
	if err == nil {
		var keyPEM []byte
		if keyPEM, err = os.ReadFile(keyFile); err == nil {
			pair, perr := parsePair(certPEM, keyPEM, now.Add(24*time.Hour))
			if perr == nil && len(uncovered(pair.Leaf, names)) == 0 {
				return pair, nil
			}
		}
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("certs: load self-signed certificate: %w", err)
	}
	certPEM, keyPEM, err := SelfSigned(names, 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("certs: write key: %w", err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("certs: write certificate: %w", err)
	}
	return parsePair(certPEM, keyPEM, now)
}

// SelfSigned makes a self-signed ECDSA P-256 certificate for the domains
// (and their sub-domains, with a wildcard), PEM-encoded. A name that is
// itself under another of domains gets no wildcard of its own.
func SelfSigned(domains []string, valid time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, fmt.Errorf("certs: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: domains[0], Organization: []string{"ode self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(valid),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, d := range domains {
		if ip := net.ParseIP(d); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		if _, parent, ok := strings.Cut(d, "."); ok && slices.Contains(domains, parent) {
			continue // covered by *.parent
		}
		tmpl.DNSNames = append(tmpl.DNSNames, d, "*."+d)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create certificate: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}
