package module_test

import (
	"errors"
	"testing"

	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/router"
)

type fake struct{ cfg settings }

func (*fake) Name() string            { return "fake" }
func (*fake) Register(*router.Router) {}

type settings struct{ N int }

func TestConfigured(t *testing.T) {
	newFake := module.Configured(func(_ module.Deps, c settings) (*fake, error) {
		if c.N < 0 {
			return nil, errors.New("negative")
		}
		return &fake{cfg: c}, nil
	})
	defaults := &settings{N: 3}
	m, err := newFake(module.Deps{}, defaults)
	if err != nil || m.(*fake).cfg.N != 3 {
		t.Fatalf("New(&{3}) = %v, %v", m, err)
	}
	m.(*fake).cfg.N = 4
	if defaults.N != 3 {
		t.Error("the module changed the settings it was given")
	}
	// A failing constructor gives a nil Module, not a typed nil.
	if m, err := newFake(module.Deps{}, &settings{N: -1}); m != nil || err == nil {
		t.Errorf("New(&{-1}) = %#v, %v; want nil and an error", m, err)
	}
	for _, bad := range []any{nil, settings{}, (*settings)(nil), &struct{ N int }{}} {
		if _, err := newFake(module.Deps{}, bad); err == nil {
			t.Errorf("New(%#v): no error", bad)
		}
	}
}

func TestPlain(t *testing.T) {
	newFake := module.Plain(func(module.Deps) (*fake, error) { return nil, errors.New("no") })
	if m, err := newFake(module.Deps{}, nil); m != nil || err == nil {
		t.Errorf("New = %#v, %v; want nil and an error", m, err)
	}
	newFake = module.Plain(func(module.Deps) (*fake, error) { return &fake{}, nil })
	if m, err := newFake(module.Deps{}, nil); m == nil || err != nil {
		t.Errorf("New = %#v, %v", m, err)
	}
}
