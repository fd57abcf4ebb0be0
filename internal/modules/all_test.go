package modules_test

import (
	"encoding/xml"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/module"
	"github.com/ode-xmpp/ode/internal/modules"
	"github.com/ode-xmpp/ode/internal/modules/register"
	"github.com/ode-xmpp/ode/internal/modules/roster"
	"github.com/ode-xmpp/ode/internal/router"
)

const examplePath = "../../ode.example.toml"

// What Info.Name and Info.XEPs may hold.
var (
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	specRE = regexp.MustCompile(`^(XEP-\d{4}|RFC \d{4,5})$`)
)

// TestTable checks each row of the table on its own: a unique name, a
// constructor, specifications named as docs/xeps.md names them, and
// defaults that are a pointer to a struct that validates.
func TestTable(t *testing.T) {
	var names []string
	for _, info := range modules.All {
		if !nameRE.MatchString(info.Name) || slices.Contains(names, info.Name) || info.Name == "disabled" {
			t.Errorf("module name %q: want a unique lower-case word other than \"disabled\"", info.Name)
		}
		names = append(names, info.Name)
		if info.New == nil {
			t.Errorf("%s: no New", info.Name)
		}
		for _, x := range info.XEPs {
			if !specRE.MatchString(x) {
				t.Errorf("%s: specification %q: want XEP-NNNN or RFC NNNN", info.Name, x)
			}
		}
		if info.Config == nil {
			continue
		}
		if typ := reflect.TypeOf(info.Config); typ.Kind() != reflect.Pointer || typ.Elem().Kind() != reflect.Struct {
			t.Errorf("%s: Config is %T, want a pointer to a struct", info.Name, info.Config)
			continue
		}
		if err := config.ValidateModule(config.ModuleSchema{Name: info.Name, Defaults: info.Config}, info.Config); err != nil {
			t.Errorf("%s: the defaults do not validate: %v", info.Name, err)
		}
	}
	if last := modules.All[len(modules.All)-1].Name; last != "disco" {
		t.Errorf("the last module is %q; disco must come last", last)
	}
}

// TestExampleFile checks that ode.example.toml loads with the modules'
// schemas, sets every key of Config and of each module's settings, names
// every module in its [modules] comments and gives module settings their
// default values.
func TestExampleFile(t *testing.T) {
	cfg, err := config.Load(examplePath, modules.Schemas()...)
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if cfg.Server.Domains[0] != "example.org" {
		t.Errorf("example domains = %q", cfg.Server.Domains)
	}
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	md, err := toml.Decode(string(data), new(map[string]any))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range configKeys(reflect.TypeFor[config.Config](), nil) {
		if !md.IsDefined(key...) {
			t.Errorf("%s does not set %s", examplePath, strings.Join(key, "."))
		}
	}
	for _, info := range modules.All {
		if !strings.Contains(string(data), `"`+info.Name+`"`) {
			t.Errorf("%s does not name module %q", examplePath, info.Name)
		}
		if info.Config == nil {
			continue
		}
		for _, key := range configKeys(reflect.TypeOf(info.Config).Elem(), []string{"modules", info.Name}) {
			if !md.IsDefined(key...) {
				t.Errorf("%s does not set %s", examplePath, strings.Join(key, "."))
			}
		}
		if diff := cmp.Diff(info.Config, cfg.Modules.Settings[info.Name]); diff != "" {
			t.Errorf("%s: [modules.%s] is not the defaults (-default +example):\n%s", examplePath, info.Name, diff)
		}
	}
}

// configKeys lists the TOML keys of the leaves of a config struct.
func configKeys(t reflect.Type, prefix []string) [][]string {
	var keys [][]string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		key := append(append([]string{}, prefix...), tag)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[config.Duration]() {
			keys = append(keys, configKeys(f.Type, key)...)
		} else {
			keys = append(keys, key)
		}
	}
	return keys
}

// TestXEPs: docs/xeps.md has a row for every XEP a module names, and
// mentions every RFC.
func TestXEPs(t *testing.T) {
	list, err := os.ReadFile("../../docs/xeps.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range modules.All {
		for _, x := range info.XEPs {
			row := "| [" + x + "]"
			if strings.HasPrefix(x, "RFC ") {
				row = x
			}
			if !strings.Contains(string(list), row) {
				t.Errorf("docs/xeps.md does not list %s (module %s)", x, info.Name)
			}
		}
	}
}

