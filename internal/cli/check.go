package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ode-xmpp/ode/internal/certs"
	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules"
)

// checkAreas are the checks ode check runs after the configuration's, in
// order; -skip names some of them.
var checkAreas = []string{"certs", "dns", "ports", "hostmeta"}

func (e env) check(args []string) int {
	fs, cfgPath := e.newFlags("check", "ode check [-c FILE] [-dns HOST:PORT] [-roots FILE] [-skip certs,dns,ports,hostmeta]")
	dnsAddr := fs.String("dns", "", "DNS server (host:port) to ask instead of the system's resolver")
	rootsFile := fs.String("roots", "", "PEM file of certificate authorities trusted besides the system's (a private CA)")
	skip := fs.String("skip", "", "checks to leave out, comma-separated: "+strings.Join(checkAreas, ", "))
	if _, err := parse(fs, args); err != nil {
		return flagStatus(err)
	}
	skipped := map[string]bool{}
	for _, s := range strings.Split(*skip, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(checkAreas, s) {
			return e.errorf("-skip: unknown check %q (want %s)", s, strings.Join(checkAreas, ", "))
		}
		skipped[s] = true
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return e.errorf("%v", err)
	}
	c := &checker{cfg: cfg, w: e.stdout, now: time.Now(), resolver: net.DefaultResolver, services: modules.ServiceDomains(cfg)}
	if *dnsAddr != "" {
		if _, _, err := net.SplitHostPort(*dnsAddr); err != nil {
			return e.errorf("-dns: want host:port, such as 127.0.0.1:53: %v", err)
		}
		c.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, *dnsAddr)
		}}
	}
	if c.roots, err = rootPool(*rootsFile); err != nil {
		return e.errorf("-roots: %v", err)
	}
	c.local = append(certs.LocalAddrs(), publicIPs(cfg)...)
	source := *cfgPath
	if source == "" {
		source = "the embedded defaults"
	}
	c.ok("config", "%s is valid", source)
	if err := checkStorage(context.Background(), cfg, e.stdout); err != nil {
		return e.errorf("%v", err)
	}
	for _, area := range checkAreas {
		if skipped[area] {
			continue
		}
		switch area {
		case "certs":
			c.certificates()
		case "dns":
			c.dns()
		case "ports":
			c.ports()
		case "hostmeta":
			c.hostMeta()
		}
	}
	if c.problems > 0 {
		fmt.Fprintf(e.stderr, "ode: %d problems found (each with its fix above)\n", c.problems)
		return 1
	}
	fmt.Fprintln(e.stdout, "no problems found: configuration ok")
	return 0
}

// checker runs ode check's checks and writes one line per finding: "ok",
// "note" (nothing to fix) or "PROBLEM" followed by a line with the fix.
type checker struct {
	cfg      config.Config
	w        io.Writer
	now      time.Time
	resolver *net.Resolver
	roots    *x509.CertPool
	services []string // the services' domains
	local    []net.IP // this machine's addresses and server.public_addresses
	problems int
	running  bool // something listens on one of ode's addresses

	addrs map[string][]net.IP // looked up, by name
}

func (c *checker) ok(area, format string, args ...any) {
	fmt.Fprintf(c.w, "ok       %s: %s\n", area, fmt.Sprintf(format, args...))
}

func (c *checker) note(area, format string, args ...any) {
	fmt.Fprintf(c.w, "note     %s: %s\n", area, fmt.Sprintf(format, args...))
}

func (c *checker) problem(area, what, fix string) {
	c.problems++
	fmt.Fprintf(c.w, "PROBLEM  %s: %s\n         fix: %s\n", area, what, fix)
}

