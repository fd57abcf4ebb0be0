package c2s_test

import (
	"bytes"
	"crypto/tls"
	"slices"
	"testing"

	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stream"
)

// resumeStream is tlsStream with cfg (which holds the client's session
// cache), on STARTTLS or on the direct TLS port.
func resumeStream(t *testing.T, srv *xmpptest.Server, cfg *tls.Config, direct bool) (*xmpptest.Raw, sasl2Offer) {
	t.Helper()
	if direct {
		r := srv.DialRawDirect(t, cfg)
		return r, offerOf(t, r.Open())
	}
	r := srv.DialRaw(t)
	r.Open()
	r.Send(`<starttls xmlns='` + stream.NSTLS + `'/>`)
	r.Expect(stream.NSTLS, "proceed")
	r.TLSHandshakeWith(cfg)
	return r, offerOf(t, r.Open())
}

// TestTLSResumption: a client that keeps the session ticket of its
// password login resumes the TLS session on its next connections (TLS
// 1.3 PSK and TLS 1.2 tickets, over STARTTLS and direct TLS), and every
// channel binding works on the resumed session: FAST with -EXPR and
// -ENDP, SCRAM-PLUS with tls-exporter and tls-server-end-point. After
// the server's certificate is replaced, a resumed session's
// tls-server-end-point is still the certificate the client holds (the
// one of the session's first handshake), and a new session gets the new
// certificate.
func TestTLSResumption(t *testing.T) {
	srv := xmpptest.Start(t, nil)
	srv.AddUser(t, "romeo", "juliet!")
	for _, tc := range []struct {
		name    string
		version uint16
		direct  bool
		mechs   []string // FAST mechanisms to get tokens for
		cbs     []string // SCRAM-SHA-256-PLUS channel bindings
	}{
		{"TLS1.3", tls.VersionTLS13, false, []string{sasl.HTSHA256Expr, sasl.HTSHA256Endp}, []string{"tls-exporter", "tls-server-end-point"}},
		{"TLS1.3 direct", tls.VersionTLS13, true, []string{sasl.HTSHA256Expr}, []string{"tls-server-end-point"}},
		{"TLS1.2", tls.VersionTLS12, false, []string{sasl.HTSHA256Endp}, []string{"tls-server-end-point"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := srv.TLSConfig()
			cfg.MaxVersion = tc.version
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			tokens := map[string]string{}
			for _, mech := range tc.mechs {
				r, o := resumeStream(t, srv, cfg, tc.direct)
				ua := `<user-agent id='` + "5d0c2a4e-1f3b-4d6a-8e9f-" + map[string]string{sasl.HTSHA256Expr: "000000000001", sasl.HTSHA256Endp: "000000000002"}[mech] + `'/>`
				succ := wantSuccess(t, r.SASL2(scram(t, r, "SCRAM-SHA-256-PLUS", "romeo", "juliet!", &sasl.SSDP{Mechanisms: o.mechs, ChannelBindings: o.cb}),
					ua+`<request-token xmlns='urn:xmpp:fast:0' mechanism='`+mech+`'/>`))
				tokens[mech] = succ.Child(nsFAST, "token").Attribute("token")
				r.Features()
				r.Close()
			}
			check := func(t *testing.T, wantResumed bool, wantCert []byte) {
				t.Helper()
				for _, mech := range tc.mechs {
					r, o := resumeStream(t, srv, cfg, tc.direct)
					st := r.TLSState()
					if st.DidResume != wantResumed || st.Version != tc.version {
						t.Fatalf("%s: resumed %v with version %x, want %v with %x", mech, st.DidResume, st.Version, wantResumed, tc.version)
					}
					if wantCert != nil && !bytes.Equal(st.PeerCertificates[0].Raw, wantCert) {
						t.Fatalf("%s: the session's certificate is not the one wanted", mech)
					}
					if !slices.Contains(o.cb, "tls-server-end-point") || !slices.Contains(o.fast, mech) {
						t.Fatalf("%s: offered channel bindings %v, FAST %v", mech, o.cb, o.fast)
					}
					ua := `<user-agent id='` + "5d0c2a4e-1f3b-4d6a-8e9f-" + map[string]string{sasl.HTSHA256Expr: "000000000001", sasl.HTSHA256Endp: "000000000002"}[mech] + `'/>`
					wantSuccess(t, r.SASL2(htClient(t, r, mech, "romeo", tokens[mech]), ua+`<fast xmlns='urn:xmpp:fast:0'/>`))
					r.Features()
					r.Close()
				}
				for _, cb := range tc.cbs {
					r, o := resumeStream(t, srv, cfg, tc.direct)
					if r.TLSState().DidResume != wantResumed {
						t.Fatalf("%s: resumed %v, want %v", cb, r.TLSState().DidResume, wantResumed)
					}
					c, err := sasl.NewClient("SCRAM-SHA-256-PLUS", sasl.ClientConfig{Username: "romeo", Password: "juliet!", TLS: r.TLSState(),
						ChannelBinding: cb, SSDP: &sasl.SSDP{Mechanisms: o.mechs, ChannelBindings: o.cb}})
					if err != nil {
						t.Fatal(err)
					}
					wantSuccess(t, r.SASL2(c, ""))
					r.Features()
					r.Close()
				}
			}
			t.Run("resumed", func(t *testing.T) { check(t, true, nil) })

			// The certificate is replaced: the resumed sessions keep the
			// old one for tls-server-end-point, a new session gets the
			// new one.
			r, _ := resumeStream(t, srv, cfg, tc.direct)
			old := r.TLSState().PeerCertificates[0].Raw
			r.Close()
			srv.ReplaceCertificate(t)
			t.Run("after a new certificate", func(t *testing.T) { check(t, true, old) })
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			r, _ = resumeStream(t, srv, cfg, tc.direct)
			if r.TLSState().DidResume || bytes.Equal(r.TLSState().PeerCertificates[0].Raw, old) {
				t.Fatal("a new session resumed or got the old certificate")
			}
			r.Close()
			t.Run("new session, new certificate", func(t *testing.T) { check(t, true, nil) })
		})
	}
}
