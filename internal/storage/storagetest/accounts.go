// Package storagetest holds the conformance tests that every storage backend
// runs against a real database, so that backends behave alike.
//
// A backend's test calls each TestX with a function that opens a new, empty
// store:
//
//	func TestAccounts(t *testing.T) {
//		storagetest.TestAccounts(t, func(t *testing.T) storage.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ode.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
package storagetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ode-xmpp/ode/internal/storage"
)

// TestAccounts runs the conformance tests of storage.Accounts. open must
// return a new, empty store for the test it is given and close it when that
// test ends (t.Cleanup).
func TestAccounts(t *testing.T, open func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s storage.Store)
	}{
		{"Create", testCreate},
		{"CreateExisting", testCreateExisting},
		{"CreateWithoutCredentials", testCreateWithoutCredentials},
		{"Invalid", testInvalid},
		{"SetCredentials", testSetCredentials},
		{"Delete", testDelete},
		{"List", testList},
		{"DomainsApart", testDomainsApart},
		{"ExactBytes", testExactBytes},
		{"ConcurrentCreates", testConcurrentCreates},
		{"CanceledContext", testCanceledContext},
		{"CreateAccounts", testCreateAccounts},
		{"CreateAccountsBulk", testCreateAccountsBulk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open(t)) })
	}
}

// Cred returns a credential for hash whose bytes are derived from seed, so
// that different seeds give different credentials.
func Cred(hash, seed string) storage.Credential {
	sum := func(part string) []byte {
		h := sha256.Sum256([]byte(hash + "\x00" + seed + "\x00" + part))
		return h[:]
	}
	return storage.Credential{
		Hash:       hash,
		Salt:       sum("salt")[:16],
		Iterations: 4096,
		StoredKey:  sum("stored"),
		ServerKey:  sum("server"),
	}
}

// creds returns SHA-1 and SHA-256 credentials derived from seed.
func creds(seed string) []storage.Credential {
	return []storage.Credential{Cred("SHA-1", seed), Cred("SHA-256", seed)}
}

func mustCreate(t *testing.T, s storage.Store, local, domain string, c []storage.Credential) {
	t.Helper()
	if err := s.CreateAccount(t.Context(), local, domain, c); err != nil {
		t.Fatalf("CreateAccount(%s@%s): %v", local, domain, err)
	}
}

// wantCreds checks the credentials of an account for the three SCRAM hashes.
func wantCreds(t *testing.T, s storage.Store, local, domain string, want []storage.Credential) {
	t.Helper()
	for _, hash := range []string{"SHA-1", "SHA-256", "SHA-512"} {
		i := slices.IndexFunc(want, func(c storage.Credential) bool { return c.Hash == hash })
		got, err := s.Credential(t.Context(), local, domain, hash)
		if i < 0 {
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Credential(%s@%s, %s) = %v, want ErrNotFound", local, domain, hash, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Credential(%s@%s, %s): %v", local, domain, hash, err)
			continue
		}
		if diff := cmp.Diff(want[i], got); diff != "" {
			t.Errorf("Credential(%s@%s, %s) mismatch (-want +got):\n%s", local, domain, hash, diff)
		}
	}
}

func wantExists(t *testing.T, s storage.Store, local, domain string, want bool) {
	t.Helper()
	got, err := s.AccountExists(t.Context(), local, domain)
	if err != nil || got != want {
		t.Errorf("AccountExists(%s@%s) = %v, %v; want %v", local, domain, got, err, want)
	}
}

func wantList(t *testing.T, s storage.Store, domain string, want []string) {
	t.Helper()
	got, err := s.ListAccounts(t.Context(), domain)
	if err != nil {
		t.Fatalf("ListAccounts(%q): %v", domain, err)
	}
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListAccounts(%q) mismatch (-want +got):\n%s", domain, diff)
	}
}

func testCreate(t *testing.T, s storage.Store) {
	want := []storage.Credential{Cred("SHA-1", "a"), Cred("SHA-256", "a"), Cred("SHA-512", "a")}
	mustCreate(t, s, "alice", "example.org", want)
	wantExists(t, s, "alice", "example.org", true)
	wantExists(t, s, "bob", "example.org", false)
	wantCreds(t, s, "alice", "example.org", want)
	if _, err := s.Credential(t.Context(), "alice", "example.org", "MD5"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Credential(unknown hash) = %v, want ErrNotFound", err)
	}
	if _, err := s.Credential(t.Context(), "bob", "example.org", "SHA-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Credential(no account) = %v, want ErrNotFound", err)
	}
}

