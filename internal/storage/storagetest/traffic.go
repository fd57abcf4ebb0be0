package storagetest

import (
	"fmt"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
)

// ArchiveTraffic returns the i-th archived message of the backends'
// BenchmarkAppendArchive: of account u(i mod accounts)@example.org, with
// a partner that is fixed per account or (random) spread over every
// account, a millisecond after the previous one from start, with a
// 26-character id that grows with i and a typical chat stanza.
func ArchiveTraffic(i, accounts int, random bool, start time.Time) storage.ArchivedMessage {
	other := (i * 7919) % accounts
	if random {
		other = int(uint32(i)*2654435761>>8) % accounts
	}
	local, with := fmt.Sprint("u", i%accounts), fmt.Sprintf("u%d@example.org", other)
	return storage.ArchivedMessage{
		Local: local, Domain: "example.org", ID: fmt.Sprintf("%026d", i),
		With: with, WithResource: "phone", Stamp: start.Add(time.Duration(i) * time.Millisecond), Outgoing: i%2 == 1,
		Stanza: fmt.Appendf(nil, `<message xmlns="jabber:client" from="%s/phone" to="%s@example.org/laptop" type="chat" id="a1b2c3d4-%d">`+
			`<body>Hello, how are you doing today? A typical chat line, message %d.</body>`+
			`<stanza-id xmlns="urn:xmpp:sid:0" by="%s@example.org" id="%026d"/></message>`, with, local, i, i, local, i),
	}
}
