package mam

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/ode-xmpp/ode/internal/dataform"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Page sizes (XEP-0059 max) and the bytes one page may push to a session,
// whose outbound queue is bounded: a page of large messages stops early
// (not complete), and the client asks for the next one.
const (
	defaultMax = 50
	maxMax     = 250
	pageBytes  = 256 << 10
)

// stampFormat is XEP-0082's DateTime with milliseconds, in UTC.
const stampFormat = "2006-01-02T15:04:05.000Z"

// archiveOf returns the archive an IQ addresses: the sender's own (no 'to'
// or the sender's bare JID); anyone else's is forbidden (§9.1).
func archiveOf(ev *router.Event) (jid.JID, error) {
	if ev.Class != router.ClassSelf || ev.Origin == nil {
		return jid.JID{}, stanza.NewError(stanza.Forbidden, "")
	}
	return ev.From.Bare(), nil
}

// request is a parsed archive query.
type request struct {
	q       storage.ArchiveQuery
	queryID string
	flip    bool
	// also holds ids that must be in the archive but are not in q (an
	// RSM after or before beside after-id or before-id: the tighter bound
	// is in q).
	also []string
}

// parseQuery reads a <query/>: its form (§4.1) and RSM <set/> (§4.3).
func parseQuery(e *xmlstream.Element) (request, error) {
	r := request{queryID: e.Attribute("queryid"), q: storage.ArchiveQuery{Max: defaultMax}}
	if e.Attribute("node") != "" {
		return r, stanza.NewError(stanza.FeatureNotImplemented, "no pubsub archives here")
	}
	if x := e.Child(NSData, "x"); x != nil {
		if err := r.form(x); err != nil {
			return r, err
		}
	}
	if set := e.Child(NSRSM, "set"); set != nil {
		if err := r.rsm(set); err != nil {
			return r, err
		}
	}
	r.flip = e.Child(NS, "flip-page") != nil
	return r, nil
}

func badRequest(text string) error { return stanza.NewError(stanza.BadRequest, text) }

func (r *request) form(x *xmlstream.Element) error {
	if t := x.Attribute("type"); t != "submit" && t != "" {
		return badRequest("the form must be of type submit")
	}
	form, err := dataform.Parse(x)
	if err != nil {
		return badRequest(err.Error())
	}
	if ft := form.FormType; ft != "" && ft != NS {
		return badRequest("FORM_TYPE must be " + NS)
	}
	for _, f := range form.Fields {
		values, name := f.Values, f.Var
		if len(values) == 0 || f.Type == "fixed" {
			continue // an empty field filters nothing
		}
		if len(values) > 1 && name != "ids" {
			return badRequest("field " + name + " takes one value")
		}
		switch name {
		case "with":
			j, err := jid.Parse(values[0])
			if err != nil {
				return badRequest("with: not a JID")
			}
			r.q.With, r.q.WithResource = j.Bare().String(), j.Resource()
		case "start", "end":
			t, err := time.Parse(time.RFC3339Nano, values[0])
			if err != nil {
				return badRequest(name + ": not an XEP-0082 DateTime")
			}
			if name == "start" {
				r.q.Start = t
			} else {
				r.q.End = t
			}
		case "after-id":
			r.q.AfterID = values[0]
		case "before-id":
			r.q.BeforeID = values[0]
		case "ids":
			r.q.IDs = values
		default:
			// §4.1.5: a field the server does not know.
			return stanza.NewError(stanza.FeatureNotImplemented, "unknown field "+name)
		}
	}
	return nil
}

func (r *request) rsm(set *xmlstream.Element) error {
	if set.Child(NSRSM, "index") != nil {
		return stanza.NewError(stanza.FeatureNotImplemented, "no RSM index")
	}
	if e := set.Child(NSRSM, "max"); e != nil {
		n, err := strconv.Atoi(e.Text())
		if err != nil || n < 0 {
			return badRequest("max must be a number")
		}
		r.q.Max = min(n, maxMax)
	}
	if e := set.Child(NSRSM, "after"); e != nil && e.Text() != "" {
		r.q.AfterID, r.also = tighter(r.q.AfterID, e.Text(), 1, r.also)
	}
	if e := set.Child(NSRSM, "before"); e != nil {
		r.q.Last = true // an empty <before/> is the last page
		if e.Text() != "" {
			r.q.BeforeID, r.also = tighter(r.q.BeforeID, e.Text(), -1, r.also)
		}
	}
	return nil
}

// tighter returns the bound of a and b that excludes more (the greater id
// for sign 1, the smaller for -1), and adds the other to also.
func tighter(a, b string, sign int, also []string) (string, []string) {
	if a == "" || a == b {
		return b, also
	}
	if (a < b) == (sign > 0) {
		a, b = b, a
	}
	return a, append(also, b)
}

// query answers an archive query (§4): the results, then the <fin/>.
func (m *Module) query(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	owner, err := archiveOf(ev)
	if err != nil {
		return nil, err
	}
	req, err := parseQuery(ev.El.FirstChild())
	if err != nil {
		return nil, err
	}
	if ev.Origin != nil {
		session.QueriedArchive.Set(ev.Origin.Values(), true)
	}
	if err := m.w.sync(ctx); err != nil {
		return nil, err
	}
	fetch := func(ctx context.Context, q storage.ArchiveQuery) (storage.ArchivePage, error) {
		q.StartID, q.EndID = idBounds(q.Start, q.End)
		return m.deps.Store.QueryArchive(ctx, owner.Local(), owner.DomainString(), q)
	}
	return answer(ctx, req, owner, ev.From, fetch, ev.Origin.Deliver, m.deps.Log)
}

