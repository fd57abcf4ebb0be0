package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/jid"
)

// Server is what the API needs of the running server besides the
// accounts and sessions.
type Server interface {
	// Accounts returns the account operations on the live server.
	Accounts() Accounts
	// Router returns the server's router.
	Router() *router.Router
	// Rooms returns the MUC service's rooms, or ErrUnsupported when the
	// muc module is off.
	Rooms() ([]Room, error)
	// DestroyRoom destroys a room (ErrNotFound when there is none).
	DestroyRoom(ctx context.Context, room jid.JID, reason string) error
	// Stats returns the server's figures.
	Stats(ctx context.Context) (Stats, error)
	// Reload re-reads the configuration and applies it.
	Reload(ctx context.Context) (ReloadResult, error)
	// Backup writes a consistent copy of the database to path
	// (ErrUnsupported for PostgreSQL: pg_dump does it).
	Backup(ctx context.Context, path string) error
}

// Room is what administrators see of a MUC room.
type Room struct {
	JID        string `json:"jid"`
	Name       string `json:"name,omitempty"`
	Occupants  int    `json:"occupants"`
	Persistent bool   `json:"persistent"`
	Public     bool   `json:"public"`
}

// Stats are the server's figures.
type Stats struct {
	Sessions      int            `json:"sessions"`
	ByTransport   map[string]int `json:"sessions_by_transport"`
	OnlineUsers   int            `json:"online_users"`
	Users         int            `json:"registered_users"`
	Rooms         int            `json:"rooms"`
	UptimeSeconds int64          `json:"uptime_seconds"`
	HeapBytes     uint64         `json:"heap_bytes"`
	SysBytes      uint64         `json:"sys_bytes"`
	Goroutines    int            `json:"goroutines"`
	Version       string         `json:"version"`
}

// ReloadResult says what a reload applied and what waits for a restart.
type ReloadResult struct {
	Applied []string `json:"applied"`
	// NotLive are the changed settings that only a restart applies
	// (listen addresses, storage); the running values stay.
	NotLive []string `json:"not_live,omitempty"`
}

// ConfigError is a reload refused because the configuration is invalid;
// the message names each problem with file:line.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string {
	return "configuration refused, the running one stays:\n" + e.Err.Error()
}
func (e *ConfigError) Unwrap() error { return e.Err }

// Options are the differences between the API's two carriers.
type Options struct {
	// Token, when set, is the bearer token every request must carry (the
	// HTTPS API); the control socket checks peer credentials instead.
	Token string
	// RemotePaths, when false, confines backups to file names in
	// BackupDir (the HTTPS API); the control socket takes any path.
	RemotePaths bool
	// BackupDir is where a backup named without a directory goes.
	BackupDir string
	// Log receives one line per command.
	Log *slog.Logger
}

// Handler returns the admin API for srv, under /admin/.
func Handler(srv Server, o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	h := &api{srv: srv, o: o}
	mux := http.NewServeMux()
	for pattern, fn := range map[string]func(*http.Request) (any, error){
		"GET /admin/users":          h.listUsers,
		"POST /admin/users/add":     h.addUser,
		"POST /admin/users/delete":  h.deleteUser,
		"POST /admin/users/passwd":  h.passwd,
		"POST /admin/users/kick":    h.kickUser,
		"POST /admin/users/logout":  h.logout,
		"GET /admin/sessions":       h.sessions,
		"POST /admin/sessions/kick": h.kickSession,
		"GET /admin/rooms":          h.rooms,
		"POST /admin/rooms/destroy": h.destroyRoom,
		"POST /admin/announce":      h.announce,
		"GET /admin/stats":          h.stats,
		"POST /admin/reload":        h.reload,
		"POST /admin/backup":        h.backup,
		"GET /admin/{$}":            h.index,
		"/admin/":                   h.notFound,
	} {
		mux.Handle(pattern, h.wrap(pattern, fn))
	}
	return mux
}

