// Package upload implements XEP-0363 HTTP File Upload as a service on a
// sub-domain of each hosted domain (upload.example.org by default), with
// the files served by the server's HTTP listener at /upload/.
//
// The service answers disco#info (§3: the identity store/file, the
// feature urn:xmpp:http:upload:0 and the XEP-0128 form giving
// max-file-size); the disco module lists it in its domain's disco#items.
// Users of the hosted domains request slots (§4); anyone else gets
// forbidden. A request larger than max_file_size gets not-acceptable with
// <file-too-large/> (§4.1); one past the user's daily quota or the total
// quota gets resource-constraint with <retry stamp/> (§4.2). The slot's PUT
// URL takes one upload of exactly the granted size and content type,
// authorised by an Authorization header (an HMAC of the slot's id, size,
// type and expiry, valid for slot_timeout); the GET URL is public and
// unguessable (128 random bits), and serves ranges.
//
// Slots live in storage (storage.Uploads): the quotas are checked and the
// slot recorded atomically, and deleting an account deletes its slots, so
// its files stop being served at once. Files are kept under
// <data_dir>/uploads/, named by slot id; a goroutine deletes the slots
// older than expire_after and removes every file whose slot is gone, once
// an hour.
package upload

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/storage"
)

// NSUpload is the XEP-0363 namespace.
const NSUpload = "urn:xmpp:http:upload:0"

// PathPrefix is where the module's HTTP handler is mounted.
const PathPrefix = "/upload/"

const (
	// day is the window of the per-user quota.
	day = 24 * time.Hour
	// putGrace is how long a PUT that started in time may take: a slot
	// never filled is deleted slot_timeout + putGrace after it was granted.
	putGrace = time.Hour
	// sweepEvery is how often expired slots and orphaned files go.
	sweepEvery = time.Hour
	// secretFile holds the HMAC key in the uploads directory, so that PUT
	// URLs granted before a restart stay valid.
	secretFile = ".secret"
	tempPrefix = ".tmp-"
)

// Config is the [modules.upload] table.
type Config struct {
	// Subdomain names the service: <subdomain>.<domain> for each hosted
	// domain.
	Subdomain string `toml:"subdomain"`
	// MaxFileSize is the largest file, in bytes.
	MaxFileSize int64 `toml:"max_file_size"`
	// DailyQuota is the most bytes one user may upload in 24 hours; 0
	// for no limit.
	DailyQuota int64 `toml:"daily_quota"`
	// TotalQuota is the most bytes all stored files may take; 0 for no
	// limit.
	TotalQuota int64 `toml:"total_quota"`
	// ExpireAfter is how long files are kept; 0 keeps them until their
	// owner's account is deleted.
	ExpireAfter config.Duration `toml:"expire_after"`
	// SlotTimeout is how long a slot's PUT URL may be used.
	SlotTimeout config.Duration `toml:"slot_timeout"`
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Validate implements config.Validator.
func (c *Config) Validate() []config.Problem {
	var ps []config.Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, config.Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if !labelRE.MatchString(c.Subdomain) {
		add("subdomain", "must be one lower-case DNS label such as \"upload\", got %q", c.Subdomain)
	}
	if c.MaxFileSize < 1 {
		add("max_file_size", "must be at least 1, got %d", c.MaxFileSize)
	}
	for _, q := range []struct {
		key string
		v   int64
	}{{"daily_quota", c.DailyQuota}, {"total_quota", c.TotalQuota}} {
		if q.v != 0 && q.v < c.MaxFileSize {
			add(q.key, "must be 0 (no limit) or at least max_file_size (%d), got %d", c.MaxFileSize, q.v)
		}
	}
	if c.ExpireAfter < 0 {
		add("expire_after", "must not be negative, got %s", c.ExpireAfter)
	}
	if c.SlotTimeout < config.Duration(time.Second) || c.SlotTimeout > config.Duration(day) {
		add("slot_timeout", "must be between 1s and 24h, got %s", c.SlotTimeout)
	}
	return ps
}

// Info describes the module to the server.
var Info = module.Info{
	Name: "upload",
	XEPs: []string{"XEP-0363"},
	Config: &Config{
		Subdomain:   "upload",
		MaxFileSize: 10 << 20,
		DailyQuota:  100 << 20,
		TotalQuota:  0,
		ExpireAfter: config.Duration(30 * day),
		SlotTimeout: config.Duration(5 * time.Minute),
	},
	New: module.Configured(New),
}

// Module is the upload module.
type Module struct {
	deps   module.Deps
	cfg    Config
	off    bool // no HTTP listener: nothing registered
	dir    string
	secret []byte
	r      *router.Router

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ module.Module  = (*Module)(nil)
	_ module.Stopper = (*Module)(nil)
)

// New returns the upload module. Without an HTTP listener (deps.HTTP nil)
// it is off: Register logs why and registers nothing.
func New(deps module.Deps, cfg Config) (*Module, error) {
	m := &Module{deps: deps, cfg: cfg}
	if deps.HTTP == nil {
		m.off = true
		return m, nil
	}
	if deps.DataDir == "" {
		return nil, errors.New("upload: no data directory")
	}
	m.dir = filepath.Join(deps.DataDir, "uploads")
	if err := os.MkdirAll(m.dir, 0o750); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	var err error
	if m.secret, err = loadSecret(filepath.Join(m.dir, secretFile)); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	return m, nil
}

// loadSecret reads the HMAC key at path, creating it on first use.
func loadSecret(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) != 32 {
			return nil, fmt.Errorf("%s: want 32 bytes, it has %d (delete it to make a new key)", path, len(key))
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key = make([]byte, 32)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadSecret(path) // another process made it first
	}
	if err != nil {
		return nil, err
	}
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return key, nil
}