func testCreateExisting(t *testing.T, s storage.Store) {
	mustCreate(t, s, "alice", "example.org", creds("first"))
	err := s.CreateAccount(t.Context(), "alice", "example.org", creds("second"))
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second CreateAccount = %v, want ErrExists", err)
	}
	wantCreds(t, s, "alice", "example.org", creds("first"))
}

func testCreateWithoutCredentials(t *testing.T, s storage.Store) {
	mustCreate(t, s, "alice", "example.org", nil)
	wantExists(t, s, "alice", "example.org", true)
	wantCreds(t, s, "alice", "example.org", nil)
}

func testInvalid(t *testing.T, s storage.Store) {
	mustCreate(t, s, "alice", "example.org", creds("a"))
	noHash := Cred("", "x")
	noSalt := Cred("SHA-1", "x")
	noSalt.Salt = nil
	noKey := Cred("SHA-1", "x")
	noKey.StoredKey = []byte{}
	noIterations := Cred("SHA-1", "x")
	noIterations.Iterations = 0
	bad := map[string][]storage.Credential{
		"no hash":        {noHash},
		"no salt":        {noSalt},
		"no stored key":  {noKey},
		"no iterations":  {noIterations},
		"twice one hash": {Cred("SHA-256", "x"), Cred("SHA-1", "x"), Cred("SHA-256", "y")},
	}
	for name, c := range bad {
		if err := s.CreateAccount(t.Context(), "bob", "example.org", c); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("CreateAccount(%s) = %v, want ErrInvalid", name, err)
		}
		if err := s.SetCredentials(t.Context(), "alice", "example.org", c); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("SetCredentials(%s) = %v, want ErrInvalid", name, err)
		}
	}
	for _, addr := range [][2]string{{"", "example.org"}, {"bob", ""}} {
		if err := s.CreateAccount(t.Context(), addr[0], addr[1], nil); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("CreateAccount(%q, %q) = %v, want ErrInvalid", addr[0], addr[1], err)
		}
	}
	wantExists(t, s, "bob", "example.org", false)
	wantCreds(t, s, "alice", "example.org", creds("a"))
}

func testSetCredentials(t *testing.T, s storage.Store) {
	mustCreate(t, s, "alice", "example.org", creds("old"))
	mustCreate(t, s, "bob", "example.org", creds("bob"))

	replaced := []storage.Credential{Cred("SHA-512", "new"), Cred("SHA-256", "new")}
	if err := s.SetCredentials(t.Context(), "alice", "example.org", replaced); err != nil {
		t.Fatalf("SetCredentials: %v", err)
	}
	wantCreds(t, s, "alice", "example.org", replaced) // SHA-1 is gone
	wantCreds(t, s, "bob", "example.org", creds("bob"))

	if err := s.SetCredentials(t.Context(), "alice", "example.org", nil); err != nil {
		t.Fatalf("SetCredentials(none): %v", err)
	}
	wantCreds(t, s, "alice", "example.org", nil)
	wantExists(t, s, "alice", "example.org", true)

	err := s.SetCredentials(t.Context(), "carol", "example.org", creds("c"))
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetCredentials(no account) = %v, want ErrNotFound", err)
	}
	wantExists(t, s, "carol", "example.org", false)
}

func testDelete(t *testing.T, s storage.Store) {
	mustCreate(t, s, "alice", "example.org", creds("a"))
	mustCreate(t, s, "bob", "example.org", creds("b"))
	if err := s.DeleteAccount(t.Context(), "alice", "example.org"); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	wantExists(t, s, "alice", "example.org", false)
	wantCreds(t, s, "alice", "example.org", nil)
	wantList(t, s, "example.org", []string{"bob"})
	if err := s.DeleteAccount(t.Context(), "alice", "example.org"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second DeleteAccount = %v, want ErrNotFound", err)
	}

	// A new account with the same name starts afresh.
	mustCreate(t, s, "alice", "example.org", []storage.Credential{Cred("SHA-512", "new")})
	wantCreds(t, s, "alice", "example.org", []storage.Credential{Cred("SHA-512", "new")})
	wantCreds(t, s, "bob", "example.org", creds("b"))
}

