// Package logging is the server's slog handler whose format (text or
// JSON) and level a reload changes while every logger derived from it
// (With, WithGroup) follows.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
)

// Switch is a slog.Handler writing to one writer in the format and at
// the level last set. Its methods are safe for concurrent use.
type Switch struct {
	w     io.Writer
	level slog.LevelVar
	base  atomic.Pointer[base]
}

// base is one format's handler; gen tells derived handlers to rebuild.
type base struct {
	h   slog.Handler
	gen uint64
}

var _ slog.Handler = (*Switch)(nil)

// New returns a Switch writing to w in format ("text", "json" or "" for
// text) at level ("debug", "info", "warn", "error" or "" for info).
func New(w io.Writer, format, level string) (*Switch, error) {
	s := &Switch{w: w}
	if err := s.Set(format, level); err != nil {
		return nil, err
	}
	return s, nil
}

// Set changes the format and the level for every logger derived from s.
func (s *Switch) Set(format, level string) error {
	var lv slog.Level
	if level != "" {
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return fmt.Errorf("log level %q: %w", level, err)
		}
	}
	opts := &slog.HandlerOptions{Level: &s.level}
	var h slog.Handler
	switch format {
	case "", "text":
		h = slog.NewTextHandler(s.w, opts)
	case "json":
		h = slog.NewJSONHandler(s.w, opts)
	default:
		return fmt.Errorf("unknown log format %q (want text or json)", format)
	}
	s.level.Set(lv)
	var gen uint64
	if old := s.base.Load(); old != nil {
		gen = old.gen + 1
	}
	s.base.Store(&base{h: h, gen: gen})
	return nil
}

// Level returns the level in effect.
func (s *Switch) Level() slog.Level { return s.level.Level() }

// Enabled implements slog.Handler.
func (s *Switch) Enabled(_ context.Context, l slog.Level) bool { return l >= s.level.Level() }

// Handle implements slog.Handler.
func (s *Switch) Handle(ctx context.Context, r slog.Record) error {
	return s.base.Load().h.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (s *Switch) WithAttrs(attrs []slog.Attr) slog.Handler {
	return (&derived{s: s}).with(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

// WithGroup implements slog.Handler.
func (s *Switch) WithGroup(name string) slog.Handler {
	return (&derived{s: s}).with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

// derived is a handler made by With or WithGroup: the same steps applied
// to the current format's handler, rebuilt when the format changes.
type derived struct {
	s     *Switch
	steps []func(slog.Handler) slog.Handler
	cache atomic.Pointer[base]
}

func (d *derived) with(step func(slog.Handler) slog.Handler) *derived {
	n := &derived{s: d.s, steps: append(append([]func(slog.Handler) slog.Handler(nil), d.steps...), step)}
	return n
}

func (d *derived) handler() slog.Handler {
	b := d.s.base.Load()
	if c := d.cache.Load(); c != nil && c.gen == b.gen {
		return c.h
	}
	h := b.h
	for _, step := range d.steps {
		h = step(h)
	}
	d.cache.Store(&base{h: h, gen: b.gen})
	return h
}

func (d *derived) Enabled(_ context.Context, l slog.Level) bool { return l >= d.s.level.Level() }

func (d *derived) Handle(ctx context.Context, r slog.Record) error {
	return d.handler().Handle(ctx, r)
}

func (d *derived) WithAttrs(attrs []slog.Attr) slog.Handler {
	return d.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

func (d *derived) WithGroup(name string) slog.Handler {
	return d.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}
