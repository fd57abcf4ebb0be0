package xep227

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/xmlstream"
)

// ImportOptions says what Import accepts and where it reports.
type ImportOptions struct {
	// Domains are the hosts this server serves; a <host/> for another
	// domain stops the import (nothing of it is written).
	Domains []string
	// RoomServices are the MUC services (such as conference.example.org)
	// whose rooms may be imported; rooms of another service stop the
	// import.
	RoomServices []string
	// Limits bounds the input.
	Limits Limits
	// Notice, when set, is told what was skipped or changed: existing
	// accounts, elements ode does not import, archive ids renumbered.
	Notice func(msg string)
	// Iterations is the SCRAM iteration count for plaintext passwords
	// (0: sasl's default).
	Iterations int
	// PEPMaxItems is the pep module's cap on a node's max_items (0: its
	// default, 256).
	PEPMaxItems int
}

// Stats counts what an import wrote (or an export read).
type Stats struct {
	Hosts, Users, Skipped   int // users skipped: their account existed
	Credentials, Passwords  int // SCRAM verifiers carried; plaintext passwords hashed
	RosterItems, Pending    int
	VCards, PrivateXML      int
	Offline, Archived       int
	Blocked                 int
	Rooms, RoomAffiliations int
	RoomArchived            int
	PEPNodes, PEPItems      int
	Ignored                 int // elements ode does not import
}

// String sums the counts up for the operator.
func (s Stats) String() string {
	return fmt.Sprintf("%d hosts, %d users (%d skipped: they exist), %d SCRAM verifiers carried, %d plaintext passwords hashed, "+
		"%d roster items, %d subscription requests, %d vCards, %d private XML documents, %d offline messages, "+
		"%d archived messages, %d blocked JIDs, %d PEP nodes with %d items, %d rooms with %d affiliations and %d archived messages, %d elements ignored",
		s.Hosts, s.Users, s.Skipped, s.Credentials, s.Passwords, s.RosterItems, s.Pending, s.VCards, s.PrivateXML, s.Offline,
		s.Archived, s.Blocked, s.PEPNodes, s.PEPItems, s.Rooms, s.RoomAffiliations, s.RoomArchived, s.Ignored)
}

// ImportFile imports the XEP-0227 document in the file at path, and the
// files it includes (relative to its directory, never outside it), into
// store. Its root is <server-data/> or, as ejabberd writes one file per
// host, <host/>.
func ImportFile(ctx context.Context, store storage.Store, path string, opts ImportOptions) (Stats, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Stats{}, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return Stats{}, fmt.Errorf("xep227: %w", err)
	}
	defer f.Close()
	im := newImporter(store, opts, filepath.Dir(abs))
	err = im.document(ctx, path, f)
	return im.stats, err
}

// Import imports a XEP-0227 document read from r (named name in errors)
// into store. Includes are resolved relative to dir; with dir "" a
// document with includes is refused.
func Import(ctx context.Context, store storage.Store, r io.Reader, name, dir string, opts ImportOptions) (Stats, error) {
	im := newImporter(store, opts, dir)
	err := im.document(ctx, name, r)
	return im.stats, err
}

// importer is one run of Import.
type importer struct {
	store    storage.Store
	opts     ImportOptions
	lim      Limits
	dir      string // includes must resolve under it
	stats    Stats
	includes int // nesting of included files
	open     []string
	ignored  map[string]bool
	batch    []*user // users without data, created together
}

func newImporter(store storage.Store, opts ImportOptions, dir string) *importer {
	return &importer{store: store, opts: opts, lim: opts.Limits.withDefaults(), dir: dir, ignored: map[string]bool{}}
}

func (im *importer) notice(format string, args ...any) {
	if im.opts.Notice != nil {
		im.opts.Notice(fmt.Sprintf(format, args...))
	}
}

// ignore skips an element ode does not import, telling the operator
// once per kind of element.
func (im *importer) ignore(dec *decoder, t xml.StartElement, where string) error {
	im.stats.Ignored++
	key := where + " {" + t.Name.Space + "}" + t.Name.Local
	if !im.ignored[key] {
		im.ignored[key] = true
		line, col := dec.d.InputPos()
		im.notice("%s:%d:%d: <%s xmlns='%s'> in %s is not imported (reported once)", dec.name, line, col, t.Name.Local, t.Name.Space, where)
	}
	return dec.skip()
}

// level is where an included file's root goes.
type level int

const (
	levelTop      level = iota // server-data, or a host file
	levelHost                  // an include in server-data: a host
	levelUser                  // an include in host: a user
	levelUserData              // an include in user: one of its elements
)

