package sasl

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// Channel-binding types.
const (
	// cbExporter is tls-exporter (RFC 9266), defined here for TLS 1.3 only.
	cbExporter = "tls-exporter"
	// cbEndPoint is tls-server-end-point (RFC 5929 §4).
	cbEndPoint = "tls-server-end-point"
	// exporterLabel and exporterLength are the RFC 9266 §2 parameters.
	exporterLabel  = "EXPORTER-Channel-Binding"
	exporterLength = 32
)

// ChannelBindingTypes lists the channel-binding types usable on state, for
// XEP-0440 advertising: "tls-exporter" only on TLS 1.3 (RFC 9266), and
// "tls-server-end-point" (RFC 5929) when a certificate is known. It never
// lists "tls-unique", which is not defined for TLS 1.3 and is weak.
//
// A client's state carries the server certificate, so tls-server-end-point
// is listed only if its signature algorithm defines the hash to use
// (RFC 5929 §4.1; not Ed25519). A server's state does not show the
// server's own certificate, which crypto/tls always sends: there the type
// is listed as usable, and the server needs ServerConfig.ServerCertificate
// to actually offer it (with client certificates, the server's state holds
// the client's, whose signature algorithm is then checked instead). It
// returns nil for a nil or unfinished handshake.
func ChannelBindingTypes(state *tls.ConnectionState) []string {
	if state == nil || !state.HandshakeComplete {
		return nil
	}
	var types []string
	if state.Version >= tls.VersionTLS13 {
		types = append(types, cbExporter)
	}
	if len(state.PeerCertificates) == 0 || endPointHash(state.PeerCertificates[0].SignatureAlgorithm) != nil {
		types = append(types, cbEndPoint)
	}
	return types
}

// endPointHash returns the hash tls-server-end-point uses for a
// certificate signed with alg (RFC 5929 §4.1): SHA-256 when the signature
// uses MD5 or SHA-1, otherwise the signature's hash; nil when undefined.
func endPointHash(alg x509.SignatureAlgorithm) func() hash.Hash {
	switch alg {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.DSAWithSHA256, x509.ECDSAWithSHA256:
		return sha256.New
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		return sha512.New384
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		return sha512.New
	}
	return nil
}

// endPointData returns the tls-server-end-point binding of cert.
func endPointData(cert *x509.Certificate) ([]byte, error) {
	newHash := endPointHash(cert.SignatureAlgorithm)
	if newHash == nil {
		return nil, fmt.Errorf("sasl: tls-server-end-point is undefined for %v certificates", cert.SignatureAlgorithm)
	}
	h := newHash()
	h.Write(cert.Raw)
	return h.Sum(nil), nil
}

// exporterData returns the tls-exporter binding of state (RFC 9266).
func exporterData(state *tls.ConnectionState) (data []byte, err error) {
	if !state.HandshakeComplete || state.Version < tls.VersionTLS13 {
		return nil, errors.New("sasl: tls-exporter needs a completed TLS 1.3 handshake")
	}
	// A hand-made ConnectionState has no exporter and would panic.
	defer func() {
		if recover() != nil {
			data, err = nil, errors.New("sasl: TLS connection state has no keying material exporter")
		}
	}()
	data, err = state.ExportKeyingMaterial(exporterLabel, nil, exporterLength)
	if err != nil {
		return nil, fmt.Errorf("sasl: tls-exporter: %w", err)
	}
	return data, nil
}

// serverBindings holds the channel bindings a server can check.
type serverBindings struct {
	types []string
	cert  *x509.Certificate // for tls-server-end-point, or nil
}

// newServerBindings finds the channel bindings usable with cfg.
func newServerBindings(cfg *ServerConfig) serverBindings {
	var b serverBindings
	st := cfg.TLS
	if st == nil || !st.HandshakeComplete {
		return b
	}
	if st.Version >= tls.VersionTLS13 {
		b.types = append(b.types, cbExporter)
	}
	if len(cfg.ServerCertificate) > 0 {
		if cert, err := parseServerCertificate(cfg.ServerCertificate); err == nil && endPointHash(cert.SignatureAlgorithm) != nil {
			b.cert = cert
			b.types = append(b.types, cbEndPoint)
		}
	}
	return b
}

// serverCerts holds the last few server certificates parsed, by their
// DER: a server passes its certificate with every ServerConfig, whose
// mechanisms are listed several times per login (SASL, SASL2, FAST) and
// again for the exchange, and parsing one costs tens of microseconds.
var serverCerts struct {
	sync.Mutex
	der  [4][]byte
	cert [4]*x509.Certificate
	next int
}

// parseServerCertificate is x509.ParseCertificate through serverCerts.
// The certificate returned is shared: read-only.
func parseServerCertificate(der []byte) (*x509.Certificate, error) {
	serverCerts.Lock()
	for i, d := range serverCerts.der {
		if bytes.Equal(d, der) && d != nil {
			c := serverCerts.cert[i]
			serverCerts.Unlock()
			return c, nil
		}
	}
	serverCerts.Unlock()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	serverCerts.Lock()
	i := serverCerts.next
	serverCerts.der[i], serverCerts.cert[i] = bytes.Clone(der), cert
	serverCerts.next = (i + 1) % len(serverCerts.der)
	serverCerts.Unlock()
	return cert, nil
}

// data returns the binding data of type typ, which must be in b.types.
func (b *serverBindings) data(st *tls.ConnectionState, typ string) ([]byte, error) {
	switch {
	case typ == cbExporter:
		return exporterData(st)
	case typ == cbEndPoint && b.cert != nil:
		return endPointData(b.cert)
	}
	return nil, fmt.Errorf("sasl: channel binding %q unavailable", typ)
}

// clientBindingType returns the channel-binding type a client uses with
// cfg: cfg.ChannelBinding if set, otherwise tls-exporter on TLS 1.3 and
// tls-server-end-point before. It fails if that type is unusable.
func clientBindingType(cfg *ClientConfig) (string, error) {
	st := cfg.TLS
	if st == nil || !st.HandshakeComplete {
		return "", errors.New("sasl: channel binding needs a completed TLS handshake")
	}
	typ := cfg.ChannelBinding
	if typ == "" {
		typ = cbEndPoint
		if st.Version >= tls.VersionTLS13 {
			typ = cbExporter
		}
	}
	switch typ {
	case cbExporter:
		if st.Version < tls.VersionTLS13 {
			return "", errors.New("sasl: tls-exporter needs TLS 1.3")
		}
	case cbEndPoint:
		if len(st.PeerCertificates) == 0 {
			return "", errors.New("sasl: tls-server-end-point needs the server certificate")
		}
		if endPointHash(st.PeerCertificates[0].SignatureAlgorithm) == nil {
			return "", fmt.Errorf("sasl: tls-server-end-point is undefined for %v certificates", st.PeerCertificates[0].SignatureAlgorithm)
		}
	default:
		return "", fmt.Errorf("sasl: unsupported channel binding type %q", typ)
	}
	return typ, nil
}

// clientBindingData returns the client's binding data of type typ.
func clientBindingData(st *tls.ConnectionState, typ string) ([]byte, error) {
	if typ == cbExporter {
		return exporterData(st)
	}
	return endPointData(st.PeerCertificates[0])
}
