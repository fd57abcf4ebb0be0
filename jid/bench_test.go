package jid

import "testing"

var (
	benchSink    JID
	benchStrSink string
)

func benchmarkParse(b *testing.B, s string) {
	b.ReportAllocs()
	for b.Loop() {
		j, err := Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = j
	}
}

func BenchmarkParseASCIIFull(b *testing.B) { benchmarkParse(b, "juliet@example.com/balcony") }

func BenchmarkParseASCIIBare(b *testing.B) { benchmarkParse(b, "juliet@example.com") }

// BenchmarkParseASCIIUpper is ASCII input that needs mapping (case folding
// and a trailing dot), so it takes the general path.
func BenchmarkParseASCIIUpper(b *testing.B) { benchmarkParse(b, "Juliet@Example.COM./Balcony") }

// BenchmarkParseUnicode prepares all three parts with PRECIS and IDNA.
func BenchmarkParseUnicode(b *testing.B) { benchmarkParse(b, "Σ@bücher.example/♚ König") }

func BenchmarkString(b *testing.B) {
	j := MustParse("juliet@example.com/balcony")
	b.ReportAllocs()
	for b.Loop() {
		benchStrSink = j.String()
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		j, err := New("juliet", "example.com", "balcony")
		if err != nil {
			b.Fatal(err)
		}
		benchSink = j
	}
}

func BenchmarkBare(b *testing.B) {
	j := MustParse("juliet@example.com/balcony")
	b.ReportAllocs()
	for b.Loop() {
		benchSink = j.Bare()
	}
}
