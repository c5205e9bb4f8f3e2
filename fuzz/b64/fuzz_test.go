// Package b64 fuzzes asm/b64, the base64 codec every blob in a request goes
// through, against encoding/base64.
package b64

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/coffer-kms/coffer/asm/b64"
)

// FuzzDecode decodes arbitrary input with both codecs: the same bytes, the
// same count, the same error at the same offset. Long inputs cover the
// kernel's blocks; a mutation anywhere makes it stop at that block.
func FuzzDecode(f *testing.F) {
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("coffer fuzz "), 40))
	for _, s := range []string{"", "AAAA", "aGVsbG8=", "aGVsbG8", "aGVs\r\nbG8=", long, long[:64], long[:128] + "=", long[:64] + "\x80" + long[65:]} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		want := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
		wn, werr := base64.StdEncoding.Decode(want, src)
		got := make([]byte, b64.DecodedLen(len(src)))
		gn, gerr := b64.Decode(got, src)
		if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("b64: %d %v; encoding/base64: %d %v", gn, gerr, wn, werr)
		}
	})
}

// FuzzEncode encodes arbitrary bytes with both codecs.
func FuzzEncode(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff, 0, 0x7f}, 70))
	f.Fuzz(func(t *testing.T, src []byte) {
		if got, want := b64.AppendEncode(nil, src), base64.StdEncoding.AppendEncode(nil, src); !bytes.Equal(got, want) {
			t.Fatalf("b64 %s\nencoding/base64 %s", got, want)
		}
	})
}
