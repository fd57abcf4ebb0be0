package storage

import "fmt"

// CheckRosterItem returns an error wrapping ErrInvalid if item cannot be
// stored: an empty contact, a subscription other than none, to, from or
// both, or an empty or repeated group name (RFC 6121 §2.3.3 makes those the
// client's error). Backends call it before writing; item.Version is ignored.
func CheckRosterItem(item RosterItem) error {
	if item.Contact == "" {
		return fmt.Errorf("%w: roster item without a contact", ErrInvalid)
	}
	switch item.Subscription {
	case SubNone, SubTo, SubFrom, SubBoth:
	default:
		return fmt.Errorf("%w: roster item %s: subscription %q", ErrInvalid, item.Contact, item.Subscription)
	}
	seen := make(map[string]bool, len(item.Groups))
	for _, g := range item.Groups {
		if g == "" {
			return fmt.Errorf("%w: roster item %s: empty group name", ErrInvalid, item.Contact)
		}
		if seen[g] {
			return fmt.Errorf("%w: roster item %s: group %q twice", ErrInvalid, item.Contact, g)
		}
		seen[g] = true
	}
	return nil
}