// TestDOAP: ode.doap is well-formed and lists each XEP of docs/xeps.md.
func TestDOAP(t *testing.T) {
	doap, err := os.ReadFile("../../ode.doap")
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(strings.NewReader(string(doap)))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("ode.doap: %v", err)
		}
	}
	list, err := os.ReadFile("../../docs/xeps.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(list), "\n") {
		if !strings.HasPrefix(line, "| [XEP-") {
			continue
		}
		num := strings.ToLower(line[3:11]) // "xep-0012"
		if !strings.Contains(string(doap), num+".html") {
			t.Errorf("ode.doap does not list %s", num)
		}
	}
}

func testDeps() module.Deps {
	log := slog.New(slog.DiscardHandler)
	return module.Deps{Router: router.New([]string{"localhost"}, log), Log: log, Now: time.Now}
}

// TestStart checks that modules get their settings, or their defaults, and
// that settings set in code are validated.
func TestStart(t *testing.T) {
	registerEnabled := func(cfg config.Config) bool {
		t.Helper()
		ms, err := modules.Start(testDeps(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer modules.Stop(ms)
		for _, m := range ms {
			if r, ok := m.(*register.Module); ok {
				return r.Enabled()
			}
		}
		t.Fatal("no register module")
		return false
	}
	cfg := config.Default()
	if registerEnabled(cfg) {
		t.Error("register enabled by default")
	}
	cfg.Modules.Settings["register"] = &register.Config{Enabled: true, PerIPPerHour: 1}
	if !registerEnabled(cfg) {
		t.Error("register settings not passed to the module")
	}
	if *register.Info.Config.(*register.Config) != (register.Config{PerIPPerHour: 3}) {
		t.Errorf("register's defaults changed: %+v", register.Info.Config)
	}

	cfg = config.Default()
	cfg.Modules.Disabled = []string{"register", "ping"}
	ms, err := modules.Start(testDeps(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	modules.Stop(ms)
	if len(ms) != len(modules.All)-2 {
		t.Errorf("%d modules started with 2 of %d disabled", len(ms), len(modules.All))
	}

	for name, settings := range map[string]any{
		"modules: roster: modules.roster.max_items: must be at least 1, got 0":             &roster.Config{},
		"modules: roster: modules.roster: settings are roster.Config, want *roster.Config": roster.Config{MaxItems: 1},
	} {
		cfg := config.Default()
		cfg.Modules.Settings["roster"] = settings
		if _, err := modules.Start(testDeps(), cfg); err == nil || err.Error() != name {
			t.Errorf("Start with roster settings %#v: %v, want %q", settings, err, name)
		}
	}
}

// TestParseWithSchemas: the schemas decode a module's table and
// report the old top-level tables.
func TestParseWithSchemas(t *testing.T) {
	cfg, err := config.Parse([]byte("[modules.roster]\nmax_items = 7\n"), "ode.toml", modules.Schemas()...)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&roster.Config{MaxItems: 7}, cfg.Modules.Settings["roster"]); diff != "" {
		t.Errorf("roster settings (-want +got):\n%s", diff)
	}
	_, err = config.Parse([]byte("[roster]\nmax_items = 7\n[offline]\n[register]\n[ping]\n[disco]\n"), "ode.toml", modules.Schemas()...)
	want := strings.Join([]string{
		"ode.toml:1: [roster] moved to [modules.roster]",
		"ode.toml:3: [offline] moved to [modules.offline]",
		"ode.toml:4: [register] moved to [modules.register]",
		"ode.toml:5: [ping] moved to [modules.ping]",
		"ode.toml:6: unknown key disco",
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("old tables: got\n%v\nwant\n%s", err, want)
	}
}

// TestServiceDomains checks the services' names derived from the
// configuration without starting the modules.
func TestServiceDomains(t *testing.T) {
	cfg := config.Default()
	cfg.Server.Domains = []string{"example.org", "example.net"}
	want := []string{"upload.example.org", "upload.example.net", "conference.example.org", "conference.example.net"}
	if got := modules.ServiceDomains(cfg); !slices.Equal(got, want) {
		t.Errorf("defaults: %v, want %v", got, want)
	}
	cfg.HTTP.Listen = nil
	cfg.Modules.Disabled = []string{"vcard"}
	if got := modules.ServiceDomains(cfg); !slices.Equal(got, want[2:]) {
		t.Errorf("without HTTP: %v, want %v", got, want[2:])
	}
	cfg.Modules.Disabled = []string{"muc"}
	if got := modules.ServiceDomains(cfg); len(got) != 0 {
		t.Errorf("muc disabled, no HTTP: %v", got)
	}
}
