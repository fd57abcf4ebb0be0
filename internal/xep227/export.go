package xep227

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/ode-xmpp/ode/internal/modules/pep"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/xmlstream"
)

// ExportOptions says what Export writes.
type ExportOptions struct {
	// Domains are the hosts to export.
	Domains []string
	// RoomServices are the MUC services whose stored rooms are exported.
	RoomServices []string
}

// exportPage is how many archived messages one store query reads.
const exportPage = 500

// hashes are the SCRAM hashes exported, in this order.
var hashes = []string{"SHA-1", "SHA-256", "SHA-512"}

// Export writes the accounts of opts.Domains and the rooms of
// opts.RoomServices from store to w as one XEP-0227 document. The
// output is canonical: hosts, users, roster items, documents and rooms
// sorted, archives in archive order, no time of export, so that the same
// data always makes the same bytes. It holds one user's roster, offline
// messages and one page of an archive in memory at a time.
func Export(ctx context.Context, store storage.Store, w io.Writer, opts ExportOptions) (Stats, error) {
	ex := &exporter{store: store, w: bufio.NewWriterSize(w, 64<<10)}
	err := ex.run(ctx, opts)
	if ferr := ex.w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("xep227: write: %w", ferr)
	}
	return ex.stats, err
}

type exporter struct {
	store storage.Store
	w     *bufio.Writer
	buf   []byte
	stats Stats
}

// line writes indent spaces and s and a newline.
func (ex *exporter) line(indent int, s string) {
	for range indent {
		ex.w.WriteString("  ")
	}
	ex.w.WriteString(s)
	ex.w.WriteByte('\n')
}

// elem writes e on a line of its own; parentNS is the default namespace
// in scope.
func (ex *exporter) elem(indent int, e *xmlstream.Element, parentNS string) {
	ex.buf = e.AppendXML(ex.buf[:0], parentNS)
	ex.line(indent, string(ex.buf))
}

// open writes a start tag of an element in ns (declared when it is not
// parentNS) with attributes.
func (ex *exporter) open(indent int, ns, parentNS, local string, attrs ...string) {
	b := append(ex.buf[:0], '<')
	b = append(b, local...)
	if ns != parentNS {
		b = append(b, ` xmlns="`...)
		b = xmlstream.AppendEscaped(b, ns, true)
		b = append(b, '"')
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		b = append(b, ' ')
		b = append(b, attrs[i]...)
		b = append(b, `="`...)
		b = xmlstream.AppendEscaped(b, attrs[i+1], true)
		b = append(b, '"')
	}
	b = append(b, '>')
	ex.buf = b
	ex.line(indent, string(b))
}

func (ex *exporter) run(ctx context.Context, opts ExportOptions) error {
	ex.line(0, `<?xml version="1.0" encoding="UTF-8"?>`)
	ex.open(0, NS, "", "server-data")
	domains := slices.Sorted(slices.Values(opts.Domains))
	for _, d := range slices.Compact(domains) {
		if err := ex.host(ctx, d); err != nil {
			return err
		}
	}
	services := slices.Sorted(slices.Values(opts.RoomServices))
	for _, s := range slices.Compact(services) {
		if err := ex.rooms(ctx, s); err != nil {
			return err
		}
	}
	ex.line(0, "</server-data>")
	return nil
}

