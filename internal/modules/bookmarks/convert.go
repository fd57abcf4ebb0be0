package bookmarks

import (
	"slices"
	"strings"

	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/xmlstream"
)

// bookmark is one bookmarked chat room, in the terms both formats share
// (XEP-0402 §3, XEP-0048 §3.2).
type bookmark struct {
	// Room is the room's bare JID, normalised: the XEP-0402 item id,
	// the XEP-0048 'jid' attribute.
	Room     string
	Name     string
	Autojoin bool
	Nick     string
	Password string
	// Extensions are the elements of other namespaces: the children of
	// XEP-0402's <extensions/>, those of a XEP-0048 <conference/> other
	// than <nick/> and <password/>.
	Extensions []*xmlstream.Element
}

// parseRoom normalises a room address; ok is false for an invalid one or
// one with a resource.
func parseRoom(s string) (string, bool) {
	j, err := jid.Parse(strings.TrimSpace(s))
	if err != nil || j.Resource() != "" {
		return "", false
	}
	return j.String(), true
}

func parseBool(s string) bool {
	switch strings.TrimSpace(s) {
	case "true", "1":
		return true
	}
	return false
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// from402 reads a XEP-0402 item: its id and its <conference/>. ok is false
// when the id is not a room's JID or the payload not a conference.
func from402(id string, payload *xmlstream.Element) (bookmark, bool) {
	room, ok := parseRoom(id)
	if !ok || payload == nil || payload.Name != (xmlstream.Name{Space: NS, Local: "conference"}) {
		return bookmark{}, false
	}
	b := bookmark{Room: room, Name: payload.Attribute("name"), Autojoin: parseBool(payload.Attribute("autojoin"))}
	for _, c := range payload.ChildrenNS("") {
		switch {
		case c.Name.Space == NS && c.Name.Local == "nick":
			b.Nick = c.Text()
		case c.Name.Space == NS && c.Name.Local == "password":
			b.Password = c.Text()
		case c.Name.Space == NS && c.Name.Local == "extensions":
			for _, x := range c.ChildrenNS("") {
				b.Extensions = append(b.Extensions, x.Copy())
			}
		}
	}
	return b, true
}

// to402 is the bookmark as a XEP-0402 <conference/> (the item's payload;
// its id is b.Room).
func (b bookmark) to402() *xmlstream.Element {
	c := xmlstream.NewElement(NS, "conference").SetAttr("autojoin", boolString(b.Autojoin))
	if b.Name != "" {
		c.SetAttr("name", b.Name)
	}
	if b.Nick != "" {
		c.Append(xmlstream.NewElement(NS, "nick").AppendText(b.Nick))
	}
	if b.Password != "" {
		c.Append(xmlstream.NewElement(NS, "password").AppendText(b.Password))
	}
	if len(b.Extensions) > 0 {
		x := xmlstream.NewElement(NS, "extensions")
		for _, e := range b.Extensions {
			x.Append(e.Copy())
		}
		c.Append(x)
	}
	return c
}

// from48 reads a XEP-0048 <conference/>; ok is false without a valid
// room JID.
func from48(c *xmlstream.Element) (bookmark, bool) {
	room, ok := parseRoom(c.Attribute("jid"))
	if !ok {
		return bookmark{}, false
	}
	b := bookmark{Room: room, Name: c.Attribute("name"), Autojoin: parseBool(c.Attribute("autojoin"))}
	for _, e := range c.ChildrenNS("") {
		switch {
		case e.Name.Space == NS48 && e.Name.Local == "nick":
			b.Nick = e.Text()
		case e.Name.Space == NS48 && e.Name.Local == "password":
			b.Password = e.Text()
		case e.Name.Space == NS48:
			// Not an extension: XEP-0048 defines no other child.
		default:
			b.Extensions = append(b.Extensions, e.Copy())
		}
	}
	return b, true
}

// to48 is the bookmark as a XEP-0048 <conference/>.
func (b bookmark) to48() *xmlstream.Element {
	c := xmlstream.NewElement(NS48, "conference").SetAttr("jid", b.Room).SetAttr("autojoin", boolString(b.Autojoin))
	if b.Name != "" {
		c.SetAttr("name", b.Name)
	}
	if b.Nick != "" {
		c.Append(xmlstream.NewElement(NS48, "nick").AppendText(b.Nick))
	}
	if b.Password != "" {
		c.Append(xmlstream.NewElement(NS48, "password").AppendText(b.Password))
	}
	for _, e := range b.Extensions {
		c.Append(e.Copy())
	}
	return c
}

// equal reports whether a and b are the same bookmark.
func (b bookmark) equal(o bookmark) bool {
	if b.Room != o.Room || b.Name != o.Name || b.Autojoin != o.Autojoin || b.Nick != o.Nick || b.Password != o.Password {
		return false
	}
	return slices.EqualFunc(b.Extensions, o.Extensions, func(x, y *xmlstream.Element) bool {
		return x.String() == y.String()
	})
}

// parse48 reads the conferences of a XEP-0048 <storage/>, in order; of
// two with the same room the first is kept. Conferences without a valid
// room JID are left out.
func parse48(storage *xmlstream.Element) []bookmark {
	if storage == nil {
		return nil
	}
	var out []bookmark
	seen := map[string]bool{}
	for _, c := range storage.ChildrenNS(NS48) {
		if c.Name.Local != "conference" {
			continue
		}
		b, ok := from48(c)
		if !ok || seen[b.Room] {
			continue
		}
		seen[b.Room] = true
		out = append(out, b)
	}
	return out
}

// merge48 returns the XEP-0048 <storage/> holding bms: base's children
// other than conferences (<url/> bookmarks, other elements) are kept
// where they are, a conference still bookmarked is replaced in place by
// its current form, the others are dropped, and new conferences come
// last in the order of bms.
func merge48(base *xmlstream.Element, bms []bookmark) *xmlstream.Element {
	byRoom := make(map[string]int, len(bms))
	for i, b := range bms {
		byRoom[b.Room] = i
	}
	out := xmlstream.NewElement(NS48, "storage")
	placed := make([]bool, len(bms))
	if base != nil {
		for _, c := range base.ChildrenNS("") {
			if c.Name.Space != NS48 || c.Name.Local != "conference" {
				out.Append(c.Copy())
				continue
			}
			room, ok := parseRoom(c.Attribute("jid"))
			if !ok {
				continue
			}
			i, ok := byRoom[room]
			if !ok || placed[i] {
				continue
			}
			placed[i] = true
			out.Append(bms[i].to48())
		}
	}
	for i, b := range bms {
		if !placed[i] {
			out.Append(b.to48())
		}
	}
	return out
}
