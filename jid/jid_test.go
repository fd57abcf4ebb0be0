package jid

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// RFC 7622 §3.5.1 examples (valid JIDs), with the expected prepared parts.
// Example 18 of §3.5.2 ("juliet@example.com/ foo") was removed by erratum
// 4560: a leading space is allowed by OpaqueString, so it is listed here.
var validJIDs = []struct {
	in                      string
	want                    string
	local, domain, resource string
	isBare, isDomainJID     bool
}{
	{in: "juliet@example.com", want: "juliet@example.com", local: "juliet", domain: "example.com", isBare: true},
	{in: "juliet@example.com/foo", want: "juliet@example.com/foo", local: "juliet", domain: "example.com", resource: "foo"},
	{in: "juliet@example.com/foo bar", want: "juliet@example.com/foo bar", local: "juliet", domain: "example.com", resource: "foo bar"},
	{in: "juliet@example.com/foo@bar", want: "juliet@example.com/foo@bar", local: "juliet", domain: "example.com", resource: "foo@bar"},
	{in: `foo\20bar@example.com`, want: `foo\20bar@example.com`, local: `foo\20bar`, domain: "example.com", isBare: true},
	{in: "fussball@example.com", want: "fussball@example.com", local: "fussball", domain: "example.com", isBare: true},
	{in: "fußball@example.com", want: "fußball@example.com", local: "fußball", domain: "example.com", isBare: true},
	{in: "π@example.com", want: "π@example.com", local: "π", domain: "example.com", isBare: true},
	{in: "Σ@example.com/foo", want: "σ@example.com/foo", local: "σ", domain: "example.com", resource: "foo"},
	{in: "σ@example.com/foo", want: "σ@example.com/foo", local: "σ", domain: "example.com", resource: "foo"},
	{in: "ς@example.com/foo", want: "ς@example.com/foo", local: "ς", domain: "example.com", resource: "foo"},
	{in: "king@example.com/♚", want: "king@example.com/♚", local: "king", domain: "example.com", resource: "♚"},
	{in: "example.com", want: "example.com", domain: "example.com", isBare: true, isDomainJID: true},
	{in: "example.com/foobar", want: "example.com/foobar", domain: "example.com", resource: "foobar"},
	{in: "a.example.com/b@example.net", want: "a.example.com/b@example.net", domain: "a.example.com", resource: "b@example.net"},
	{in: "juliet@example.com/ foo", want: "juliet@example.com/ foo", local: "juliet", domain: "example.com", resource: " foo"},
	// Resource may contain '/' and '@'; only the first '/' splits.
	{in: "juliet@example.com/a/b@c", want: "juliet@example.com/a/b@c", local: "juliet", domain: "example.com", resource: "a/b@c"},
	{in: "example.com/a@b", want: "example.com/a@b", domain: "example.com", resource: "a@b"},
	// Domain forms.
	{in: "juliet@example.com./foo", want: "juliet@example.com/foo", local: "juliet", domain: "example.com", resource: "foo"},
	{in: "example.com.", want: "example.com", domain: "example.com", isBare: true, isDomainJID: true},
	{in: "JULIET@EXAMPLE.COM/Balcony", want: "juliet@example.com/Balcony", local: "juliet", domain: "example.com", resource: "Balcony"},
	{in: "Juliet@Example.Com", want: "juliet@example.com", local: "juliet", domain: "example.com", isBare: true},
	{in: "juliet@192.0.2.1/r", want: "juliet@192.0.2.1/r", local: "juliet", domain: "192.0.2.1", resource: "r"},
	{in: "192.0.2.1.", want: "192.0.2.1", domain: "192.0.2.1", isBare: true, isDomainJID: true},
	{in: "[::1]", want: "[::1]", domain: "[::1]", isBare: true, isDomainJID: true},
	{in: "juliet@[2001:DB8:0:0:0:0:0:1]/r", want: "juliet@[2001:db8::1]/r", local: "juliet", domain: "[2001:db8::1]", resource: "r"},
	{in: "[::FFFF:192.0.2.1]", want: "[::ffff:192.0.2.1]", domain: "[::ffff:192.0.2.1]", isBare: true, isDomainJID: true},
	{in: "xn--bcher-kva.example", want: "bücher.example", domain: "bücher.example", isBare: true, isDomainJID: true},
	{in: "XN--BCHER-KVA.example", want: "bücher.example", domain: "bücher.example", isBare: true, isDomainJID: true},
	{in: "BÜCHER.example", want: "bücher.example", domain: "bücher.example", isBare: true, isDomainJID: true},
	{in: "ｅｘａｍｐｌｅ.com", want: "example.com", domain: "example.com", isBare: true, isDomainJID: true},
	{in: "example。com", want: "example.com", domain: "example.com", isBare: true, isDomainJID: true},
	{in: "straße.de", want: "straße.de", domain: "straße.de", isBare: true, isDomainJID: true},
	{in: "chat_server", want: "chat_server", domain: "chat_server", isBare: true, isDomainJID: true},
	{in: "localhost", want: "localhost", domain: "localhost", isBare: true, isDomainJID: true},
	// Localpart mappings.
	{in: "ＪＵＬＩＥＴ@example.com", want: "juliet@example.com", local: "juliet", domain: "example.com", isBare: true},
	{in: "e\u0301@example.com", want: "\u00e9@example.com", local: "\u00e9", domain: "example.com", isBare: true},
	{in: "~!#$%^*()_+{}|[]\\;,.?=`@example.com", want: "~!#$%^*()_+{}|[]\\;,.?=`@example.com", local: "~!#$%^*()_+{}|[]\\;,.?=`", domain: "example.com", isBare: true},
	// The Bidi Rule applies only to localparts with right-to-left code
	// points (RFC 8265 §3.3.2).
	{in: "1é@example.com", want: "1é@example.com", local: "1é", domain: "example.com", isBare: true},
	{in: "_Jörg@example.com", want: "_jörg@example.com", local: "_jörg", domain: "example.com", isBare: true},
	{in: "שלום@example.com", want: "שלום@example.com", local: "שלום", domain: "example.com", isBare: true},
	// Resourcepart mappings: case kept, non-ASCII spaces mapped, NFC.
	{in: "juliet@example.com/Foo\u3000Bar", want: "juliet@example.com/Foo Bar", local: "juliet", domain: "example.com", resource: "Foo Bar"},
	{in: "juliet@example.com/Re\u0301s", want: "juliet@example.com/R\u00e9s", local: "juliet", domain: "example.com", resource: "R\u00e9s"},
	{in: "juliet@example.com/ ", want: "juliet@example.com/ ", local: "juliet", domain: "example.com", resource: " "},
}