type api struct {
	srv Server
	o   Options
}

// Request is the body of the POST commands; each uses the fields it
// names.
type Request struct {
	JID      string `json:"jid,omitempty"`
	Password string `json:"password,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Body     string `json:"body,omitempty"`
	Domain   string `json:"domain,omitempty"`
	Path     string `json:"path,omitempty"`
}

// Error is the body of a failed command.
type Error struct {
	Error string `json:"error"`
}

// maxRequestBytes bounds a command's body.
const maxRequestBytes = 64 << 10

// wrap checks the token, runs fn and writes its answer as JSON, or the
// error with its status.
func (h *api) wrap(pattern string, fn func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.o.Token != "" && !tokenOK(r, h.o.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ode admin"`)
			writeJSON(w, http.StatusUnauthorized, Error{"a valid bearer token is required (admin.token)"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
		res, err := fn(r)
		if err != nil {
			status := statusOf(err)
			if status == http.StatusInternalServerError {
				h.o.Log.Error("admin command failed", "command", pattern, "err", err)
			}
			writeJSON(w, status, Error{err.Error()})
			return
		}
		if r.Method == http.MethodGet {
			h.o.Log.Debug("admin command", "command", pattern)
		} else {
			h.o.Log.Info("admin command", "command", pattern)
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// tokenOK compares the bearer token in constant time.
func tokenOK(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

var errNoRoute = errors.New("no such command; GET /admin/ lists them")

func statusOf(err error) int {
	var ce *ConfigError
	switch {
	case errors.As(err, &ce):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrNotFound), errors.Is(err, errNoRoute):
		return http.StatusNotFound
	case errors.Is(err, ErrExists):
		return http.StatusConflict
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnsupported):
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// body decodes a command's request, refusing unknown fields.
func body(r *http.Request) (Request, error) {
	var req Request
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return req, fmt.Errorf("%w: request body: %v", ErrInvalid, err)
	}
	return req, nil
}

func (h *api) account(r *http.Request) (Request, jid.JID, error) {
	req, err := body(r)
	if err != nil {
		return req, jid.JID{}, err
	}
	u, err := h.srv.Accounts().ParseAccount(req.JID)
	return req, u, err
}

func (h *api) index(*http.Request) (any, error) {
	return map[string][]string{"commands": {
		"GET /admin/users?domain=D", "POST /admin/users/add {jid, password}", "POST /admin/users/delete {jid}",
		"POST /admin/users/passwd {jid, password}", "POST /admin/users/kick {jid}", "POST /admin/users/logout {jid}",
		"GET /admin/sessions?jid=J", "POST /admin/sessions/kick {jid}", "GET /admin/rooms",
		"POST /admin/rooms/destroy {jid, reason}", "POST /admin/announce {body, subject, domain}",
		"GET /admin/stats", "POST /admin/reload", "POST /admin/backup {path}",
	}}, nil
}

func (h *api) notFound(*http.Request) (any, error) { return nil, errNoRoute }

func (h *api) listUsers(r *http.Request) (any, error) {
	a := h.srv.Accounts()
	domain := r.URL.Query().Get("domain")
	if domain != "" {
		d, err := jid.Parse(domain)
		if err != nil || !d.IsDomain() || !slices.Contains(a.Domains, d.DomainString()) {
			return nil, fmt.Errorf("%w: domain %q is not served by this server", ErrInvalid, domain)
		}
		domain = d.DomainString()
	}
	users, err := a.List(r.Context(), domain)
	if err != nil {
		return nil, err
	}
	return map[string][]string{"users": nonNil(users)}, nil
}

func (h *api) addUser(r *http.Request) (any, error) {
	req, u, err := h.account(r)
	if err != nil {
		return nil, err
	}
	return map[string]string{"created": u.String()}, h.srv.Accounts().Add(r.Context(), u, req.Password)
}

func (h *api) deleteUser(r *http.Request) (any, error) {
	_, u, err := h.account(r)
	if err != nil {
		return nil, err
	}
	return map[string]string{"deleted": u.String()}, h.srv.Accounts().Delete(r.Context(), u)
}

func (h *api) passwd(r *http.Request) (any, error) {
	req, u, err := h.account(r)
	if err != nil {
		return nil, err
	}
	return map[string]string{"changed": u.String()}, h.srv.Accounts().SetPassword(r.Context(), u, req.Password)
}

func (h *api) kickUser(r *http.Request) (any, error) {
	req, u, err := h.account(r)
	if err != nil {
		return nil, err
	}
	text := req.Reason
	if text == "" {
		text = "ended by the administrator"
	}
	return map[string]int{"sessions": h.srv.Accounts().Kick(u, text)}, nil
}

func (h *api) logout(r *http.Request) (any, error) {
	_, u, err := h.account(r)
	if err != nil {
		return nil, err
	}
	n, t, err := h.srv.Accounts().Logout(r.Context(), u)
	return map[string]int{"sessions": n, "tokens": t}, err
}

func (h *api) sessions(r *http.Request) (any, error) {
	var u jid.JID
	if s := r.URL.Query().Get("jid"); s != "" {
		var err error
		if u, err = h.srv.Accounts().ParseAccount(s); err != nil {
			return nil, err
		}
	}
	return map[string][]Session{"sessions": nonNil(Sessions(h.srv.Router(), u))}, nil
}

func (h *api) kickSession(r *http.Request) (any, error) {
	req, err := body(r)
	if err != nil {
		return nil, err
	}
	full, err := jid.Parse(req.JID)
	if err != nil || full.Resource() == "" {
		return nil, fmt.Errorf("%w: %q is not a full JID (user@domain/resource; `ode session list` shows them)", ErrInvalid, req.JID)
	}
	text := req.Reason
	if text == "" {
		text = "ended by the administrator"
	}
	return map[string]string{"ended": full.String()}, KickSession(h.srv.Router(), full, text)
}

func (h *api) rooms(*http.Request) (any, error) {
	rooms, err := h.srv.Rooms()
	if err != nil {
		return nil, err
	}
	return map[string][]Room{"rooms": nonNil(rooms)}, nil
}

func (h *api) destroyRoom(r *http.Request) (any, error) {
	req, err := body(r)
	if err != nil {
		return nil, err
	}
	room, err := jid.Parse(req.JID)
	if err != nil || room.Local() == "" || room.Resource() != "" {
		return nil, fmt.Errorf("%w: %q is not a room's JID (room@conference.example.org)", ErrInvalid, req.JID)
	}
	return map[string]string{"destroyed": room.String()}, h.srv.DestroyRoom(r.Context(), room, req.Reason)
}

func (h *api) announce(r *http.Request) (any, error) {
	req, err := body(r)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Body) == "" {
		return nil, fmt.Errorf("%w: the announcement has no body", ErrInvalid)
	}
	if req.Domain != "" && !slices.Contains(h.srv.Accounts().Domains, req.Domain) {
		return nil, fmt.Errorf("%w: domain %q is not served by this server", ErrInvalid, req.Domain)
	}
	return map[string]int{"sent": Announce(r.Context(), h.srv.Router(), req.Domain, req.Subject, req.Body)}, nil
}

func (h *api) stats(r *http.Request) (any, error) { return h.srv.Stats(r.Context()) }

func (h *api) reload(r *http.Request) (any, error) { return h.srv.Reload(r.Context()) }

func (h *api) backup(r *http.Request) (any, error) {
	req, err := body(r)
	if err != nil {
		return nil, err
	}
	path, err := backupPath(req.Path, h.o)
	if err != nil {
		return nil, err
	}
	return map[string]string{"path": path}, h.srv.Backup(r.Context(), path)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
