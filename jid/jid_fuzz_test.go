package jid

import (
	"testing"
	"unicode/utf8"
)

func FuzzParse(f *testing.F) {
	for _, v := range validJIDs {
		f.Add(v.in)
	}
	for _, v := range invalidJIDs {
		f.Add(v.in)
	}
	for _, s := range []string{
		"juliet@example.com/balcony", "JULIET@Example.COM./Balcony",
		"σ@bücher.example/♚", "xn--bcher-kva.example", "[2001:db8::1]/r",
		"a@b@c/d@e/f", "x@a_b.example", "x@ab--c.example", "ｊ@ｅ．ｃｏｍ/ｒ",
		"x@ex\u00adample.com", "1é@example.com", "שלום@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := Parse(s)
		if err != nil {
			if !j.IsZero() {
				t.Fatalf("Parse(%q) returned %q with error %v", s, j, err)
			}
			return
		}
		str := j.String()
		if j.IsZero() || !utf8.ValidString(str) {
			t.Fatalf("Parse(%q) = %q: zero or invalid UTF-8", s, str)
		}
		for _, p := range []string{j.Local(), j.DomainString(), j.Resource()} {
			if len(p) > maxPartLen {
				t.Fatalf("Parse(%q): part of %d octets", s, len(p))
			}
		}
		if j.DomainString() == "" {
			t.Fatalf("Parse(%q): empty domain", s)
		}

		// The canonical form is stable.
		again, err := Parse(str)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, but reparsing fails: %v", s, str, err)
		}
		if !again.Equal(j) || again != j || again.String() != str {
			t.Fatalf("Parse(%q) = %#v, reparsed %#v", s, j, again)
		}

		// The fast path, the shortcuts and the full preparation agree.
		slow, err := parse(s, false)
		if err != nil || slow != j {
			t.Fatalf("Parse(%q) = %#v, full preparation %#v, %v", s, j, slow, err)
		}

		// The parts rebuild the same JID.
		n, err := New(j.Local(), j.DomainString(), j.Resource())
		if err != nil || n != j {
			t.Fatalf("New(parts of %q) = %#v, %v; want %#v", s, n, err, j)
		}
		if b := j.Bare(); b.Resource() != "" || b.Local() != j.Local() || b.DomainString() != j.DomainString() {
			t.Fatalf("Bare(%q) = %q", str, b)
		}
		if d := j.Domain(); !d.IsDomain() || d.String() != j.DomainString() {
			t.Fatalf("Domain(%q) = %q", str, d)
		}
		if j.Resource() != "" {
			w, err := j.Bare().WithResource(j.Resource())
			if err != nil || w != j {
				t.Fatalf("WithResource(%q) = %q, %v", j.Resource(), w, err)
			}
		}
	})
}
