package sasl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestPLAIN(t *testing.T) {
	p := newTLSPair(t, tls.VersionTLS13, ecdsaCert())
	scfg := ServerConfig{Lookup: testLookup(), TLS: p.server}
	ctx := context.Background()
	run := func(msg string) (Server, error) {
		s := mustServer(t, "PLAIN", scfg)
		_, done, err := s.Next(ctx, []byte(msg))
		if done != (err == nil) {
			t.Fatalf("%q: done %v with error %v", msg, done, err)
		}
		return s, err
	}

	// Through the client.
	c := mustClient(t, "PLAIN", ClientConfig{Username: testUser, Password: testPassword, AuthzID: "admin", TLS: p.client})
	s := mustServer(t, "PLAIN", scfg)
	if se, ce := exchange(c, s); se != nil || ce != nil {
		t.Fatalf("server %v, client %v", se, ce)
	}
	if s.Username() != testUser || s.AuthzID() != "admin" || s.Mechanism() != "PLAIN" || c.Mechanism() != "PLAIN" {
		t.Errorf("username %q authzid %q", s.Username(), s.AuthzID())
	}

	// Width-mapped username, no authzid.
	s, err := run("\x00\uff55ser\x00pencil")
	if err != nil || s.Username() != "user" || s.AuthzID() != "" {
		t.Fatalf("%v, username %q authzid %q", err, s.Username(), s.AuthzID())
	}

	_, errWrong := run("\x00user\x00wrong")
	_, errUnknown := run("\x00ghost\x00pencil")
	wrong := wantFailure(t, errWrong, NotAuthorized)
	unknown := wantFailure(t, errUnknown, NotAuthorized)
	if !reflect.DeepEqual(wrong, unknown) {
		t.Errorf("wrong password %#v, unknown user %#v", wrong, unknown)
	}
	for _, tc := range []struct {
		msg  string
		want Condition
	}{
		{"\x00user\x00", NotAuthorized},
		{"\x00\x00pencil", MalformedRequest},
		{"user\x00pencil", MalformedRequest},
		{"\x00user\x00pencil\x00", MalformedRequest},
		{"\x00user\x00pen\xffcil", MalformedRequest},
		{"\x00a b\x00pencil", NotAuthorized},
		{"\x00user\x00" + strings.Repeat("x", maxMessage), MalformedRequest},
	} {
		_, err := run(tc.msg)
		wantFailure(t, err, tc.want)
	}

	// Only a SHA-1 verifier: PLAIN falls back to it.
	sha1Only := lookupFor(testUser, map[Hash]Credential{SHA1: testCreds()[SHA1]})
	s = mustServer(t, "PLAIN", ServerConfig{Lookup: sha1Only, TLS: p.server})
	if _, done, err := s.Next(ctx, []byte("\x00user\x00pencil")); err != nil || !done {
		t.Fatalf("SHA-1 fallback: %v", err)
	}

	// Not without TLS, and a second message is an error.
	if _, err := NewServer("PLAIN", ServerConfig{Lookup: testLookup()}); err == nil {
		t.Error("PLAIN without TLS accepted")
	} else {
		wantFailure(t, err, EncryptionRequired)
	}
	_, _, err = s.Next(ctx, []byte("\x00user\x00pencil"))
	wantFailure(t, err, MalformedRequest)

	// The client answers an empty challenge once, and nothing else.
	c = mustClient(t, "PLAIN", ClientConfig{Username: testUser, Password: testPassword, TLS: p.client})
	first, _ := c.Start()
	if r, err := c.Next(nil); err != nil || string(r) != string(first) {
		t.Errorf("empty challenge: %q, %v", r, err)
	}
	if _, err := c.Next(nil); err == nil {
		t.Error("second challenge answered")
	}
}

