package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Load reads the TOML file at path over Default(), then validates the result.
// Every problem is reported in the returned Errors, each naming path, the
// line and the key: syntax errors, unknown keys, values of the wrong type
// and values that Validate rejects. mods are the server's modules (see
// Parse).
func Load(path string, mods ...ModuleSchema) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path, mods...)
}

// Parse decodes the TOML document data over Default() and validates the
// result, like Load; name is the file name used in errors. Keys are matched
// exactly (they are case-sensitive). On error the Config is the zero value.
//
// mods are the server's modules. Each one with settings gets an entry in
// Modules.Settings: its table [modules.<name>] decoded over a copy of its
// defaults, with unknown keys and wrong types reported like the core
// tables'. A module's table at the top level, where settings used to be,
// is an error that names the new place. Validation is Validate(mods...).
func Parse(data []byte, name string, mods ...ModuleSchema) (Config, error) {
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		return Config{}, Errors{syntaxError(name, err)}
	}
	d := decoder{md: md, file: name, lines: keyLines(string(data)), failed: make(map[string]bool),
		tables: make(map[string]reflect.Value), hints: make(map[string]string)}
	cfg := Default()
	for _, s := range mods {
		d.addModule(&cfg, s)
	}
	d.fields(top, nil, reflect.ValueOf(&cfg).Elem())
	for _, key := range md.Undecoded() { // none, unless fields missed one
		if !d.hasFailed(key) {
			d.report(key, "unknown key %s", key)
		}
	}
	cfg.normalize()
	errs := d.errs
	for _, e := range cfg.validate(mods) {
		path := strings.Split(e.Key, ".") // validation keys are bare
		if d.hasFailed(path) {
			continue // the value in the file was not used; its error is reported
		}
		errs = append(errs, d.locate(e, path))
	}
	errs.sort()
	if len(errs) > 0 {
		return Config{}, errs
	}
	return cfg, nil
}

// addModule prepares the decoding of module s: its settings start as a copy
// of its defaults, and its table decodes into them.
func (d *decoder) addModule(cfg *Config, s ModuleSchema) {
	table := "modules." + s.Name
	if s.Defaults == nil {
		d.hints[table] = fmt.Sprintf("%s: the %s module has no settings", table, s.Name)
		return
	}
	settings := cloneDefaults(s)
	cfg.Modules.Settings[s.Name] = settings.Interface()
	d.tables[table] = settings.Elem()
	d.hints[toml.Key{s.Name}.String()] = fmt.Sprintf("[%s] moved to [%s]", s.Name, table)
}

// syntaxError converts an error from toml.Decode.
func syntaxError(file string, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: file, Line: pe.Position.Line, Col: pe.Position.Col, Msg: pe.Message}
	}
	return &Error{File: file, Msg: err.Error()}
}

// decoder decodes a document key by key into the fields of Config, so that
// every unknown key and every value of the wrong type is reported, not only
// the first (toml.Decode stops at the first), and so that keys match their
// field's tag exactly (toml.Decode falls back to a case-insensitive match).
// An unknown key is reported once, not once per key beneath it.
type decoder struct {
	md     toml.MetaData
	file   string
	lines  map[string]int
	errs   Errors
	failed map[string]bool // keys whose value could not be decoded

	// tables are structs outside Config's fields, by dotted key: the
	// modules' settings ("modules.roster").
	tables map[string]reflect.Value
	// hints replace "unknown key" for some keys, by dotted key, such as
	// "[roster] moved to [modules.roster]".
	hints map[string]string
}

// fields decodes the keys of one table into the struct rv.
func (d *decoder) fields(table map[string]toml.Primitive, path []string, rv reflect.Value) {
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := join(path, []string{k})
		f, ok := fieldByTag(rv.Type(), k)
		if !ok {
			d.other(table[k], p)
			continue
		}
		fv := rv.FieldByIndex(f.Index)
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeFor[Duration]() {
			d.table(table[k], p, fv)
		} else {
			d.value(table[k], p, fv)
		}
	}
}