// document reads one file: the first one, or an included one whose
// root is at level lv.
func (im *importer) document(ctx context.Context, name string, r io.Reader) error {
	if err := im.file(ctx, newDecoder(name, r, im.lim), levelTop, nil); err != nil {
		return err
	}
	return im.flush(ctx)
}

// file reads a file's root element and what it holds. h and u are the
// host and user an included file's root belongs to.
func (im *importer) file(ctx context.Context, dec *decoder, lv level, u *user) error {
	start, err := dec.root()
	if err != nil {
		return err
	}
	switch {
	case lv == levelUserData:
		if err := im.userChild(ctx, dec, u, start); err != nil {
			return err
		}
	case lv == levelUser && isPIE(start.Name, "user"):
		if err := im.user(ctx, dec, u.host, start); err != nil {
			return err
		}
	case (lv == levelTop || lv == levelHost) && isPIE(start.Name, "host"):
		if err := im.host(ctx, dec, start); err != nil {
			return err
		}
	case lv == levelTop && isPIE(start.Name, "server-data"):
		if err := im.serverData(ctx, dec); err != nil {
			return err
		}
	case lv == levelTop && isPIE(start.Name, "user"):
		return dec.errorf("the root is a <user/>: import the file of its <host/> or <server-data/>")
	default:
		return dec.errorf("unexpected root element <%s xmlns='%s'>; want XEP-0227's <server-data xmlns='%s'>", start.Name.Local, start.Name.Space, NS)
	}
	return dec.end()
}

// root returns the root element's start tag.
func (dec *decoder) root() (xml.StartElement, error) {
	for {
		tok, err := dec.token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			if len(strings.TrimSpace(string(t))) > 0 {
				return xml.StartElement{}, dec.errorf("text before the root element")
			}
		}
	}
}

// end checks that nothing but whitespace follows the root element.
func (dec *decoder) end() error {
	for {
		tok, err := dec.d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return dec.wrap(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return dec.errorf("a second root element <%s>", t.Name.Local)
		case xml.CharData:
			if len(strings.TrimSpace(string(t))) > 0 {
				return dec.errorf("text after the root element")
			}
		}
	}
}

func isPIE(n xml.Name, local string) bool {
	return (n.Space == NS || n.Space == NSOld) && n.Local == local
}

func isInclude(n xml.Name) bool { return n.Space == NSXInclude && n.Local == "include" }

// children calls fn with the start tag of each child element of the
// element just opened, until its end tag; fn must consume the child.
// Text other than whitespace is an error.
func (dec *decoder) children(what string, fn func(xml.StartElement) error) error {
	for {
		tok, err := dec.token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := fn(t); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		case xml.CharData:
			if len(strings.TrimSpace(string(t))) > 0 {
				return dec.errorf("text in %s", what)
			}
		}
	}
}

func (im *importer) serverData(ctx context.Context, dec *decoder) error {
	return dec.children("<server-data/>", func(t xml.StartElement) error {
		switch {
		case isPIE(t.Name, "host"):
			return im.host(ctx, dec, t)
		case isInclude(t.Name):
			return im.include(ctx, dec, t, levelHost, nil)
		case t.Name.Space == NSMUC && t.Name.Local == "muc":
			return im.muc(ctx, dec, t)
		}
		return im.ignore(dec, t, "<server-data/>")
	})
}

// include reads the file an XInclude element names (XEP-0227 §5: an
// href with a relative URI, no parse, no xpointer), as the content of
// the element at lv.
func (im *importer) include(ctx context.Context, dec *decoder, t xml.StartElement, lv level, u *user) error {
	href := attr(t, "href")
	switch {
	case href == "":
		return dec.errorf("<xi:include/> without an href")
	case attr(t, "parse") != "" && attr(t, "parse") != "xml", attr(t, "xpointer") != "":
		return dec.errorf("<xi:include href='%s'/> with parse or xpointer is not supported", href)
	case im.dir == "":
		return dec.errorf("<xi:include href='%s'/>: includes need the document read from a file", href)
	case strings.Contains(href, ":") || strings.HasPrefix(href, "/") || strings.Contains(href, "\\"):
		return dec.errorf("<xi:include href='%s'/>: only a relative path is allowed", href)
	}
	if err := dec.skip(); err != nil {
		return err
	}
	if im.includes >= im.lim.MaxIncludeDepth {
		return dec.errorf("<xi:include href='%s'/>: includes nested deeper than %d", href, im.lim.MaxIncludeDepth)
	}
	path := filepath.Join(im.dir, filepath.FromSlash(href))
	if rel, err := filepath.Rel(im.dir, path); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return dec.errorf("<xi:include href='%s'/>: the file is outside %s", href, im.dir)
	}
	if slices.Contains(im.open, path) {
		return dec.errorf("<xi:include href='%s'/> includes itself", href)
	}
	f, err := os.Open(path)
	if err != nil {
		return dec.errorf("<xi:include href='%s'/>: %v", href, err)
	}
	defer f.Close()
	im.includes++
	im.open = append(im.open, path)
	defer func() {
		im.includes--
		im.open = im.open[:len(im.open)-1]
	}()
	return im.file(ctx, newDecoder(path, f, im.lim), lv, u)
}

