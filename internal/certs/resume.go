package certs

import (
	"bytes"
	"crypto/tls"
)

// Handshake is what one connection's TLS handshake presented, as a
// client of that connection sees it for tls-server-end-point (RFC 5929
// §4): the certificate of a full handshake, or on a resumed session the
// one the session's first handshake presented, which the session ticket
// carries. Its fields are written during the handshake and read after.
type Handshake struct {
	presented, resumed []byte
}

// Certificate returns the DER of the certificate the client of the
// connection whose handshake ended in st holds, or nil when it is not
// known (then the caller takes the certificate it serves now).
func (h *Handshake) Certificate(st *tls.ConnectionState) []byte {
	if st != nil && st.DidResume {
		return h.resumed
	}
	return h.presented
}

// ticketCertTag starts the entry of a session ticket's Extra that holds
// the certificate the ticket's first handshake presented.
const ticketCertTag = "ode-cert\x00"

// ForConnection returns a copy of cfg for one connection's handshake and
// the Handshake it records. The copy issues and accepts session tickets
// (TLS 1.3 PSK resumption, RFC 8446 §2.2, and TLS 1.2 tickets) with the
// ticket keys of keys, the listener's configuration, which crypto/tls
// creates once and rotates (a new key a day, each valid seven days): a
// copy's own keys would be new for every connection, and no ticket would
// ever resume. A resumed handshake presents no certificate, so each
// ticket carries the one its session's first handshake presented, and
// tls-server-end-point on a resumed connection is what the client holds
// even when the server's certificate changed since.
//
// Tickets are left alone when cfg turns them off or handles them itself
// (WrapSession or UnwrapSession set); keys nil means cfg's own.
func ForConnection(cfg, keys *tls.Config) (*tls.Config, *Handshake) {
	h := new(Handshake)
	cfg = cfg.Clone()
	if get := cfg.GetCertificate; get != nil {
		cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := get(hello)
			if err == nil && cert != nil && len(cert.Certificate) > 0 {
				h.presented = cert.Certificate[0]
			}
			return cert, err
		}
	} else if len(cfg.Certificates) > 0 && len(cfg.Certificates[0].Certificate) > 0 {
		h.presented = cfg.Certificates[0].Certificate[0]
	}
	if keys == nil || cfg.SessionTicketsDisabled || cfg.WrapSession != nil || cfg.UnwrapSession != nil {
		return cfg, h
	}
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		cert := h.presented
		if cs.DidResume {
			cert = h.resumed
		}
		if cert != nil {
			ss.Extra = append(ss.Extra, append([]byte(ticketCertTag), cert...))
		}
		return keys.EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := keys.DecryptTicket(identity, cs)
		if ss == nil || err != nil {
			return ss, err
		}
		h.resumed = nil
		for _, x := range ss.Extra {
			if cert, ok := bytes.CutPrefix(x, []byte(ticketCertTag)); ok {
				h.resumed = cert
			}
		}
		return ss, nil
	}
	return cfg, h
}