func TestEXTERNAL(t *testing.T) {
	ctx := context.Background()
	if _, err := NewServer("EXTERNAL", ServerConfig{}); err == nil {
		t.Fatal("EXTERNAL without identity accepted")
	}
	cfg := ServerConfig{ExternalIdentity: "example.net"}
	for _, resp := range [][]byte{nil, {}, []byte("example.net")} {
		s := mustServer(t, "EXTERNAL", cfg)
		if s.Username() != "" {
			t.Error("username before authentication")
		}
		_, done, err := s.Next(ctx, resp)
		if err != nil || !done || s.Username() != "example.net" || s.AuthzID() != string(resp) || s.Mechanism() != "EXTERNAL" {
			t.Errorf("%q: %v, %v, %q, %q", resp, done, err, s.Username(), s.AuthzID())
		}
		_, _, err = s.Next(ctx, nil)
		wantFailure(t, err, MalformedRequest)
	}
	s := mustServer(t, "EXTERNAL", cfg)
	_, _, err := s.Next(ctx, []byte("evil.example"))
	wantFailure(t, err, InvalidAuthzID)
	if s.Username() != "" {
		t.Error("username after failure")
	}
	s = mustServer(t, "EXTERNAL", cfg)
	_, _, err = s.Next(ctx, []byte("\xff"))
	wantFailure(t, err, MalformedRequest)

	for _, authz := range []string{"", "example.net"} {
		c := mustClient(t, "EXTERNAL", ClientConfig{AuthzID: authz})
		if se, ce := exchange(c, mustServer(t, "EXTERNAL", cfg)); se != nil || ce != nil {
			t.Fatalf("server %v, client %v", se, ce)
		}
		c = mustClient(t, "EXTERNAL", ClientConfig{AuthzID: authz})
		if first, err := c.Start(); err != nil || string(first) != authz || c.Mechanism() != "EXTERNAL" {
			t.Errorf("Start: %q, %v", first, err)
		}
		if r, err := c.Next(nil); err != nil || string(r) != authz {
			t.Errorf("Next: %q, %v", r, err)
		}
		if _, err := c.Next(nil); err == nil {
			t.Error("second challenge answered")
		}
	}
}

func TestNewServerErrors(t *testing.T) {
	for _, tc := range []struct {
		mech string
		cfg  ServerConfig
	}{
		{"SCRAM-SHA-256", ServerConfig{}},
		{"SCRAM-SHA-384", ServerConfig{Lookup: testLookup()}},
		{"scram-sha-256", ServerConfig{Lookup: testLookup()}},
		{"SCRAM-SHA-256-PLUS", ServerConfig{Lookup: testLookup()}},
		{"PLAIN", ServerConfig{}},
		{"DIGEST-MD5", ServerConfig{Lookup: testLookup()}},
		{"", ServerConfig{Lookup: testLookup()}},
	} {
		_, err := NewServer(tc.mech, tc.cfg)
		wantFailure(t, err, InvalidMechanism)
	}
}

