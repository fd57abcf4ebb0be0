package config

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
)

func TestKeyLines(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want map[string]int
	}{{
		name: "tables and keys",
		src:  "# c\n[server]\ndomains = [\"a\"] # c\n\n[c2s]\nlisten = []\n",
		want: map[string]int{"server": 2, "server.domains": 3, "c2s": 5, "c2s.listen": 6},
	}, {
		name: "dotted keys",
		src:  "a.b.c = 1\n[x . y]\nz . w = 2\n",
		want: map[string]int{"a": 1, "a.b": 1, "a.b.c": 1, "x": 2, "x.y": 2, "x.y.z": 3, "x.y.z.w": 3},
	}, {
		name: "quoted keys",
		src:  "\"a b\" = 1\n'c.d' = 2\n\"e\\u0041\" = 3\n[\"t\".'u']\nv = 4\n",
		want: map[string]int{`"a b"`: 1, `"c.d"`: 2, "eA": 3, "t": 4, "t.u": 4, "t.u.v": 5},
	}, {
		name: "multi-line values",
		src:  "a = \"\"\"\nb = 1\n\"\"\"\"\"\nc = '''\n[d]\n'''\ne = [\n  1, # f = 2\n  [2],\n]\ng = 3\n",
		want: map[string]int{"a": 1, "c": 4, "e": 7, "g": 11},
	}, {
		name: "inline tables",
		src:  "t = { a = 1, b = { c = \"}\" } }\nu = [{ v = 1 }]\n",
		want: map[string]int{"t": 1, "t.a": 1, "t.b": 1, "t.b.c": 1, "u": 2, "u.v": 2},
	}, {
		name: "date-times",
		src:  "a = 1979-05-27 07:32:00Z\nb = 1979-05-27\nc = 07:32:00\n",
		want: map[string]int{"a": 1, "b": 2, "c": 3},
	}, {
		name: "array of tables",
		src:  "[[p]]\nq = 1\n[[p]]\nq = 2\nr = 3\n",
		want: map[string]int{"p": 1, "p.q": 2, "p.r": 5},
	}, {
		name: "crlf",
		src:  "a = 1\r\n[b]\r\nc = 'x'\r\n",
		want: map[string]int{"a": 1, "b": 2, "b.c": 3},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := toml.Decode(tt.src, new(map[string]any)); err != nil {
				t.Fatalf("test document is not TOML: %v", err)
			}
			if diff := cmp.Diff(tt.want, keyLines(tt.src)); diff != "" {
				t.Errorf("keyLines mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzKeyLines checks keyLines against the toml package on documents it
// parses: every key with a scalar or array value must be found on a line that
// holds the key, at or before the line toml itself reports (toml reports the
// line where a value spanning several lines ends).
func FuzzKeyLines(f *testing.F) {
	for _, s := range []string{
		"[server]\ndomains = [\"a\"]\n",
		"a.b = 1\n[x]\n'y' = \"\"\"\nz = 1\n\"\"\"\n",
		"t = { a = [1, 2], b = { c = 'x' } }\n",
		"a = 1979-05-27 07:32:00Z\nb = [\n1,\n# c\n2]\n",
		"[[p]]\nq = 1\n[[p]]\nr = 2\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		var top map[string]toml.Primitive
		md, err := toml.Decode(src, &top)
		lines := keyLines(src) // must not panic, whatever src is
		if err != nil {
			return
		}
		srcLines := strings.Split(src, "\n")
		for _, kl := range tomlLines(t, md, top, nil) {
			key, tomlLine := kl.key, kl.line
			got := lines[key.String()]
			last := key[len(key)-1]
			if tomlLine == 0 { // toml does not know either
				tomlLine = len(srcLines)
			}
			if got < 1 || got > tomlLine ||
				isBare(last) && !strings.Contains(srcLines[got-1], last) {
				t.Errorf("key %s: keyLines says line %d, toml says %d", key, got, tomlLine)
			}
		}
	})
}

type tomlLine struct {
	key  toml.Key
	line int
}

var tomlLineRE = regexp.MustCompile(`^toml: line (\d+) `)

// tomlLines returns the lines toml reports for the leaf keys under a table.
// toml does not export positions; it prints them in errors, so decode each
// value into a type it cannot handle and read the line from the error.
func tomlLines(t *testing.T, md toml.MetaData, table map[string]toml.Primitive, path []string) []tomlLine {
	var lines []tomlLine
	for k, prim := range table {
		p := join(path, []string{k})
		var v any
		if err := md.PrimitiveDecode(prim, &v); err != nil {
			t.Fatal(err)
		}
		switch v.(type) {
		case map[string]any:
			var sub map[string]toml.Primitive
			if err := md.PrimitiveDecode(prim, &sub); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, tomlLines(t, md, sub, p)...)
			continue
		case []map[string]any:
			continue // array of tables: toml's positions are per element
		}
		var ch chan int
		err := md.PrimitiveDecode(prim, &ch)
		line := 0 // toml has no position for some keys, such as ''
		if m := tomlLineRE.FindStringSubmatch(errString(err)); m != nil {
			line, _ = strconv.Atoi(m[1])
		} else if !strings.Contains(errString(err), "unsupported type chan") {
			t.Fatalf("unexpected error from toml: %v", err)
		}
		lines = append(lines, tomlLine{toml.Key(p), line})
	}
	return lines
}

func isBare(k string) bool {
	for i := range len(k) {
		if !isBareKeyChar(k[i]) {
			return false
		}
	}
	return k != ""
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimSpace(err.Error())
}