// FetchFunc reads a page of one archive.
type FetchFunc func(ctx context.Context, q storage.ArchiveQuery) (storage.ArchivePage, error)

// AnswerQuery answers the archive query q (the <query/> of an IQ set,
// §4) on the archive of owner for to: it reads the page through fetch,
// hands each result message to deliver and returns the <fin/>. The MUC
// service answers queries on its rooms' archives with it.
func AnswerQuery(ctx context.Context, q *xmlstream.Element, owner, to jid.JID, fetch FetchFunc, deliver func(*xmlstream.Element) error, log *slog.Logger) (*xmlstream.Element, error) {
	req, err := parseQuery(q)
	if err != nil {
		return nil, err
	}
	return answer(ctx, req, owner, to, fetch, deliver, log)
}

func answer(ctx context.Context, req request, owner, to jid.JID, fetch FetchFunc, deliver func(*xmlstream.Element) error, log *slog.Logger) (*xmlstream.Element, error) {
	if len(req.also) > 0 {
		if _, err := fetch(ctx, storage.ArchiveQuery{IDs: req.also}); err != nil {
			return nil, notFound(err)
		}
	}
	page, err := fetch(ctx, req.q)
	if err != nil {
		return nil, notFound(err)
	}
	msgs, complete := page.Messages, page.Complete
	if cut := fitPage(msgs, req.q.Last); cut < len(msgs) {
		complete = false
		if req.q.Last {
			msgs = msgs[len(msgs)-cut:]
		} else {
			msgs = msgs[:cut]
		}
	}
	send := msgs
	if req.flip {
		send = slices.Clone(msgs)
		slices.Reverse(send)
	}
	for _, am := range send {
		res, err := result(am, req.queryID, owner, to)
		if err != nil {
			log.Error("archive: stored message unreadable", "jid", owner.String(), "id", am.ID, "err", err)
			continue
		}
		if err := deliver(res); err != nil {
			return nil, stanza.NewError(stanza.ResourceConstraint, "")
		}
	}
	fin := xmlstream.NewElement(NS, "fin")
	if req.queryID != "" {
		fin.SetAttr("queryid", req.queryID)
	}
	if complete {
		fin.SetAttr("complete", "true")
	}
	set := xmlstream.NewElement(NSRSM, "set")
	if len(msgs) > 0 {
		set.Append(
			xmlstream.NewElement(NSRSM, "first").AppendText(msgs[0].ID),
			xmlstream.NewElement(NSRSM, "last").AppendText(msgs[len(msgs)-1].ID))
	}
	return fin.Append(set), nil
}

// fitPage returns how many of msgs fit in pageBytes (at least one),
// counted from the end when last.
func fitPage(msgs []storage.ArchivedMessage, last bool) int {
	size := 0
	for i := range msgs {
		m := msgs[i]
		if last {
			m = msgs[len(msgs)-1-i]
		}
		size += len(m.Stanza) + 256 // the wrapping
		if size > pageBytes && i > 0 {
			return i
		}
	}
	return len(msgs)
}

func notFound(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return stanza.NewError(stanza.ItemNotFound, "no such message in the archive")
	}
	return err
}

// result wraps an archived message for the querying session (§4.2).
func result(am storage.ArchivedMessage, queryID string, owner, to jid.JID) (*xmlstream.Element, error) {
	orig, err := xmlstream.ParseElement(am.Stanza, stanza.NSClient)
	if err != nil {
		return nil, err
	}
	r := xmlstream.NewElement(NS, "result").SetAttr("id", am.ID)
	if queryID != "" {
		r.SetAttr("queryid", queryID)
	}
	r.Append(xmlstream.NewElement(NSForward, "forwarded").Append(
		xmlstream.NewElement(stanza.NSDelay, "delay").SetAttr("stamp", am.Stamp.UTC().Format(stampFormat)),
		orig))
	return stanza.NewMessage(stanza.NSClient, "", to.String(), owner.String(), am.ID).Append(r), nil
}

// form answers the request for the query form (§4.1.5).
func (m *Module) form(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	if _, err := archiveOf(ev); err != nil {
		return nil, err
	}
	f := dataform.New(dataform.TypeForm, NS)
	f.Add("with", "jid-single", "")
	f.Add("start", "text-single", "")
	f.Add("end", "text-single", "")
	f.Add("before-id", "text-single", "")
	f.Add("after-id", "text-single", "")
	f.Add("ids", "text-multi", "")
	return xmlstream.NewElement(NS, "query").Append(f.Element()), nil
}

// metadata answers the archive metadata request (§7): the first and the
// last message's id and time, or nothing for an empty archive.
func (m *Module) metadata(ctx context.Context, ev *router.Event) (*xmlstream.Element, error) {
	owner, err := archiveOf(ev)
	if err != nil {
		return nil, err
	}
	if err := m.w.sync(ctx); err != nil {
		return nil, err
	}
	md := xmlstream.NewElement(NS, "metadata")
	first, last, err := m.deps.Store.ArchiveBounds(ctx, owner.Local(), owner.DomainString())
	if errors.Is(err, storage.ErrNotFound) {
		return md, nil
	}
	if err != nil {
		return nil, err
	}
	for _, b := range []struct {
		name string
		m    storage.ArchivedMessage
	}{{"start", first}, {"end", last}} {
		md.Append(xmlstream.NewElement(NS, b.name).SetAttr("id", b.m.ID).SetAttr("timestamp", b.m.Stamp.UTC().Format(stampFormat)))
	}
	return md, nil
}