func TestServerMechanisms(t *testing.T) {
	p13 := newTLSPair(t, tls.VersionTLS13, ecdsaCert())
	p12 := newTLSPair(t, tls.VersionTLS12, ecdsaCert())
	p12ed := newTLSPair(t, tls.VersionTLS12, ed25519Cert())
	plus := []string{"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"}
	scram := []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"}
	cat := func(l ...[]string) []string { return slices.Concat(l...) }
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
		tls  bool
		want []string
	}{
		{"no TLS", ServerConfig{Lookup: testLookup()}, false, scram},
		{"no lookup", ServerConfig{TLS: p13.server}, true, nil},
		{"external only", ServerConfig{ExternalIdentity: "x"}, false, []string{"EXTERNAL"}},
		{"TLS 1.3", ServerConfig{Lookup: testLookup(), TLS: p13.server}, true, cat(plus, scram, []string{"PLAIN"})},
		{"TLS 1.2 with cert", ServerConfig{Lookup: testLookup(), TLS: p12.server, ServerCertificate: p12.der}, true, cat(plus, scram, []string{"PLAIN"})},
		{"TLS 1.2 without cert", ServerConfig{Lookup: testLookup(), TLS: p12.server}, true, cat(scram, []string{"PLAIN"})},
		{"TLS 1.2 bad cert", ServerConfig{Lookup: testLookup(), TLS: p12.server, ServerCertificate: []byte("junk")}, true, cat(scram, []string{"PLAIN"})},
		{"TLS 1.2 Ed25519", ServerConfig{Lookup: testLookup(), TLS: p12ed.server, ServerCertificate: p12ed.der}, true, cat(scram, []string{"PLAIN"})},
		{"TLS state but tlsActive false", ServerConfig{Lookup: testLookup(), TLS: p13.server, ExternalIdentity: "x"}, false, cat(plus, scram, []string{"EXTERNAL"})},
		{"tlsActive without state", ServerConfig{Lookup: testLookup()}, true, scram},
	} {
		if got := ServerMechanisms(tc.cfg, tc.tls); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		// Everything offered can be started.
		for _, m := range ServerMechanisms(tc.cfg, tc.tls) {
			if _, err := NewServer(m, tc.cfg); err != nil {
				t.Errorf("%s: NewServer(%s): %v", tc.name, m, err)
			}
		}
	}
}

func TestChannelBindingTypes(t *testing.T) {
	p13 := newTLSPair(t, tls.VersionTLS13, ecdsaCert())
	p12 := newTLSPair(t, tls.VersionTLS12, ecdsaCert())
	p12ed := newTLSPair(t, tls.VersionTLS12, ed25519Cert())
	p13ed := newTLSPair(t, tls.VersionTLS13, ed25519Cert())
	for _, tc := range []struct {
		name  string
		state *tls.ConnectionState
		want  []string
	}{
		{"nil", nil, nil},
		{"unfinished", &tls.ConnectionState{Version: tls.VersionTLS13}, nil},
		{"1.3 client", p13.client, []string{"tls-exporter", "tls-server-end-point"}},
		{"1.3 server", p13.server, []string{"tls-exporter", "tls-server-end-point"}},
		{"1.2 client", p12.client, []string{"tls-server-end-point"}},
		{"1.2 server", p12.server, []string{"tls-server-end-point"}},
		{"1.2 client Ed25519", p12ed.client, nil},
		{"1.3 client Ed25519", p13ed.client, []string{"tls-exporter"}},
	} {
		if got := ChannelBindingTypes(tc.state); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// Both ends derive the same data.
	sb := newServerBindings(&ServerConfig{TLS: p13.server, ServerCertificate: p13.der})
	for _, typ := range []string{"tls-exporter", "tls-server-end-point"} {
		sd, err1 := sb.data(p13.server, typ)
		cd, err2 := clientBindingData(p13.client, typ)
		if err1 != nil || err2 != nil || string(sd) != string(cd) || len(sd) != 32 {
			t.Errorf("%s: server %x (%v), client %x (%v)", typ, sd, err1, cd, err2)
		}
	}
	// A hand-made state has no exporter: an error, not a panic.
	if _, err := exporterData(&tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true}); err == nil {
		t.Error("exporter of a fake state")
	}
	// A client on Ed25519 TLS 1.2 cannot bind the channel.
	if _, err := NewClient("SCRAM-SHA-256-PLUS", ClientConfig{Username: "u", Password: "p", TLS: p12ed.client}); err == nil {
		t.Error("-PLUS with an Ed25519 certificate on TLS 1.2")
	}
}

