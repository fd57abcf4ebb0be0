package xmpptest

import (
	"fmt"
	"strings"

	"github.com/ode-xmpp/ode/xmlstream"
)

// match reports how got differs from want, a transcript's expected
// element (see RunTranscript for {any} and {...}), or nil.
func match(want, got *xmlstream.Element) error {
	return matchAt(want, got, "")
}

func matchAt(want, got *xmlstream.Element, path string) error {
	path += "/" + want.Name.Local
	if want.Name != got.Name {
		return fmt.Errorf("%s: got element {%s}%s, want {%s}%s", path, got.Name.Space, got.Name.Local, want.Name.Space, want.Name.Local)
	}
	if err := matchAttrs(want, got, path); err != nil {
		return err
	}
	wc, more := children(want, true)
	gc, _ := children(got, false)
	if !more {
		if len(wc) != len(gc) {
			return fmt.Errorf("%s: got %d children (%s), want %d (%s)", path, len(gc), describeNodes(gc), len(wc), describeNodes(wc))
		}
		for i := range wc {
			if err := matchNode(wc[i], gc[i], path); err != nil {
				return err
			}
		}
		return nil
	}
	// {...}: the wanted children in order among others.
	j := 0
	for _, w := range wc {
		for j < len(gc) && matchNode(w, gc[j], path) != nil {
			j++
		}
		if j == len(gc) {
			return fmt.Errorf("%s: no child matches %s after the ones matched before", path, describeNodes([]xmlstream.Child{w}))
		}
		j++
	}
	return nil
}

func matchAttrs(want, got *xmlstream.Element, path string) error {
	for _, a := range want.Attr {
		v, ok := got.LookupAttr(a.Name.Space, a.Name.Local)
		if !ok {
			return fmt.Errorf("%s: no attribute %s, want %q", path, attrName(a.Name), a.Value)
		}
		if !matchValue(a.Value, v) {
			return fmt.Errorf("%s: attribute %s is %q, want %q", path, attrName(a.Name), v, a.Value)
		}
	}
	for _, a := range got.Attr {
		if _, ok := want.LookupAttr(a.Name.Space, a.Name.Local); !ok {
			return fmt.Errorf("%s: unexpected attribute %s=%q", path, attrName(a.Name), a.Value)
		}
	}
	return nil
}

func matchNode(w, g xmlstream.Child, path string) error {
	switch {
	case w.Elem != nil && g.Elem != nil:
		return matchAt(w.Elem, g.Elem, path)
	case w.Elem == nil && g.Elem == nil:
		if !matchValue(w.Text, g.Text) {
			return fmt.Errorf("%s: text %q, want %q", path, g.Text, w.Text)
		}
		return nil
	}
	return fmt.Errorf("%s: got %s, want %s", path, describeNodes([]xmlstream.Child{g}), describeNodes([]xmlstream.Child{w}))
}

// children returns e's child elements and trimmed non-blank texts; for an
// expected element it drops a {...} text and reports whether there was one.
func children(e *xmlstream.Element, expected bool) (cs []xmlstream.Child, more bool) {
	for _, c := range e.Children {
		if c.Elem != nil {
			cs = append(cs, c)
			continue
		}
		text := strings.TrimSpace(c.Text)
		if expected && strings.Contains(text, "{...}") {
			more = true
			text = strings.TrimSpace(strings.ReplaceAll(text, "{...}", ""))
		}
		if text != "" {
			cs = append(cs, xmlstream.Child{Text: text})
		}
	}
	return cs, more
}

// matchValue reports whether got matches want, in which {any} stands for
// any characters.
func matchValue(want, got string) bool {
	parts := strings.Split(want, "{any}")
	if len(parts) == 1 {
		return want == got
	}
	if !strings.HasPrefix(got, parts[0]) {
		return false
	}
	got = got[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(got, p)
		if i < 0 {
			return false
		}
		got = got[i+len(p):]
	}
	return strings.HasSuffix(got, last)
}

func attrName(n xmlstream.Name) string {
	switch n.Space {
	case "":
		return n.Local
	case xmlstream.NSXML:
		return "xml:" + n.Local
	}
	return "{" + n.Space + "}" + n.Local
}

func describeNodes(cs []xmlstream.Child) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		if c.Elem != nil {
			s[i] = "<" + c.Elem.Name.Local + "/>"
		} else {
			s[i] = fmt.Sprintf("%q", c.Text)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}
