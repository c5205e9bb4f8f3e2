package asm

import (
	"crypto/aes"
	"crypto/cipher"
	"strconv"
	"testing"
)

var benchSizes = []int{64, 1024, 16384, 1 << 20}

// benchImpls is every kernel this CPU runs, then crypto/cipher's AES-GCM
// itself, the baseline.
func benchImpls(b *testing.B, key []byte) (names []string, aeads []cipher.AEAD) {
	for _, name := range Kernels() {
		a, err := NewKernel(name, key)
		if err != nil {
			b.Fatal(err)
		}
		names, aeads = append(names, name), append(aeads, a)
	}
	return append(names, "crypto-cipher"), append(aeads, reference(b, key))
}

// BenchmarkSeal measures AES-256-GCM Seal with 16 bytes of additional data,
// reusing the output buffer.
func BenchmarkSeal(b *testing.B) {
	names, aeads := benchImpls(b, testKeys["AES256"])
	for i, a := range aeads {
		for _, size := range benchSizes {
			b.Run("impl="+names[i]+"/size="+strconv.Itoa(size), func(b *testing.B) {
				nonce, aad, pt := make([]byte, 12), make([]byte, 16), make([]byte, size)
				out := make([]byte, 0, size+tagSize)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					a.Seal(out, nonce, pt, aad)
				}
			})
		}
	}
}

// BenchmarkOpen measures AES-256-GCM Open of genuine ciphertexts.
func BenchmarkOpen(b *testing.B) {
	names, aeads := benchImpls(b, testKeys["AES256"])
	for i, a := range aeads {
		for _, size := range benchSizes {
			b.Run("impl="+names[i]+"/size="+strconv.Itoa(size), func(b *testing.B) {
				nonce, aad := make([]byte, 12), make([]byte, 16)
				sealed := a.Seal(nil, nonce, make([]byte, size), aad)
				out := make([]byte, 0, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := a.Open(out, nonce, sealed, aad); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkKeySetup measures setting a key up: GCM.Init on a reused context
// for the kernels (round keys and the 16 powers of H), NewCipher and NewGCM
// for crypto/cipher.
func BenchmarkKeySetup(b *testing.B) {
	for _, keyName := range []string{"AES128", "AES256"} {
		key := testKeys[keyName]
		for _, name := range Kernels() {
			k := kernelStdlib
			for ; k.String() != name; k++ {
			}
			b.Run("impl="+name+"/key="+keyName, func(b *testing.B) {
				var g GCM
				b.ReportAllocs()
				for b.Loop() {
					g.init(key, k)
				}
			})
		}
		b.Run("impl=crypto-cipher/key="+keyName, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				block, _ := aes.NewCipher(key)
				cipher.NewGCM(block)
			}
		})
	}
}
