package avatar_test

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/xmlstream"
)

// BenchmarkPresence: one available presence sent and its broadcast copy
// read back by the sender, with the avatar module stamping the hash of an
// avatar in PEP ("avatar"), of no avatar (no metadata node: the vCard is
// read too, "none"), and without the module ("off"): what the stamp costs
// per presence.
func BenchmarkPresence(b *testing.B) {
	for _, tc := range []string{"avatar", "none", "off"} {
		b.Run(tc, func(b *testing.B) {
			srv := xmpptest.Start(b, func(c *config.Config) {
				c.Modules.Disabled = append(c.Modules.Disabled, "mam")
				if tc == "off" {
					c.Modules.Disabled = append(c.Modules.Disabled, "avatar")
				}
			})
			srv.AddUser(b, "alice", "pw")
			r := srv.DialRaw(b)
			r.Login("alice", "pw")
			full := r.Bind("phone")
			if tc == "avatar" {
				img := []byte("not really a png, but hashed all the same")
				id := sha(img)
				r.Send(`<iq type='set' id='d'><pubsub xmlns='` + nsPubSub + `'><publish node='urn:xmpp:avatar:data'><item id='` + id + `'><data xmlns='urn:xmpp:avatar:data'>` +
					base64.StdEncoding.EncodeToString(img) + `</data></item></publish></pubsub></iq>`)
				r.Send(`<iq type='set' id='m'><pubsub xmlns='` + nsPubSub + `'><publish node='urn:xmpp:avatar:metadata'><item id='` + id + `'><metadata xmlns='urn:xmpp:avatar:metadata'><info id='` + id + `' bytes='41' type='image/png'/></metadata></item></publish></pubsub></iq>`)
				for done := 0; done < 2; {
					if e := r.Next(); e.Name.Local == "iq" {
						done++
					}
				}
			}
			own := func(e *xmlstream.Element) bool {
				return e.Name.Local == "presence" && e.Attribute("from") == full.String()
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n++
				r.Send(fmt.Sprintf(`<presence><status>%d</status></presence>`, n))
				for !own(r.Next()) {
				}
			}
		})
	}
}
