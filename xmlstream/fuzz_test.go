package xmlstream

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// fuzzLimits are small so that the fuzzer reaches them.
var fuzzLimits = Limits{MaxElementBytes: 512, MaxDepth: 6, MaxAttrs: 5}

func fuzzSeeds(f *testing.F) {
	corpus, _ := benchCorpus()
	seeds := []string{
		"",
		"<message><body>hi</body></message></stream:stream>",
		"<a xmlns:p='urn:p' p:x='1' xml:lang='en'><b xmlns=''>t&amp;&#x41;<![CDATA[c]]></b></a>",
		"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
		"<a>\r\n&lt;</a>  <b v='\t&#9;'/>",
		"<a><!-- c --></a>",
		"<a>&foo;</a>",
		"<?pi?>",
		"<a><b></a>",
		"<a x='1' x='2'/>",
		"<p:a/>",
		"text",
		"<a>\xff</a>",
		"<a>]]></a>",
		"<a><b><c><d><e><f><g/></f></e></d></c></b></a>",
		string(corpus[len(benchHeader) : len(benchHeader)+600]),
		string(session[2]),
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(`<?xml version='1.0' encoding='UTF-8'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><a/>`), true)
	f.Add([]byte("\xef\xbb\xbf<stream xmlns='http://etherx.jabber.org/streams'><a/></stream>"), true)
	f.Add([]byte("<!DOCTYPE x><x/>"), true)
	f.Add([]byte("\xfe\xff\x00<"), true)
}

// fuzzInput is the stream a fuzz input stands for: data after a fixed
// header, or data alone when raw is set.
func fuzzInput(data []byte, raw bool) []byte {
	if raw {
		return data
	}
	return append([]byte(testHeader), data...)
}

// sameError reports whether two stream outcomes are the same: equal parse
// errors, or I/O errors of the same kind.
func sameError(a, b error) bool {
	var ea, eb *Error
	if errors.As(a, &ea) || errors.As(b, &eb) {
		return errors.As(b, &eb) && errors.As(a, &ea) && *ea == *eb
	}
	switch {
	case a == b:
		return true
	case errors.Is(a, io.ErrUnexpectedEOF):
		return errors.Is(b, io.ErrUnexpectedEOF)
	}
	return false
}

func FuzzReader(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		in := fuzzInput(data, raw)
		r := NewReader(bytes.NewReader(in), fuzzLimits)
		whole := readStreamWith(r)
		maxBuf := max(fuzzLimits.MaxElementBytes, maxHeaderBytes) + readChunk
		if len(r.buf) > maxBuf {
			t.Fatalf("buffer of %d bytes", len(r.buf))
		}
		for _, e := range whole.elems {
			checkLimits(t, e, 1)
		}
		if whole.err == nil {
			t.Fatal("no error at the end")
		}
		// Splitting the input must not change the outcome.
		split := readStream(iotest.OneByteReader(bytes.NewReader(in)), fuzzLimits)
		if !reflect.DeepEqual(whole.header, split.header) || !reflect.DeepEqual(whole.elems, split.elems) {
			t.Fatalf("one-byte reads gave different elements")
		}
		if !sameError(whole.err, split.err) {
			t.Fatalf("whole input: %v; one-byte reads: %v", whole.err, split.err)
		}
	})
}

// checkLimits checks that e respects fuzzLimits.
func checkLimits(t *testing.T, e *Element, depth int) {
	if depth > fuzzLimits.MaxDepth {
		t.Fatalf("element at depth %d", depth)
	}
	if len(e.Attr) > fuzzLimits.MaxAttrs {
		t.Fatalf("%d attributes", len(e.Attr))
	}
	if len(e.AppendXML(nil, "jabber:client")) > 8*fuzzLimits.MaxElementBytes {
		t.Fatalf("element too large: %s", e)
	}
	prevText := false
	for _, c := range e.Children {
		if c.Elem != nil {
			checkLimits(t, c.Elem, depth+1)
			prevText = false
			continue
		}
		if c.Text == "" || prevText {
			t.Fatalf("empty or unmerged text in %s", e)
		}
		prevText = true
	}
}

func FuzzRoundTrip(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		res := readStream(bytes.NewReader(fuzzInput(data, raw)), Limits{MaxElementBytes: 4096, MaxDepth: 32})
		for _, e := range res.elems {
			checkRoundTrip(t, e)
		}
	})
}
