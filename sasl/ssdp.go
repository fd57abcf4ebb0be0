package sasl

import (
	"encoding/base64"
	"slices"
	"strings"
)

// SSDP is what XEP-0474 (SASL SCRAM Downgrade Protection, version 0.5)
// protects: the SASL mechanisms the server advertised in the profile the
// client authenticates with (RFC 6120 <mechanisms/> or XEP-0388
// <authentication/>; never XEP-0484's FAST mechanisms, which are not in
// that list), and the XEP-0440 channel-binding types. The SCRAM server
// sends the hash of both in the "h" attribute of its server-first-message
// and the client compares it with the hash of what it saw, so that a
// man in the middle who removed a mechanism or a binding type is caught
// by the SCRAM proofs.
type SSDP struct {
	// Mechanisms are the advertised SASL mechanisms.
	Mechanisms []string
	// ChannelBindings are the advertised channel-binding types; nil when
	// the server sent no <sasl-channel-binding/>.
	ChannelBindings []string
}

// Hash returns the base64 hash of the lists with h (XEP-0474 §5.1): the
// mechanisms sorted by octets and joined by U+001E, then, when channel
// bindings were advertised, U+001F and the sorted binding types joined by
// U+001E.
func (d *SSDP) Hash(h Hash) string {
	var b strings.Builder
	b.WriteString(strings.Join(slices.Sorted(slices.Values(d.Mechanisms)), "\x1e"))
	if d.ChannelBindings != nil {
		b.WriteByte(0x1f)
		b.WriteString(strings.Join(slices.Sorted(slices.Values(d.ChannelBindings)), "\x1e"))
	}
	return base64.StdEncoding.EncodeToString(hashSum(h, []byte(b.String())))
}
