package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules/muc"
	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/server"
	"github.com/ode-xmpp/ode/internal/xep227"
)

// `ode export` and `ode import` move accounts between servers as
// XEP-0227 documents (internal/xep227); `ode migrate` is another thing:
// it copies a store between ode's own backends.

const (
	exportSynopsis = "ode export [-c FILE] [-o FILE] [-domain DOMAIN]..."
	importSynopsis = "ode import [-c FILE] FILE..."
)

// domainList is a repeatable -domain flag.
type domainList []string

func (d *domainList) String() string     { return fmt.Sprint(*d) }
func (d *domainList) Set(s string) error { *d = append(*d, s); return nil }

// roomServices returns the MUC services of the configuration's domains
// (none when the muc module is disabled).
func roomServices(cfg config.Config) []string {
	if slices.Contains(cfg.Modules.Disabled, "muc") {
		return nil
	}
	sub := "conference"
	if c, ok := cfg.Modules.Settings["muc"].(*muc.Config); ok {
		sub = c.Subdomain
	}
	var out []string
	for _, d := range cfg.Server.Domains {
		out = append(out, sub+"."+d)
	}
	return out
}

// exportCmd is `ode export`: the accounts and rooms of the store as one
// XEP-0227 document, on standard output or in a new file readable by its
// owner only (it holds password verifiers).
func (e env) exportCmd(args []string) int {
	fs, cfgPath := e.newFlags("export", exportSynopsis)
	out := fs.String("o", "", "write the document to this new file (mode 0600) instead of standard output")
	var domains domainList
	fs.Var(&domains, "domain", "export only this hosted domain (repeatable; default: every domain of server.domains)")
	pos, err := parse(fs, args)
	if err != nil {
		return flagStatus(err)
	}
	if len(pos) != 0 {
		return e.errorf("usage: %s", exportSynopsis)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return e.errorf("%v", err)
	}
	opts := xep227.ExportOptions{Domains: cfg.Server.Domains, RoomServices: roomServices(cfg)}
	if len(domains) > 0 {
		for _, d := range domains {
			if !hosted(cfg, d) {
				return e.errorf("export: domain %s is not served by this server (server.domains = %v)", d, cfg.Server.Domains)
			}
		}
		opts.Domains = domains
		opts.RoomServices = nil
		for _, s := range roomServices(cfg) {
			for _, d := range domains {
				if strings.HasSuffix(s, "."+d) {
					opts.RoomServices = append(opts.RoomServices, s)
				}
			}
		}
	}
	ctx, stop := signalContext()
	defer stop()
	store, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return e.errorf("%v", err)
	}
	defer store.Close()
	w := e.stdout
	var f *os.File
	if *out != "" {
		if f, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return e.errorf("export: %v", err)
		}
		w = f
	}
	start := time.Now()
	st, err := xep227.Export(ctx, store, w, opts)
	if f != nil {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		if f != nil {
			os.Remove(*out) // a partial export is no export
		}
		return e.errorf("export: %v", err)
	}
	fmt.Fprintf(e.stderr, "exported %d users of %d hosts (%d SCRAM verifiers, %d roster items, %d offline and %d archived messages, %d PEP nodes) and %d rooms in %v\n",
		st.Users, st.Hosts, st.Credentials, st.RosterItems, st.Offline, st.Archived, st.PEPNodes, st.Rooms, time.Since(start).Round(time.Millisecond))
	return 0
}

// importCmd is `ode import`: XEP-0227 documents (ode's, ejabberd's
// export_piefxis, Prosody's mod_storage_xep0227 files) into the store.
func (e env) importCmd(args []string) int {
	fs, cfgPath := e.newFlags("import", importSynopsis)
	pos, err := parse(fs, args)
	if err != nil {
		return flagStatus(err)
	}
	if len(pos) == 0 {
		return e.errorf("usage: %s", importSynopsis)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return e.errorf("%v", err)
	}
	ctx, stop := signalContext()
	defer stop()
	// The server caches what the import writes (rooms, online users'
	// block lists) and is the only writer of it while it runs.
	if c, err := dialControl(ctx, cfg); err != nil {
		return e.errorf("%v", err)
	} else if c != nil {
		return e.errorf("the server is running (its control socket %s answers): stop it before importing", cfg.SocketPath())
	}
	if err := os.MkdirAll(cfg.Server.DataDir, 0o750); err != nil {
		return e.errorf("data directory: %v", err)
	}
	store, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return e.errorf("%v", err)
	}
	defer store.Close()
	opts := xep227.ImportOptions{Domains: cfg.Server.Domains, RoomServices: roomServices(cfg),
		Notice: func(msg string) { fmt.Fprintf(e.stderr, "ode: import: %s\n", msg) }}
	if c, ok := cfg.Modules.Settings["pep"].(*pep.Config); ok {
		opts.PEPMaxItems = c.MaxItems
	}
	start := time.Now()
	var total xep227.Stats
	for _, p := range pos {
		st, err := xep227.ImportFile(ctx, store, p, opts)
		total = addStats(total, st)
		if err != nil {
			fmt.Fprintf(e.stdout, "imported before the error: %v\n", total)
			return e.errorf("import: %v", err)
		}
	}
	fmt.Fprintf(e.stdout, "imported in %v: %v\n", time.Since(start).Round(time.Millisecond), total)
	return 0
}

// addStats sums two import counts.
func addStats(a, b xep227.Stats) xep227.Stats {
	a.Hosts += b.Hosts
	a.Users += b.Users
	a.Skipped += b.Skipped
	a.Credentials += b.Credentials
	a.Passwords += b.Passwords
	a.RosterItems += b.RosterItems
	a.Pending += b.Pending
	a.VCards += b.VCards
	a.PrivateXML += b.PrivateXML
	a.Offline += b.Offline
	a.Archived += b.Archived
	a.Blocked += b.Blocked
	a.Rooms += b.Rooms
	a.RoomAffiliations += b.RoomAffiliations
	a.RoomArchived += b.RoomArchived
	a.PEPNodes += b.PEPNodes
	a.PEPItems += b.PEPItems
	a.Ignored += b.Ignored
	return a
}
