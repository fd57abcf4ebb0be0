package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportImport: ode export writes a XEP-0227 document (in a new
// 0600 file with -o), ode import reads it into another server's store,
// and exporting that gives the same document.
func TestExportImport(t *testing.T) {
	a, b := testConfig(t, ""), testConfig(t, "")
	for _, u := range []string{"juliet@example.org", "romeo@example.net"} {
		if st, _, errs := run(t, "", "user", "add", u, "-c", a, "--password", "s3cret "+u); st != 0 {
			t.Fatalf("user add %s: %s", u, errs)
		}
	}
	file := filepath.Join(t.TempDir(), "export.xml")
	st, _, errs := run(t, "", "export", "-c", a, "-o", file)
	if st != 0 || !strings.Contains(errs, "exported 2 users of 2 hosts") {
		t.Fatalf("export: %d %q", st, errs)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file: %v, %v; want mode 0600", fi, err)
	}
	if st, _, errs := run(t, "", "export", "-c", a, "-o", file); st != 1 || !strings.Contains(errs, "exists") {
		t.Errorf("export over an existing file: %d %q", st, errs)
	}
	st, out, errs := run(t, "", "import", "-c", b, file)
	if st != 0 || !strings.Contains(out, "2 users (0 skipped") || !strings.Contains(out, "6 SCRAM verifiers carried") {
		t.Fatalf("import: %d %q %q", st, out, errs)
	}
	_, first, _ := run(t, "", "export", "-c", a)
	_, second, _ := run(t, "", "export", "-c", b)
	if first != second || !strings.Contains(first, "<user name='juliet'>") && !strings.Contains(first, `<user name="juliet">`) {
		t.Errorf("the export of the import differs:\n%s\n%s", first, second)
	}
	if st, _, errs := run(t, "", "export", "-c", a, "-domain", "example.com"); st != 1 || !strings.Contains(errs, "not served") {
		t.Errorf("export of another domain: %d %q", st, errs)
	}
	_, one, _ := run(t, "", "export", "-c", a, "-domain", "example.net")
	if strings.Contains(one, "juliet") || !strings.Contains(one, "romeo") {
		t.Errorf("export -domain example.net:\n%s", one)
	}
	// A host this server does not serve stops the import, with where.
	c := testConfig(t, "")
	os.WriteFile(file+".other", []byte("<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='elsewhere.example'/></server-data>"), 0o600)
	if st, _, errs := run(t, "", "import", "-c", c, file+".other"); st != 1 || !strings.Contains(errs, "export.xml.other:2:") {
		t.Errorf("import of another host: %d %q", st, errs)
	}
}
