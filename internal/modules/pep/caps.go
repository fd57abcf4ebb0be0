package pep

import (
	"cmp"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Limits of what remote entities make the capability cache hold.
const (
	maxCapsEntries   = 10000 // verified verification strings
	maxCapsQueries   = 64    // disco#info queries in flight
	maxCapsWaiters   = 1024  // entities waiting on one unknown hash
	maxNotifyNodes   = 1000  // +notify features kept of one entity
	maxCapsVerBytes  = 128
	maxCapsNodeBytes = 1024
)

// capsHashes are the hash functions of XEP-0115 §5.1 (IANA names) the
// server verifies.
var capsHashes = map[string]func() hash.Hash{
	"sha-1":   sha1.New,
	"sha-224": sha256.New224,
	"sha-256": sha256.New,
	"sha-384": sha512.New384,
	"sha-512": sha512.New,
}

// capsRef is a <c/> element of a presence (XEP-0115 §4).
type capsRef struct {
	hash, node, ver string
}

// key names the verification string in the cache.
func (c capsRef) key() string { return c.hash + " " + c.ver }

// parseCaps returns the presence's capabilities, with ok false when it
// has none the server can verify (legacy ones without 'hash', unknown
// hash functions, oversized attributes).
func parseCaps(p *xmlstream.Element) (capsRef, bool) {
	c := p.Child(NSCaps, "c")
	if c == nil {
		return capsRef{}, false
	}
	ref := capsRef{hash: c.Attribute("hash"), node: c.Attribute("node"), ver: c.Attribute("ver")}
	if capsHashes[ref.hash] == nil || ref.ver == "" || len(ref.ver) > maxCapsVerBytes || len(ref.node) > maxCapsNodeBytes {
		return capsRef{}, false
	}
	return ref, true
}

// capsInfo is what the server keeps of an entity's capabilities: the
// nodes it wants notifications of ("<node>+notify" features).
type capsInfo struct {
	notify map[string]struct{}
}

func (c *capsInfo) wants(node string) bool {
	if c == nil {
		return false
	}
	_, ok := c.notify[node]
	return ok
}

// notifyOf returns the +notify features of a disco#info result.
func notifyOf(q *xmlstream.Element) *capsInfo {
	info := &capsInfo{notify: map[string]struct{}{}}
	for _, f := range q.ChildrenNS(stanza.NSDiscoInfo) {
		if f.Name.Local != "feature" || len(info.notify) >= maxNotifyNodes {
			continue
		}
		if node, ok := strings.CutSuffix(f.Attribute("var"), "+notify"); ok && node != "" {
			info.notify[node] = struct{}{}
		}
	}
	return info
}

// VerString returns the XEP-0115 verification string S (§5.1) of a
// disco#info <query/>, before hashing, with ok false when the result must
// not be accepted for any hash (§5.4 step 3: two identities of the same
// category, type, lang and name, a feature twice, two forms of one
// FORM_TYPE, a FORM_TYPE with values that differ). Forms without a
// FORM_TYPE, or whose FORM_TYPE is not hidden, are left out.
func VerString(q *xmlstream.Element) (string, bool) {
	type identity struct{ category, typ, lang, name string }
	type field struct {
		name   string
		values []string
	}
	type dataForm struct {
		formType string
		fields   []field
	}
	var ids []identity
	var features []string
	var forms []dataForm
	for _, c := range q.Children {
		e := c.Elem
		if e == nil {
			continue
		}
		switch {
		case e.Name.Space == stanza.NSDiscoInfo && e.Name.Local == "identity":
			lang, _ := e.LookupAttr(xmlstream.NSXML, "lang")
			ids = append(ids, identity{e.Attribute("category"), e.Attribute("type"), lang, e.Attribute("name")})
		case e.Name.Space == stanza.NSDiscoInfo && e.Name.Local == "feature":
			features = append(features, e.Attribute("var"))
		case e.Name.Space == NSData && e.Name.Local == "x":
			var f dataForm
			hidden, hasType := false, false
			for _, fe := range e.ChildrenNS(NSData) {
				if fe.Name.Local != "field" {
					continue
				}
				var vals []string
				for _, v := range fe.ChildrenNS(NSData) {
					if v.Name.Local == "value" {
						vals = append(vals, v.Text())
					}
				}
				if fe.Attribute("var") == "FORM_TYPE" {
					if hasType {
						return "", false
					}
					hasType, hidden = true, fe.Attribute("type") == "hidden"
					for _, v := range vals[min(1, len(vals)):] {
						if v != vals[0] {
							return "", false
						}
					}
					if len(vals) > 0 {
						f.formType = vals[0]
					}
					continue
				}
				f.fields = append(f.fields, field{fe.Attribute("var"), vals})
			}
			if hasType && hidden && f.formType != "" {
				forms = append(forms, f)
			}
		}
	}
	slices.SortFunc(ids, func(a, b identity) int {
		return cmp.Or(strings.Compare(a.category, b.category), strings.Compare(a.typ, b.typ),
			strings.Compare(a.lang, b.lang), strings.Compare(a.name, b.name))
	})
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		return "", false
	}
	slices.Sort(features)
	if len(slices.Compact(slices.Clone(features))) != len(features) {
		return "", false
	}
	slices.SortFunc(forms, func(a, b dataForm) int { return strings.Compare(a.formType, b.formType) })
	for i := 1; i < len(forms); i++ {
		if forms[i].formType == forms[i-1].formType {
			return "", false
		}
	}
	var s strings.Builder
	for _, id := range ids {
		s.WriteString(id.category + "/" + id.typ + "/" + id.lang + "/" + id.name + "<")
	}
	for _, f := range features {
		s.WriteString(f + "<")
	}
	for _, f := range forms {
		s.WriteString(f.formType + "<")
		slices.SortFunc(f.fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
		for _, fd := range f.fields {
			s.WriteString(fd.name + "<")
			vals := slices.Clone(fd.values)
			slices.Sort(vals)
			for _, v := range vals {
				s.WriteString(v + "<")
			}
		}
	}
	return s.String(), true
}

// CapsHash returns the verification string of a disco#info <query/>
// hashed with the named function (XEP-0115 §5.1), with ok false for an
// unknown function or a result VerString refuses.
func CapsHash(name string, q *xmlstream.Element) (string, bool) {
	newHash := capsHashes[name]
	if newHash == nil {
		return "", false
	}
	s, ok := VerString(q)
	if !ok {
		return "", false
	}
	h := newHash()
	h.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), true
}

