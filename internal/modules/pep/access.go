package pep

import (
	"context"
	"fmt"
	"slices"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
)

// rosterLookup finds the owner's roster item for a bare JID.
type rosterLookup func(ctx context.Context, bare string) (storage.RosterItem, bool, error)

// storeLookup reads one roster item of owner from the store.
func (m *Module) storeLookup(owner jid.JID) rosterLookup {
	return func(ctx context.Context, bare string) (storage.RosterItem, bool, error) {
		it, err := m.deps.Store.RosterItem(ctx, owner.Local(), owner.DomainString(), bare)
		if isNotFound(err) {
			return it, false, nil
		}
		if err != nil {
			return it, false, fmt.Errorf("pep: roster item: %w", err)
		}
		return it, true, nil
	}
}

// mapLookup reads the owner's whole roster once (for a fan-out).
func (m *Module) mapLookup(owner jid.JID) rosterLookup {
	var items map[string]storage.RosterItem
	var loadErr error
	return func(ctx context.Context, bare string) (storage.RosterItem, bool, error) {
		if items == nil && loadErr == nil {
			list, _, err := m.deps.Store.Roster(ctx, owner.Local(), owner.DomainString())
			if err != nil {
				loadErr = fmt.Errorf("pep: roster: %w", err)
			}
			items = make(map[string]storage.RosterItem, len(list))
			for _, it := range list {
				items[it.Contact] = it
			}
		}
		if loadErr != nil {
			return storage.RosterItem{}, false, loadErr
		}
		it, ok := items[bare]
		return it, ok, nil
	}
}

// access returns nil when who may retrieve the node's items and receive
// its notifications under its access model (XEP-0060 §4.5), or the
// error §6.5.9 names: presence-subscription-required, not-in-roster-group
// (both not-authorized) or closed-node (not-allowed).
func access(ctx context.Context, owner jid.JID, c NodeConfig, who jid.JID, roster rosterLookup) error {
	bare := who.Bare()
	if bare.Equal(owner) {
		return nil
	}
	switch c.AccessModel {
	case AccessOpen:
		return nil
	case AccessPresence:
		it, ok, err := roster(ctx, bare.String())
		if err != nil {
			return err
		}
		if ok && (it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth) {
			return nil
		}
		return pubsubError(stanza.NotAuthorized, "presence-subscription-required", "")
	case AccessRoster:
		it, ok, err := roster(ctx, bare.String())
		if err != nil {
			return err
		}
		if ok {
			for _, g := range it.Groups {
				if slices.Contains(c.RosterGroupsAllowed, g) {
					return nil
				}
			}
		}
		return pubsubError(stanza.NotAuthorized, "not-in-roster-group", "")
	case AccessWhitelist:
		if isMember(c, bare) {
			return nil
		}
		return pubsubError(stanza.NotAllowed, "closed-node", "")
	}
	return pubsubError(stanza.NotAllowed, "closed-node", "")
}

func isMember(c NodeConfig, bare jid.JID) bool {
	return slices.Contains(c.Members, bare.String())
}

// mayRetrieve checks who's access to the owner's node.
func (m *Module) mayRetrieve(ctx context.Context, owner jid.JID, c NodeConfig, who jid.JID) error {
	return access(ctx, owner, c, who, m.storeLookup(owner))
}

// mayPublish checks whether who, not the owner, may publish to the
// node under its publish model (§7.1.3.1: forbidden).
func (m *Module) mayPublish(ctx context.Context, owner jid.JID, c NodeConfig, who jid.JID) error {
	switch c.PublishModel {
	case openModel:
		return nil
	case subscribersModel:
		if access(ctx, owner, c, who, m.storeLookup(owner)) == nil {
			return nil
		}
	}
	return stanza.NewError(stanza.Forbidden, "")
}
