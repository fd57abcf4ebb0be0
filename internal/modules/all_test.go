package modules_test

import (
	"encoding/xml"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/modules"
)

// TestTableMatchesConfig: every module in the table can be named in
// modules.disabled, and every name config accepts is a module.
func TestTableMatchesConfig(t *testing.T) {
	var names []string
	for _, e := range modules.All {
		if slices.Contains(names, e.Name) {
			t.Errorf("module %q listed twice", e.Name)
		}
		names = append(names, e.Name)
		if !config.KnownModules[e.Name] {
			t.Errorf("module %q is not in config.KnownModules", e.Name)
		}
	}
	for n := range config.KnownModules {
		if !slices.Contains(names, n) {
			t.Errorf("config accepts %q, which is not a module", n)
		}
	}
	example, err := os.ReadFile("../../ode.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !strings.Contains(string(example), `"`+n+`"`) {
			t.Errorf("ode.example.toml does not document module %q", n)
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