// rootPool returns the system's roots plus those of file.
func rootPool(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if file == "" {
		return pool, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

func publicIPs(cfg config.Config) []net.IP {
	var out []net.IP
	for _, a := range cfg.Server.PublicAddresses {
		if ip := net.ParseIP(a); ip != nil {
			out = append(out, ip)
		}
	}
	return out
}

// httpOn reports whether the [http] listener is configured.
func (c *checker) httpOn() bool { return len(c.cfg.HTTP.Listen)+len(c.cfg.HTTP.ListenPlain) > 0 }

// certNames returns the names certificates must cover: the domains, the
// services, and the host of http.public_url.
func (c *checker) certNames() []string {
	names := append(slices.Clone(c.cfg.Server.Domains), c.services...)
	if u, err := url.Parse(c.cfg.HTTP.PublicURL); err == nil && u.Hostname() != "" && c.httpOn() && !slices.Contains(names, u.Hostname()) {
		names = append(names, u.Hostname())
	}
	return names
}

// certificates checks the certificate files ode will serve.
func (c *checker) certificates() {
	switch {
	case c.cfg.ACME.Enabled:
		for _, d := range c.cfg.Server.Domains {
			path := filepath.Join(c.cfg.Server.DataDir, "acme", d+".crt")
			chain, err := readChain(path)
			if errors.Is(err, os.ErrNotExist) {
				c.note("certs", "no ACME certificate for %s yet: ode requests it at start from %s", d, c.cfg.ACME.Directory)
				continue
			}
			if err != nil {
				c.problem("certs", fmt.Sprintf("%s: %v", path, err), "remove the file: ode requests a new certificate at start")
				continue
			}
			names := []string{d}
			for _, s := range c.services {
				if strings.HasSuffix(s, "."+d) {
					names = append(names, s)
				}
			}
			c.checkChain(path, chain, names)
		}
	case c.cfg.TLS.Cert != "":
		if _, err := tls.LoadX509KeyPair(c.cfg.TLS.Cert, c.cfg.TLS.Key); err != nil {
			c.problem("certs", fmt.Sprintf("tls.cert %s and tls.key %s do not load: %v", c.cfg.TLS.Cert, c.cfg.TLS.Key, err),
				"give the PEM certificate chain (leaf first) in tls.cert and its private key in tls.key")
			return
		}
		chain, err := readChain(c.cfg.TLS.Cert)
		if err != nil {
			c.problem("certs", fmt.Sprintf("tls.cert %s: %v", c.cfg.TLS.Cert, err), "give the PEM certificate chain, leaf first")
			return
		}
		c.checkChain("tls.cert "+c.cfg.TLS.Cert, chain, c.certNames())
	default:
		c.note("certs", "a self-signed certificate (made in %s) is used: clients warn about it; set tls.cert and tls.key, or [acme] enabled = true",
			c.cfg.Server.DataDir)
	}
}

func readChain(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return chain, nil
}

// checkChain checks validity dates, the chain to a trusted root and the
// names of one certificate.
func (c *checker) checkChain(label string, chain []*x509.Certificate, names []string) {
	leaf := chain[0]
	good := true
	days := int(leaf.NotAfter.Sub(c.now).Hours() / 24)
	switch {
	case c.now.After(leaf.NotAfter):
		good = false
		c.problem("certs", fmt.Sprintf("%s expired on %s", label, leaf.NotAfter.UTC().Format(time.DateOnly)),
			"renew it (or set [acme] enabled = true for certificates that renew themselves); ode loads the new file without a restart")
	case c.now.Before(leaf.NotBefore):
		good = false
		c.problem("certs", fmt.Sprintf("%s is not valid before %s", label, leaf.NotBefore.UTC().Format(time.DateTime)),
			"check this machine's clock, or wait")
	case days < 7:
		good = false
		c.problem("certs", fmt.Sprintf("%s expires in %d days (%s)", label, days, leaf.NotAfter.UTC().Format(time.DateOnly)),
			"renew it now; ode loads the new file without a restart")
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	opts := x509.VerifyOptions{Roots: c.roots, Intermediates: inter, CurrentTime: c.now}
	var invalid x509.CertificateInvalidError
	if _, err := leaf.Verify(opts); err != nil && !(errors.As(err, &invalid) && invalid.Reason == x509.Expired && !good) {
		good = false
		fix := "put the CA's intermediate certificates after the leaf in the file (the full chain), or use a certificate from a public CA"
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) && leaf.Issuer.String() == leaf.Subject.String() {
			fix = "it is self-signed: use a certificate from a public CA (or [acme] enabled = true)"
		}
		c.problem("certs", fmt.Sprintf("%s: the chain does not verify: %v", label, err), fix)
	}
	for _, n := range names {
		if leaf.VerifyHostname(n) != nil {
			good = false
			c.problem("certs", fmt.Sprintf("%s does not cover %s (it names %s)", label, n, strings.Join(leaf.DNSNames, ", ")),
				fmt.Sprintf("get a certificate that also names %s (or *.%s)", n, parentOf(n)))
		}
	}
	if good {
		c.ok("certs", "%s: valid until %s (%d days left), covers %s", label, leaf.NotAfter.UTC().Format(time.DateOnly), days, strings.Join(names, ", "))
	}
}

func parentOf(name string) string {
	if _, p, ok := strings.Cut(name, "."); ok {
		return p
	}
	return name
}

// publicName reports whether DNS can be checked for name (not localhost
// or an IP address).
func publicName(name string) bool {
	return net.ParseIP(name) == nil && strings.Contains(name, ".") && name != "localhost" && !strings.HasSuffix(name, ".localhost")
}

// ports returns the port numbers of listen addresses.
func ports(addrs []string) []uint16 {
	var out []uint16
	for _, a := range addrs {
		if _, p, err := net.SplitHostPort(a); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil && n != 0 && !slices.Contains(out, uint16(n)) {
				out = append(out, uint16(n))
			}
		}
	}
	return out
}

// srvCheck is one SRV name ode check looks up for a domain.
type srvCheck struct {
	service  string   // "xmpp-client"
	listen   []string // the listeners it must lead to
	key      string   // their config key
	fallback uint16   // the port clients try without a record (RFC 6120 §3.2.2), or 0 (XEP-0368: none)
}

// dns checks the SRV records of each domain and their targets.
func (c *checker) dns() {
	checks := []srvCheck{
		{"xmpp-client", c.cfg.C2S.Listen, "c2s.listen", 5222},
		{"xmpps-client", c.cfg.C2S.DirectTLS, "c2s.direct_tls", 0},
	}
	if c.cfg.S2S.Enabled {
		checks = append(checks,
			srvCheck{"xmpp-server", c.cfg.S2S.Listen, "s2s.listen", 5269},
			srvCheck{"xmpps-server", c.cfg.S2S.DirectTLS, "s2s.direct_tls", 0})
	}
	for _, d := range c.cfg.Server.Domains {
		if !publicName(d) {
			c.note("dns", "%s is not a public DNS name: not checked", d)
			continue
		}
		for _, sc := range checks {
			c.checkSRV(d, sc)
		}
	}
	if !c.cfg.S2S.Enabled {
		return
	}
	// Other servers reach the services (conference.<domain>) by their own
	// names.
	for _, s := range c.services {
		if publicName(s) {
			c.checkSRV(s, srvCheck{"xmpp-server", c.cfg.S2S.Listen, "s2s.listen", 5269})
		}
	}
}

// checkSRV checks _service._tcp.name: present when it must be, leading
// to a port ode listens on, with targets that point here.
func (c *checker) checkSRV(name string, sc srvCheck) {
	want := ports(sc.listen)
	record := "_" + sc.service + "._tcp." + name
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, srvs, err := c.resolver.LookupSRV(ctx, sc.service, "tcp", name)
	var de *net.DNSError
	if err != nil && !(errors.As(err, &de) && de.IsNotFound) {
		c.problem("dns", fmt.Sprintf("%s: the lookup failed: %v", record, err),
			"check that this machine's resolver works (or name one with -dns HOST:PORT)")
		return
	}
	if len(srvs) == 1 && srvs[0].Target == "." {
		if len(want) > 0 {
			c.problem("dns", fmt.Sprintf("%s says the service is not offered (target \".\"), but ode listens on %s", record, strings.Join(sc.listen, ", ")),
				fmt.Sprintf("replace it with %q, or empty %s", srvLine(record, want[0], name), sc.key))
		} else {
			c.ok("dns", "%s: not offered, as %s is empty", record, sc.key)
		}
		return
	}
	if len(srvs) == 0 {
		if len(want) == 0 {
			return // not offered, not announced
		}
		if sc.fallback != 0 && slices.Contains(want, sc.fallback) && c.pointsHere(name, record) {
			c.ok("dns", "no %s record: peers fall back to %s port %d, which is ode", record, name, sc.fallback)
			return
		}
		c.problem("dns", fmt.Sprintf("no SRV record %s (ode listens on %s = %s)", record, sc.key, strings.Join(sc.listen, ", ")),
			fmt.Sprintf("add %q (or a host of yours as the target)", srvLine(record, want[0], name)))
		return
	}
	if len(want) == 0 {
		c.problem("dns", fmt.Sprintf("%s announces %s:%d, but %s is empty", record, srvs[0].Target, srvs[0].Port, sc.key),
			fmt.Sprintf("remove the record, or set %s", sc.key))
		return
	}
	good := true
	for _, s := range srvs {
		target := strings.TrimSuffix(s.Target, ".")
		if !slices.Contains(want, s.Port) {
			good = false
			c.problem("dns", fmt.Sprintf("%s points to port %d of %s, but ode's %s ports are %v", record, s.Port, target, sc.key, want),
				fmt.Sprintf("set the record's port to %d (%q), or listen on %d", want[0], srvLine(record, want[0], target), s.Port))
		}
		if !c.pointsHere(target, record) {
			good = false
		}
	}
	if good {
		var list []string
		for _, s := range srvs {
			list = append(list, fmt.Sprintf("%s:%d", strings.TrimSuffix(s.Target, "."), s.Port))
		}
		c.ok("dns", "%s → %s", record, strings.Join(list, ", "))
	}
}

func srvLine(record string, port uint16, target string) string {
	return fmt.Sprintf("%s. 3600 IN SRV 0 5 %d %s.", record, port, strings.TrimSuffix(target, "."))
}

// pointsHere checks that host's A/AAAA records name this machine (or a
// public address of the configuration); it reports a problem (once per
// host) when they do not.
func (c *checker) pointsHere(host, via string) bool {
	ips, seen := c.addrs[host]
	if !seen {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		addrs, err := c.resolver.LookupIPAddr(ctx, host)
		var de *net.DNSError
		switch {
		case err != nil && !(errors.As(err, &de) && de.IsNotFound):
			c.problem("dns", fmt.Sprintf("%s (from %s): the lookup failed: %v", host, via, err),
				"check that this machine's resolver works (or name one with -dns HOST:PORT)")
		case len(addrs) == 0:
			c.problem("dns", fmt.Sprintf("%s (from %s) has no A or AAAA record", host, via),
				fmt.Sprintf("add \"%s. 3600 IN A <this server's address>\" (and AAAA for IPv6)", host))
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
		if c.addrs == nil {
			c.addrs = make(map[string][]net.IP)
		}
		c.addrs[host] = ips
		if len(ips) > 0 && !c.here(ips) {
			var got, mine []string
			for _, ip := range ips {
				got = append(got, ip.String())
			}
			for _, ip := range c.local {
				if !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
					mine = append(mine, ip.String())
				}
			}
			c.problem("dns", fmt.Sprintf("%s (from %s) resolves to %s, which is not this machine (%s)", host, via,
				strings.Join(got, ", "), strings.Join(mine, ", ")),
				fmt.Sprintf("point the A/AAAA records of %s at this server, or list its public address in server.public_addresses", host))
		}
	}
	return len(ips) > 0 && c.here(ips)
}

// here reports whether one of ips is this machine's.
func (c *checker) here(ips []net.IP) bool {
	for _, ip := range ips {
		if slices.ContainsFunc(c.local, ip.Equal) {
			return true
		}
	}
	return false
}

// listener is one configured listen address.
type listener struct {
	key, addr string
}

func (c *checker) listeners() []listener {
	var out []listener
	add := func(key string, addrs []string) {
		for _, a := range addrs {
			out = append(out, listener{key, a})
		}
	}
	add("c2s.listen", c.cfg.C2S.Listen)
	add("c2s.direct_tls", c.cfg.C2S.DirectTLS)
	if c.cfg.S2S.Enabled {
		add("s2s.listen", c.cfg.S2S.Listen)
		add("s2s.direct_tls", c.cfg.S2S.DirectTLS)
	}
	add("http.listen", c.cfg.HTTP.Listen)
	add("http.listen_plain", c.cfg.HTTP.ListenPlain)
	return out
}

// dialable returns the address to connect to for a listen address (the
// loopback address for a wildcard host), or "" for port 0.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return ""
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// ports checks that something accepts connections on each listen address
// (ode, when it runs).
func (c *checker) ports() {
	type result struct {
		l   listener
		err error
	}
	var results []result
	for _, l := range c.listeners() {
		a := dialable(l.addr)
		if a == "" {
			continue
		}
		conn, err := net.DialTimeout("tcp", a, 3*time.Second)
		if err == nil {
			conn.Close()
			c.running = true
		}
		results = append(results, result{l, err})
	}
	if !c.running {
		if len(results) > 0 {
			c.note("ports", "nothing listens on ode's addresses: ode is not running here; run ode check again while it runs to check the ports and host-meta")
		}
		return
	}
	for _, r := range results {
		if r.err != nil {
			c.problem("ports", fmt.Sprintf("nothing accepts connections on %s (%s): %v", r.l.addr, r.l.key, r.err),
				fmt.Sprintf("see ode's log for why it could not listen on %s (another program on the port?), or reload ode if you just added it", r.l.addr))
		} else {
			c.ok("ports", "%s (%s) accepts connections", r.l.addr, r.l.key)
		}
	}
}

// hostMeta checks that web clients find the WebSocket and BOSH URLs at
// https://<domain>/.well-known/host-meta (XEP-0156), or at the origin of
// http.public_url.
func (c *checker) hostMeta() {
	if len(c.cfg.HTTP.Listen) == 0 && c.cfg.HTTP.PublicURL == "" || !c.cfg.HTTP.WebSocket && !c.cfg.HTTP.BOSH {
		return
	}
	if !c.running {
		return // said by ports
	}
	tr := &http.Transport{
		DialContext:     (&net.Dialer{Timeout: 5 * time.Second, Resolver: c.resolver}).DialContext,
		TLSClientConfig: &tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12},
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	want := "urn:xmpp:alt-connections:websocket"
	if !c.cfg.HTTP.WebSocket {
		want = "urn:xmpp:alt-connections:xbosh"
	}
	var origins []string
	if u, err := url.Parse(c.cfg.HTTP.PublicURL); err == nil && u.Host != "" {
		origins = []string{u.Scheme + "://" + u.Host}
	} else {
		for _, d := range c.cfg.Server.Domains {
			if publicName(d) {
				origins = append(origins, "https://"+d)
			}
		}
	}
	for _, o := range origins {
		u := o + "/.well-known/host-meta"
		body, err := fetchText(hc, u)
		switch {
		case err != nil:
			c.problem("hostmeta", fmt.Sprintf("GET %s: %v", u, err),
				"serve it from ode: http.listen on port 443 of the domain, or a web server there that proxies /.well-known/host-meta to ode (with http.public_url set to ode's URL)")
		case !strings.Contains(body, want):
			c.problem("hostmeta", fmt.Sprintf("%s does not announce %s", u, want),
				"have the web server there proxy /.well-known/host-meta to ode instead of serving its own file")
		default:
			c.ok("hostmeta", "%s announces the web transports", u)
		}
	}
}

func fetchText(hc *http.Client, u string) (string, error) {
	res, err := hc.Get(u)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s", res.Status)
	}
	return string(body), nil
}
