package avatar

import (
	"bytes"
	"encoding/base64"
	"image"
	"testing"

	"github.com/ode-xmpp/ode/xmlstream"
)

// FuzzPhoto reads a vCard and a XEP-0084 <data/> from untrusted bytes:
// nothing panics, a photo found decodes back to the same bytes, and its
// size in pixels is read without decoding the image.
func FuzzPhoto(f *testing.F) {
	for _, seed := range []string{
		// XEP-0153 Example 1's vCard, XEP-0084 Example 1's data.
		`<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/jpeg</TYPE><BINVAL>Base64-encoded-avatar-file-here!</BINVAL></PHOTO></vCard>`,
		`<data xmlns='urn:xmpp:avatar:data'>qANQR1DBwU4DX7jmYZnncm...</data>`,
		`<vCard xmlns='vcard-temp'><PHOTO><BINVAL>iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg==</BINVAL></PHOTO></vCard>`,
		`<vCard xmlns='vcard-temp'><PHOTO><EXTVAL>https://example.org/a.png</EXTVAL></PHOTO></vCard>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := xmlstream.ParseElement(data, "")
		if err != nil {
			return
		}
		if img, typ, ok := photo(e); ok {
			if typ == "" || len(img) == 0 {
				t.Fatalf("photo: %d bytes of type %q", len(img), typ)
			}
			v := e.Copy()
			removePhoto(v)
			if _, _, again := photo(v); again {
				t.Fatal("removePhoto left a photo")
			}
			_, _, _ = image.DecodeConfig(bytes.NewReader(img))
		}
		if img, ok := decodeData(e); ok {
			back, err := base64.StdEncoding.DecodeString(base64.StdEncoding.EncodeToString(img))
			if err != nil || !bytes.Equal(back, img) {
				t.Fatal("data round trip")
			}
		}
	})
}
