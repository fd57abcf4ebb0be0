package cli

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

func portOf(t *testing.T, addr string) uint16 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(n)
}

// TestCheckDeployment runs ode check against a running server and a
// test DNS server: first a deliberately broken set-up, whose every
// problem must be named, then a correct one, which must pass.
func TestCheckDeployment(t *testing.T) {
	const domain = "example.test"
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	c2sAddr, directAddr, s2sAddr, httpsAddr := xmpptest.FreeAddr(t), xmpptest.FreeAddr(t), xmpptest.FreeAddr(t), xmpptest.FreeAddr(t)
	publicURL := "https://" + domain + ":" + strconv.Itoa(int(portOf(t, httpsAddr)))
	xmpptest.StartWithCA(t, ca, func(c *config.Config) {
		c.Server.Domains = []string{domain}
		c.C2S.Listen, c.C2S.DirectTLS, c.S2S.Listen = []string{c2sAddr}, []string{directAddr}, []string{s2sAddr}
		c.HTTP.Listen, c.HTTP.PublicURL = []string{httpsAddr}, publicURL
	})
	writeConfig := func(certFile, keyFile, extra string) string {
		path := filepath.Join(t.TempDir(), "ode.toml")
		data := fmt.Sprintf(`[server]
domains = [%q]
data_dir = %q
[tls]
cert = %q
key = %q
[c2s]
listen = [%q]
direct_tls = [%q]
[http]
listen = [%q]
public_url = %q
[s2s]
listen = [%q]
%s`, domain, t.TempDir(), certFile, keyFile, c2sAddr, directAddr, httpsAddr, publicURL, s2sAddr, extra)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	here := netip.MustParseAddr("127.0.0.1")

	t.Run("broken", func(t *testing.T) {
		dns := xmpptest.StartDNS(t)
		dns.AddAddr(domain, here)
		// No _xmpp-client SRV; _xmpps-client on the wrong port; the
		// s2s target elsewhere; nothing for the services.
		dns.AddSRV("xmpps-client", domain, domain, portOf(t, directAddr)+1)
		dns.AddSRV("xmpp-server", domain, "xmpp."+domain, portOf(t, s2sAddr))
		dns.AddAddr("xmpp."+domain, netip.MustParseAddr("192.0.2.10"))
		cert, key, caFile := writeCert(t, ca, -time.Hour, domain)
		unused := xmpptest.FreeAddr(t)
		cfg := writeConfig(cert, key, fmt.Sprintf("direct_tls = [%q]\n", unused))
		st, out, errs := run(t, "", "check", "-c", cfg, "-dns", dns.Addr.String(), "-roots", caFile)
		if st != 1 {
			t.Errorf("status %d, want 1", st)
		}
		for _, want := range []string{
			"PROBLEM  certs: tls.cert " + cert + " expired on ",
			"does not cover conference.example.test (it names example.test)",
			"does not cover upload.example.test",
			"PROBLEM  dns: no SRV record _xmpp-client._tcp.example.test (ode listens on c2s.listen = " + c2sAddr + ")",
			"fix: add \"_xmpp-client._tcp.example.test. 3600 IN SRV 0 5 " + strconv.Itoa(int(portOf(t, c2sAddr))) + " example.test.\"",
			fmt.Sprintf("PROBLEM  dns: _xmpps-client._tcp.example.test points to port %d of example.test, but ode's c2s.direct_tls ports are [%d]",
				portOf(t, directAddr)+1, portOf(t, directAddr)),
			"PROBLEM  dns: xmpp.example.test (from _xmpp-server._tcp.example.test) resolves to 192.0.2.10, which is not this machine",
			"PROBLEM  dns: no SRV record _xmpps-server._tcp.example.test",
			"PROBLEM  dns: no SRV record _xmpp-server._tcp.conference.example.test",
			"PROBLEM  dns: no SRV record _xmpp-server._tcp.upload.example.test",
			"PROBLEM  ports: nothing accepts connections on " + unused + " (s2s.direct_tls)",
			"ok       ports: " + c2sAddr + " (c2s.listen) accepts connections",
			"ok       hostmeta: " + publicURL + "/.well-known/host-meta announces the web transports",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the report does not say %q", want)
			}
		}
		if !strings.Contains(errs, "problems found") {
			t.Errorf("stderr: %q", errs)
		}
		if n := strings.Count(out, "PROBLEM"); n != strings.Count(out, "fix: ") {
			t.Errorf("%d problems but %d fixes", n, strings.Count(out, "fix: "))
		}
		if t.Failed() {
			t.Logf("ode check said:\n%s%s", out, errs)
		}
	})

	t.Run("good", func(t *testing.T) {
		dns := xmpptest.StartDNS(t)
		dns.AddAddr(domain, here)
		dns.AddSRV("xmpp-client", domain, domain, portOf(t, c2sAddr))
		dns.AddSRV("xmpps-client", domain, domain, portOf(t, directAddr))
		dns.AddSRV("xmpp-server", domain, "xmpp."+domain, portOf(t, s2sAddr))
		dns.AddAddr("xmpp."+domain, here)
		for _, s := range []string{"conference.", "upload."} {
			dns.AddSRV("xmpp-server", s+domain, domain, portOf(t, s2sAddr))
		}
		cert, key, caFile := writeCert(t, ca, 90*24*time.Hour, domain, "*."+domain)
		st, out, errs := run(t, "", "check", "-c", writeConfig(cert, key, ""), "-dns", dns.Addr.String(), "-roots", caFile)
		if st != 0 || !strings.Contains(out, "no problems found") || strings.Contains(out, "PROBLEM") {
			t.Errorf("status %d\n%s%s", st, out, errs)
		}
		for _, want := range []string{
			"covers example.test, upload.example.test, conference.example.test",
			fmt.Sprintf("ok       dns: _xmpp-client._tcp.example.test → example.test:%d", portOf(t, c2sAddr)),
			fmt.Sprintf("ok       dns: _xmpp-server._tcp.conference.example.test → example.test:%d", portOf(t, s2sAddr)),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the report does not say %q:\n%s", want, out)
			}
		}
	})
}
