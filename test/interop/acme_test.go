package interop_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// TestACMEPebble runs ode against pebble, Let's Encrypt's test ACME
// server, which checks every name for real with HTTP-01 on ode's plain
// HTTP listener (found through a test DNS server): ode obtains one
// certificate for the domain and its services at start, renews it before
// it expires (pebble issues them for 15 s here) without a restart, and
// clients connected before the renewal go on exchanging stanzas while new
// connections get the new certificate.
func TestACMEPebble(t *testing.T) {
	const domain = "example.test"
	names := []string{domain, "conference." + domain, "upload." + domain}
	dns := xmpptest.StartDNS(t)
	for _, n := range names {
		dns.AddAddr(n, netip.MustParseAddr("127.0.0.1"))
	}
	plainAddr := xmpptest.FreeAddr(t)
	_, p, _ := net.SplitHostPort(plainAddr)
	httpPort, _ := strconv.Atoi(p)
	pebble := xmpptest.StartPebble(t, xmpptest.PebbleOptions{HTTPPort: httpPort, DNS: dns.Addr.String(), Validity: 15 * time.Second})
	srv := xmpptest.Start(t, func(c *config.Config) {
		c.Server.Domains = []string{domain}
		c.HTTP.ListenPlain = []string{plainAddr}
		c.ACME = config.ACME{Enabled: true, Email: "admin@" + domain, Directory: pebble.Directory,
			CAFile: pebble.CAFile, Challenge: "http-01", RenewBefore: config.Duration(30 * 24 * time.Hour)}
	})
	roots := pebble.Roots(t)

	// presented returns the leaf ode presents for name on the HTTPS
	// listener, once it verifies against pebble's root, or nil.
	presented := func(addr, name string) *x509.Certificate {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS12})
		if err != nil {
			return nil
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0]
	}
	deadline := time.Now().Add(60 * time.Second)
	var first *x509.Certificate
	for first == nil {
		if time.Now().After(deadline) {
			t.Fatalf("ode presents no certificate from pebble after 60 s; last ACME error: %v", srv.Certs().LastError(domain))
		}
		time.Sleep(50 * time.Millisecond)
		first = presented(srv.HTTPAddr, domain)
	}
	// presented verified each name against pebble's root: every name is
	// covered, on every TLS listener.
	for _, n := range names[1:] {
		if leaf := presented(srv.HTTPAddr, n); leaf == nil {
			t.Errorf("%s: no certificate from pebble for it", n)
		}
	}
	if leaf := presented(srv.DirectAddr, domain); leaf == nil {
		t.Errorf("the c2s direct TLS listener does not present the ACME certificate")
	}

	// Two clients over STARTTLS, verifying the certificate as any client
	// would.
	alice := srv.AddUser(t, "alice", "wonderland")
	bob := srv.AddUser(t, "bob", "builder")
	dial := func(cfg client.Config) *client.Client {
		t.Helper()
		cfg.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, cfg)
		if err != nil {
			t.Fatalf("dial %s: %v", cfg.JID, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a := dial(srv.ClientConfig(alice, "wonderland"))
	b := dial(srv.ClientConfig(bob, "builder"))
	// What alice's stream negotiated: the renewal to wait for is the
	// next one (a slow machine may have renewed once already).
	first = a.TLSState().PeerCertificates[0]
	chat(t, a, b, "before the renewal")

	// The renewal, at two thirds of the 15 s (renew_before is longer
	// than the lifetime).
	deadline = time.Now().Add(60 * time.Second)
	var second *x509.Certificate
	for second == nil || second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no renewal after 60 s; last ACME error: %v", srv.Certs().LastError(domain))
		}
		time.Sleep(100 * time.Millisecond)
		second = presented(srv.HTTPAddr, domain)
	}
	if !second.NotAfter.After(first.NotAfter) {
		t.Errorf("the renewed certificate expires %s, not after the first's %s", second.NotAfter, first.NotAfter)
	}
	// The sessions from before go on, in both directions.
	chat(t, a, b, "after the renewal")
	chat(t, b, a, "and back")
	if a.Err() != nil || b.Err() != nil {
		t.Fatalf("a stream ended: %v, %v", a.Err(), b.Err())
	}
	// A new connection gets the new certificate (or a later renewal's).
	c := dial(client.Config{JID: alice, Password: "wonderland", Addr: srv.DirectAddr, DirectTLS: true})
	if got := c.TLSState().PeerCertificates[0].SerialNumber; got.Cmp(first.SerialNumber) == 0 {
		t.Errorf("a new connection still got the first certificate")
	}
	chat(t, c, b, "from a new connection")
}

// chat sends a message from one client to the other (its full JID) and waits
// for it.
func chat(t *testing.T, from, to *client.Client, body string) {
	t.Helper()
	msg := xmlstream.NewElement(stanza.NSClient, "message").SetAttr("to", to.JID().String()).SetAttr("type", "chat")
	msg.Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(body))
	if err := from.Send(msg); err != nil {
		t.Fatalf("%s sends: %v", from.JID(), err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		e, err := to.Recv(ctx)
		if err != nil {
			t.Fatalf("%s waits for %q: %v", to.JID(), body, err)
		}
		if e.Name.Local == "message" {
			if b := e.Child(stanza.NSClient, "body"); b != nil && b.Text() == body {
				return
			}
		}
	}
}
