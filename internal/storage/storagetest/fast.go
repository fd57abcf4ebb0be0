package storagetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ode-xmpp/ode/internal/storage"
)

// TestFASTTokens runs the conformance tests of storage.FASTTokens. open
// must return a new, empty store for the test it is given and close it
// when that test ends (t.Cleanup).
func TestFASTTokens(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"PutAndList", testFASTPutAndList},
		{"Slots", testFASTSlots},
		{"Use", testFASTUse},
		{"Invalidate", testFASTInvalidate},
		{"Expired", testFASTExpired},
		{"Max", testFASTMax},
		{"PasswordChange", testFASTPasswordChange},
		{"DeleteAll", testFASTDeleteAll},
		{"AccountDeleted", testFASTAccountDeleted},
		{"Invalid", testFASTInvalid},
		{"CanceledContext", testFASTCanceledContext},
	})
}

// fastNow is a time to the millisecond, so that tokens are not expired
// whatever day the tests run.
func fastNow() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// fastToken is a token of client with key byte k, created created days
// ago and expiring in expires days.
func fastToken(client string, k byte, created, expires int) storage.FASTToken {
	now := fastNow()
	return storage.FASTToken{ClientID: client, Key: bytes.Repeat([]byte{k}, 32), Mechanism: "HT-SHA-256-NONE",
		Created: now.AddDate(0, 0, -created), Expires: now.AddDate(0, 0, expires)}
}

func mustPutFAST(t *testing.T, s storage.Store, local string, tok storage.FASTToken, keep []byte, max int) {
	t.Helper()
	if err := s.PutFASTToken(t.Context(), local, home, tok, keep, max); err != nil {
		t.Fatalf("PutFASTToken(%s %x): %v", tok.ClientID, tok.Key[:1], err)
	}
}

func wantFAST(t *testing.T, s storage.Store, local, client string, want ...storage.FASTToken) {
	t.Helper()
	got, err := s.FASTTokens(t.Context(), local, home, client)
	if err != nil {
		t.Fatalf("FASTTokens(%s, %s): %v", local, client, err)
	}
	for i := range got {
		if i < len(want) {
			wantTime(t, "Created", got[i].Created, want[i].Created)
			wantTime(t, "Expires", got[i].Expires, want[i].Expires)
			got[i].Created, got[i].Expires = want[i].Created, want[i].Expires
		}
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("FASTTokens(%s, %q) (-want +got):\n%s", local, client, diff)
	}
}

func mustUseFAST(t *testing.T, s storage.Store, local string, tok storage.FASTToken, invalidate, want bool) {
	t.Helper()
	found, err := s.UseFASTToken(t.Context(), local, home, tok.ClientID, tok.Key, invalidate)
	if err != nil || found != want {
		t.Fatalf("UseFASTToken(%s %x) = %v, %v; want %v", tok.ClientID, tok.Key[:1], found, err, want)
	}
}

func testFASTPutAndList(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	wantFAST(t, s, alice, "phone")
	phone, laptop, none := fastToken("phone", 1, 0, 21), fastToken("laptop", 2, 0, 14), fastToken("", 3, 0, 7)
	laptop.Mechanism = "HT-SHA-256-EXPR"
	mustPutFAST(t, s, alice, phone, nil, 0)
	mustPutFAST(t, s, alice, laptop, nil, 0)
	mustPutFAST(t, s, alice, none, nil, 0)
	wantFAST(t, s, alice, "phone", phone)
	wantFAST(t, s, alice, "laptop", laptop)
	wantFAST(t, s, alice, "", none)
	wantFAST(t, s, bob, "phone")
	wantFAST(t, s, "nobody", "phone")
}

// testFASTSlots: a new token replaces the client's others but the one
// kept (the token the client just authenticated with).
func testFASTSlots(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	t1, t2, t3 := fastToken("phone", 1, 2, 19), fastToken("phone", 2, 1, 20), fastToken("phone", 3, 0, 21)
	mustPutFAST(t, s, alice, t1, nil, 0)
	mustPutFAST(t, s, alice, t2, t1.Key, 0)
	wantFAST(t, s, alice, "phone", t2, t1) // the one expiring last first
	// Rotation again from t1: t2 was never used and goes.
	mustPutFAST(t, s, alice, t3, t1.Key, 0)
	wantFAST(t, s, alice, "phone", t3, t1)
	// A password login's new token replaces both.
	t4 := fastToken("phone", 4, 0, 21)
	mustPutFAST(t, s, alice, t4, nil, 0)
	wantFAST(t, s, alice, "phone", t4)
}

// testFASTUse: using a token removes the client's tokens expiring
// before it, and no other client's.
func testFASTUse(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	old, cur, other := fastToken("phone", 1, 2, 19), fastToken("phone", 2, 1, 20), fastToken("laptop", 3, 5, 1)
	mustPutFAST(t, s, alice, old, nil, 0)
	mustPutFAST(t, s, alice, cur, old.Key, 0)
	mustPutFAST(t, s, alice, other, nil, 0)
	mustUseFAST(t, s, alice, old, false, true)
	wantFAST(t, s, alice, "phone", cur, old)
	mustUseFAST(t, s, alice, cur, false, true)
	wantFAST(t, s, alice, "phone", cur)
	wantFAST(t, s, alice, "laptop", other)
	mustUseFAST(t, s, alice, old, false, false)
	mustUseFAST(t, s, bob, cur, false, false)
	mustUseFAST(t, s, "nobody", cur, false, false)
}

