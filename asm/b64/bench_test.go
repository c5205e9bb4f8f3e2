package b64

import (
	"encoding/base64"
	"fmt"
	"testing"
)

// BenchmarkEncode and BenchmarkDecode compare with encoding/base64 in the
// same run; 1 KiB is a typical Encrypt's plaintext and blob.
func BenchmarkEncode(b *testing.B) {
	for _, n := range []int{64, 1024, 4096} {
		src := make([]byte, n)
		dst := make([]byte, 0, EncodedLen(n))
		b.Run(fmt.Sprintf("impl=b64/size=%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				dst = AppendEncode(dst[:0], src)
			}
		})
		b.Run(fmt.Sprintf("impl=stdlib/size=%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				dst = base64.StdEncoding.AppendEncode(dst[:0], src)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{64, 1024, 4096} {
		src := base64.StdEncoding.AppendEncode(nil, make([]byte, n))
		dst := make([]byte, DecodedLen(len(src)))
		b.Run(fmt.Sprintf("impl=b64/size=%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				Decode(dst, src)
			}
		})
		b.Run(fmt.Sprintf("impl=stdlib/size=%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				base64.StdEncoding.Decode(dst, src)
			}
		})
	}
}