func testList(t *testing.T, s storage.Store) {
	wantList(t, s, "example.org", nil)
	wantList(t, s, "", nil)
	for _, a := range [][2]string{
		{"mallory", "example.org"}, {"bob", "example.net"}, {"alice", "example.org"},
		{"zoë", "example.org"}, {"carol", "example.org"}, {"alice", "example.net"},
		{"dave", "a.example"},
	} {
		mustCreate(t, s, a[0], a[1], nil)
	}
	wantList(t, s, "example.org", []string{"alice", "carol", "mallory", "zoë"})
	wantList(t, s, "example.net", []string{"alice", "bob"})
	wantList(t, s, "example.com", nil)
	wantList(t, s, "", []string{
		"dave@a.example",
		"alice@example.net", "bob@example.net",
		"alice@example.org", "carol@example.org", "mallory@example.org", "zoë@example.org",
	})
}

func testDomainsApart(t *testing.T, s storage.Store) {
	mustCreate(t, s, "alice", "example.org", creds("org"))
	mustCreate(t, s, "alice", "example.net", creds("net"))
	wantCreds(t, s, "alice", "example.org", creds("org"))
	wantCreds(t, s, "alice", "example.net", creds("net"))
	wantExists(t, s, "alice", "example.com", false)

	if err := s.SetCredentials(t.Context(), "alice", "example.net", nil); err != nil {
		t.Fatal(err)
	}
	wantCreds(t, s, "alice", "example.org", creds("org"))
	if err := s.DeleteAccount(t.Context(), "alice", "example.org"); err != nil {
		t.Fatal(err)
	}
	wantExists(t, s, "alice", "example.net", true)
	if err := s.DeleteAccount(t.Context(), "alice", "example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteAccount(other domain) = %v, want ErrNotFound", err)
	}
}

// testExactBytes checks that addresses are compared byte for byte: the
// caller normalises them, the store does not.
func testExactBytes(t *testing.T, s storage.Store) {
	mustCreate(t, s, "alice", "example.org", creds("lower"))
	mustCreate(t, s, "Alice", "example.org", creds("upper"))
	mustCreate(t, s, "café", "example.org", creds("nfc"))
	mustCreate(t, s, "cafe\u0301", "example.org", creds("nfd"))
	wantCreds(t, s, "alice", "example.org", creds("lower"))
	wantCreds(t, s, "Alice", "example.org", creds("upper"))
	wantCreds(t, s, "café", "example.org", creds("nfc"))
	wantCreds(t, s, "cafe\u0301", "example.org", creds("nfd"))
	wantExists(t, s, "alice", "EXAMPLE.ORG", false)
	wantList(t, s, "example.org", []string{"Alice", "alice", "cafe\u0301", "café"})
}

// testConcurrentCreates creates accounts from several goroutines, all of
// which also try to create one shared account: exactly one may succeed.
func testConcurrentCreates(t *testing.T, s storage.Store) {
	const workers, each = 8, 25
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				local := fmt.Sprintf("w%d-%d", w, i)
				if err := s.CreateAccount(t.Context(), local, "example.org", creds(local)); err != nil {
					t.Errorf("CreateAccount(%s): %v", local, err)
				}
			}
			err := s.CreateAccount(t.Context(), "shared", "example.org", creds(fmt.Sprint(w)))
			switch {
			case err == nil:
				mu.Lock()
				created++
				mu.Unlock()
			case !errors.Is(err, storage.ErrExists):
				t.Errorf("CreateAccount(shared): %v", err)
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("shared account created %d times, want once", created)
	}
	names, err := s.ListAccounts(t.Context(), "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != workers*each+1 {
		t.Errorf("%d accounts, want %d", len(names), workers*each+1)
	}
	wantCreds(t, s, "w3-7", "example.org", creds("w3-7"))
}

// testCanceledContext checks that every method fails with a canceled
// context, and that the writes did not happen.
func testCanceledContext(t *testing.T, s storage.Store) {
	mustCreate(t, s, "alice", "example.org", creds("a"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want context.Canceled", what, err)
		}
	}
	check("CreateAccount", s.CreateAccount(ctx, "bob", "example.org", creds("b")))
	_, err := s.CreateAccounts(ctx, []storage.NewAccount{{Local: "carol", Domain: "example.org"}})
	check("CreateAccounts", err)
	check("SetCredentials", s.SetCredentials(ctx, "alice", "example.org", nil))
	check("DeleteAccount", s.DeleteAccount(ctx, "alice", "example.org"))
	_, err = s.Credential(ctx, "alice", "example.org", "SHA-1")
	check("Credential", err)
	_, err = s.AccountExists(ctx, "alice", "example.org")
	check("AccountExists", err)
	_, err = s.ListAccounts(ctx, "example.org")
	check("ListAccounts", err)

	wantList(t, s, "", []string{"alice@example.org"})
	wantCreds(t, s, "alice", "example.org", creds("a"))
}