func testFASTInvalidate(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	tok := fastToken("phone", 1, 0, 21)
	mustPutFAST(t, s, alice, tok, nil, 0)
	mustUseFAST(t, s, alice, tok, true, true)
	wantFAST(t, s, alice, "phone")
	mustUseFAST(t, s, alice, tok, false, false)
}

// testFASTExpired: storing a token removes the account's expired ones.
func testFASTExpired(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	expired := fastToken("laptop", 1, 30, -1)
	mustPutFAST(t, s, alice, expired, nil, 0)
	wantFAST(t, s, alice, "laptop", expired) // listed: the caller checks Expires
	mustPutFAST(t, s, bob, fastToken("laptop", 3, 0, 1), nil, 0)
	wantFAST(t, s, alice, "laptop", expired)
	fresh := fastToken("phone", 2, 0, 21)
	mustPutFAST(t, s, alice, fresh, nil, 0)
	wantFAST(t, s, alice, "laptop")
	wantFAST(t, s, alice, "phone", fresh)
}

func testFASTMax(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	a, b, c := fastToken("a", 1, 3, 20), fastToken("b", 2, 2, 20), fastToken("c", 3, 1, 20)
	mustPutFAST(t, s, alice, a, nil, 2)
	mustPutFAST(t, s, alice, b, nil, 2)
	mustPutFAST(t, s, alice, c, nil, 2)
	wantFAST(t, s, alice, "a")
	wantFAST(t, s, alice, "b", b)
	wantFAST(t, s, alice, "c", c)
	// The new token stays even when it is the oldest.
	d := fastToken("d", 4, 9, 20)
	mustPutFAST(t, s, alice, d, nil, 1)
	wantFAST(t, s, alice, "b")
	wantFAST(t, s, alice, "c")
	wantFAST(t, s, alice, "d", d)
}

func testFASTPasswordChange(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustPutFAST(t, s, alice, fastToken("phone", 1, 0, 21), nil, 0)
	keep := fastToken("phone", 2, 0, 21)
	mustPutFAST(t, s, bob, keep, nil, 0)
	if err := s.SetCredentials(t.Context(), alice, home, creds("new")); err != nil {
		t.Fatal(err)
	}
	wantFAST(t, s, alice, "phone")
	wantFAST(t, s, bob, "phone", keep)
}

func testFASTDeleteAll(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustPutFAST(t, s, alice, fastToken("phone", 1, 0, 21), nil, 0)
	mustPutFAST(t, s, alice, fastToken("laptop", 2, 0, 21), nil, 0)
	keep := fastToken("phone", 3, 0, 21)
	mustPutFAST(t, s, bob, keep, nil, 0)
	n, err := s.DeleteFASTTokens(t.Context(), alice, home)
	if err != nil || n != 2 {
		t.Fatalf("DeleteFASTTokens = %d, %v; want 2", n, err)
	}
	wantFAST(t, s, alice, "phone")
	wantFAST(t, s, alice, "laptop")
	wantFAST(t, s, bob, "phone", keep)
	if n, err := s.DeleteFASTTokens(t.Context(), "nobody", home); err != nil || n != 0 {
		t.Errorf("DeleteFASTTokens(nobody) = %d, %v", n, err)
	}
}

func testFASTAccountDeleted(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustPutFAST(t, s, alice, fastToken("phone", 1, 0, 21), nil, 0)
	recreate(t, s, alice)
	wantFAST(t, s, alice, "phone")
}

func testFASTInvalid(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	noKey, noMech := fastToken("phone", 1, 0, 21), fastToken("phone", 1, 0, 21)
	noKey.Key = nil
	noMech.Mechanism = ""
	for _, tok := range []storage.FASTToken{noKey, noMech} {
		if err := s.PutFASTToken(t.Context(), alice, home, tok, nil, 0); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("PutFASTToken(%+v): %v, want ErrInvalid", tok, err)
		}
	}
	if err := s.PutFASTToken(t.Context(), "nobody", home, fastToken("phone", 1, 0, 21), nil, 0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("PutFASTToken(nobody): %v, want ErrNotFound", err)
	}
	wantFAST(t, s, alice, "phone")
}

func testFASTCanceledContext(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	ctx := canceled(t)
	tok := fastToken("phone", 1, 0, 21)
	if err := s.PutFASTToken(ctx, alice, home, tok, nil, 0); err == nil {
		t.Error("PutFASTToken with a canceled context succeeded")
	}
	if _, err := s.FASTTokens(ctx, alice, home, "phone"); err == nil {
		t.Error("FASTTokens with a canceled context succeeded")
	}
	if _, err := s.UseFASTToken(ctx, alice, home, "phone", tok.Key, false); err == nil {
		t.Error("UseFASTToken with a canceled context succeeded")
	}
	if _, err := s.DeleteFASTTokens(ctx, alice, home); err == nil {
		t.Error("DeleteFASTTokens with a canceled context succeeded")
	}
}