// host imports a <host/> (§4.1).
func (im *importer) host(ctx context.Context, dec *decoder, t xml.StartElement) error {
	raw := attr(t, "jid")
	j, err := jid.Parse(raw)
	if err != nil || !j.IsDomain() {
		return dec.errorf("<host jid='%s'>: not a domain JID", raw)
	}
	domain := j.DomainString()
	if !slices.Contains(im.opts.Domains, domain) {
		return dec.errorf("<host jid='%s'>: this server does not serve %s (server.domains = %v); add it, or import only the other hosts' files", raw, domain, im.opts.Domains)
	}
	im.stats.Hosts++
	u := &user{host: domain}
	return dec.children("<host/>", func(t xml.StartElement) error {
		switch {
		case isPIE(t.Name, "user"):
			return im.user(ctx, dec, domain, t)
		case isInclude(t.Name):
			return im.include(ctx, dec, t, levelUser, u)
		}
		return im.ignore(dec, t, "<host/>")
	})
}

// user is the account being imported.
type user struct {
	host, local string
	creds       []storage.Credential
	password    string
	created     bool // the account was created by this import
	skip        bool // it existed: the rest of its element is skipped
	pending     map[string]bool
}

func (u *user) jid() string { return u.local + "@" + u.host }

// user imports a <user/> (§4.2).
func (im *importer) user(ctx context.Context, dec *decoder, host string, t xml.StartElement) error {
	name := attr(t, "name")
	j, err := jid.New(name, host, "")
	if err != nil || name == "" {
		return dec.errorf("<user name='%s'>: not a valid localpart: %v", name, err)
	}
	u := &user{host: host, local: j.Local(), password: attr(t, "password"), pending: map[string]bool{}}
	if strings.HasPrefix(u.password, "scram:") { // ejabberd before the XEP had a format
		c, err := oldEjabberdSCRAM(strings.TrimPrefix(u.password, "scram:"))
		if err != nil {
			return dec.errorf("<user name='%s'>: password: %v", name, err)
		}
		u.creds, u.password = append(u.creds, c), ""
	}
	err = dec.children("<user/>", func(t xml.StartElement) error {
		if u.skip {
			return dec.skip()
		}
		if isInclude(t.Name) {
			return im.include(ctx, dec, t, levelUserData, u)
		}
		return im.userChild(ctx, dec, u, t)
	})
	if err != nil {
		return err
	}
	if !u.created && !u.skip {
		// Only credentials: created with others in one transaction.
		im.batch = append(im.batch, u)
		if len(im.batch) >= accountBatch {
			if err := im.flush(ctx); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// accountBatch is how many accounts without data one transaction
// creates.
const accountBatch = 500

// flush creates the accounts of the batch, hashing their plaintext
// passwords on every core.
func (im *importer) flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	batch := im.batch
	im.batch = nil
	accounts := make([]storage.NewAccount, len(batch))
	errs := make([]error, len(batch))
	parallel(len(batch), func(i int) {
		creds, err := im.credentials(batch[i])
		accounts[i] = storage.NewAccount{Local: batch[i].local, Domain: batch[i].host, Creds: creds}
		errs[i] = err
	})
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%w: password of %s: %v", ErrInput, batch[i].jid(), err)
		}
	}
	existed, err := im.store.CreateAccounts(ctx, accounts)
	if err != nil {
		return fmt.Errorf("xep227: create accounts: %w", err)
	}
	for _, i := range existed {
		im.notice("%s exists already: left as it is", batch[i].jid())
		batch[i].skip = true
	}
	for _, u := range batch {
		im.counted(u)
	}
	return nil
}

