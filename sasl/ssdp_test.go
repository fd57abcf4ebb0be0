package sasl

import (
	"crypto/tls"
	"strings"
	"testing"
)

// TestSSDPHash checks the hash of XEP-0474's example (§5.3).
func TestSSDPHash(t *testing.T) {
	d := SSDP{Mechanisms: []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"}, ChannelBindings: []string{"tls-server-end-point", "tls-exporter"}}
	if got, want := d.Hash(SHA1), "G6k/rBLDqgOhRRaCuuatSDFkJ08="; got != want {
		t.Errorf("hash %s, want %s", got, want)
	}
	// No XEP-0440 advertisement: no U+001F.
	none := SSDP{Mechanisms: d.Mechanisms}
	empty := SSDP{Mechanisms: d.Mechanisms, ChannelBindings: []string{}}
	if none.Hash(SHA256) == empty.Hash(SHA256) || none.Hash(SHA256) == d.Hash(SHA256) {
		t.Error("advertised and unadvertised channel bindings hash alike")
	}
}

// TestSCRAMDowngradeProtection runs SCRAM with XEP-0474: the client
// accepts the server's hash of what it advertised and refuses one of a
// list a man in the middle shortened.
func TestSCRAMDowngradeProtection(t *testing.T) {
	p := newTLSPair(t, tls.VersionTLS13, ecdsaCert())
	advertised := &SSDP{Mechanisms: []string{"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN"}, ChannelBindings: []string{"tls-exporter"}}
	scfg := ServerConfig{Lookup: testLookup(), TLS: p.server, ServerCertificate: p.der, SSDP: advertised}
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1"} {
		t.Run(mech, func(t *testing.T) {
			s := mustServer(t, mech, scfg)
			c := mustClient(t, mech, ClientConfig{Username: testUser, Password: testPassword, TLS: p.client, SSDP: advertised})
			if se, ce := exchange(c, s); se != nil || ce != nil {
				t.Fatalf("server %v, client %v", se, ce)
			}
			// The client saw a list without -PLUS.
			seen := &SSDP{Mechanisms: []string{"SCRAM-SHA-256", "PLAIN"}, ChannelBindings: []string{"tls-exporter"}}
			c = mustClient(t, mech, ClientConfig{Username: testUser, Password: testPassword, TLS: p.client, SSDP: seen})
			_, ce := exchange(c, mustServer(t, mech, scfg))
			if ce == nil || !strings.Contains(ce.Error(), "XEP-0474") {
				t.Fatalf("client error %v, want a downgrade", ce)
			}
			// A client without XEP-0474 ignores the attribute.
			c = mustClient(t, mech, ClientConfig{Username: testUser, Password: testPassword, TLS: p.client})
			if se, ce := exchange(c, mustServer(t, mech, scfg)); se != nil || ce != nil {
				t.Fatalf("without SSDP: server %v, client %v", se, ce)
			}
		})
	}
	// A server without XEP-0474: nothing to check.
	c := mustClient(t, "SCRAM-SHA-256", ClientConfig{Username: testUser, Password: testPassword, SSDP: advertised})
	if se, ce := exchange(c, mustServer(t, "SCRAM-SHA-256", ServerConfig{Lookup: testLookup()})); se != nil || ce != nil {
		t.Fatalf("server without SSDP: server %v, client %v", se, ce)
	}
}
