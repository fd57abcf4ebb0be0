package jid

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/text/secure/bidirule"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/bidi"
)

// fastPathInputs returns many inputs around the edges of the fast path.
func fastPathInputs() []string {
	var in []string
	templates := []string{
		"a%b@example.com/res", "%@example.com", "juliet@ex%ample.com/res",
		"juliet@%example.com", "juliet@example%.com", "juliet@example.%com",
		"juliet@example.com%", "juliet@%", "%", "x@example.com/r%s",
		"x@example.com/%", "%example.com", "x%@y", "ab%d.example",
		"abc%.example", "a%-b.example", "a-%.example",
	}
	for _, tpl := range templates {
		for c := 0; c < 256; c++ {
			in = append(in, strings.Replace(tpl, "%", string([]byte{byte(c)}), 1))
		}
		for _, r := range "ÀßΣσςπéñ中♚\u00a0\u3000\u200b\u00adＡａ＠．。ⅣשלוםÅ\u0301" {
			in = append(in, strings.Replace(tpl, "%", string(r), 1))
		}
	}
	for _, v := range validJIDs {
		in = append(in, v.in)
	}
	for _, v := range invalidJIDs {
		in = append(in, v.in)
	}
	// Length boundaries.
	for _, n := range []int{1, 61, 62, 63, 64, 65, 250, 252, 253, 254, 255, 1022, 1023, 1024, 1025} {
		a := strings.Repeat("a", n)
		in = append(in, a+"@example.com", "juliet@example.com/"+a, a, a+".com", "x@"+a)
		var d []string
		for len(strings.Join(d, ".")) < n {
			d = append(d, strings.Repeat("b", 9))
		}
		dom := strings.Join(d, ".")[:n]
		in = append(in, dom, "x@"+dom+"/r", dom+".")
	}
	// Hyphen rules and A-labels.
	for _, l := range []string{"ab--c", "a--b", "--ab", "ab-", "-ab", "xn--", "xn--bcher-kva", "xn--ab", "a-b-c", "a_b", "_ab", "ab_", "a---b", "abc--d"} {
		in = append(in, l, l+".example", "x@"+l+".example/r", "x@example."+l)
	}
	// Random strings over an alphabet of interesting characters.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{
		"a", "b", "z", "A", "Z", "0", "9", "-", "_", ".", "@", "/", " ",
		":", "\"", "&", "'", "<", ">", "[", "]", "~", "!", "\\", "\t",
		"\x00", "\x7f", "\xff", "xn--", "ß", "Σ", "é", "e\u0301", "中", "♚",
		"\u3000", "\u200b", "Ａ", "．", "١", "ש",
	}
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		n := rng.IntN(24)
		for j := 0; j < n; j++ {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		in = append(in, b.String())
	}
	// Random mostly-ASCII JIDs in the common shape.
	ascii := "abcxyz0189-_.~!AZ "
	for i := 0; i < 20000; i++ {
		part := func(n int) string {
			var b strings.Builder
			for j := 0; j < n; j++ {
				b.WriteByte(ascii[rng.IntN(len(ascii))])
			}
			return b.String()
		}
		in = append(in, part(rng.IntN(8))+"@"+part(1+rng.IntN(12))+"/"+part(rng.IntN(8)))
	}
	// Random ASCII JIDs that are mostly in prepared form already.
	pick := func(chars string, n int) string {
		var b strings.Builder
		for j := 0; j < n; j++ {
			b.WriteByte(chars[rng.IntN(len(chars))])
		}
		return b.String()
	}
	const (
		localChars = "abcdefghijklmnopqrstuvwxyz0123456789.-_+=!#$%*?^`{|}~\\Q"
		labelChars = "abcdefghijklmnopqrstuvwxyz0123456789-_"
		resChars   = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCXYZ[\\]^_`abcxyz{|}~"
	)
	for i := 0; i < 20000; i++ {
		labels := make([]string, 1+rng.IntN(4))
		for k := range labels {
			labels[k] = pick(labelChars, 1+rng.IntN(10))
		}
		s := strings.Join(labels, ".")
		if rng.IntN(4) != 0 {
			s = pick(localChars, 1+rng.IntN(10)) + "@" + s
		}
		if rng.IntN(3) != 0 {
			s += "/" + pick(resChars, 1+rng.IntN(12))
		}
		in = append(in, s)
	}
	return in
}

// TestFastPathMatchesSlowPath checks that whatever the fast path accepts is
// accepted unchanged by the full preparation, and that the per-part ASCII
// shortcuts of the general parser do not change any result.
func TestFastPathMatchesSlowPath(t *testing.T) {
	fast := 0
	inputs := fastPathInputs()
	for _, s := range inputs {
		slow, serr := parse(s, false)
		short, herr := parse(s, true)
		if (serr == nil) != (herr == nil) || short != slow {
			t.Errorf("%q: with shortcuts %#v, %v; without %#v, %v", s, short, herr, slow, serr)
		}
		if serr != nil && herr != nil && serr.Error() != herr.Error() {
			t.Errorf("%q: error with shortcuts %q, without %q", s, herr, serr)
		}
		j, ok := parseFast(s)
		if ok {
			fast++
			if serr != nil {
				t.Errorf("%q: fast path accepted, full preparation failed: %v", s, serr)
				continue
			}
			if j != slow || j.s != s {
				t.Errorf("%q: fast path %#v, full preparation %#v", s, j, slow)
			}
		}
		p, perr := Parse(s)
		if (perr == nil) != (serr == nil) || p != slow {
			t.Errorf("%q: Parse %#v, %v; full preparation %#v, %v", s, p, perr, slow, serr)
		}
	}
	if fast < 10000 {
		t.Errorf("fast path accepted only %d of %d inputs", fast, len(inputs))
	}
	t.Logf("fast path accepted %d of %d inputs", fast, len(inputs))
}

// TestASCIIClasses checks the character classes against the libraries,
// byte by byte: a byte is in a class exactly when the full preparation
// accepts it unchanged in that part.
func TestASCIIClasses(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := string([]byte{byte(c)})
		s := "a" + b + "b"

		l, err := prepareLocal(s, false)
		if got, want := class[c]&cLocal != 0, err == nil && l == s; got != want {
			t.Errorf("byte %#x: cLocal %v, localpart preparation keeps it %v (%q, %v)", c, got, want, l, err)
		}
		if got := asciiLocalOK(s); got != (class[c]&cLocal != 0) {
			t.Errorf("byte %#x: asciiLocalOK %v", c, got)
		}

		r, err := prepareResource(s, false)
		if got, want := class[c]&cResource != 0, err == nil && r == s; got != want {
			t.Errorf("byte %#x: cResource %v, resourcepart preparation keeps it %v (%q, %v)", c, got, want, r, err)
		}
		if got := asciiResourceOK(s); got != (class[c]&cResource != 0) {
			t.Errorf("byte %#x: asciiResourceOK %v", c, got)
		}

		if c == '.' {
			continue
		}
		d, err := prepareDomain(s, false)
		if got, want := class[c]&cDomain != 0, err == nil && d == s; got != want {
			t.Errorf("byte %#x: cDomain %v, domainpart preparation keeps it %v (%q, %v)", c, got, want, d, err)
		}
		if got := asciiDomainOK(s); got != (class[c]&cDomain != 0) {
			t.Errorf("byte %#x: asciiDomainOK %v", c, got)
		}
	}
}

// TestShortcuts checks, part by part, that the ASCII shortcuts of the
// preparation functions give the same results as the full preparation.
func TestShortcuts(t *testing.T) {
	prep := map[string]func(string, bool) (string, error){
		"local": prepareLocal, "domain": prepareDomain, "resource": prepareResource,
	}
	for c := 0; c < 256; c++ {
		b := string([]byte{byte(c)})
		for _, s := range []string{b, "a" + b + "b", "A" + b + "B", "Ab" + b, b + ".Example", "x" + b + "X.Y"} {
			for name, f := range prep {
				full, ferr := f(s, false)
				short, serr := f(s, true)
				if full != short || (ferr == nil) != (serr == nil) {
					t.Errorf("%s %q: shortcut %q, %v; full %q, %v", name, s, short, serr, full, ferr)
				}
			}
		}
	}
}

// TestLocalProfile checks localProfile plus the RFC 8265 directionality
// rule against precis.UsernameCaseMapped: they agree, except that the
// library also applies the Bidi Rule to strings without right-to-left code
// points.
func TestLocalProfile(t *testing.T) {
	inputs := []string{"1é", "_jörg", "é1", "Σ", "ς", "ＡＢ", "fußball", "π", "שלום", "1שלום", "٣", "a٣", "e\u0301", "♚", "henryⅣ", "ǅ"}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("aZ09-_.é\u0301ßΣςΑ中ש١٣Ⅳ♚Ａ\u200d\u00a0!~")
	for i := 0; i < 5000; i++ {
		n := 1 + rng.IntN(6)
		r := make([]rune, n)
		for j := range r {
			r[j] = alphabet[rng.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(r))
	}
	for _, s := range inputs {
		lib, lerr := precis.UsernameCaseMapped.String(s)
		mine, merr := localProfile.String(s)
		if merr == nil && bidirule.DirectionString(mine) == bidi.RightToLeft && !bidirule.ValidString(mine) {
			merr = bidirule.ErrInvalid
		}
		switch {
		case lerr == nil && (merr != nil || mine != lib):
			t.Errorf("%q: library %q, local profile %q, %v", s, lib, mine, merr)
		case lerr != nil && merr == nil:
			if !errors.Is(lerr, bidirule.ErrInvalid) || bidirule.DirectionString(mine) == bidi.RightToLeft {
				t.Errorf("%q: library rejects (%v), local profile accepts %q", s, lerr, mine)
			}
		}
	}
}