// waiter is an entity whose capabilities are being looked up for an
// account: a contact's resource, or one of the account's own.
type waiter struct {
	owner, full jid.JID
}

// capsCache holds verified verification strings and the queries in
// flight (XEP-0115 §5.4: an unknown hash is queried once, whoever else
// announces it waits for that answer).
type capsCache struct {
	mu      sync.Mutex
	known   map[string]*capsInfo
	pending map[string][]waiter

	hits, misses, queries atomic.Int64
}

func newCapsCache() *capsCache {
	return &capsCache{known: map[string]*capsInfo{}, pending: map[string][]waiter{}}
}

// lookup returns the info for key, or nil with query true when w must be
// queried (no query for key is in flight), nil and false when w waits for
// the query in flight.
func (c *capsCache) lookup(key string, w waiter) (info *capsInfo, query bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if info := c.known[key]; info != nil {
		c.hits.Add(1)
		return info, false
	}
	c.misses.Add(1)
	if ws, ok := c.pending[key]; ok {
		if len(ws) < maxCapsWaiters {
			c.pending[key] = append(ws, w)
		}
		return nil, false
	}
	c.pending[key] = []waiter{w}
	c.queries.Add(1)
	return nil, true
}

// verified records the verified info of key and returns who waited.
func (c *capsCache) verified(key string, info *capsInfo) []waiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := c.pending[key]
	delete(c.pending, key)
	if len(c.known) >= maxCapsEntries {
		for k := range c.known { // make room: any entry
			delete(c.known, k)
			break
		}
	}
	c.known[key] = info
	return ws
}

// failed takes the waiters of key on the resource queried out, whose
// answer did not verify (or never came), and returns them: an unverified
// answer is used for its sender only. The next waiter, if any, is queried
// in turn.
func (c *capsCache) failed(key string, queried jid.JID) (same []waiter, next waiter, again bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rest []waiter
	for _, w := range c.pending[key] {
		if w.full.Equal(queried) {
			same = append(same, w)
		} else {
			rest = append(rest, w)
		}
	}
	if len(rest) == 0 {
		delete(c.pending, key)
		return same, waiter{}, false
	}
	c.pending[key] = rest
	c.queries.Add(1)
	return same, rest[0], true
}

// abandon forgets the query for key that could not be sent: the next
// presence announcing it starts one.
func (c *capsCache) abandon(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, key)
}

// CapsStats are the capability cache's counters since the server
// started: lookups answered from the cache, lookups that were not, and
// disco#info queries sent.
type CapsStats struct {
	Hits, Misses, Queries int64
}

// CapsStats returns the capability cache's counters.
func (m *Module) CapsStats() CapsStats {
	return CapsStats{Hits: m.caps.hits.Load(), Misses: m.caps.misses.Load(), Queries: m.caps.queries.Load()}
}
