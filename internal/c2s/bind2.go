package c2s

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"

	"github.com/ode-xmpp/ode/internal/metrics"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// nsCarbons is XEP-0280's namespace, which Bind2 enables inline when the
// carbons module runs (the router lists its feature).
const nsCarbons = "urn:xmpp:carbons:2"

// maxTagBytes bounds the Bind2 <tag/> kept in a resource.
const maxTagBytes = 64

// carbonsOn reports whether the carbons module runs.
func (c *conn) carbonsOn() bool {
	return slices.Contains(c.srv.conf().Router.Features(), nsCarbons)
}

// bind2Offer returns Bind2's SASL2 inline feature (XEP-0386 §3.1) with
// the features it can enable: carbons (when the module runs), CSI and
// stream management.
func (c *conn) bind2Offer() *xmlstream.Element {
	inline := xmlstream.NewElement(NSBind2, "inline")
	for _, v := range []string{nsCarbons, NSCSI, session.NSSM} {
		if v == nsCarbons && !c.carbonsOn() {
			continue
		}
		inline.Append(xmlstream.NewElement(NSBind2, "feature").SetAttr("var", v))
	}
	return xmlstream.NewElement(NSBind2, "bind").Append(inline)
}

// bind2 binds a resource as the <bind/> of a SASL2 request asks
// (XEP-0386 §3.2), enables what it lists (stream management, carbons,
// the CSI state) and sends <success/> through wrap with <bound/> (and a
// resumption's failure, smResult). Earlier sessions of the same client
// (same user-agent id) end.
func (c *conn) bind2(ctx context.Context, req sasl2Request, smResult *xmlstream.Element, wrap func(...*xmlstream.Element) []byte) error {
	bare, err := jid.New(c.local, c.domain, "")
	if err != nil {
		return &stream.Error{Condition: stream.InternalServerError}
	}
	tag := ""
	if t := req.bind.Child(NSBind2, "tag"); t != nil {
		tag = strings.TrimSpace(t.Text())
	}
	prefix, res := bind2Resource(bare, tag, req.clientID)
	full, err := bare.WithResource(res)
	if err != nil {
		// A tag that is not a resourcepart: without it.
		prefix, res = bind2Resource(bare, "", req.clientID)
		if full, err = bare.WithResource(res); err != nil {
			return &stream.Error{Condition: stream.InternalServerError}
		}
	}
	var smEnable *xmlstream.Element
	carbons, inactive := false, false
	for _, ch := range req.bind.Children {
		el := ch.Elem
		if el == nil {
			continue
		}
		switch el.Name {
		case xmlstream.Name{Space: session.NSSM, Local: "enable"}:
			smEnable = el
		case xmlstream.Name{Space: nsCarbons, Local: "enable"}:
			carbons = c.carbonsOn()
		case xmlstream.Name{Space: NSCSI, Local: "inactive"}:
			inactive = true
		case xmlstream.Name{Space: NSCSI, Local: "active"}:
			inactive = false
		}
	}
	c.full = full
	c.state = stateBound
	metrics.SessionBound(c.tr)
	c.b = c.srv.newBinding(c, full)
	// Into the router before <success/> goes out: once the client has
	// it, it may act on the session (from other connections too: its
	// next login replaces this one). Until then no one knows the full
	// JID, and the session has no presence and no carbons, so nothing
	// reaches it before <success/>.
	if old := c.srv.conf().Router.Bind(c.b.sess); old != nil {
		old.Close(&stream.Error{Condition: stream.Conflict, Text: "replaced by a new connection"})
	}
	if req.clientID != "" {
		// XEP-0386 §3.2: earlier sessions of this client end.
		for _, s := range c.srv.conf().Router.Sessions(bare) {
			if r := s.JID().Resource(); r != res && strings.HasPrefix(r, prefix) {
				s.Close(&stream.Error{Condition: stream.Conflict, Text: "replaced by a new session of the same client"})
			}
		}
	}
	bound := xmlstream.NewElement(NSBind2, "bound")
	if md := c.archiveMetadata(ctx, bare); md != nil {
		bound.Append(md)
	}
	if smEnable != nil {
		err = c.startSM(smEnable, func(en *xmlstream.Element) []byte { return wrap(smResult, bound.Append(en)) })
	} else {
		err = c.send(wrap(smResult, bound))
	}
	if err != nil {
		return err
	}
	// After <success/>: no carbon, nor a stanza held for an inactive
	// client, can go out before it.
	if carbons {
		session.Carbons.Set(c.b.sess.Values(), true)
	}
	if inactive {
		c.b.sess.Queue().SetInactive(true)
	}
	c.deadlineOff()
	c.log = c.log.With("jid", full.String())
	c.log.Info("resource bound", "profile", "bind2", "sm", smEnable != nil, "carbons", carbons, "inactive", inactive)
	return nil
}

// bind2Resource returns the resource for a Bind2 request (XEP-0386
// §3.2.1): the client's tag, "/", then a part that is stable for the
// account and user-agent id (without showing the id), "." and a short
// random suffix. prefix is the resource up to the suffix: what every
// session of the same client shares. Without an id the server's part is
// random.
func bind2Resource(bare jid.JID, tag, clientID string) (prefix, res string) {
	if len(tag) > maxTagBytes {
		tag = tag[:maxTagBytes]
	}
	if tag != "" {
		prefix = tag + "/"
	}
	var r [2]byte
	_, _ = rand.Read(r[:])
	if clientID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		return "", prefix + hex.EncodeToString(b[:]) + hex.EncodeToString(r[:])
	}
	sum := sha256.Sum256([]byte(bare.String() + "\x00" + clientID))
	prefix += hex.EncodeToString(sum[:4]) + "."
	return prefix, prefix + hex.EncodeToString(r[:])
}

// nsMAM is XEP-0313's namespace: the archive module runs when the router
// lists it.
const nsMAM = "urn:xmpp:mam:2"

// mamStamp is the archive's time format (XEP-0082 with milliseconds).
const mamStamp = "2006-01-02T15:04:05.000Z"

// archiveMetadata returns the XEP-0313 <metadata/> of the account's
// archive as it is at binding, for <bound/> (XEP-0386 §3.2): its first
// and last message, or none for an empty archive; nil when the archive
// module is off or the archive cannot be read.
func (c *conn) archiveMetadata(ctx context.Context, bare jid.JID) *xmlstream.Element {
	a := c.srv.conf().Archive
	if a == nil || !slices.Contains(c.srv.conf().Router.Features(), nsMAM) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	// What was routed before the binding is in the archive first (its
	// writes are batched).
	if err := c.srv.conf().Router.Sync(ctx); err != nil {
		c.log.Warn("archive metadata may miss the latest messages", "err", err)
	}
	md := xmlstream.NewElement(nsMAM, "metadata")
	first, last, err := a.ArchiveBounds(ctx, bare.Local(), bare.DomainString())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return md
	case err != nil:
		c.log.Error("archive metadata", "err", err)
		return nil
	}
	for _, b := range []struct {
		name string
		m    storage.ArchivedMessage
	}{{"start", first}, {"end", last}} {
		md.Append(xmlstream.NewElement(nsMAM, b.name).SetAttr("id", b.m.ID).SetAttr("timestamp", b.m.Stamp.UTC().Format(mamStamp)))
	}
	return md
}
