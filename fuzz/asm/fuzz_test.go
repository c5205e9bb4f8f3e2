// Package asm fuzzes Coffer's AES-GCM kernels against crypto/cipher: every
// kernel this CPU runs must produce crypto/cipher's bytes, accept exactly
// what crypto/cipher accepts, and behave the same in place and out of place,
// at every alignment.
package asm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"testing"

	kernels "github.com/coffer-kms/coffer/asm"
)

func reference(t *testing.T, key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fit returns b cut or zero-padded to n bytes.
func fit(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}

// at returns a copy of b that starts off bytes into a fresh buffer with
// spare capacity, so that kernels see every alignment.
func at(b []byte, off, spare int) []byte {
	buf := make([]byte, off+len(b)+spare)
	return append(buf[off:off], b...)
}

func FuzzAEAD(f *testing.F) {
	for _, n := range []int{0, 1, 15, 16, 17, 31, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513, 600, 1023, 4097} {
		f.Add(bytes.Repeat([]byte{byte(n)}, 32), n%2 == 0, []byte("nonce-twelve"), make([]byte, n), []byte("additional data"), uint32(n*7+3))
	}
	f.Add([]byte("sixteen byte key"), false, []byte{}, []byte("attack at dawn"), []byte{}, uint32(0))

	f.Fuzz(func(t *testing.T, key []byte, aes256 bool, nonce, plaintext, aad []byte, knobs uint32) {
		key = fit(key, map[bool]int{false: 16, true: 32}[aes256])
		nonce = fit(nonce, 12)
		off, flip := int(knobs%64), int(knobs>>6)
		ref := reference(t, key)
		want := ref.Seal(nil, nonce, plaintext, aad)

		for _, name := range kernels.Kernels() {
			a, err := kernels.NewKernel(name, key)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			// Seal, out of place and in place, at an odd alignment.
			if got := a.Seal(nil, nonce, at(plaintext, off, 0), at(aad, off, 0)); !bytes.Equal(got, want) {
				t.Fatalf("%s: Seal differs from crypto/cipher\n got %x\nwant %x", name, got, want)
			}
			buf := at(plaintext, off, 16)
			if got := a.Seal(buf[:0], nonce, buf, aad); !bytes.Equal(got, want) {
				t.Fatalf("%s: in-place Seal differs from crypto/cipher", name)
			}
			// Open the genuine ciphertext, in place.
			buf = at(want, off, 0)
			if got, err := a.Open(buf[:0], nonce, buf, aad); err != nil || !bytes.Equal(got, plaintext) {
				t.Fatalf("%s: Open of a genuine ciphertext: %v", name, err)
			}
			// A flipped bit anywhere must fail, and leave no plaintext.
			bad := at(want, off, 0)
			bad[flip%len(bad)] ^= 1 << (flip / len(bad) % 8)
			dst := make([]byte, 0, len(bad))
			if got, err := a.Open(dst, nonce, bad, aad); err == nil || got != nil {
				t.Fatalf("%s: Open accepted a flipped bit at %d", name, flip%len(bad))
			}
			if n := len(bad) - 16; !bytes.Equal(dst[:n], make([]byte, n)) {
				t.Fatalf("%s: failed Open left bytes in dst", name)
			}
			// Whatever the fuzzer offers as a ciphertext, the kernel
			// decides as crypto/cipher does.
			refPT, refErr := ref.Open(nil, nonce, plaintext, aad)
			gotPT, gotErr := a.Open(nil, nonce, at(plaintext, off, 0), aad)
			if (refErr == nil) != (gotErr == nil) || !bytes.Equal(refPT, gotPT) {
				t.Fatalf("%s: Open of fuzzer bytes: %v, crypto/cipher: %v", name, gotErr, refErr)
			}
		}
	})
}