func (ex *exporter) host(ctx context.Context, domain string) error {
	users, err := ex.store.ListAccounts(ctx, domain)
	if err != nil {
		return fmt.Errorf("xep227: accounts of %s: %w", domain, err)
	}
	ex.stats.Hosts++
	ex.open(1, NS, NS, "host", "jid", domain)
	for _, local := range users {
		if err := ex.user(ctx, local, domain); err != nil {
			return fmt.Errorf("xep227: %s@%s: %w", local, domain, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	ex.line(1, "</host>")
	return nil
}

func (ex *exporter) user(ctx context.Context, local, domain string) error {
	ex.stats.Users++
	ex.open(2, NS, NS, "user", "name", local)
	for _, h := range hashes {
		c, err := ex.store.Credential(ctx, local, domain, h)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("credential: %w", err)
		}
		ex.elem(3, credentialElement(c), NS)
		ex.stats.Credentials++
	}
	steps := []func(context.Context, string, string) error{ex.roster, ex.vcard, ex.private, ex.offline, ex.blocklist, ex.pep, ex.archive}
	for _, step := range steps {
		if err := step(ctx, local, domain); err != nil {
			return err
		}
	}
	ex.line(2, "</user>")
	return nil
}

// roster writes the roster (§4.4) and the pending subscription requests
// (§4.9), the stored ones oldest first, then one for each item pending
// in without a stored request.
func (ex *exporter) roster(ctx context.Context, local, domain string) error {
	items, _, err := ex.store.Roster(ctx, local, domain)
	if err != nil {
		return fmt.Errorf("roster: %w", err)
	}
	if len(items) > 0 {
		ex.open(3, nsRoster, NS, "query")
		for _, it := range items {
			ex.elem(4, rosterItemElement(it), nsRoster)
		}
		ex.line(3, "</query>")
		ex.stats.RosterItems += len(items)
	}
	pending, err := ex.store.PendingSubscriptions(ctx, local, domain)
	if err != nil {
		return fmt.Errorf("subscription requests: %w", err)
	}
	seen := map[string]bool{}
	for _, p := range pending {
		e, err := xmlstream.ParseElement(p.Stanza, nsClient)
		if err != nil {
			return fmt.Errorf("subscription request from %s: %w", p.Contact, err)
		}
		seen[p.Contact] = true
		ex.elem(3, e, NS)
	}
	for _, it := range items {
		if it.PendingIn && !seen[it.Contact] {
			ex.elem(3, xmlstream.NewElement(nsClient, "presence").SetAttr("from", it.Contact).
				SetAttr("to", local+"@"+domain).SetAttr("type", "subscribe"), NS)
			seen[it.Contact] = true
		}
	}
	ex.stats.Pending += len(seen)
	return nil
}

func (ex *exporter) vcard(ctx context.Context, local, domain string) error {
	doc, err := ex.store.GetXML(ctx, local, domain, vcardKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vCard: %w", err)
	}
	e, err := xmlstream.ParseElement(doc, nsClient)
	if err != nil {
		return fmt.Errorf("stored vCard: %w", err)
	}
	ex.elem(3, e, NS)
	ex.stats.VCards++
	return nil
}

func (ex *exporter) private(ctx context.Context, local, domain string) error {
	keys, err := ex.store.XMLKeys(ctx, local, domain, privatePrefix)
	if err != nil {
		return fmt.Errorf("private XML: %w", err)
	}
	if len(keys) == 0 {
		return nil
	}
	ex.open(3, nsPrivate, NS, "query")
	for _, k := range keys {
		doc, err := ex.store.GetXML(ctx, local, domain, k)
		if err != nil {
			return fmt.Errorf("private XML %s: %w", k, err)
		}
		e, err := xmlstream.ParseElement(doc, nsClient)
		if err != nil {
			return fmt.Errorf("stored private XML %s: %w", k, err)
		}
		ex.elem(4, e, nsPrivate)
		ex.stats.PrivateXML++
	}
	ex.line(3, "</query>")
	return nil
}

func (ex *exporter) offline(ctx context.Context, local, domain string) error {
	msgs, err := ex.store.OfflineMessages(ctx, local, domain)
	if err != nil {
		return fmt.Errorf("offline messages: %w", err)
	}
	if len(msgs) == 0 {
		return nil
	}
	ex.open(3, NS, NS, "offline-messages")
	for _, m := range msgs {
		e, err := offlineElement(m, domain)
		if err != nil {
			return fmt.Errorf("offline message %d: %w", m.ID, err)
		}
		ex.elem(4, e, NS)
	}
	ex.line(3, "</offline-messages>")
	ex.stats.Offline += len(msgs)
	return nil
}

func (ex *exporter) blocklist(ctx context.Context, local, domain string) error {
	jids, err := ex.store.Blocklist(ctx, local, domain)
	if err != nil {
		return fmt.Errorf("block list: %w", err)
	}
	if len(jids) == 0 {
		return nil
	}
	ex.open(3, nsBlocking, NS, "blocklist")
	for _, j := range jids {
		ex.elem(4, xmlstream.NewElement(nsBlocking, "item").SetAttr("jid", j), nsBlocking)
	}
	ex.line(3, "</blocklist>")
	ex.stats.Blocked += len(jids)
	return nil
}

// pep writes the account's PEP nodes (§4.10): their configurations,
// then their items, oldest first, with when each was published and by
// whom.
func (ex *exporter) pep(ctx context.Context, local, domain string) error {
	nodes, err := ex.store.PubSubNodes(ctx, local, domain)
	if err != nil {
		return fmt.Errorf("PEP nodes: %w", err)
	}
	if len(nodes) == 0 {
		return nil
	}
	ex.open(3, nsPubSubOwn, NS, "pubsub")
	for _, n := range nodes {
		form, err := pep.PortableForm(n.Config)
		if err != nil {
			return fmt.Errorf("PEP node %s: %w", n.Node, err)
		}
		ex.elem(4, xmlstream.NewElement(nsPubSubOwn, "configure").SetAttr("node", n.Node).
			SetAttrNS(NSODE, "created", n.Created.UTC().Format(stampLayout)).Append(form), nsPubSubOwn)
	}
	ex.line(3, "</pubsub>")
	ex.stats.PEPNodes += len(nodes)
	open := false
	for _, n := range nodes {
		items, err := ex.store.PubSubItems(ctx, local, domain, n.Node, nil, 0)
		if err != nil {
			return fmt.Errorf("PEP items of %s: %w", n.Node, err)
		}
		if len(items) == 0 {
			continue
		}
		if !open {
			ex.open(3, nsPubSub, NS, "pubsub")
			open = true
		}
		ex.open(4, nsPubSub, nsPubSub, "items", "node", n.Node)
		for i := len(items) - 1; i >= 0; i-- { // oldest first
			it := items[i]
			e := xmlstream.NewElement(nsPubSub, "item").SetAttr("id", it.ID).SetAttr("publisher", it.Publisher).
				SetAttrNS(NSODE, "published", it.Published.UTC().Format(stampLayout))
			if len(it.Payload) > 0 {
				p, err := xmlstream.ParseElement(it.Payload, "")
				if err != nil {
					return fmt.Errorf("PEP item %s of %s: %w", it.ID, n.Node, err)
				}
				e.Append(p)
			}
			ex.elem(5, e, nsPubSub)
		}
		ex.line(4, "</items>")
		ex.stats.PEPItems += len(items)
	}
	if open {
		ex.line(3, "</pubsub>")
	}
	return nil
}

func (ex *exporter) archive(ctx context.Context, local, domain string) error {
	n, err := ex.pages(3, func(after string) (storage.ArchivePage, error) {
		return ex.store.QueryArchive(ctx, local, domain, storage.ArchiveQuery{AfterID: after, Max: exportPage})
	})
	ex.stats.Archived += n
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// pages writes an archive (§4.11) read a page at a time, and returns
// how many messages it wrote; nothing for an empty archive.
func (ex *exporter) pages(indent int, query func(after string) (storage.ArchivePage, error)) (int, error) {
	after, n := "", 0
	for {
		page, err := query(after)
		if err != nil {
			return n, err
		}
		if n == 0 && len(page.Messages) > 0 {
			ex.open(indent, NSMAM, NS, "archive")
		}
		for _, m := range page.Messages {
			e, err := resultElement(m)
			if err != nil {
				return n, err
			}
			ex.elem(indent+1, e, NSMAM)
			n++
		}
		if page.Complete || len(page.Messages) == 0 {
			break
		}
		after = page.Messages[len(page.Messages)-1].ID
	}
	if n > 0 {
		ex.line(indent, "</archive>")
	}
	return n, nil
}

// rooms writes the stored rooms of a MUC service (ode's format, see
// rooms.go); nothing for a service without any.
func (ex *exporter) rooms(ctx context.Context, service string) error {
	rooms, err := ex.store.Rooms(ctx, service)
	if err != nil {
		return fmt.Errorf("xep227: rooms of %s: %w", service, err)
	}
	if len(rooms) == 0 {
		return nil
	}
	ex.open(1, NSMUC, NS, "muc", "service", service)
	for _, r := range rooms {
		if err := ex.room(ctx, r); err != nil {
			return fmt.Errorf("xep227: room %s: %w", r.JID, err)
		}
	}
	ex.line(1, "</muc>")
	return nil
}

func (ex *exporter) room(ctx context.Context, r storage.Room) error {
	ex.stats.Rooms++
	ex.open(2, NSMUC, NSMUC, "room", "jid", r.JID, "created", r.Created.UTC().Format(stampLayout))
	form, err := roomForm(r.Config)
	if err != nil {
		return err
	}
	ex.elem(3, form, NSMUC)
	if r.Subject != nil {
		msg, err := xmlstream.ParseElement(r.Subject, nsClient)
		if err != nil {
			return fmt.Errorf("stored subject: %w", err)
		}
		ex.elem(3, xmlstream.NewElement(NSMUC, "subject").Append(msg), NSMUC)
	}
	if len(r.Affiliations) > 0 {
		ex.open(3, nsMUCAdmin, NSMUC, "query")
		jids := make([]string, 0, len(r.Affiliations))
		for j := range r.Affiliations {
			jids = append(jids, j)
		}
		slices.Sort(jids)
		for _, j := range jids {
			ex.elem(4, xmlstream.NewElement(nsMUCAdmin, "item").SetAttr("affiliation", r.Affiliations[j]).SetAttr("jid", j), nsMUCAdmin)
		}
		ex.line(3, "</query>")
		ex.stats.RoomAffiliations += len(jids)
	}
	n, err := ex.pages(3, func(after string) (storage.ArchivePage, error) {
		return ex.store.QueryRoomArchive(ctx, r.JID, storage.ArchiveQuery{AfterID: after, Max: exportPage})
	})
	ex.stats.RoomArchived += n
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	ex.line(2, "</room>")
	return nil
}