// credentials returns the verifiers to store for u: those carried, and
// for the other hashes those of its plaintext password.
func (im *importer) credentials(u *user) ([]storage.Credential, error) {
	creds := slices.Clone(u.creds)
	if u.password == "" {
		return creds, nil
	}
	hashed, err := hashPassword(u.password, im.opts.Iterations)
	if err != nil {
		return nil, err
	}
	for _, h := range hashed {
		if !slices.ContainsFunc(creds, func(c storage.Credential) bool { return c.Hash == h.Hash }) {
			creds = append(creds, h)
		}
	}
	return creds, nil
}

// counted adds a user whose account was created (or found existing) to
// the stats.
func (im *importer) counted(u *user) {
	if u.skip {
		im.stats.Skipped++
		return
	}
	im.stats.Users++
	im.stats.Credentials += len(u.creds)
	if u.password != "" {
		im.stats.Passwords++
		if len(u.creds) > 0 {
			im.notice("%s: both a password and SCRAM verifiers: the password is hashed for the hashes without one", u.jid())
		}
	} else if len(u.creds) == 0 {
		im.notice("%s has neither SCRAM verifiers nor a password: it cannot log in until `ode user passwd`", u.jid())
	}
	u.password = ""
}

// account creates the user's account on first need, with the
// credentials read so far; an account that exists is left alone and
// the rest of the user's data skipped.
func (im *importer) account(ctx context.Context, dec *decoder, u *user) error {
	if u.created || u.skip {
		return nil
	}
	if err := im.flush(ctx); err != nil { // keep the order of the file
		return err
	}
	creds, err := im.credentials(u)
	if err != nil {
		return dec.errorf("<user name='%s'>: password: %v", u.local, err)
	}
	err = im.store.CreateAccount(ctx, u.local, u.host, creds)
	switch {
	case errors.Is(err, storage.ErrExists):
		im.notice("%s exists already: left as it is, its data in the file skipped", u.jid())
		u.skip = true
	case err != nil:
		return fmt.Errorf("xep227: create %s: %w", u.jid(), err)
	default:
		u.created = true
	}
	im.counted(u)
	return nil
}

