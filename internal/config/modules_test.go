package config_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ode-xmpp/ode/internal/config"
)

// rosterSettings and pingSettings stand in for modules' Config types.
type rosterSettings struct {
	MaxItems int `toml:"max_items"`
}

func (c *rosterSettings) Validate() []config.Problem {
	if c.MaxItems < 1 {
		return []config.Problem{{Key: "max_items", Msg: fmt.Sprintf("must be at least 1, got %d", c.MaxItems)}}
	}
	return nil
}

type pingSettings struct {
	Interval config.Duration `toml:"interval"`
	Timeout  config.Duration `toml:"timeout"`
	Peers    []string        `toml:"peers"`
}

func (c pingSettings) Validate() []config.Problem {
	var ps []config.Problem
	if c.Timeout <= 0 {
		ps = append(ps, config.Problem{Key: "timeout", Msg: fmt.Sprintf("must be positive, got %s", c.Timeout)})
	}
	if c.Interval > 0 && c.Interval < c.Timeout {
		ps = append(ps, config.Problem{Msg: "interval is shorter than timeout"})
	}
	return ps
}

// testModules returns a fresh module table: two modules with settings and
// three without.
func testModules() []config.ModuleSchema {
	return []config.ModuleSchema{
		{Name: "roster", Defaults: &rosterSettings{MaxItems: 1000}},
		{Name: "ping", Defaults: &pingSettings{Interval: config.Duration(5 * time.Minute), Timeout: config.Duration(time.Minute), Peers: []string{"a"}}},
		{Name: "disco"},
		{Name: "vcard"},
		{Name: "last"},
	}
}

func TestModuleDefaults(t *testing.T) {
	mods := testModules()
	got, err := config.Parse(nil, "empty.toml", mods...)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"roster": mods[0].Defaults, "ping": mods[1].Defaults}
	if diff := cmp.Diff(want, got.Modules.Settings); diff != "" {
		t.Errorf("settings without tables are not the defaults (-want +got):\n%s", diff)
	}
	if got.Modules.Settings["roster"] == mods[0].Defaults {
		t.Error("Parse returned the defaults themselves, not a copy")
	}

	got, err = config.Parse([]byte("[modules.roster]\nmax_items = 5\n[modules.ping]\npeers = ['b']\n"), "ode.toml", mods...)
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]any{
		"roster": &rosterSettings{MaxItems: 5},
		"ping":   &pingSettings{Interval: config.Duration(5 * time.Minute), Timeout: config.Duration(time.Minute), Peers: []string{"b"}},
	}
	if diff := cmp.Diff(want, got.Modules.Settings); diff != "" {
		t.Errorf("settings mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(testModules(), mods); diff != "" {
		t.Errorf("Parse changed the defaults (-before +after):\n%s", diff)
	}
}

