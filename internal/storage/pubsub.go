package storage

import (
	"context"
	"time"
)

// PubSubNode is a publish-subscribe node of an account's personal
// eventing service (XEP-0163 PEP, XEP-0060 semantics).
type PubSubNode struct {
	// Node is the NodeID, unique per account (such as
	// "urn:xmpp:avatar:data").
	Node string
	// Config is the node's configuration as the PEP module encodes it,
	// opaque to the store.
	Config []byte
	// Created is when the node was created; kept to the millisecond.
	Created time.Time
}

// PubSubItem is one item published to a node.
type PubSubItem struct {
	// ID is the ItemID, unique per node.
	ID string
	// Publisher is the JID of the entity that published the item (the
	// full JID of the owner's resource, or the bare JID when the server
	// published it on the account's behalf).
	Publisher string
	// Published is when the item was last published; kept to the
	// millisecond.
	Published time.Time
	// Payload is the item's payload element as XML (what is inside
	// <item/>), or nil for an item without one.
	Payload []byte
}

// PubSub stores the nodes and items of accounts' personal eventing
// services. They go with the account when it is deleted.
type PubSub interface {
	// CreatePubSubNode creates the account's node n.Node. It returns
	// ErrExists if the account has that node, ErrLimit if it already has
	// maxNodes nodes (maxNodes > 0), ErrNotFound if there is no such
	// account and ErrInvalid for an empty node name.
	CreatePubSubNode(ctx context.Context, local, domain string, n PubSubNode, maxNodes int) error
	// ConfigurePubSubNode replaces the node's Config and, when maxItems >
	// 0, removes its oldest items past maxItems, in one transaction; it
	// returns the ids of the removed items. ErrNotFound if there is no
	// such node.
	ConfigurePubSubNode(ctx context.Context, local, domain, node string, config []byte, maxItems int) (removed []string, err error)
	// DeletePubSubNode removes the node and its items (ErrNotFound if
	// there is no such node).
	DeletePubSubNode(ctx context.Context, local, domain, node string) error
	// PubSubNode returns the account's node (ErrNotFound if there is
	// none).
	PubSubNode(ctx context.Context, local, domain, node string) (PubSubNode, error)
	// PubSubNodes returns the account's nodes in NodeID order (none for
	// an unknown account).
	PubSubNodes(ctx context.Context, local, domain string) ([]PubSubNode, error)
	// PublishPubSubItem stores it as the node's newest item, replacing an
	// item of the same ID, and when maxItems > 0 removes the oldest items
	// past maxItems, in one transaction; it returns the ids of the
	// removed items. ErrNotFound if there is no such node, ErrInvalid for
	// an empty ID.
	PublishPubSubItem(ctx context.Context, local, domain, node string, it PubSubItem, maxItems int) (removed []string, err error)
	// DeletePubSubItem removes the item id from the node (ErrNotFound if
	// there is no such node or item).
	DeletePubSubItem(ctx context.Context, local, domain, node, id string) error
	// PurgePubSubNode removes every item of the node (ErrNotFound if
	// there is no such node).
	PurgePubSubNode(ctx context.Context, local, domain, node string) error
	// PubSubItems returns the node's items, newest first: those whose ID
	// is in ids when ids is not empty (ids not stored are left out),
	// else all of them, or the newest max when max > 0. ErrNotFound if
	// there is no such node.
	PubSubItems(ctx context.Context, local, domain, node string, ids []string, max int) ([]PubSubItem, error)
}