func testCreateAccounts(t *testing.T, s storage.Store) {
	mustCreate(t, s, "bob", "example.org", creds("old bob"))
	accounts := []storage.NewAccount{
		{Local: "alice", Domain: "example.org", Creds: creds("alice")},
		{Local: "bob", Domain: "example.org", Creds: creds("new bob")}, // exists
		{Local: "carol", Domain: "example.org"},
		{Local: "alice", Domain: "example.org", Creds: creds("alice again")}, // earlier in the batch
		{Local: "bob", Domain: "example.net", Creds: creds("bob.net")},
	}
	existed, err := s.CreateAccounts(t.Context(), accounts)
	if err != nil {
		t.Fatalf("CreateAccounts: %v", err)
	}
	if diff := cmp.Diff([]int{1, 3}, existed); diff != "" {
		t.Errorf("existed mismatch (-want +got):\n%s", diff)
	}
	wantCreds(t, s, "alice", "example.org", creds("alice"))
	wantCreds(t, s, "bob", "example.org", creds("old bob"))
	wantCreds(t, s, "bob", "example.net", creds("bob.net"))
	wantList(t, s, "example.org", []string{"alice", "bob", "carol"})

	// One invalid entry: nothing is created.
	existed, err = s.CreateAccounts(t.Context(), []storage.NewAccount{
		{Local: "dave", Domain: "example.org", Creds: creds("dave")},
		{Local: "", Domain: "example.org"},
	})
	if !errors.Is(err, storage.ErrInvalid) || existed != nil {
		t.Errorf("CreateAccounts(invalid) = %v, %v; want nil, ErrInvalid", existed, err)
	}
	wantExists(t, s, "dave", "example.org", false)

	existed, err = s.CreateAccounts(t.Context(), nil)
	if err != nil || len(existed) != 0 {
		t.Errorf("CreateAccounts(nil) = %v, %v", existed, err)
	}
}

// bulkAccounts is how many accounts testCreateAccountsBulk creates at once.
const bulkAccounts = 10000

func testCreateAccountsBulk(t *testing.T, s storage.Store) {
	accounts := Accounts(bulkAccounts, "user", "example.org")
	existed, err := s.CreateAccounts(t.Context(), accounts)
	if err != nil || len(existed) != 0 {
		t.Fatalf("CreateAccounts(%d) = %v, %v", len(accounts), existed, err)
	}
	names, err := s.ListAccounts(t.Context(), "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(accounts) || !slices.IsSorted(names) {
		t.Errorf("ListAccounts returned %d names (sorted: %v), want %d sorted", len(names), slices.IsSorted(names), len(accounts))
	}
	for _, i := range []int{0, 1234, len(accounts) - 1} {
		wantCreds(t, s, accounts[i].Local, "example.org", accounts[i].Creds)
	}

	// Again, with ten more: only those are created.
	more := append(Accounts(10, "more", "example.org"), accounts[:100]...)
	existed, err = s.CreateAccounts(t.Context(), more)
	if err != nil {
		t.Fatal(err)
	}
	if len(existed) != 100 || existed[0] != 10 || existed[99] != 109 {
		t.Errorf("existed = %d indexes from %v, want 100 from 10 to 109", len(existed), existed[:min(len(existed), 3)])
	}
	wantExists(t, s, "more-0009", "example.org", true)
}

// Accounts returns n accounts named prefix-0000, prefix-0001, … in domain,
// each with SHA-1 and SHA-256 credentials. Benchmarks use it too.
func Accounts(n int, prefix, domain string) []storage.NewAccount {
	accounts := make([]storage.NewAccount, n)
	for i := range accounts {
		local := fmt.Sprintf("%s-%04d", prefix, i)
		accounts[i] = storage.NewAccount{Local: local, Domain: domain, Creds: creds(local)}
	}
	return accounts
}