func TestEndPointHash(t *testing.T) {
	for alg, size := range map[x509.SignatureAlgorithm]int{
		x509.MD5WithRSA: 32, x509.SHA1WithRSA: 32, x509.ECDSAWithSHA1: 32,
		x509.SHA256WithRSA: 32, x509.ECDSAWithSHA256: 32, x509.SHA256WithRSAPSS: 32,
		x509.SHA384WithRSA: 48, x509.ECDSAWithSHA384: 48, x509.SHA384WithRSAPSS: 48,
		x509.SHA512WithRSA: 64, x509.ECDSAWithSHA512: 64, x509.SHA512WithRSAPSS: 64,
		x509.PureEd25519: 0, x509.UnknownSignatureAlgorithm: 0, x509.MD2WithRSA: 0,
	} {
		h := endPointHash(alg)
		if got := 0; h != nil {
			got = h().Size()
			if got != size {
				t.Errorf("%v: size %d, want %d", alg, got, size)
			}
		} else if size != 0 {
			t.Errorf("%v: no hash, want size %d", alg, size)
		}
	}
}

func TestClientSelect(t *testing.T) {
	p13 := newTLSPair(t, tls.VersionTLS13, ecdsaCert())
	p12ed := newTLSPair(t, tls.VersionTLS12, ed25519Cert())
	all := []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512-PLUS", "PLAIN", "EXTERNAL"}
	user := ClientConfig{Username: testUser, Password: testPassword}
	withTLS := user
	withTLS.TLS = p13.client
	ed := user
	ed.TLS = p12ed.client
	badCB := withTLS
	badCB.ChannelBinding = "tls-unique"
	anon := ClientConfig{TLS: p13.client}
	for _, tc := range []struct {
		name    string
		offered []string
		cfg     ClientConfig
		want    string // "" means an error
	}{
		{"all with TLS", all, withTLS, "SCRAM-SHA-512-PLUS"},
		{"all without TLS", all, user, "SCRAM-SHA-512"},
		{"PLUS needs binding", all, ed, "SCRAM-SHA-512"},
		{"SHA-1-PLUS before SHA-512", []string{"SCRAM-SHA-512", "SCRAM-SHA-1-PLUS"}, withTLS, "SCRAM-SHA-1-PLUS"},
		{"only PLUS without TLS", []string{"SCRAM-SHA-256-PLUS"}, user, ""},
		{"SCRAM before PLAIN", []string{"PLAIN", "SCRAM-SHA-1"}, withTLS, "SCRAM-SHA-1"},
		{"PLAIN with TLS", []string{"PLAIN", "EXTERNAL"}, withTLS, "PLAIN"},
		{"no PLAIN without TLS", []string{"PLAIN", "EXTERNAL"}, user, ""},
		{"no EXTERNAL with username", []string{"EXTERNAL"}, withTLS, ""},
		{"EXTERNAL without username", all, anon, "EXTERNAL"},
		{"nothing for anonymous", []string{"PLAIN"}, anon, ""},
		{"unknown only", []string{"DIGEST-MD5", "SCRAM-SHA3-512"}, withTLS, ""},
		{"empty", nil, withTLS, ""},
		{"explicit bad binding", all, badCB, ""},
	} {
		c, err := ClientSelect(tc.offered, tc.cfg)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: chose %s, want an error", tc.name, c.Mechanism())
		case tc.want != "" && err != nil:
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		case tc.want != "" && c.Mechanism() != tc.want:
			t.Errorf("%s: chose %s, want %s", tc.name, c.Mechanism(), tc.want)
		}
	}
}