func TestParseValid(t *testing.T) {
	for _, tc := range validJIDs {
		t.Run(tc.in, func(t *testing.T) {
			j, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got := j.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if got := j.Local(); got != tc.local {
				t.Errorf("Local() = %q, want %q", got, tc.local)
			}
			if got := j.DomainString(); got != tc.domain {
				t.Errorf("DomainString() = %q, want %q", got, tc.domain)
			}
			if got := j.Resource(); got != tc.resource {
				t.Errorf("Resource() = %q, want %q", got, tc.resource)
			}
			if got := j.IsBare(); got != tc.isBare {
				t.Errorf("IsBare() = %v, want %v", got, tc.isBare)
			}
			if got := j.IsDomain(); got != tc.isDomainJID {
				t.Errorf("IsDomain() = %v, want %v", got, tc.isDomainJID)
			}
			if j.IsZero() {
				t.Error("IsZero() = true")
			}
			// The canonical form parses to the same JID.
			again, err := Parse(j.String())
			if err != nil || again != j || !again.Equal(j) {
				t.Errorf("Parse(String()) = %v, %v; want %v", again, err, j)
			}
			// New with the prepared parts and with the raw parts agree.
			n, err := New(j.Local(), j.DomainString(), j.Resource())
			if err != nil || n != j {
				t.Errorf("New(parts) = %v, %v; want %v", n, err, j)
			}
		})
	}
}