// other decodes a key that is not a field of the struct it is in: a
// module's table, or an error.
func (d *decoder) other(prim toml.Primitive, path []string) {
	key := toml.Key(path).String()
	if rv, ok := d.tables[key]; ok {
		d.table(prim, path, rv)
	} else if hint, ok := d.hints[key]; ok {
		d.report(path, "%s", hint)
	} else {
		d.report(path, "unknown key %s", key)
	}
}

// table decodes the TOML table prim into the struct rv.
func (d *decoder) table(prim toml.Primitive, path []string, rv reflect.Value) {
	var v any
	if err := d.md.PrimitiveDecode(prim, &v); err != nil {
		d.report(path, "%s: %v", toml.Key(path), err)
		return
	}
	if _, ok := v.(map[string]any); !ok {
		d.report(path, "%s: expected a table, got %s", toml.Key(path), describe(v))
		return
	}
	var m map[string]toml.Primitive
	if err := d.md.PrimitiveDecode(prim, &m); err != nil {
		d.report(path, "%s: %v", toml.Key(path), err)
		return
	}
	d.fields(m, path, rv)
}

// value decodes prim into the field fv, leaving fv as it was on error.
func (d *decoder) value(prim toml.Primitive, path []string, fv reflect.Value) {
	ptr := reflect.New(fv.Type())
	err := d.md.PrimitiveDecode(prim, ptr.Interface())
	if err == nil {
		fv.Set(ptr.Elem())
		return
	}
	var pe toml.ParseError
	if errors.As(err, &pe) { // UnmarshalText failed or an integer is out of range
		d.report(path, "%s: %s", toml.Key(path), pe.Message)
		return
	}
	var v any
	if err := d.md.PrimitiveDecode(prim, &v); err != nil {
		v = nil
	}
	d.report(path, "%s: expected %s, got %s", toml.Key(path), want(fv.Type()), describe(v))
}

// report records a problem with the key path.
func (d *decoder) report(path []string, format string, args ...any) {
	key := toml.Key(path).String()
	d.failed[key] = true
	d.errs = append(d.errs, d.locate(&Error{Key: key, Msg: fmt.Sprintf(format, args...)}, path))
}

// hasFailed reports whether path or a table enclosing it could not be decoded.
func (d *decoder) hasFailed(path []string) bool {
	for i := len(path); i > 0; i-- {
		if d.failed[toml.Key(path[:i]).String()] {
			return true
		}
	}
	return false
}

// locate sets e's file and line: the line of path, or failing that of the
// closest enclosing table that appears in the file.
func (d *decoder) locate(e *Error, path []string) *Error {
	e.File = d.file
	for i := len(path); i > 0; i-- {
		if line, ok := d.lines[toml.Key(path[:i]).String()]; ok {
			e.Line = line
			break
		}
	}
	return e
}

// fieldByTag finds the field of struct type t whose toml tag is exactly name.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("toml"), ","); tag == name && tag != "-" && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// want describes the TOML value expected for a Go type.
func want(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return `a duration such as "60s"`
	case t.Kind() == reflect.Slice:
		return "an array of " + noun(t.Elem()) + "s"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an " + noun(t)
	}
	return "a " + noun(t)
}

// noun names the TOML type wanted for a Go type.
func noun(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return "duration"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "integer"
	}
	return t.String()
}

// describe names the TOML type of a decoded value.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return describeArray(v)
	}
	if v == nil {
		return "nothing"
	}
	return "a date or time" // toml's local dates and times
}

// describeArray names an array by the types of its elements.
func describeArray(a []any) string {
	if len(a) == 0 {
		return "an empty array"
	}
	elem := describe(a[0])
	for _, v := range a[1:] {
		if describe(v) != elem {
			return "an array of mixed types"
		}
	}
	return "an array of " + strings.TrimPrefix(strings.TrimPrefix(elem, "a "), "an ") + "s"
}
