package upload

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
)

// The methods the upload URLs take, for Allow and CORS preflights.
const methods = "GET, HEAD, PUT, OPTIONS"

// ServeHTTP serves the slots' URLs, /upload/<id>/<filename>: PUT stores
// the file once (201 Created; 409 Conflict after that), GET and HEAD serve
// it with ranges, OPTIONS answers CORS preflights.
func (m *Module) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if h.Get("Access-Control-Allow-Origin") == "" {
		// The files are public and PUT is authorised by a header, not a
		// cookie: any web client may use them (unless the listener's own
		// CORS rules already answered for the origin).
		h.Set("Access-Control-Allow-Origin", "*")
	}
	switch r.Method {
	case http.MethodOptions:
		h.Set("Allow", methods)
		h.Set("Access-Control-Allow-Methods", methods)
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPut, http.MethodGet, http.MethodHead:
	default:
		h.Set("Allow", methods)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	u, ok := m.lookup(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodPut {
		m.put(w, r, u)
	} else {
		m.get(w, r, u)
	}
}

// lookup finds the slot of the request's URL, or answers 404.
func (m *Module) lookup(w http.ResponseWriter, r *http.Request) (storage.Upload, bool) {
	id, name, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, PathPrefix), "/")
	if !validID(id) {
		http.NotFound(w, r)
		return storage.Upload{}, false
	}
	u, err := m.deps.Store.Upload(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && name != u.Filename) {
		http.NotFound(w, r)
		return storage.Upload{}, false
	}
	if err != nil {
		m.internalError(w, r, "find upload", err)
		return storage.Upload{}, false
	}
	return u, true
}

func (m *Module) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if r.Context().Err() == nil {
		m.deps.Log.Error("upload: "+what, "path", r.URL.Path, "err", err)
	}
	http.Error(w, "internal server error", http.StatusInternalServerError)
}

// put stores the body of a PUT to the slot u: exactly the granted size
// and content type, authorised by the slot's token. The file is written
// to a temporary file, synced, then linked to its name, which fails if a
// PUT to the same slot won.
func (m *Module) put(w http.ResponseWriter, r *http.Request, u storage.Upload) {
	switch {
	case u.Stored:
		http.Error(w, "already uploaded", http.StatusConflict)
		return
	case !m.checkToken(r.Header.Get("Authorization"), u.ID, u.Size, u.ContentType, m.deps.Now()):
		http.Error(w, "missing, wrong or expired authorization", http.StatusForbidden)
		return
	case r.ContentLength < 0:
		http.Error(w, "Content-Length required", http.StatusLengthRequired)
		return
	case r.ContentLength > u.Size:
		http.Error(w, "larger than the slot", http.StatusRequestEntityTooLarge)
		return
	case r.ContentLength < u.Size:
		http.Error(w, "Content-Length differs from the slot's size", http.StatusBadRequest)
		return
	}
	if u.ContentType != "" {
		if ct, ok := normalizeType(r.Header.Get("Content-Type")); !ok || ct != u.ContentType {
			http.Error(w, "Content-Type differs from the slot's", http.StatusBadRequest)
			return
		}
	}
	// The listener has no read timeout (uploads are large): a PUT gets a
	// minute plus the time its size takes at minPutRate, at most as long
	// as its never-filled slot is kept, so that a client trickling bytes
	// cannot hold a connection and a temporary file for long.
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(putDeadline(u.Size))); err != nil && !errors.Is(err, http.ErrNotSupported) {
		m.internalError(w, r, "receive", err)
		return
	}
	tmp, err := m.receive(http.MaxBytesReader(w, r.Body, u.Size), u)
	if err != nil {
		var me *http.MaxBytesError
		if errors.As(err, &me) || errors.Is(err, errShort) || errors.Is(err, io.ErrUnexpectedEOF) || r.Context().Err() != nil {
			http.Error(w, "incomplete body", http.StatusBadRequest)
		} else {
			m.internalError(w, r, "receive", err)
		}
		return
	}
	defer os.Remove(tmp)
	final := m.path(u.ID)
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		m.internalError(w, r, "receive", err)
		return
	}
	if err := os.Link(tmp, final); errors.Is(err, fs.ErrExist) {
		http.Error(w, "already uploaded", http.StatusConflict)
		return
	} else if err != nil {
		m.internalError(w, r, "store", err)
		return
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		m.internalError(w, r, "store", err)
		return
	}
	// Not the request's context: the file is in place, its slot must say so.
	err = m.deps.Store.MarkUploadStored(context.WithoutCancel(r.Context()), u.ID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// The slot went while the body arrived (its account was deleted).
		os.Remove(final)
		http.NotFound(w, r)
		return
	case errors.Is(err, storage.ErrExists):
		http.Error(w, "already uploaded", http.StatusConflict)
		return
	case err != nil:
		m.internalError(w, r, "store", err)
		return
	}
	m.deps.Log.Info("file uploaded", "jid", u.Local+"@"+u.Domain, "id", u.ID, "size", u.Size)
	w.WriteHeader(http.StatusCreated)
}

var errShort = errors.New("upload: body shorter than the slot")

// minPutRate is the slowest upload accepted, in bytes per second.
const minPutRate = 16 << 10

// putDeadline is how long a PUT of size bytes may take.
func putDeadline(size int64) time.Duration {
	return min(time.Minute+time.Duration(size/minPutRate)*time.Second, putGrace)
}

// bufs are the copy buffers of uploads: larger than io.Copy's 32 KiB, for
// fewer writes.
var bufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// receive writes body (u.Size bytes) to a synced temporary file and
// returns its path.
func (m *Module) receive(body io.Reader, u storage.Upload) (path string, err error) {
	f, err := os.CreateTemp(m.dir, tempPrefix+u.ID+"-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	buf := bufs.Get().(*[]byte)
	defer bufs.Put(buf)
	// Whole buffers: a TLS connection reads one 16 KiB record at a time,
	// and as many small writes would halve the throughput.
	var total int64
	for {
		n, err := io.ReadFull(body, *buf)
		if _, werr := f.Write((*buf)[:n]); werr != nil {
			return "", werr
		}
		total += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return "", err
		}
	}
	if total != u.Size {
		return "", errShort
	}
	return f.Name(), f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// get serves the file of slot u, with ranges and conditional requests.
func (m *Module) get(w http.ResponseWriter, r *http.Request, u storage.Upload) {
	if !u.Stored {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(m.path(u.ID))
	if errors.Is(err, fs.ErrNotExist) {
		m.deps.Log.Warn("upload: file missing", "id", u.ID)
		http.NotFound(w, r)
		return
	}
	if err != nil {
		m.internalError(w, r, "open", err)
		return
	}
	defer f.Close()
	ct := u.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", disposition(ct, u.Filename))
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("Cache-Control", "private, max-age=86400")
	h.Set("ETag", `"`+u.ID+`"`) // a slot's content never changes
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Content-Disposition, ETag")
	http.ServeContent(w, r, "", u.Created, f)
}

// disposition is inline for the types browsers show as media or plain
// text, attachment for anything else (HTML, SVG, scripts, documents), so
// that an uploaded page never runs in the server's origin.
func disposition(ct, filename string) string {
	t, _, _ := mime.ParseMediaType(ct)
	kind := "attachment"
	switch {
	case t == "image/svg+xml":
	case strings.HasPrefix(t, "image/"), strings.HasPrefix(t, "audio/"), strings.HasPrefix(t, "video/"), t == "text/plain":
		kind = "inline"
	}
	if v := mime.FormatMediaType(kind, map[string]string{"filename": filename}); v != "" {
		return v
	}
	return kind
}