func TestCredentials(t *testing.T) {
	cs, err := NewCredentials(testPassword, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 {
		t.Fatalf("%d credentials", len(cs))
	}
	seen := map[Hash]bool{}
	for _, c := range cs {
		seen[c.Hash] = true
		if c.Iterations != 4096 || len(c.Salt) != 16 || len(c.StoredKey) != c.Hash.size() || len(c.ServerKey) != c.Hash.size() {
			t.Errorf("credential %+v", c)
		}
		if !VerifyPassword(c, testPassword) || VerifyPassword(c, "Pencil") || VerifyPassword(c, "") {
			t.Errorf("%s: VerifyPassword", c.Hash)
		}
		bad := c
		bad.Iterations++
		if VerifyPassword(bad, testPassword) {
			t.Errorf("%s: verified with another iteration count", c.Hash)
		}
	}
	if !seen[SHA1] || !seen[SHA256] || !seen[SHA512] || string(cs[0].Salt) == string(cs[1].Salt) {
		t.Errorf("credentials %+v", cs)
	}
	// OpaqueString maps non-ASCII spaces to ASCII spaces.
	c, err := NewCredential("pen\u00a0cil", SHA256, []byte("salt"), 1)
	if err != nil || !VerifyPassword(c, "pen cil") {
		t.Errorf("password preparation: %v", err)
	}
	// The salt is copied.
	salt := []byte("salt")
	c, _ = NewCredential("x", SHA1, salt, 1)
	salt[0] = 'X'
	if string(c.Salt) != "salt" {
		t.Error("salt not copied")
	}
	for _, tc := range []struct {
		pass  string
		h     Hash
		salt  []byte
		iters int
	}{
		{"", SHA256, []byte("s"), 1},
		{"x", "SHA-384", []byte("s"), 1},
		{"x", SHA256, nil, 1},
		{"x", SHA256, []byte("s"), 0},
		{"x\x00", SHA256, []byte("s"), 1},
	} {
		if _, err := NewCredential(tc.pass, tc.h, tc.salt, tc.iters); err == nil {
			t.Errorf("NewCredential(%q, %s, %q, %d) succeeded", tc.pass, tc.h, tc.salt, tc.iters)
		}
	}
	if _, err := NewCredentials("", 0); err == nil {
		t.Error("NewCredentials with an empty password succeeded")
	}
	if VerifyPassword(Credential{}, "x") {
		t.Error("zero credential verified")
	}
}

func TestSASLName(t *testing.T) {
	for _, tc := range []struct{ raw, enc string }{
		{"user", "user"}, {"a,b", "a=2Cb"}, {"a=b", "a=3Db"}, {"=,=", "=3D=2C=3D"}, {"é", "é"},
	} {
		if got := encodeSASLName(tc.raw); got != tc.enc {
			t.Errorf("encode %q = %q, want %q", tc.raw, got, tc.enc)
		}
		if got, ok := decodeSASLName(tc.enc); !ok || got != tc.raw {
			t.Errorf("decode %q = %q, %v", tc.enc, got, ok)
		}
	}
	for _, bad := range []string{"", "=", "=2", "=2c", "=3d", "a=b", "a=", "=41", ",", "a,b"} {
		if got, ok := decodeSASLName(bad); ok {
			t.Errorf("decode %q = %q", bad, got)
		}
	}
}

func TestParseAttributes(t *testing.T) {
	got, err := parseAttributes("r=abc,s=QQ==,i=4096")
	want := []attribute{{'r', "abc"}, {'s', "QQ=="}, {'i', "4096"}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "r=", "r=a,", ",r=a", "ra", "1=a", "=a", "r=a,,s=b", "rr=a", strings.Repeat("a=b,", maxAttributes) + "a=b"} {
		if got, err := parseAttributes(bad); err == nil {
			t.Errorf("%q: got %v", bad, got)
		}
	}
}

func TestFailure(t *testing.T) {
	cause := errors.New("cause")
	f := &Failure{Condition: NotAuthorized, Text: "text", Err: cause}
	if f.Error() != "sasl: not-authorized: text: cause" || !errors.Is(f, cause) {
		t.Errorf("%q", f.Error())
	}
	if s := (&Failure{Condition: Aborted}).Error(); s != "sasl: aborted" {
		t.Errorf("%q", s)
	}
	for _, c := range []Condition{Aborted, AccountDisabled, CredentialsExpired, EncryptionRequired, IncorrectEncoding, InvalidAuthzID, InvalidMechanism, MalformedRequest, MechanismTooWeak, NotAuthorized, TemporaryAuthFailure} {
		if strings.ToLower(string(c)) != string(c) || strings.Contains(string(c), " ") {
			t.Errorf("condition %q", c)
		}
	}
}