// RFC 7622 §3.5.2 examples (invalid JIDs) and other invalid input, with the
// sentinel errors they must wrap.
var invalidJIDs = []struct {
	in   string
	want []error
}{
	{`"juliet"@example.com`, []error{ErrInvalidLocal}},
	{"foo bar@example.com", []error{ErrInvalidLocal}},
	{"juliet@@example.com/foo", []error{ErrInvalidDomain}},
	{"@example.com/", []error{ErrInvalidLocal, ErrEmpty}},
	{"henryⅣ@example.com", []error{ErrInvalidLocal}},
	{"henry Ⅳ@example.com", []error{ErrInvalidLocal}},
	{"♚@example.com", []error{ErrInvalidLocal}},
	{"juliet@", []error{ErrInvalidDomain, ErrEmpty}},
	{"/foobar", []error{ErrInvalidDomain, ErrEmpty}},
	{"", []error{ErrInvalidDomain, ErrEmpty}},
	{".", []error{ErrInvalidDomain, ErrEmpty}},
	{"@", []error{ErrInvalidLocal, ErrEmpty}},
	{"/", []error{ErrInvalidDomain, ErrEmpty}},
	{"@example.com", []error{ErrInvalidLocal, ErrEmpty}},
	{"juliet@example.com/", []error{ErrInvalidResource, ErrEmpty}},
	{"juliet@/foo", []error{ErrInvalidDomain, ErrEmpty}},
	{"juliet@./foo", []error{ErrInvalidDomain, ErrEmpty}},
	// Localpart: forbidden characters and disallowed code points.
	{"b&d@example.net", []error{ErrInvalidLocal}},
	{"b'd@example.net", []error{ErrInvalidLocal}},
	{"b:d@example.net", []error{ErrInvalidLocal}},
	{"b<d@example.net", []error{ErrInvalidLocal}},
	{"b>d@example.net", []error{ErrInvalidLocal}},
	{"b＂d@example.net", []error{ErrInvalidLocal}}, // fullwidth '"' maps to '"'
	{"jul\x01iet@example.com", []error{ErrInvalidLocal}},
	{"jul\x7fiet@example.com", []error{ErrInvalidLocal}},
	{"\xff@example.com", []error{ErrInvalidLocal}},
	{"1שלום@example.com", []error{ErrInvalidLocal}}, // Bidi rule
	{"foo\u200bbar@example.com", []error{ErrInvalidLocal}},
	// Domainpart.
	{"juliet@example.com..", []error{ErrInvalidDomain}},
	{"juliet@.example.com", []error{ErrInvalidDomain}},
	{"juliet@a..b", []error{ErrInvalidDomain}},
	{"juliet@exa mple.com", []error{ErrInvalidDomain}},
	{"a@b@example.com", []error{ErrInvalidDomain}},
	{"juliet@ex:ample.com", []error{ErrInvalidDomain}},
	{"juliet@ex<ample.com", []error{ErrInvalidDomain}},
	{"juliet@ex\x00ample.com", []error{ErrInvalidDomain}},
	{"juliet@ex\xffample.com", []error{ErrInvalidDomain}},
	{"juliet@-example.com", []error{ErrInvalidDomain}},
	{"juliet@example-.com", []error{ErrInvalidDomain}},
	{"juliet@ab--cd.com", []error{ErrInvalidDomain}},
	{"juliet@xn--a.example", []error{ErrInvalidDomain}},
	{"juliet@＠.example", []error{ErrInvalidDomain}}, // fullwidth '@' maps to '@'
	{"\u00ad", []error{ErrInvalidDomain}},           // ignored code point: nothing left
	{"١٢٣.com", []error{ErrInvalidDomain}},          // Bidi rule
	{"::1", []error{ErrInvalidDomain}},
	{"2001:db8::1", []error{ErrInvalidDomain}},
	{"juliet@::1/foo", []error{ErrInvalidDomain}},
	{"[::1", []error{ErrInvalidDomain}},
	{"[::1]x", []error{ErrInvalidDomain}},
	{"[]", []error{ErrInvalidDomain}},
	{"[127.0.0.1]", []error{ErrInvalidDomain}},
	{"[fe80::1%eth0]", []error{ErrInvalidDomain}},
	{"[example.com]", []error{ErrInvalidDomain}},
	// Resourcepart.
	{"juliet@example.com/foo\tbar", []error{ErrInvalidResource}},
	{"juliet@example.com/foo\x7f", []error{ErrInvalidResource}},
	{"juliet@example.com/\xff", []error{ErrInvalidResource}},
	{"juliet@example.com/\u200b", []error{ErrInvalidResource}},
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range invalidJIDs {
		t.Run(tc.in, func(t *testing.T) {
			j, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want error", tc.in, j)
			}
			t.Log(err)
			if !j.IsZero() {
				t.Errorf("Parse(%q) returned non-zero JID %q with error", tc.in, j)
			}
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("Parse(%q) error %q does not wrap %q", tc.in, err, want)
				}
			}
			if !strings.HasPrefix(err.Error(), "jid: ") {
				t.Errorf("error %q lacks the jid: prefix", err)
			}
		})
	}
}

