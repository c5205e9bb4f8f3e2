//go:build !purego

package asm

import (
	"bytes"
	"crypto/aes"
	"encoding/binary"
	"testing"
	"unsafe"
)

// TestKeyScheduleLayout holds keySchedule to the offsets in _gen/layout.go.
func TestKeyScheduleLayout(t *testing.T) {
	var ks keySchedule
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"htab", unsafe.Offsetof(ks.htab), 0},
		{"pad", unsafe.Offsetof(ks.pad), 512},
		{"kara", unsafe.Offsetof(ks.kara), 560},
		{"rk", unsafe.Offsetof(ks.rk), 1072},
		{"rounds", unsafe.Offsetof(ks.rounds), 1312},
	} {
		if f.got != f.want {
			t.Errorf("keySchedule.%s at offset %d, the kernels read it at %d", f.name, f.got, f.want)
		}
	}
}

// TestCounterWrap runs each kernel's counter mode, and so its key
// expansion, against crypto/aes across the 32-bit counter wrap, which a
// 12-byte nonce never reaches but GCM's inc32 defines.
func TestCounterWrap(t *testing.T) {
	nonce := pattern(12, 7)
	for _, key := range testKeys {
		block, _ := aes.NewCipher(key)
		for _, k := range []kernel{kernelVAES512, kernelVAES256} {
			if !available(k) {
				continue
			}
			var g GCM
			g.init(key, k)
			enc, dec := encVAES512, decVAES512
			if k == kernelVAES256 {
				enc, dec = encVAES256, decVAES256
			}
			for _, n := range []int{16, 100, 256, 300, 1024 + 48, 2048 + 13} {
				for _, start := range []uint32{0xffffffff, 0xfffffff0, 0xffffffe1} {
					var ctr [16]byte
					copy(ctr[:], nonce)
					binary.BigEndian.PutUint32(ctr[12:], start)

					src := pattern(n, byte(n))
					want := make([]byte, n)
					var cb [16]byte
					copy(cb[:], nonce)
					for i := 0; i < n; i += 16 {
						binary.BigEndian.PutUint32(cb[12:], start+uint32(i/16))
						var ks [16]byte
						block.Encrypt(ks[:], cb[:])
						for j := i; j < min(i+16, n); j++ {
							want[j] = src[j] ^ ks[j-i]
						}
					}
					var accEnc, accDec, accHash [16]byte
					got := make([]byte, n)
					enc(&g.ks, &accEnc, &ctr, &got[0], &src[0], n)
					if !bytes.Equal(got, want) {
						t.Fatalf("%s n=%d start=%#x: keystream differs from crypto/aes", k, n, start)
					}
					back := make([]byte, n)
					dec(&g.ks, &accDec, &ctr, &back[0], &got[0], n)
					g.ghash(&accHash, got)
					if !bytes.Equal(back, src) || accEnc != accDec || accEnc != accHash {
						t.Fatalf("%s n=%d start=%#x: decryption or hash state disagrees", k, n, start)
					}
				}
			}
		}
	}
}

// TestGuardAVX2 is TestGuard for the AVX2 kernel on an AVX-512 CPU.
func TestGuardAVX2(t *testing.T) {
	if best != kernelVAES512 {
		t.Skip("no faster kernel than the AVX2 one here")
	}
	var g GCM
	g.init(testKeys["AES128"], kernelVAES256)
	mustPanic(t, "AVX2 Seal where vaes512 is available", func() { g.Seal(nil, make([]byte, 12), []byte("x"), nil) })
}
