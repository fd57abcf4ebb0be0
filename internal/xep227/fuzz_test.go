package xep227_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ode-xmpp/ode/internal/xep227"
)

// FuzzImport feeds documents to the importer: it never panics, and
// anything it refuses is an ErrInput error (the store is real, so a
// store error is a bug in what the importer asked of it).
func FuzzImport(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.xml")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	s := openStore(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		opts := importOpts(nil)
		opts.Limits = xep227.Limits{MaxElementBytes: 4096, MaxDepth: 16, MaxPending: 10}
		_, err := xep227.Import(t.Context(), s, bytes.NewReader(doc), "fuzz.xml", "", opts)
		if err != nil && !errors.Is(err, xep227.ErrInput) {
			t.Fatalf("Import: %v", err)
		}
	})
}