func TestLengthLimits(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	dom253 := label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 61) // 253 octets
	tests := []struct {
		name string
		in   string
		want error // nil: valid
	}{
		{"local 1023", strings.Repeat("a", 1023) + "@example.com", nil},
		{"local 1024", strings.Repeat("a", 1024) + "@example.com", ErrLocalTooLong},
		{"local 1023 octets of π", strings.Repeat("π", 511) + "a@example.com", nil},
		{"local 1024 octets of π", strings.Repeat("π", 512) + "@example.com", ErrLocalTooLong},
		// Fullwidth letters are 3 octets each but map to 1: limits apply
		// after preparation.
		{"local 1023 fullwidth", strings.Repeat("ａ", 1023) + "@example.com", nil},
		{"local 1024 fullwidth", strings.Repeat("ａ", 1024) + "@example.com", ErrLocalTooLong},
		{"local huge", strings.Repeat("ａ", 5000) + "@example.com", ErrLocalTooLong},
		{"resource 1023", "juliet@example.com/" + strings.Repeat("r", 1023), nil},
		{"resource 1024", "juliet@example.com/" + strings.Repeat("r", 1024), ErrResourceTooLong},
		{"resource 1023 unicode", "juliet@example.com/" + strings.Repeat("♚", 341), nil},
		{"resource 1026 unicode", "juliet@example.com/" + strings.Repeat("♚", 342), ErrResourceTooLong},
		{"resource 1023 mapped spaces", "juliet@example.com/" + strings.Repeat("\u3000", 1023), nil},
		{"resource 1024 mapped spaces", "juliet@example.com/" + strings.Repeat("\u3000", 1024), ErrResourceTooLong},
		// The domainpart limit of 1023 octets can never be reached by a
		// valid domain name: DNS limits (63 per label, 253 in total in
		// A-label form) apply first and are reported as ErrDomainTooLong.
		{"domain 253", "juliet@" + dom253, nil},
		{"domain 253 + dot", "juliet@" + dom253 + ".", nil},
		{"domain 254", "juliet@" + dom253 + "b", ErrDomainTooLong},
		{"domain label 63", "juliet@" + label63 + ".com", nil},
		{"domain label 64", "juliet@" + label63 + "a.com", ErrDomainTooLong},
		{"domain 1023", "juliet@" + strings.Repeat("a.", 511) + "a", ErrDomainTooLong},
		{"domain 1024", "juliet@" + strings.Repeat("a.", 512), ErrDomainTooLong},
		{"domain huge", "juliet@" + strings.Repeat("a.", 5000) + "a", ErrDomainTooLong},
		{"domain U-label too long in A-label form", "juliet@" + strings.Repeat("ü", 60) + ".example", ErrDomainTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := Parse(tc.in)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				for _, p := range []string{j.Local(), j.DomainString(), j.Resource()} {
					if len(p) > maxPartLen {
						t.Errorf("part of %d octets accepted", len(p))
					}
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		local, domain, resource string
		want                    string
		err                     []error
	}{
		{"juliet", "example.com", "balcony", "juliet@example.com/balcony", nil},
		{"juliet", "example.com", "", "juliet@example.com", nil},
		{"", "example.com", "", "example.com", nil},
		{"", "example.com", "foo", "example.com/foo", nil},
		{"Juliet", "EXAMPLE.com.", "Foo", "juliet@example.com/Foo", nil},
		{"Σ", "xn--bcher-kva.example", "♚", "σ@bücher.example/♚", nil},
		{"", "example.com", "a/b@c", "example.com/a/b@c", nil},
		{"", "[::1]", "", "[::1]", nil},
		{"a@b", "example.com", "", "", []error{ErrInvalidLocal}},
		{"a/b", "example.com", "", "", []error{ErrInvalidLocal}},
		{"a b", "example.com", "", "", []error{ErrInvalidLocal}},
		{"a", "example.com/x", "", "", []error{ErrInvalidDomain}},
		{"a", "b@example.com", "", "", []error{ErrInvalidDomain}},
		{"a", "", "", "", []error{ErrInvalidDomain, ErrEmpty}},
		{"a", ".", "", "", []error{ErrInvalidDomain, ErrEmpty}},
		{"", "", "", "", []error{ErrInvalidDomain, ErrEmpty}},
		{"a", "example.com", "x\ty", "", []error{ErrInvalidResource}},
		{strings.Repeat("a", 1024), "example.com", "", "", []error{ErrInvalidLocal, ErrLocalTooLong}},
		{"a", "example.com", strings.Repeat("r", 1024), "", []error{ErrInvalidResource, ErrResourceTooLong}},
	}
	for _, tc := range tests {
		j, err := New(tc.local, tc.domain, tc.resource)
		if tc.err == nil {
			if err != nil {
				t.Errorf("New(%q, %q, %q): %v", tc.local, tc.domain, tc.resource, err)
				continue
			}
			if j.String() != tc.want {
				t.Errorf("New(%q, %q, %q) = %q, want %q", tc.local, tc.domain, tc.resource, j, tc.want)
			}
			if p := MustParse(tc.want); p != j {
				t.Errorf("New(%q, %q, %q) = %#v, MustParse = %#v", tc.local, tc.domain, tc.resource, j, p)
			}
			continue
		}
		for _, want := range tc.err {
			if !errors.Is(err, want) {
				t.Errorf("New(%q, %q, %q) error = %v, want %v", tc.local, tc.domain, tc.resource, err, want)
			}
		}
		if err != nil && !strings.HasPrefix(err.Error(), "jid: ") {
			t.Errorf("error %q lacks the jid: prefix", err)
		}
	}
}

func TestBareDomain(t *testing.T) {
	full := MustParse("juliet@example.com/balcony")
	bare := full.Bare()
	if bare.String() != "juliet@example.com" || !bare.IsBare() || bare.IsDomain() || bare.Resource() != "" || bare.Local() != "juliet" {
		t.Errorf("Bare() = %q (bare %v, domain %v)", bare, bare.IsBare(), bare.IsDomain())
	}
	if bare != MustParse("juliet@example.com") || bare.Bare() != bare {
		t.Errorf("Bare() not equal to the parsed bare JID")
	}
	dom := full.Domain()
	if dom.String() != "example.com" || !dom.IsDomain() || !dom.IsBare() || dom.Local() != "" || dom != MustParse("example.com") {
		t.Errorf("Domain() = %q", dom)
	}
	if dom.Domain() != dom || dom.Bare() != dom {
		t.Errorf("Domain()/Bare() of a domain JID changed it")
	}
	rd := MustParse("example.com/res")
	if rd.Bare() != dom || rd.Domain() != dom || rd.IsBare() || rd.IsDomain() {
		t.Errorf("domain/resource JID: Bare %q Domain %q", rd.Bare(), rd.Domain())
	}
	if full.IsBare() || full.IsDomain() {
		t.Errorf("full JID reported bare or domain")
	}

	var zero JID
	if !zero.IsZero() || zero.IsBare() || zero.IsDomain() {
		t.Errorf("zero JID: IsZero %v IsBare %v IsDomain %v", zero.IsZero(), zero.IsBare(), zero.IsDomain())
	}
	if zero.String() != "" || zero.Local() != "" || zero.DomainString() != "" || zero.Resource() != "" {
		t.Errorf("zero JID has non-empty parts")
	}
	if !zero.Bare().IsZero() || !zero.Domain().IsZero() {
		t.Errorf("Bare/Domain of zero JID not zero")
	}
	if full.IsZero() {
		t.Errorf("IsZero() true for a full JID")
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b string
		eq   bool
	}{
		{"Σ@example.com/foo", "σ@example.com/foo", true},
		{"ς@example.com/foo", "σ@example.com/foo", false},
		{"fussball@example.com", "fußball@example.com", false},
		{"JULIET@EXAMPLE.COM", "juliet@example.com", true},
		{"juliet@example.com.", "juliet@example.com", true},
		{"juliet@example.com/foo", "juliet@example.com/Foo", false},
		{"juliet@example.com/foo", "juliet@example.com", false},
		{"juliet@example.com", "example.com", false},
		{"xn--bcher-kva.example", "bücher.example", true},
		{"[::1]", "[0:0:0:0:0:0:0:1]", true},
		{"e\u0301@example.com", "\u00e9@example.com", true},
	}
	for _, tc := range tests {
		a, b := MustParse(tc.a), MustParse(tc.b)
		if got := a.Equal(b); got != tc.eq {
			t.Errorf("%q.Equal(%q) = %v, want %v", tc.a, tc.b, got, tc.eq)
		}
		if got := b.Equal(a); got != tc.eq {
			t.Errorf("%q.Equal(%q) = %v, want %v", tc.b, tc.a, got, tc.eq)
		}
		if got := a == b; got != tc.eq {
			t.Errorf("%q == %q is %v, want %v", tc.a, tc.b, got, tc.eq)
		}
	}
	// JIDs work as map keys.
	m := map[JID]int{MustParse("juliet@example.com/balcony"): 1}
	if m[MustParse("Juliet@Example.com/balcony")] != 1 {
		t.Errorf("map lookup with an equivalent JID failed")
	}
	if !(JID{}).Equal(JID{}) || (JID{}).Equal(MustParse("example.com")) {
		t.Errorf("zero JID equality")
	}
}

func TestWithResource(t *testing.T) {
	bare := MustParse("juliet@example.com")
	full, err := bare.WithResource("balcony")
	if err != nil || full != MustParse("juliet@example.com/balcony") {
		t.Fatalf("WithResource = %q, %v", full, err)
	}
	other, err := full.WithResource("Orchard\u3000Wall")
	if err != nil || other.String() != "juliet@example.com/Orchard Wall" {
		t.Errorf("WithResource replacing = %q, %v", other, err)
	}
	if full.String() != "juliet@example.com/balcony" {
		t.Errorf("WithResource modified the receiver: %q", full)
	}
	same, err := full.WithResource("balcony")
	if err != nil || same != full {
		t.Errorf("WithResource(same) = %q, %v", same, err)
	}
	b, err := full.WithResource("")
	if err != nil || b != bare {
		t.Errorf(`WithResource("") = %q, %v; want %q`, b, err, bare)
	}
	d, err := MustParse("example.com").WithResource("a/b@c")
	if err != nil || d.String() != "example.com/a/b@c" || d.Resource() != "a/b@c" {
		t.Errorf("domain WithResource = %q, %v", d, err)
	}
	if _, err := full.WithResource("foo\tbar"); !errors.Is(err, ErrInvalidResource) {
		t.Errorf("WithResource(tab) error = %v", err)
	}
	if _, err := full.WithResource(strings.Repeat("x", 1024)); !errors.Is(err, ErrResourceTooLong) {
		t.Errorf("WithResource(1024) error = %v", err)
	}
	if _, err := (JID{}).WithResource("x"); !errors.Is(err, ErrEmpty) || !errors.Is(err, ErrInvalidDomain) {
		t.Errorf("zero WithResource error = %v", err)
	}
}

func TestText(t *testing.T) {
	for _, s := range []string{"juliet@example.com/balcony", "σ@bücher.example/♚", "example.com", "[::1]/x"} {
		j := MustParse(s)
		text, err := j.MarshalText()
		if err != nil || string(text) != j.String() {
			t.Errorf("MarshalText(%q) = %q, %v", j, text, err)
		}
		var u JID
		if err := u.UnmarshalText(text); err != nil || u != j {
			t.Errorf("UnmarshalText(%q) = %q, %v", text, u, err)
		}
	}
	// Non-canonical input is prepared.
	var u JID
	if err := u.UnmarshalText([]byte("Juliet@Example.COM./Balcony")); err != nil || u.String() != "juliet@example.com/Balcony" {
		t.Errorf("UnmarshalText non-canonical = %q, %v", u, err)
	}
	// Errors leave the receiver unchanged.
	if err := u.UnmarshalText([]byte("@example.com")); !errors.Is(err, ErrEmpty) {
		t.Errorf("UnmarshalText invalid error = %v", err)
	}
	if u.String() != "juliet@example.com/Balcony" {
		t.Errorf("UnmarshalText error modified receiver: %q", u)
	}
	// The zero JID round-trips through an empty text.
	text, err := JID{}.MarshalText()
	if err != nil || len(text) != 0 {
		t.Errorf("zero MarshalText = %q, %v", text, err)
	}
	if err := u.UnmarshalText(nil); err != nil || !u.IsZero() {
		t.Errorf("UnmarshalText(empty) = %q, %v", u, err)
	}

	// encoding/json uses the text methods.
	type msg struct {
		From JID `json:"from"`
		To   JID `json:"to"`
	}
	in := msg{From: MustParse("romeo@example.net/orchard"), To: MustParse("juliet@example.com")}
	data, err := json.Marshal(in)
	if err != nil || string(data) != `{"from":"romeo@example.net/orchard","to":"juliet@example.com"}` {
		t.Fatalf("json.Marshal = %s, %v", data, err)
	}
	var out msg
	if err := json.Unmarshal(data, &out); err != nil || out != in {
		t.Errorf("json round trip = %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"from":"a@b@c"}`), &out); !errors.Is(err, ErrInvalidDomain) {
		t.Errorf("json.Unmarshal invalid error = %v", err)
	}
}

func TestMustParse(t *testing.T) {
	if j := MustParse("juliet@example.com"); j.String() != "juliet@example.com" {
		t.Errorf("MustParse = %q", j)
	}
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, ErrInvalidLocal) {
			t.Errorf("MustParse panic value = %v", r)
		}
	}()
	MustParse("foo bar@example.com")
	t.Error("MustParse did not panic")
}

