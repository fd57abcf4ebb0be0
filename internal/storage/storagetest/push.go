package storagetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ode-xmpp/ode/internal/storage"
)

// TestPushRegistrations runs the conformance tests of
// storage.PushRegistrations. open must return a new, empty store for the
// test it is given and close it when that test ends (t.Cleanup).
func TestPushRegistrations(t *testing.T, open func(t *testing.T) storage.Store) {
	run(t, open, []subtest{
		{"PutAndList", testPushPutAndList},
		{"Replace", testPushReplace},
		{"Max", testPushMax},
		{"Delete", testPushDelete},
		{"Invalid", testPushInvalid},
		{"AccountDeleted", testPushAccountDeleted},
		{"CanceledContext", testPushCanceledContext},
	})
}

func pushReg(service, node string, day int) storage.PushRegistration {
	return storage.PushRegistration{Service: service, Node: node, Options: []byte(`<x xmlns="jabber:x:data" type="submit"/>`), Created: at(day, 0)}
}

func mustPutPush(t *testing.T, s storage.Store, local string, r storage.PushRegistration, max int) []storage.PushRegistration {
	t.Helper()
	removed, err := s.PutPushRegistration(t.Context(), local, home, r, max)
	if err != nil {
		t.Fatalf("PutPushRegistration(%s %s): %v", r.Service, r.Node, err)
	}
	return removed
}

func wantPushRegs(t *testing.T, s storage.Store, local string, want ...storage.PushRegistration) {
	t.Helper()
	got, err := s.PushRegistrations(t.Context(), local, home)
	if err != nil {
		t.Fatalf("PushRegistrations(%s): %v", local, err)
	}
	for i := range got {
		if i < len(want) {
			wantTime(t, "Created", got[i].Created, want[i].Created)
			got[i].Created = want[i].Created
		}
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("PushRegistrations(%s) (-want +got):\n%s", local, diff)
	}
}

func testPushPutAndList(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	wantPushRegs(t, s, alice)
	a, b := pushReg("push.example.net", "n1", 2), pushReg("push.example.net", "n2", 1)
	b.Options = nil
	mustPutPush(t, s, alice, a, 0)
	mustPutPush(t, s, alice, b, 0)
	wantPushRegs(t, s, alice, b, a) // oldest first
	wantPushRegs(t, s, bob)
	wantPushRegs(t, s, "nobody")
}

func testPushReplace(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustPutPush(t, s, alice, pushReg("push.example.net", "n1", 1), 0)
	again := pushReg("push.example.net", "n1", 3)
	again.Options = []byte(`<x xmlns="jabber:x:data" type="submit"><field var="secret"><value>s</value></field></x>`)
	mustPutPush(t, s, alice, again, 0)
	wantPushRegs(t, s, alice, again)
}

func testPushMax(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	r1, r2, r3 := pushReg("a.example", "1", 1), pushReg("b.example", "2", 2), pushReg("c.example", "3", 3)
	mustPutPush(t, s, alice, r1, 2)
	if removed := mustPutPush(t, s, alice, r2, 2); len(removed) != 0 {
		t.Errorf("removed %v under the limit", removed)
	}
	removed := mustPutPush(t, s, alice, r3, 2)
	if len(removed) != 1 || removed[0].Service != r1.Service || removed[0].Node != r1.Node {
		t.Errorf("removed %v, want the oldest (%s %s)", removed, r1.Service, r1.Node)
	}
	wantPushRegs(t, s, alice, r2, r3)
	// Re-enabling an existing one at the limit removes nothing.
	r2.Created = at(4, 0)
	if removed := mustPutPush(t, s, alice, r2, 2); len(removed) != 0 {
		t.Errorf("replacing removed %v", removed)
	}
	wantPushRegs(t, s, alice, r3, r2)
	// A new one that is older than all the others still stays.
	old := pushReg("d.example", "4", 1)
	removed = mustPutPush(t, s, alice, old, 2)
	wantPushRegs(t, s, alice, old, r2)
	if len(removed) != 1 || removed[0].Service != r3.Service {
		t.Errorf("removed %v, want %s", removed, r3.Service)
	}
}

func testPushDelete(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	a1, a2, b1 := pushReg("a.example", "1", 1), pushReg("a.example", "2", 2), pushReg("b.example", "1", 3)
	mustPutPush(t, s, alice, a1, 0)
	mustPutPush(t, s, alice, a2, 0)
	mustPutPush(t, s, alice, b1, 0)
	mustPutPush(t, s, bob, a1, 0)
	n, err := s.DeletePushRegistrations(t.Context(), alice, home, "a.example", "2")
	if err != nil || n != 1 {
		t.Fatalf("DeletePushRegistrations(node 2) = %d, %v; want 1", n, err)
	}
	wantPushRegs(t, s, alice, a1, b1)
	mustPutPush(t, s, alice, a2, 0)
	n, err = s.DeletePushRegistrations(t.Context(), alice, home, "a.example", "")
	if err != nil || n != 2 {
		t.Fatalf("DeletePushRegistrations(every node) = %d, %v; want 2", n, err)
	}
	wantPushRegs(t, s, alice, b1)
	wantPushRegs(t, s, bob, a1)
	n, err = s.DeletePushRegistrations(t.Context(), "nobody", home, "a.example", "")
	if err != nil || n != 0 {
		t.Errorf("DeletePushRegistrations(unknown account) = %d, %v; want 0, nil", n, err)
	}
}

func testPushInvalid(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	_, err := s.PutPushRegistration(t.Context(), alice, home, storage.PushRegistration{Node: "n"}, 0)
	wantErr(t, "PutPushRegistration(no service)", err, storage.ErrInvalid)
	_, err = s.PutPushRegistration(t.Context(), alice, home, storage.PushRegistration{Service: "s"}, 0)
	wantErr(t, "PutPushRegistration(no node)", err, storage.ErrInvalid)
	_, err = s.PutPushRegistration(t.Context(), "nobody", home, pushReg("a.example", "1", 1), 0)
	wantErr(t, "PutPushRegistration(unknown account)", err, storage.ErrNotFound)
}

func testPushAccountDeleted(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	mustPutPush(t, s, alice, pushReg("a.example", "1", 1), 0)
	recreate(t, s, alice)
	wantPushRegs(t, s, alice)
}

func testPushCanceledContext(t *testing.T, s storage.Store) {
	mustCreateAliceBob(t, s)
	ctx := canceled(t)
	if _, err := s.PutPushRegistration(ctx, alice, home, pushReg("a.example", "1", 1), 0); err == nil {
		t.Error("PutPushRegistration with a canceled context succeeded")
	}
	if _, err := s.PushRegistrations(ctx, alice, home); err == nil {
		t.Error("PushRegistrations with a canceled context succeeded")
	}
	if _, err := s.DeletePushRegistrations(ctx, alice, home, "a.example", ""); err == nil {
		t.Error("DeletePushRegistrations with a canceled context succeeded")
	}
}
