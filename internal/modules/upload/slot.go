package upload

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSData is the XEP-0004 data forms namespace (the XEP-0128 extension of
// disco#info).
const NSData = dataform.NS

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// serve is the router.Service of the upload domains.
func (m *Module) serve(ctx context.Context, ev *router.Event) {
	st := ev.El
	switch st.Name.Local {
	case "iq":
	case "message":
		m.r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
		return
	default:
		return // presence: nothing to do
	}
	typ := stanza.Type(st)
	if typ != stanza.IQGet && typ != stanza.IQSet {
		return // the service sends no requests
	}
	if err := stanza.ValidateIQ(st); err != nil {
		m.r.Bounce(ctx, st, stanza.NewError(stanza.BadRequest, ""))
		return
	}
	res, err := m.handleIQ(ctx, ev, typ, st.FirstChild())
	if err != nil {
		var se *stanza.Error
		if !errors.As(err, &se) {
			m.deps.Log.Error("upload request failed", "jid", ev.From.String(), "err", err)
			se = stanza.NewError(stanza.InternalServerError, "")
		}
		m.r.Bounce(ctx, st, se)
		return
	}
	reply := stanza.IQResultFor(st)
	if res != nil {
		reply.Append(res)
	}
	m.r.Route(ctx, reply)
}

func (m *Module) handleIQ(ctx context.Context, ev *router.Event, typ string, p *xmlstream.Element) (*xmlstream.Element, error) {
	if !ev.To.IsDomain() || typ != stanza.IQGet {
		return nil, stanza.NewError(stanza.ServiceUnavailable, "")
	}
	switch p.Name {
	case xmlstream.Name{Space: stanza.NSDiscoInfo, Local: "query"}:
		if p.Attribute("node") != "" {
			return nil, stanza.NewError(stanza.ItemNotFound, "")
		}
		return m.info(), nil
	case xmlstream.Name{Space: stanza.NSDiscoItems, Local: "query"}:
		if p.Attribute("node") != "" {
			return nil, stanza.NewError(stanza.ItemNotFound, "")
		}
		return xmlstream.NewElement(stanza.NSDiscoItems, "query"), nil
	case xmlstream.Name{Space: NSUpload, Local: "request"}:
		return m.slot(ctx, ev, p)
	}
	return nil, stanza.NewError(stanza.ServiceUnavailable, "")
}

// info is the disco#info result (§3).
func (m *Module) info() *xmlstream.Element {
	q := xmlstream.NewElement(stanza.NSDiscoInfo, "query")
	q.Append(xmlstream.NewElement(stanza.NSDiscoInfo, "identity").
		SetAttr("category", "store").SetAttr("type", "file").SetAttr("name", "HTTP File Upload"))
	for _, f := range []string{stanza.NSDiscoInfo, stanza.NSDiscoItems, NSUpload} {
		q.Append(xmlstream.NewElement(stanza.NSDiscoInfo, "feature").SetAttr("var", f))
	}
	f := dataform.New(dataform.TypeResult, NSUpload)
	f.Add("max-file-size", "", "", strconv.FormatInt(m.cfg.MaxFileSize, 10))
	return q.Append(f.Element())
}

// slot answers a slot request (§4).
func (m *Module) slot(ctx context.Context, ev *router.Event, req *xmlstream.Element) (*xmlstream.Element, error) {
	from := ev.From
	if from.Local() == "" || !m.r.Hosts(from.DomainString()) {
		return nil, stanza.NewError(stanza.Forbidden, "only users of this server may upload files")
	}
	size, err := strconv.ParseInt(req.Attribute("size"), 10, 64)
	if err != nil || size < 0 {
		return nil, stanza.NewError(stanza.BadRequest, "size must be the file's length in bytes")
	}
	raw := req.Attribute("filename")
	if raw == "" {
		return nil, stanza.NewError(stanza.BadRequest, "no filename")
	}
	name := SanitizeFilename(raw)
	ct := req.Attribute("content-type")
	if ct != "" {
		var ok bool
		if ct, ok = normalizeType(ct); !ok {
			return nil, stanza.NewError(stanza.BadRequest, "invalid content-type")
		}
	}
	if size > m.cfg.MaxFileSize {
		e := stanza.NewError(stanza.NotAcceptable, fmt.Sprintf("file too large: the largest is %d bytes", m.cfg.MaxFileSize))
		e.App = xmlstream.NewElement(NSUpload, "file-too-large").Append(
			xmlstream.NewElement(NSUpload, "max-file-size").AppendText(strconv.FormatInt(m.cfg.MaxFileSize, 10)))
		return nil, e
	}
	now := m.deps.Now()
	u := storage.Upload{
		ID: newID(), Local: from.Local(), Domain: from.DomainString(),
		Filename: name, ContentType: ct, Size: size, Created: now,
	}
	err = m.deps.Store.ReserveUpload(ctx, u, storage.UploadQuota{
		Since: now.Add(-day), Account: m.cfg.DailyQuota, Total: m.cfg.TotalQuota,
	})
	var qe *storage.QuotaError
	switch {
	case errors.As(err, &qe):
		return nil, m.quotaError(qe)
	case errors.Is(err, storage.ErrNotFound):
		return nil, stanza.NewError(stanza.Forbidden, "no such account")
	case err != nil:
		return nil, err
	}
	m.deps.Log.Debug("upload slot", "jid", from.Bare().String(), "id", u.ID, "size", size)
	link := m.deps.HTTP.BaseURL() + PathPrefix + u.ID + "/" + url.PathEscape(name)
	auth := m.token(u.ID, size, ct, now.Add(time.Duration(m.cfg.SlotTimeout)))
	return xmlstream.NewElement(NSUpload, "slot").Append(
		xmlstream.NewElement(NSUpload, "put").SetAttr("url", link).Append(
			xmlstream.NewElement(NSUpload, "header").SetAttr("name", "Authorization").AppendText(auth)),
		xmlstream.NewElement(NSUpload, "get").SetAttr("url", link),
	), nil
}

// quotaError is resource-constraint with the time the quota frees room
// (§4.2): when the oldest upload that must go leaves the user's 24-hour
// window, or expires for the total quota.
func (m *Module) quotaError(qe *storage.QuotaError) *stanza.Error {
	text := fmt.Sprintf("upload quota reached: %d bytes per day", m.cfg.DailyQuota)
	var retry time.Time
	switch {
	case qe.Frees.IsZero():
	case !qe.Total:
		// The window includes its first instant: the next second is the
		// first one without that upload.
		retry = qe.Frees.Add(day).Truncate(time.Second).Add(time.Second)
	case m.cfg.ExpireAfter > 0:
		retry = qe.Frees.Add(time.Duration(m.cfg.ExpireAfter) + sweepEvery)
	}
	if qe.Total {
		text = "the server's upload storage is full"
	}
	e := stanza.NewError(stanza.ResourceConstraint, text)
	if !retry.IsZero() {
		e.App = xmlstream.NewElement(NSUpload, "retry").SetAttr("stamp", retry.UTC().Format(time.RFC3339))
	}
	return e
}

// token returns the Authorization header value for a slot's PUT:
// "Bearer <expiry>.<mac>", the expiry in Unix seconds and the mac an
// HMAC-SHA256 of the slot's id, size, content type and expiry.
func (m *Module) token(id string, size int64, ct string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return "Bearer " + exp + "." + base64.RawURLEncoding.EncodeToString(m.mac(id, size, ct, exp))
}

func (m *Module) mac(id string, size int64, ct, exp string) []byte {
	h := hmac.New(sha256.New, m.secret)
	fmt.Fprintf(h, "ode upload put\x00%s\x00%d\x00%s\x00%s", id, size, ct, exp)
	return h.Sum(nil)
}

// checkToken reports whether auth authorises a PUT of the slot now.
func (m *Module) checkToken(auth, id string, size int64, ct string, now time.Time) bool {
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return false
	}
	exp, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.Unix() > t {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	return err == nil && hmac.Equal(got, m.mac(id, size, ct, exp))
}

// normalizeType returns a media type in canonical form (lower-case type,
// quoted parameters as needed), or false if ct is not one.
func normalizeType(ct string) (string, bool) {
	if len(ct) > 255 {
		return "", false
	}
	t, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(t, "/") {
		return "", false
	}
	s := mime.FormatMediaType(t, params)
	return s, s != ""
}

// maxFilename is the longest filename kept, in bytes.
const maxFilename = 200

// SanitizeFilename returns a filename that is safe in a URL path segment
// and a Content-Disposition header, and for whoever saves the file: the
// last path element only, without control or formatting characters
// (bidirectional overrides), characters Windows forbids replaced by "_",
// no leading or trailing dots or spaces, at most 200 bytes (the extension
// kept), and "file" when nothing is left.
func SanitizeFilename(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "") {
		switch {
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError:
		case strings.ContainsRune(`"*:<>?|`, r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	s = strings.Trim(b.String(), ". ")
	if len(s) > maxFilename {
		ext := ""
		if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i <= 16 {
			ext = s[i:]
		}
		stem := s[:maxFilename-len(ext)]
		for !utf8.ValidString(stem) {
			stem = stem[:len(stem)-1]
		}
		s = strings.TrimRight(stem, ". ") + ext
	}
	if s == "" {
		return "file"
	}
	return s
}