func TestErrorContext(t *testing.T) {
	_, err := Parse("foo bar@example.com")
	if got, want := err.Error(), `jid: parse "foo bar@example.com": invalid localpart: precis: disallowed rune encountered`; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	long := strings.Repeat("x", 2000) + "@"
	_, err = Parse(long)
	if err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), "...") {
		t.Errorf("error for long input not truncated: %.300v", err)
	}
	_, err = New("a", "example.com", "x\ty")
	if err == nil || !strings.HasPrefix(err.Error(), `jid: new ("a", "example.com", "x\ty"): invalid resourcepart`) {
		t.Errorf("New error = %v", err)
	}
}

func TestConcurrentParse(t *testing.T) {
	inputs := []string{"juliet@example.com/balcony", "Σ@bücher.example/♚", "JULIET@EXAMPLE.COM", "foo bar@example.com", "[::1]"}
	want := make([]JID, len(inputs))
	for i, s := range inputs {
		want[i], _ = Parse(s)
	}
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for n := 0; n < 200; n++ {
				for i, s := range inputs {
					if j, _ := Parse(s); j != want[i] {
						t.Errorf("concurrent Parse(%q) = %q, want %q", s, j, want[i])
						return
					}
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

func TestAllocs(t *testing.T) {
	var sink JID
	var ssink string
	tests := []struct {
		name string
		max  float64
		f    func()
	}{
		{"ParseASCIIFull", 0, func() { sink, _ = Parse("juliet@example.com/balcony") }},
		{"ParseASCIIBare", 0, func() { sink, _ = Parse("juliet@example.com") }},
		{"ParseASCIIDomain", 0, func() { sink, _ = Parse("example.com") }},
		{"String", 0, func() { ssink = sink.String() }},
		{"Bare", 0, func() { sink = MustParse("juliet@example.com/balcony").Bare() }},
		{"Domain", 0, func() { sink = MustParse("juliet@example.com/balcony").Domain() }},
		{"New", 1, func() { sink, _ = New("juliet", "example.com", "balcony") }},
		{"WithResource", 1, func() { sink, _ = MustParse("juliet@example.com").WithResource("balcony") }},
	}
	for _, tc := range tests {
		if got := testing.AllocsPerRun(100, tc.f); got > tc.max {
			t.Errorf("%s: %v allocs/op, want <= %v", tc.name, got, tc.max)
		}
	}
	_ = ssink
}
