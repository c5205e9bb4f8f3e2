//go:build !purego

package asm

import (
	"crypto/subtle"
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate sh -c "cd _gen && go run . -out ../gcm_amd64.s"

// keySchedule is what the VAES kernels read; the offsets are fixed in
// _gen/layout.go and checked by TestKeyScheduleLayout.
type keySchedule struct {
	// htab holds H^32 … H^1 (times x^-1, byte-reversed), highest first;
	// the AVX2 kernel uses only H^16 … H^1.
	htab [32][16]byte
	// pad stays zero: the tail of a message reads powers past H^1 as
	// zeros.
	pad [3][16]byte
	// kara holds, for each power in htab, its two halves XORed together,
	// for Karatsuba multiplication.
	kara   [32][16]byte
	rk     [15][16]byte // AES round keys 0 … rounds
	rounds uint64       // 10 or 14
}

var (
	hasVAES512 = cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ && cpu.X86.HasAVX2 && cpu.X86.HasBMI2 &&
		cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL &&
		cpu.X86.HasAVX512VAES && cpu.X86.HasAVX512VPCLMULQDQ
	hasVAES256 = cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ && cpu.X86.HasAVX2 && hasVEXVAES()

	best = func() kernel {
		switch {
		case hasVAES512:
			return kernelVAES512
		case hasVAES256:
			return kernelVAES256
		}
		return kernelStdlib
	}()
)

// hasVEXVAES reports VAES and VPCLMULQDQ (CPUID leaf 7, ECX bits 9 and 10),
// which golang.org/x/sys/cpu only reports on CPUs with AVX-512. The caller
// has checked AVX2, and with it that the OS saves the ymm registers.
func hasVEXVAES() bool {
	if maxLeaf, _, _, _ := cpuidex(0, 0); maxLeaf < 7 {
		return false
	}
	_, _, ecx, _ := cpuidex(7, 0)
	return ecx&(1<<9) != 0 && ecx&(1<<10) != 0
}

func available(k kernel) bool {
	switch k {
	case kernelVAES512:
		return hasVAES512
	case kernelVAES256:
		return hasVAES256
	}
	return k == kernelStdlib
}

func cpuidex(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

//go:noescape
func initVAES(ks *keySchedule, key *byte, powers int)

//go:noescape
func tagVAES(ks *keySchedule, acc, j0, tag *[16]byte, aadLen, ptLen int)

//go:noescape
func encVAES512(ks *keySchedule, acc, ctr *[16]byte, dst, src *byte, n int)

//go:noescape
func decVAES512(ks *keySchedule, acc, ctr *[16]byte, dst, src *byte, n int)

//go:noescape
func ghashVAES512(ks *keySchedule, acc *[16]byte, src *byte, n int)

//go:noescape
func sealVAES512(ks *keySchedule, j0 *[16]byte, dst, src *byte, n int, aad *byte, aadLen int, tag *[16]byte)

//go:noescape
func openVAES512(ks *keySchedule, j0 *[16]byte, dst, src *byte, n int, aad *byte, aadLen int, tag *[16]byte)

//go:noescape
func sealVAES256(ks *keySchedule, j0 *[16]byte, dst, src *byte, n int, aad *byte, aadLen int, tag *[16]byte)

//go:noescape
func openVAES256(ks *keySchedule, j0 *[16]byte, dst, src *byte, n int, aad *byte, aadLen int, tag *[16]byte)

//go:noescape
func encVAES256(ks *keySchedule, acc, ctr *[16]byte, dst, src *byte, n int)

//go:noescape
func decVAES256(ks *keySchedule, acc, ctr *[16]byte, dst, src *byte, n int)

//go:noescape
func ghashVAES256(ks *keySchedule, acc *[16]byte, src *byte, n int)

func (g *GCM) initVAES(key []byte) {
	g.ks.rounds = uint64(6 + len(key)/4)
	powers := 16
	if g.kernel == kernelVAES512 {
		powers = 32
	}
	initVAES(&g.ks, &key[0], powers)
}

// ghash folds data into the hash state, at most chunkSize bytes per call.
func (g *GCM) ghash(acc *[16]byte, data []byte) {
	for len(data) > 0 {
		n := min(len(data), chunkSize)
		if g.kernel == kernelVAES512 {
			ghashVAES512(&g.ks, acc, &data[0], n)
		} else {
			ghashVAES256(&g.ks, acc, &data[0], n)
		}
		data = data[n:]
	}
}

// counterBlock returns GCM's counter block number block for a 12-byte
// nonce; block 1 is J0, and the text starts at block 2.
func counterBlock(nonce []byte, block uint32) (b [16]byte) {
	copy(b[:], nonce)
	binary.BigEndian.PutUint32(b[12:], block)
	return b
}

// ctr runs counter mode from block 2 of nonce over src into dst, folding
// the ciphertext into acc, at most chunkSize bytes per call.
func (g *GCM) ctr(decrypt bool, acc *[16]byte, nonce, dst, src []byte) {
	for block := uint32(2); len(src) > 0; block += chunkSize / blockSize {
		ctr := counterBlock(nonce, block)
		n := min(len(src), chunkSize)
		switch {
		case g.kernel == kernelVAES512 && decrypt:
			decVAES512(&g.ks, acc, &ctr, &dst[0], &src[0], n)
		case g.kernel == kernelVAES512:
			encVAES512(&g.ks, acc, &ctr, &dst[0], &src[0], n)
		case decrypt:
			g.checkVAES256Expected()
			decVAES256(&g.ks, acc, &ctr, &dst[0], &src[0], n)
		default:
			g.checkVAES256Expected()
			encVAES256(&g.ks, acc, &ctr, &dst[0], &src[0], n)
		}
		dst, src = dst[n:], src[n:]
	}
}

// tag computes the tag into out from the hash state.
func (g *GCM) tag(out *[16]byte, acc *[16]byte, nonce []byte, aadLen, ptLen int) {
	j0 := counterBlock(nonce, 1)
	tagVAES(&g.ks, acc, &j0, out, aadLen, ptLen)
}

// oneCall reports whether a message fits one assembly call: longer ones
// go in pieces so that preemption and GC pauses wait at most about 50 µs.
func oneCall(text, additionalData []byte) bool {
	return len(text)+len(additionalData) <= chunkSize
}

// checkVAES256Expected is the AVX2 kernel's guard, as checkStdlibExpected
// is the stdlib kernel's.
func (g *GCM) checkVAES256Expected() {
	if !g.named && best != kernelVAES256 {
		panic("asm: internal error: AVX2 AES-GCM in use where " + best.String() + " is available")
	}
}

func (g *GCM) sealVAES(out, nonce, plaintext, additionalData []byte) {
	tag := (*[16]byte)(out[len(plaintext):])
	if !oneCall(plaintext, additionalData) {
		var acc [16]byte
		g.ghash(&acc, additionalData)
		g.ctr(false, &acc, nonce, out, plaintext)
		g.tag(tag, &acc, nonce, len(additionalData), len(plaintext))
		return
	}
	j0 := counterBlock(nonce, 1)
	// Direct calls: through a func value, the arguments would escape.
	if g.kernel == kernelVAES512 {
		sealVAES512(&g.ks, &j0, unsafe.SliceData(out), unsafe.SliceData(plaintext), len(plaintext),
			unsafe.SliceData(additionalData), len(additionalData), tag)
	} else {
		g.checkVAES256Expected()
		sealVAES256(&g.ks, &j0, unsafe.SliceData(out), unsafe.SliceData(plaintext), len(plaintext),
			unsafe.SliceData(additionalData), len(additionalData), tag)
	}
}

// openVAES decrypts into out and reports whether the tag was right; the
// caller clears out when it was not.
func (g *GCM) openVAES(out, nonce, ciphertext, additionalData []byte) bool {
	ciphertext, sent := ciphertext[:len(ciphertext)-tagSize], ciphertext[len(ciphertext)-tagSize:]
	var want [16]byte
	if !oneCall(ciphertext, additionalData) {
		var acc [16]byte
		g.ghash(&acc, additionalData)
		g.ctr(true, &acc, nonce, out, ciphertext)
		g.tag(&want, &acc, nonce, len(additionalData), len(ciphertext))
	} else {
		j0 := counterBlock(nonce, 1)
		if g.kernel == kernelVAES512 {
			openVAES512(&g.ks, &j0, unsafe.SliceData(out), unsafe.SliceData(ciphertext), len(ciphertext),
				unsafe.SliceData(additionalData), len(additionalData), &want)
		} else {
			g.checkVAES256Expected()
			openVAES256(&g.ks, &j0, unsafe.SliceData(out), unsafe.SliceData(ciphertext), len(ciphertext),
				unsafe.SliceData(additionalData), len(additionalData), &want)
		}
	}
	return subtle.ConstantTimeCompare(want[:], sent) == 1
}
