package config

import (
	"fmt"
	"reflect"
	"slices"
)

// ModuleSchema describes one feature module to Load, Parse and Validate: its
// name, which modules.disabled accepts, and the settings its table
// [modules.<Name>] decodes into.
//
// The schemas are passed in rather than registered in a global table because
// this package sits below the modules (they import it for Duration and
// Problem), and because a caller's list is the whole truth: a test parses
// with the modules it builds, `ode check` with the ones the server runs, and
// nothing depends on which packages happen to be linked in.
// internal/modules turns its table into schemas (modules.Schemas).
type ModuleSchema struct {
	// Name is the module's name, such as "roster" (not "disabled", which is
	// the other key of [modules]).
	Name string
	// Defaults points to the module's settings struct holding its default
	// values, or is nil when the module has no settings. Its fields are
	// decoded like the core tables' (toml tags, Duration, exact keys). It
	// is never modified: Parse decodes into a copy. When the struct has a
	// Validate() []Problem method (see Validator), Parse and Validate call it.
	Defaults any
}

// Validator is implemented by module settings that check their own values.
type Validator interface {
	// Validate reports every invalid value, or nothing.
	Validate() []Problem
}

// Problem is one invalid value in a module's settings. The configuration's
// errors give it the module's table as a prefix, with the file and line:
//
//	ode.toml:12: modules.roster.max_items: must be at least 1, got 0
type Problem struct {
	// Key is the key concerned, relative to the module's table, such as
	// "max_items"; empty for the table as a whole.
	Key string
	// Msg says what is wrong, without the key: "must be at least 1, got 0".
	Msg string
}

// ValidateModule checks one module's settings against its schema: settings
// must be of the type of s.Defaults (nil when it is nil) and pass their
// Validate method. Errors are keyed "modules.<name>.<key>". The server calls
// it for settings set in code rather than read from a file.
func ValidateModule(s ModuleSchema, settings any) error {
	var v validator
	v.module(s, settings)
	return v.errs.err()
}

// module checks the settings of one module.
func (v *validator) module(s ModuleSchema, settings any) {
	table := "modules." + s.Name
	if s.Defaults == nil {
		if settings != nil {
			v.add(table, "%s: the %s module has no settings", table, s.Name)
		}
		return
	}
	if want := reflect.TypeOf(s.Defaults); reflect.TypeOf(settings) != want {
		v.add(table, "%s: settings are %T, want %s", table, settings, want)
		return
	}
	c, ok := settings.(Validator)
	if !ok {
		return
	}
	for _, p := range c.Validate() {
		key := table
		if p.Key != "" {
			key += "." + p.Key
		}
		v.add(key, "%s: %s", key, p.Msg)
	}
}

// modules checks modules.disabled and every module's settings.
func (v *validator) modules(m Modules, mods []ModuleSchema) {
	names := make([]string, len(mods))
	for i, s := range mods {
		names[i] = s.Name
		if settings, ok := m.Settings[s.Name]; ok {
			v.module(s, settings)
		}
	}
	for _, name := range m.Disabled {
		if !slices.Contains(names, name) {
			v.add("modules.disabled", "modules.disabled: unknown module %q", name)
		}
	}
	keys := make([]string, 0, len(m.Settings))
	for name := range m.Settings {
		if !slices.Contains(names, name) {
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	for _, name := range keys {
		v.add("modules."+name, "modules.%s: unknown module %q", name, name)
	}
}

// cloneDefaults returns a pointer to a copy of the struct s.Defaults points
// to. The copy is shallow: decoding replaces a slice or map field as a whole,
// so the defaults' own slices and maps are never written to.
func cloneDefaults(s ModuleSchema) reflect.Value {
	p := reflect.ValueOf(s.Defaults)
	if p.Kind() != reflect.Pointer || p.IsNil() || p.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("config: module %s: Defaults is %T, want a pointer to a struct", s.Name, s.Defaults))
	}
	c := reflect.New(p.Elem().Type())
	c.Elem().Set(p.Elem())
	return c
}
