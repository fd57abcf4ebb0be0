package sasl

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"

	"github.com/xdg-go/scram"
)

var xdgHashes = map[Hash]scram.HashGeneratorFcn{SHA1: scram.SHA1, SHA256: scram.SHA256, SHA512: scram.SHA512}

// xdgClientAgainstServer runs an xdg-go/scram conversation against s.
func xdgClientAgainstServer(conv *scram.ClientConversation, s Server) error {
	ctx := context.Background()
	msg, err := conv.Step("")
	if err != nil {
		return err
	}
	for range 3 {
		chal, done, err := s.Next(ctx, []byte(msg))
		if err != nil {
			return err
		}
		msg, err = conv.Step(string(chal))
		if err != nil {
			return err
		}
		if done {
			if !conv.Valid() {
				return errors.New("xdg client: conversation not valid")
			}
			return nil
		}
	}
	return errRounds
}

// clientAgainstXDGServer runs c against an xdg-go/scram conversation.
func clientAgainstXDGServer(c Client, conv *scram.ServerConversation) error {
	msg, err := c.Start()
	if err != nil {
		return err
	}
	for range 3 {
		chal, err := conv.Step(string(msg))
		if err != nil {
			return err
		}
		if conv.Done() {
			if _, err := c.Next([]byte(chal)); err != nil {
				return err
			}
			if !conv.Valid() {
				return errors.New("xdg server: conversation not valid")
			}
			return nil
		}
		if msg, err = c.Next([]byte(chal)); err != nil {
			return err
		}
	}
	return errRounds
}

func xdgServer(t *testing.T, h Hash, cred Credential) *scram.Server {
	t.Helper()
	srv, err := xdgHashes[h].NewServer(func(user string) (scram.StoredCredentials, error) {
		if user != testUser {
			return scram.StoredCredentials{}, errors.New("unknown user")
		}
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(cred.Salt), Iters: cred.Iterations},
			StoredKey:  cred.StoredKey,
			ServerKey:  cred.ServerKey,
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestInteropXDGClient(t *testing.T) {
	for _, h := range hashes {
		t.Run(string(h), func(t *testing.T) {
			for _, authz := range []string{"", "admin,x=y"} {
				xc, err := xdgHashes[h].NewClient(testUser, testPassword, authz)
				if err != nil {
					t.Fatal(err)
				}
				s := mustServer(t, scramName(h, false), ServerConfig{Lookup: testLookup()})
				if err := xdgClientAgainstServer(xc.NewConversation(), s); err != nil {
					t.Fatal(err)
				}
				if s.Username() != testUser || s.AuthzID() != authz {
					t.Errorf("username %q authzid %q", s.Username(), s.AuthzID())
				}
			}
			xc, _ := xdgHashes[h].NewClient(testUser, "wrong", "")
			err := xdgClientAgainstServer(xc.NewConversation(), mustServer(t, scramName(h, false), ServerConfig{Lookup: testLookup()}))
			wantFailure(t, err, NotAuthorized)
		})
	}
}

func TestInteropXDGServer(t *testing.T) {
	for _, h := range hashes {
		t.Run(string(h), func(t *testing.T) {
			srv := xdgServer(t, h, testCreds()[h])
			for _, authz := range []string{"", "admin,x=y"} {
				conv := srv.NewConversation()
				c := mustClient(t, scramName(h, false), ClientConfig{Username: testUser, Password: testPassword, AuthzID: authz})
				if err := clientAgainstXDGServer(c, conv); err != nil {
					t.Fatal(err)
				}
				if conv.Username() != testUser || conv.AuthzID() != authz {
					t.Errorf("username %q authzid %q", conv.Username(), conv.AuthzID())
				}
			}
			c := mustClient(t, scramName(h, false), ClientConfig{Username: testUser, Password: "wrong"})
			if err := clientAgainstXDGServer(c, srv.NewConversation()); err == nil {
				t.Fatal("wrong password accepted")
			}
		})
	}
}

// TestInteropXDGChannelBinding checks -PLUS both ways with xdg-go/scram's
// own channel-binding code: tls-exporter on TLS 1.3 and
// tls-server-end-point on TLS 1.2.
func TestInteropXDGChannelBinding(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		p := newTLSPair(t, version, ecdsaCert())
		cb, err := scram.NewTLSServerEndpointBinding(p.client)
		if version == tls.VersionTLS13 {
			cb, err = scram.NewTLSExporterBinding(p.client)
		}
		if err != nil {
			t.Fatal(err)
		}
		scfg := ServerConfig{Lookup: testLookup(), TLS: p.server, ServerCertificate: p.der}
		for _, h := range hashes {
			xc, _ := xdgHashes[h].NewClient(testUser, testPassword, "")
			if err := xdgClientAgainstServer(xc.NewConversationWithChannelBinding(cb), mustServer(t, scramName(h, true), scfg)); err != nil {
				t.Errorf("%x %s: xdg client: %v", version, h, err)
			}
			// xdg's "y" flag is accepted by default, a downgrade when
			// the server is strict.
			if err := xdgClientAgainstServer(xc.NewConversationAdvertisingChannelBinding(), mustServer(t, scramName(h, false), scfg)); err != nil {
				t.Errorf("%x %s: xdg client with y: %v", version, h, err)
			}
			strict := scfg
			strict.StrictChannelBinding = true
			err := xdgClientAgainstServer(xc.NewConversationAdvertisingChannelBinding(), mustServer(t, scramName(h, false), strict))
			wantFailure(t, err, NotAuthorized)

			srv := xdgServer(t, h, testCreds()[h])
			c := mustClient(t, scramName(h, true), ClientConfig{Username: testUser, Password: testPassword, TLS: p.client})
			if err := clientAgainstXDGServer(c, srv.NewConversationWithChannelBindingRequired(cb)); err != nil {
				t.Errorf("%x %s: xdg server: %v", version, h, err)
			}
		}
	}
}