// hashPassword derives the stored verifiers of a plaintext password.
func hashPassword(password string, iterations int) ([]storage.Credential, error) {
	cs, err := sasl.NewCredentials(password, iterations)
	if err != nil {
		return nil, err
	}
	out := make([]storage.Credential, len(cs))
	for i, c := range cs {
		out[i] = storage.Credential{Hash: string(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	}
	return out, nil
}

// userChild imports one child element of a <user/>.
func (im *importer) userChild(ctx context.Context, dec *decoder, u *user, t xml.StartElement) error {
	n := t.Name
	switch {
	case n.Space == NSSCRAM && n.Local == "scram-credentials":
		e, err := dec.element(t)
		if err != nil {
			return err
		}
		c, err := parseCredential(e)
		if err != nil {
			return dec.errorf("<scram-credentials/> of %s: %v", u.jid(), err)
		}
		if slices.ContainsFunc(u.creds, func(o storage.Credential) bool { return o.Hash == c.Hash }) {
			return dec.errorf("<scram-credentials/> of %s: two for SCRAM-%s", u.jid(), c.Hash)
		}
		u.creds = append(u.creds, c)
		if u.created { // after other data: unusual but allowed
			creds, err := im.credentials(u)
			if err == nil {
				err = im.store.SetCredentials(ctx, u.local, u.host, creds)
			}
			if err != nil {
				return fmt.Errorf("xep227: credentials of %s: %w", u.jid(), err)
			}
			im.stats.Credentials++
		}
		return nil
	case n.Space == NSOld || n.Space == NS:
		if n.Local == "offline-messages" {
			return im.withAccount(ctx, dec, u, func() error { return im.offline(ctx, dec, u) })
		}
	case n.Space == nsRoster && n.Local == "query":
		return im.withAccount(ctx, dec, u, func() error { return im.roster(ctx, dec, u) })
	case n.Space == nsVCard && n.Local == "vCard":
		return im.withAccount(ctx, dec, u, func() error { return im.vcard(ctx, dec, u, t) })
	case n.Space == nsPrivate && n.Local == "query":
		return im.withAccount(ctx, dec, u, func() error { return im.private(ctx, dec, u) })
	case n.Space == nsPrivacy && n.Local == "query":
		return im.withAccount(ctx, dec, u, func() error { return im.privacy(ctx, dec, u, t) })
	case n.Space == nsBlocking && n.Local == "blocklist":
		return im.withAccount(ctx, dec, u, func() error { return im.blocklist(ctx, dec, u) })
	case n.Space == nsClient && n.Local == "presence":
		return im.withAccount(ctx, dec, u, func() error { return im.presence(ctx, dec, u, t) })
	case n.Space == NSMAM && n.Local == "archive":
		return im.withAccount(ctx, dec, u, func() error { return im.archive(ctx, dec, u) })
	case (n.Space == nsPubSub || n.Space == nsPubSubOwn) && n.Local == "pubsub":
		return im.withAccount(ctx, dec, u, func() error { return im.pep(ctx, dec, u, t) })
	}
	return im.ignore(dec, t, "<user/>")
}

// withAccount runs fn once the account exists; when it existed before,
// the element is skipped.
func (im *importer) withAccount(ctx context.Context, dec *decoder, u *user, fn func() error) error {
	if err := im.account(ctx, dec, u); err != nil {
		return err
	}
	if u.skip {
		return dec.skip()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fn()
}

// roster imports a jabber:iq:roster query (§4.4), item by item.
func (im *importer) roster(ctx context.Context, dec *decoder, u *user) error {
	return dec.children("the roster", func(t xml.StartElement) error {
		if t.Name.Space != nsRoster || t.Name.Local != "item" {
			return im.ignore(dec, t, "the roster")
		}
		e, err := dec.element(t)
		if err != nil {
			return err
		}
		item, ok, err := parseRosterItem(e)
		if err != nil {
			return dec.errorf("roster item of %s: %v", u.jid(), err)
		}
		if !ok {
			return nil
		}
		item.PendingIn = u.pending[item.Contact]
		if _, err := im.store.PutRosterItem(ctx, u.local, u.host, item, 0); err != nil {
			return fmt.Errorf("xep227: roster item %s of %s: %w", item.Contact, u.jid(), err)
		}
		im.stats.RosterItems++
		return nil
	})
}

// presence imports a pending subscription request (§4.9).
func (im *importer) presence(ctx context.Context, dec *decoder, u *user, t xml.StartElement) error {
	e, err := dec.element(t)
	if err != nil {
		return err
	}
	if e.Attribute("type") != "subscribe" {
		im.notice("%s: a <presence/> of type %q in <user/> is not a subscription request: skipped", u.jid(), e.Attribute("type"))
		return nil
	}
	from, err := jid.Parse(e.Attribute("from"))
	if err != nil {
		return dec.errorf("subscription request to %s: from %q: %v", u.jid(), e.Attribute("from"), err)
	}
	contact := from.Bare().String()
	if u.pending[contact] {
		return nil
	}
	if len(u.pending) >= im.lim.MaxPending {
		return dec.errorf("more than %d subscription requests to %s", im.lim.MaxPending, u.jid())
	}
	u.pending[contact] = true
	p := storage.PendingSubscription{Contact: contact, Stanza: e.AppendXML(nil, nsClient)}
	if err := im.store.PutPendingSubscription(ctx, u.local, u.host, p); err != nil {
		return fmt.Errorf("xep227: subscription request from %s to %s: %w", contact, u.jid(), err)
	}
	im.stats.Pending++
	// The roster item, if it came first, now has the request pending.
	item, err := im.store.RosterItem(ctx, u.local, u.host, contact)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("xep227: roster item %s of %s: %w", contact, u.jid(), err)
	case !item.PendingIn:
		item.PendingIn = true
		if _, err := im.store.PutRosterItem(ctx, u.local, u.host, item, 0); err != nil {
			return fmt.Errorf("xep227: roster item %s of %s: %w", contact, u.jid(), err)
		}
	}
	return nil
}

// vcard imports the vCard (§4.7).
func (im *importer) vcard(ctx context.Context, dec *decoder, u *user, t xml.StartElement) error {
	e, err := dec.element(t)
	if err != nil {
		return err
	}
	if len(e.Children) == 0 && len(e.Attr) == 0 {
		return nil // an empty vCard is none
	}
	if err := im.store.PutXML(ctx, u.local, u.host, vcardKey, []byte(e.String())); err != nil {
		return fmt.Errorf("xep227: vCard of %s: %w", u.jid(), err)
	}
	im.stats.VCards++
	return nil
}

// private imports private XML storage (§4.6), one document per child.
func (im *importer) private(ctx context.Context, dec *decoder, u *user) error {
	return dec.children("private XML", func(t xml.StartElement) error {
		e, err := dec.element(t)
		if err != nil {
			return err
		}
		switch e.Name.Space {
		case "", nsPrivate, nsClient:
			return dec.errorf("private XML of %s: <%s/> in the reserved namespace %q", u.jid(), e.Name.Local, e.Name.Space)
		}
		key := privatePrefix + e.Name.Space + " " + e.Name.Local
		if err := im.store.PutXML(ctx, u.local, u.host, key, []byte(e.String())); err != nil {
			return fmt.Errorf("xep227: private XML %s of %s: %w", key, u.jid(), err)
		}
		im.stats.PrivateXML++
		return nil
	})
}

// offline imports offline messages (§4.5), oldest first.
func (im *importer) offline(ctx context.Context, dec *decoder, u *user) error {
	return dec.children("<offline-messages/>", func(t xml.StartElement) error {
		if t.Name.Space != nsClient || t.Name.Local != "message" {
			return im.ignore(dec, t, "<offline-messages/>")
		}
		e, err := dec.element(t)
		if err != nil {
			return err
		}
		m, err := offlineMessage(e, u)
		if err != nil {
			return dec.errorf("offline message to %s: %v", u.jid(), err)
		}
		if err := im.store.StoreOffline(ctx, u.local, u.host, m, 0); err != nil {
			return fmt.Errorf("xep227: offline message to %s: %w", u.jid(), err)
		}
		im.stats.Offline++
		return nil
	})
}

// privacy imports what ode keeps of privacy lists (§4.8): the JIDs that
// the default list, or ejabberd's list for blocking ("Blocked
// contacts"), denies everything from become the block list (XEP-0191).
func (im *importer) privacy(ctx context.Context, dec *decoder, u *user, t xml.StartElement) error {
	e, err := dec.element(t)
	if err != nil {
		return err
	}
	jids := blockedByPrivacy(e)
	if len(jids) == 0 {
		im.notice("%s: privacy lists without a JID denied everything: ode has no privacy lists (XEP-0016), nothing imported", u.jid())
		return nil
	}
	return im.block(ctx, u, jids)
}

// blocklist imports ode's <blocklist xmlns='urn:xmpp:blocking'/>.
func (im *importer) blocklist(ctx context.Context, dec *decoder, u *user) error {
	var jids []string
	err := dec.children("the block list", func(t xml.StartElement) error {
		if t.Name.Space != nsBlocking || t.Name.Local != "item" {
			return im.ignore(dec, t, "the block list")
		}
		j := attr(t, "jid")
		if err := dec.skip(); err != nil {
			return err
		}
		p, err := jid.Parse(j)
		if err != nil {
			return dec.errorf("block list of %s: jid %q: %v", u.jid(), j, err)
		}
		jids = append(jids, p.String())
		if len(jids) == 1000 {
			err := im.block(ctx, u, jids)
			jids = jids[:0]
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return im.block(ctx, u, jids)
}

func (im *importer) block(ctx context.Context, u *user, jids []string) error {
	if len(jids) == 0 {
		return nil
	}
	if err := im.store.Block(ctx, u.local, u.host, jids); err != nil {
		return fmt.Errorf("xep227: block list of %s: %w", u.jid(), err)
	}
	im.stats.Blocked += len(jids)
	return nil
}

// archiveBatch is how many archived messages one store call carries.
const archiveBatch = 500

// archive imports the message archive (§4.11), oldest first.
func (im *importer) archive(ctx context.Context, dec *decoder, u *user) error {
	a := &archiveImport{im: im, owner: u.jid(), append: im.store.AppendArchive, count: &im.stats.Archived}
	err := dec.children("<archive/>", func(t xml.StartElement) error {
		if t.Name.Space != nsMAM || t.Name.Local != "result" {
			return im.ignore(dec, t, "<archive/>")
		}
		e, err := dec.element(t)
		if err != nil {
			return err
		}
		m, sd, err := archivedMessage(e)
		if err != nil {
			return dec.errorf("archived message of %s: %v", u.jid(), err)
		}
		m.Local, m.Domain = u.local, u.host
		sd.forUser(&m, u.jid())
		return a.add(ctx, m)
	})
	if err != nil {
		return err
	}
	return a.flush(ctx)
}

// archiveImport batches the messages of one archive, keeping their ids
// in increasing order (the store orders an archive by id).
type archiveImport struct {
	im      *importer
	owner   string
	append  func(context.Context, []storage.ArchivedMessage) (int, error)
	count   *int
	batch   []storage.ArchivedMessage
	last    string // the last id kept
	base    string // the id renumbered ones are suffixed to
	renum   int
	noticed bool
}

func (a *archiveImport) add(ctx context.Context, m storage.ArchivedMessage) error {
	if a.last != "" && m.ID <= a.last {
		// Ids that do not increase (Prosody's are random): the message
		// gets one after the last, in order.
		if !a.noticed {
			a.noticed = true
			a.im.notice("%s: archive ids that do not increase (such as %q after %q) are renumbered to keep the order", a.owner, m.ID, a.last)
		}
		if !strings.HasPrefix(a.last, a.base+".") || a.base == "" {
			a.base, a.renum = a.last, 0
		}
		a.renum++
		m.ID = fmt.Sprintf("%s.%08d", a.base, a.renum)
	}
	a.last = m.ID
	a.batch = append(a.batch, m)
	if len(a.batch) >= archiveBatch {
		return a.flush(ctx)
	}
	return nil
}

func (a *archiveImport) flush(ctx context.Context) error {
	if len(a.batch) == 0 {
		return nil
	}
	n, err := a.append(ctx, a.batch)
	if err != nil {
		return fmt.Errorf("xep227: archive of %s: %w", a.owner, err)
	}
	*a.count += n
	a.batch = a.batch[:0]
	return nil
}

// pep imports PEP nodes (§4.10): the owner <pubsub/> configures nodes,
// the other publishes their items, oldest first. A node with items but
// no configuration (which the XEP does not allow, but which a truncated
// export has) gets the defaults of an auto-created node.
func (im *importer) pep(ctx context.Context, dec *decoder, u *user, t xml.StartElement) error {
	owner := t.Name.Space == nsPubSubOwn
	return dec.children("<pubsub/>", func(t xml.StartElement) error {
		node := attr(t, "node")
		switch {
		case owner && t.Name.Space == nsPubSubOwn && t.Name.Local == "configure" && node != "":
			e, err := dec.element(t)
			if err != nil {
				return err
			}
			return im.pepConfigure(ctx, dec, u, node, e)
		case !owner && t.Name.Space == nsPubSub && t.Name.Local == "items" && node != "":
			return im.pepItems(ctx, dec, u, node)
		}
		return im.ignore(dec, t, "<pubsub/>")
	})
}

func (im *importer) pepConfigure(ctx context.Context, dec *decoder, u *user, node string, e *xmlstream.Element) error {
	config := []byte(nil)
	if x := e.Child(nsData, "x"); x != nil {
		c, skipped, err := pep.PortableConfig(x, im.pepMaxItems())
		if err != nil {
			return dec.errorf("PEP node %s of %s: %v", node, u.jid(), err)
		}
		if len(skipped) > 0 {
			im.notice("%s: PEP node %s: settings ode does not offer left at their defaults: %s", u.jid(), node, strings.Join(skipped, ", "))
		}
		config = c
	}
	if config == nil {
		config, _, _ = pep.PortableConfig(dataform.New(dataform.TypeSubmit, "http://jabber.org/protocol/pubsub#node_config").Element(), im.pepMaxItems())
	}
	created := time.Now().UTC()
	if c, ok := e.LookupAttr(NSODE, "created"); ok {
		t, err := time.Parse(time.RFC3339Nano, c)
		if err != nil {
			return dec.errorf("PEP node %s of %s: created %q: %v", node, u.jid(), c, err)
		}
		created = t.UTC()
	}
	err := im.store.CreatePubSubNode(ctx, u.local, u.host, storage.PubSubNode{Node: node, Config: config, Created: created.Truncate(time.Millisecond)}, 0)
	if errors.Is(err, storage.ErrExists) { // its items came first
		_, err = im.store.ConfigurePubSubNode(ctx, u.local, u.host, node, config, 0)
	} else if err == nil {
		im.stats.PEPNodes++
	}
	if err != nil {
		return fmt.Errorf("xep227: PEP node %s of %s: %w", node, u.jid(), err)
	}
	return nil
}

func (im *importer) pepMaxItems() int {
	if im.opts.PEPMaxItems > 0 {
		return im.opts.PEPMaxItems
	}
	return 256
}

func (im *importer) pepItems(ctx context.Context, dec *decoder, u *user, node string) error {
	return dec.children("PEP items", func(t xml.StartElement) error {
		if t.Name.Space != nsPubSub || t.Name.Local != "item" {
			return im.ignore(dec, t, "PEP items")
		}
		e, err := dec.element(t)
		if err != nil {
			return err
		}
		it := storage.PubSubItem{ID: e.Attribute("id"), Publisher: u.jid(), Published: time.Now().UTC().Truncate(time.Millisecond)}
		if it.ID == "" {
			return dec.errorf("PEP node %s of %s: an item without an id", node, u.jid())
		}
		if p := e.Attribute("publisher"); p != "" {
			j, err := jid.Parse(p)
			if err != nil {
				return dec.errorf("PEP item %s of %s: publisher %q: %v", it.ID, u.jid(), p, err)
			}
			it.Publisher = j.String()
		}
		if p, ok := e.LookupAttr(NSODE, "published"); ok {
			t, err := time.Parse(time.RFC3339Nano, p)
			if err != nil {
				return dec.errorf("PEP item %s of %s: published %q: %v", it.ID, u.jid(), p, err)
			}
			it.Published = t.UTC().Truncate(time.Millisecond)
		}
		if payload := e.FirstChild(); payload != nil {
			it.Payload = payload.AppendXML(nil, "")
		}
		_, err = im.store.PublishPubSubItem(ctx, u.local, u.host, node, it, 0)
		if errors.Is(err, storage.ErrNotFound) {
			if err = im.pepConfigure(ctx, dec, u, node, xmlstream.NewElement(nsPubSubOwn, "configure")); err == nil {
				_, err = im.store.PublishPubSubItem(ctx, u.local, u.host, node, it, 0)
			}
		}
		if err != nil {
			return fmt.Errorf("xep227: PEP item %s of %s: %w", it.ID, u.jid(), err)
		}
		im.stats.PEPItems++
		return nil
	})
}

// parseCredential reads a <scram-credentials/> (§4.3).
func parseCredential(e *xmlstream.Element) (storage.Credential, error) {
	mech := e.Attribute("mechanism")
	hash, ok := strings.CutPrefix(strings.TrimSuffix(mech, "-PLUS"), "SCRAM-")
	size := map[string]int{"SHA-1": 20, "SHA-256": 32, "SHA-512": 64}[hash]
	if !ok || size == 0 {
		return storage.Credential{}, fmt.Errorf("mechanism %q: want SCRAM-SHA-1, SCRAM-SHA-256 or SCRAM-SHA-512", mech)
	}
	text := func(name string) (string, error) {
		var c *xmlstream.Element
		n := 0
		for _, ch := range e.ChildrenNS(NSSCRAM) {
			if ch.Name.Local == name {
				c = ch
				n++
			}
		}
		if n != 1 {
			return "", fmt.Errorf("want one <%s/>, got %d", name, n)
		}
		return strings.TrimSpace(c.Text()), nil
	}
	iter, err := text("iter-count")
	if err != nil {
		return storage.Credential{}, err
	}
	iterations, err := positive(iter)
	if err != nil {
		return storage.Credential{}, fmt.Errorf("<iter-count>%s</iter-count>: %v", iter, err)
	}
	c := storage.Credential{Hash: hash, Iterations: iterations}
	var raw [3]string
	for i, name := range []string{"salt", "server-key", "stored-key"} {
		if raw[i], err = text(name); err != nil {
			return storage.Credential{}, err
		}
	}
	if c.Salt, c.ServerKey, c.StoredKey, err = decodeSCRAM(raw[0], raw[1], raw[2], size); err != nil {
		return storage.Credential{}, err
	}
	return c, nil
}

// oldEjabberdSCRAM reads ejabberd's password='scram:…' attribute of
// exports from before XEP-0227 1.1: [hash,]stored-key,server-key,salt,
// iterations.
func oldEjabberdSCRAM(s string) (storage.Credential, error) {
	parts := strings.Split(s, ",")
	hash := "SHA-1"
	if len(parts) == 5 {
		switch parts[0] {
		case "sha256":
			hash = "SHA-256"
		case "sha512":
			hash = "SHA-512"
		default:
			return storage.Credential{}, fmt.Errorf("unknown hash %q", parts[0])
		}
		parts = parts[1:]
	}
	if len(parts) != 4 {
		return storage.Credential{}, errors.New("want scram:[hash,]stored-key,server-key,salt,iterations")
	}
	iterations, err := positive(parts[3])
	if err != nil {
		return storage.Credential{}, fmt.Errorf("iterations %q: %v", parts[3], err)
	}
	c := storage.Credential{Hash: hash, Iterations: iterations}
	size := map[string]int{"SHA-1": 20, "SHA-256": 32, "SHA-512": 64}[hash]
	c.Salt, c.ServerKey, c.StoredKey, err = decodeSCRAM(parts[2], parts[1], parts[0], size)
	return c, err
}
