package b64

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// decodeStd and decodeOurs decode with a destination of exactly
// DecodedLen bytes, as callers size it.
func decodeStd(src []byte) ([]byte, int, error) {
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(dst, src)
	return dst, n, err
}

func decodeOurs(src []byte) ([]byte, int, error) {
	dst := make([]byte, DecodedLen(len(src)))
	n, err := Decode(dst, src)
	return dst, n, err
}

func checkDecode(t *testing.T, src []byte) {
	t.Helper()
	want, wn, werr := decodeStd(src)
	got, gn, gerr := decodeOurs(src)
	if gn != wn || !bytes.Equal(got, want) || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
		t.Fatalf("Decode(%q): %d %v %x; encoding/base64: %d %v %x", src, gn, gerr, got[:gn], wn, werr, want[:wn])
	}
}

// Every length from 0 to several blocks, with random bytes, encodes and
// decodes exactly as encoding/base64 does.
func TestAgreesWithEncodingBase64(t *testing.T) {
	t.Logf("kernel %s", Kernel())
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 1000 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		want := base64.StdEncoding.EncodeToString(src)
		if got := AppendEncode([]byte("prefix"), src); string(got) != "prefix"+want {
			t.Fatalf("AppendEncode of %d bytes:\n got %s\nwant prefix%s", n, got, want)
		}
		checkDecode(t, []byte(want))
	}
}

// Long inputs, past the per-call block limit, agree too.
func TestLong(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{maxBlocks * blockBytes, maxBlocks*blockBytes + 1, 3*maxBlocks*blockBytes + 47, 1 << 20} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		enc := AppendEncode(nil, src)
		if want := base64.StdEncoding.EncodeToString(src); string(enc) != want {
			t.Fatalf("%d bytes: encodings differ", n)
		}
		dec := make([]byte, DecodedLen(len(enc)))
		if m, err := Decode(dec, enc); err != nil || !bytes.Equal(dec[:m], src) {
			t.Fatalf("%d bytes: decode gave %d bytes, %v", n, m, err)
		}
	}
}

// A byte the kernel must refuse, at every position of the first, second
// and last of several blocks, gives encoding/base64's result: CR and LF
// skipped, padding and every other byte an error at its offset.
func TestIrregularBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	src := make([]byte, 4*blockBytes)
	for i := range src {
		src[i] = byte(r.Uint32())
	}
	enc := []byte(base64.StdEncoding.EncodeToString(src))
	bad := []byte{'=', '\r', '\n', 0, ' ', '-', '_', '.', '"', '\\', 0x7f, 0x80, 0xc1 /* 'A'|0x80 */, 0xe1 /* 'a'|0x80 */, 0xff}
	for _, pos := range []int{0, 1, 31, 63, 64, 100, 127, 4*blockChars - 64, 4*blockChars - 1} {
		for _, b := range bad {
			in := bytes.Clone(enc)
			in[pos] = b
			checkDecode(t, in)
			// inserted rather than replaced: the length changes too
			in = append(bytes.Clone(enc[:pos]), append([]byte{b}, enc[pos:]...)...)
			checkDecode(t, in)
		}
	}
}

// The tables map every character of the alphabet both ways and nothing
// else into it.
func TestTables(t *testing.T) {
	for c := range 128 {
		c := byte(c)
		v := tables.decLUT[c]
		if i := bytes.IndexByte([]byte(stdAlphabet), c); i >= 0 {
			if v != byte(i) || tables.alphabet[i] != byte(c) {
				t.Fatalf("%q: value %d, alphabet[%d] %q", c, v, i, tables.alphabet[i])
			}
		} else if v != 0x80 {
			t.Fatalf("%q is not in the alphabet but maps to %d", c, v)
		}
	}
}
