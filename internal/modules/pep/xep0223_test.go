package pep_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ode-xmpp/ode/stanza"
)

// TestPrivateStorageXEP0223 follows XEP-0223 §3-§4: private data kept in
// PEP with the publish-options persist_items=true and
// access_model=whitelist; only the owner's resources read it, a contact
// with a presence subscription is refused, a later publish with the same
// options is accepted and one with other options fails the precondition.
func TestPrivateStorageXEP0223(t *testing.T) {
	srv := start(t, nil)
	srv.AddUser(t, "juliet", "pw")
	srv.AddUser(t, "romeo", "pw")
	phone := login(t, srv, "juliet", "phone")
	laptop := login(t, srv, "juliet", "laptop")
	romeo := login(t, srv, "romeo", "orchard")
	subscribe(t, srv, "juliet", "romeo")
	bare := phone.jid.Bare().String()
	const node = "storage:bookmarks"
	data := `<storage xmlns='storage:bookmarks'><conference name='The Play' autojoin='true' jid='theplay@conference.shakespeare.lit'><nick>JC</nick></conference></storage>`
	options := []string{"pubsub#persist_items", "true", "pubsub#access_model", "whitelist"}

	// Example 1: the publish with its publish-options succeeds.
	if id := phone.publish("", node, "current", data, options...); id != "current" {
		t.Fatalf("published item %q", id)
	}
	if got := phone.configField(node, "pubsub#access_model"); got != "whitelist" {
		t.Errorf("access model %q", got)
	}
	if got := phone.configField(node, "pubsub#persist_items"); got != "1" && got != "true" {
		t.Errorf("persist_items %q", got)
	}

	// The owner's other resource reads it back, payload intact.
	res := laptop.mustIQ("get", "", itemsXML(node, "/>"))
	if s := res.String(); !strings.Contains(s, "theplay@conference.shakespeare.lit") || !strings.Contains(s, "<nick>JC</nick>") {
		t.Errorf("owner's retrieval: %s", s)
	}

	// A contact, even with a presence subscription, cannot (§4: the
	// whitelist holds the owner only).
	romeo.iqErr("get", bare, itemsXML(node, "/>"), stanza.NotAllowed, "closed-node")

	// Publishing again with the same options replaces the item.
	phone.publish("", node, "current", strings.Replace(data, "JC", "Juliet", 1), options...)
	if got := laptop.items("", node); !slices.Equal(got, []string{"current"}) {
		t.Errorf("items after the second publish: %q", got)
	}
	// Options that differ from the node's configuration fail the
	// precondition (XEP-0060 §7.1.5) and change nothing.
	phone.iqErr("set", "", publishXML(node, "current", data, "pubsub#persist_items", "true", "pubsub#access_model", "presence"), stanza.Conflict, "precondition-not-met")
	romeo.iqErr("get", bare, itemsXML(node, "/>"), stanza.NotAllowed, "closed-node")

	// The item is stored: a new session of the owner finds it.
	later := login(t, srv, "juliet", "tablet")
	if s := later.mustIQ("get", "", itemsXML(node, "/>")).String(); !strings.Contains(s, "<nick>Juliet</nick>") {
		t.Errorf("a later session's retrieval: %s", s)
	}
}
