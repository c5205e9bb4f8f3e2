package asm

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"testing"
)

// forEachKernel runs f once per implementation this CPU runs, so that every
// test below proves every kernel, not only the one New picks.
func forEachKernel(t *testing.T, f func(t *testing.T, newAEAD func(key []byte) cipher.AEAD)) {
	t.Helper()
	for _, name := range Kernels() {
		t.Run("impl="+name, func(t *testing.T) {
			f(t, func(key []byte) cipher.AEAD {
				t.Helper()
				a, err := NewKernel(name, key)
				if err != nil {
					t.Fatalf("NewKernel(%s): %v", name, err)
				}
				return a
			})
		})
	}
}

// reference is crypto/cipher's AES-GCM, the oracle every kernel must match.
func reference(t testing.TB, key []byte) cipher.AEAD {
	t.Helper()
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

// pattern returns n deterministic bytes that differ with seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*0x9e3779b9 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}