// Service returns the sub-domain label of the service (module.Service):
// there is one only with an HTTP listener.
func (c Config) Service(cfg config.Config) (string, bool) {
	return c.Subdomain, len(cfg.HTTP.Listen)+len(cfg.HTTP.ListenPlain) > 0
}

// Name implements module.Module.
func (m *Module) Name() string { return "upload" }

// Domains returns the service's domain for each hosted domain of r.
func (m *Module) Domains(r *router.Router) []string {
	var out []string
	for _, d := range r.Domains() {
		out = append(out, m.cfg.Subdomain+"."+d)
	}
	return out
}

// Register implements module.Module: the service on each upload domain,
// the HTTP handler, and the goroutine that removes expired files.
func (m *Module) Register(r *router.Router) {
	m.r = r
	if m.off {
		m.deps.Log.Warn("HTTP file upload (XEP-0363) is off: no HTTP listener is configured; " +
			"set [http] listen (or listen_plain behind a proxy), or add \"upload\" to [modules] disabled")
		return
	}
	services := m.Domains(r)
	for _, d := range services {
		r.AddService(d, m.serve)
	}
	m.deps.HTTP.Handle(PathPrefix, m)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(1)
	go m.loop(ctx)
	m.deps.Log.Info("HTTP file upload", "services", services, "dir", m.dir, "max_file_size", m.cfg.MaxFileSize)
}

// Stop implements module.Stopper: it ends the cleanup goroutine.
func (m *Module) Stop() {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
}

func (m *Module) loop(ctx context.Context) {
	defer m.wg.Done()
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		if err := m.Sweep(ctx); err != nil && ctx.Err() == nil {
			m.deps.Log.Error("upload cleanup", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Sweep deletes the slots older than expire_after and those never filled,
// then removes the files whose slot is gone (expired, or their owner's
// account deleted) and abandoned temporary files. The module runs it once
// an hour.
func (m *Module) Sweep(ctx context.Context) error {
	now := m.deps.Now()
	var before time.Time
	if m.cfg.ExpireAfter > 0 {
		before = now.Add(-time.Duration(m.cfg.ExpireAfter))
	}
	stale := now.Add(-time.Duration(m.cfg.SlotTimeout) - putGrace)
	slots, err := m.deps.Store.DeleteUploads(ctx, before, stale)
	if err != nil {
		return err
	}
	files := 0
	err = filepath.WalkDir(m.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		switch {
		case strings.HasPrefix(name, tempPrefix):
			if info, err := d.Info(); err == nil && info.ModTime().Before(stale) {
				return removeFile(path, &files)
			}
		case validID(name):
			_, err := m.deps.Store.Upload(ctx, name)
			if errors.Is(err, storage.ErrNotFound) {
				return removeFile(path, &files)
			}
			return err
		}
		return nil
	})
	if slots > 0 || files > 0 {
		m.deps.Log.Info("upload cleanup", "slots_deleted", slots, "files_removed", files)
	}
	return err
}

func removeFile(path string, n *int) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	*n++
	return nil
}

// path returns where the file of slot id is kept: in a directory named by
// the id's first two characters, so that no directory grows too large.
func (m *Module) path(id string) string {
	return filepath.Join(m.dir, id[:2], id)
}

// newID returns a slot id: 128 random bits in lower-case base32.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

var idRE = regexp.MustCompile(`^[a-z2-7]{26}$`)

func validID(s string) bool { return idRE.MatchString(s) }