// TestModuleErrors checks the errors for modules' tables, located like
// the core tables' errors.
func TestModuleErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{{
		name: "unknown key",
		file: "[modules.roster]\nmax_items = 5\nmax = 1\n",
		want: []string{"ode.toml:3: unknown key modules.roster.max"},
	}, {
		name: "wrong type",
		file: "[modules]\ndisabled = []\n\n[modules.roster]\nmax_items = \"many\"\n[modules.ping]\ninterval = 5\npeers = 'a'\n",
		want: []string{
			"ode.toml:5: modules.roster.max_items: expected an integer, got a string",
			`ode.toml:7: modules.ping.interval: invalid duration "5": write a number with a unit, such as "60s" or "5m"`,
			"ode.toml:8: modules.ping.peers: expected an array of strings, got a string",
		},
	}, {
		name: "not a table",
		file: "modules.roster = 3\n",
		want: []string{"ode.toml:1: modules.roster: expected a table, got an integer"},
	}, {
		name: "inline table",
		file: "modules = { roster = { max_items = 0 }, ping = { colour = 1 } }\n",
		want: []string{
			"ode.toml:1: unknown key modules.ping.colour",
			"ode.toml:1: modules.roster.max_items: must be at least 1, got 0",
		},
	}, {
		name: "module without settings",
		file: "[modules.disco]\nnode = 'x'\n",
		want: []string{"ode.toml:1: modules.disco: the disco module has no settings"},
	}, {
		name: "unknown module table",
		file: "[modules.muc]\nmax_rooms = 1\n",
		want: []string{"ode.toml:1: unknown key modules.muc"},
	}, {
		name: "old tables",
		file: "[server]\n\n[roster]\nmax_items = 5\n\n[ping]\ninterval = \"1m\"\n",
		want: []string{"ode.toml:3: [roster] moved to [modules.roster]", "ode.toml:6: [ping] moved to [modules.ping]"},
	}, {
		name: "old dotted key",
		file: "roster.max_items = 0\n",
		want: []string{"ode.toml:1: [roster] moved to [modules.roster]"},
	}, {
		name: "top-level table of a module without settings",
		file: "[disco]\n",
		want: []string{"ode.toml:1: unknown key disco"},
	}, {
		name: "validation",
		file: "[modules.roster]\n# the least\nmax_items = 0\n",
		want: []string{"ode.toml:3: modules.roster.max_items: must be at least 1, got 0"},
	}, {
		name: "validation of the table",
		file: "[modules.ping]\ninterval = \"1s\"\ntimeout = \"0s\"\n",
		want: []string{"ode.toml:3: modules.ping.timeout: must be positive, got 0s"},
	}, {
		name: "validation of the table as a whole",
		file: "[modules.ping]\ninterval = \"1s\"\ntimeout = \"2s\"\n",
		want: []string{"ode.toml:1: modules.ping: interval is shorter than timeout"},
	}, {
		name: "validation of defaults with no table",
		file: "[modules]\ndisabled = []\n",
	}, {
		name: "dotted keys in [modules]",
		file: "[modules]\ndisabled = ['vcard']\nroster.max_items = 0\n",
		want: []string{"ode.toml:3: modules.roster.max_items: must be at least 1, got 0"},
	}, {
		name: "disabled",
		file: "[modules]\ndisabled = [\"vcard\", \"muc\", \"ROSTER\"]\n",
		want: []string{`ode.toml:2: modules.disabled: unknown module "muc"`, `ode.toml:2: modules.disabled: unknown module "ROSTER"`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.file), "ode.toml", testModules()...)
			if diff := cmp.Diff(tt.want, errorLines(err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseWithoutModules: with no module table given, no module is known.
func TestParseWithoutModules(t *testing.T) {
	_, err := config.Parse([]byte("[modules]\ndisabled = [\"roster\"]\n[modules.roster]\nmax_items = 5\n[ping]\n"), "ode.toml")
	want := []string{
		`ode.toml:2: modules.disabled: unknown module "roster"`,
		"ode.toml:3: unknown key modules.roster",
		"ode.toml:5: unknown key ping",
	}
	if diff := cmp.Diff(want, errorLines(err)); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}

// TestValidateModules checks settings set in code rather than parsed.
func TestValidateModules(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		want     []string
	}{
		{name: "none", settings: map[string]any{}},
		{name: "valid", settings: map[string]any{"roster": &rosterSettings{MaxItems: 1}}},
		{name: "invalid", settings: map[string]any{"roster": &rosterSettings{}},
			want: []string{"modules.roster.max_items: must be at least 1, got 0"}},
		{name: "value method", settings: map[string]any{"ping": &pingSettings{}},
			want: []string{"modules.ping.timeout: must be positive, got 0s"}},
		{name: "wrong type", settings: map[string]any{"roster": rosterSettings{MaxItems: 1}, "ping": &rosterSettings{MaxItems: 1}},
			want: []string{
				"modules.roster: settings are config_test.rosterSettings, want *config_test.rosterSettings",
				"modules.ping: settings are *config_test.rosterSettings, want *config_test.pingSettings",
			}},
		{name: "module without settings", settings: map[string]any{"disco": &rosterSettings{}},
			want: []string{"modules.disco: the disco module has no settings"}},
		{name: "unknown module", settings: map[string]any{"muc": &rosterSettings{}, "http": nil},
			want: []string{`modules.http: unknown module "http"`, `modules.muc: unknown module "muc"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Modules.Settings = tt.settings
			err := cfg.Validate(testModules()...)
			if diff := cmp.Diff(tt.want, errorLines(err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
			var errs config.Errors
			if err != nil && !errors.As(err, &errs) {
				t.Errorf("Validate = %T, want config.Errors", err)
			}
		})
	}
}

func TestValidateModule(t *testing.T) {
	roster := testModules()[0]
	if err := config.ValidateModule(roster, &rosterSettings{MaxItems: 3}); err != nil {
		t.Errorf("ValidateModule(valid) = %v", err)
	}
	var e *config.Error
	err := config.ValidateModule(roster, &rosterSettings{})
	if !errors.As(err, &e) || e.Key != "modules.roster.max_items" {
		t.Errorf("ValidateModule(invalid) = %v, want an Error for modules.roster.max_items", err)
	}
	if err := config.ValidateModule(config.ModuleSchema{Name: "disco"}, nil); err != nil {
		t.Errorf("ValidateModule(no settings) = %v", err)
	}
}
