package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The AVX-512 kernel: 4 zmm vectors of 4 blocks, 256 bytes in flight. All 32
// vector registers have a role.
var (
	zA    = [4]VecPhysical{Z0, Z1, Z2, Z3} // AES states (counter blocks)
	zD    = [4]VecPhysical{Z4, Z5, Z6, Z7} // blocks being hashed
	zLO   = Z8                             // unreduced GHASH sums
	zMI   = Z9
	zHI   = Z10 // and, between groups, the hash state in its low lane
	zT0   = Z11
	zT1   = Z12
	zCTR  = Z13 // the next four counters, byte-reversed
	zRKT  = Z14 // a round key that does not fit in registers (AES-256)
	zSWAP = Z15 // bswapMask in every lane
	zRK   = [11]VecPhysical{Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26}
	zH    = [4]VecPhysical{Z27, Z28, Z29, Z30} // [H^16..H^13] … [H^4..H^1]
	zPOLY = Z31
)

// General-purpose registers of the AVX-512 and AVX2 kernels.
var (
	gKS   = R8
	gDST  = RDI
	gSRC  = RSI
	gN    = RCX
	gPOW  = R11 // powers for the tail
	gTMP  = RAX
	gONES = R12
)

type mode int

const (
	modeEncrypt mode = iota
	modeDecrypt
	modeHash
)

func genVAES512() {
	for _, m := range []mode{modeEncrypt, modeDecrypt, modeHash} {
		vaes512(m)
	}
	genFused("VAES512", zSetup, func(name string) { zGroups(modeHash, name, 0, "", false) }, zCrypt, zHI, zCTR, true)
}

func vaes512(m mode) {
	name := map[mode]string{modeEncrypt: "encVAES512", modeDecrypt: "decVAES512", modeHash: "ghashVAES512"}[m]
	if m == modeHash {
		TEXT(name, NOSPLIT, "func(ks *byte, acc *[16]byte, src *byte, n int)")
		Doc(name + " folds n bytes at src into the GHASH state acc, the last partial block zero-padded.")
	} else {
		TEXT(name, NOSPLIT, "func(ks *byte, acc *[16]byte, ctr *[16]byte, dst *byte, src *byte, n int)")
		Doc(name+" "+map[mode]string{modeEncrypt: "encrypts", modeDecrypt: "decrypts"}[m]+
			" n bytes from src to dst in counter mode from the counter block ctr and folds the ciphertext into the GHASH state acc.",
			"Unless it is the last call for a message, n is a multiple of 256.")
	}
	zSetup()
	Load(Param("src"), gSRC)
	Load(Param("n"), gN)
	Load(Param("acc"), gTMP)
	VMOVDQU(Mem{Base: gTMP}, zHI.AsX())
	if m == modeHash {
		zGroups(m, name, 0, "", false)
	} else {
		Load(Param("dst"), gDST)
		Load(Param("ctr"), gTMP)
		VMOVDQU(Mem{Base: gTMP}, zCTR.AsX())
		VPSHUFB(zSWAP.AsX(), zCTR.AsX(), zCTR.AsX())
		zCrypt(m, name, false)
	}
	Label(name + "_done")
	Load(Param("acc"), gTMP)
	VMOVDQU(zHI.AsX(), Mem{Base: gTMP})
	VZEROUPPER()
	RET()
}

// zSetup loads what every AVX-512 function keeps in registers.
func zSetup() {
	Load(Param("ks"), gKS)
	VBROADCASTI32X4(bswapMask, zSWAP)
	VBROADCASTI32X4(gfPoly, zPOLY)
	for i, h := range zH {
		VMOVDQU64(htab(gKS, 16+4*i), h)
	}
	MOVQ(I64(-1), gONES)
}

// zCrypt runs counter mode over gN bytes from gSRC to gDST from the first
// counter, byte-reversed, in zCTR's low lane, for either key size, and
// jumps to name_done. With final, the hash state it leaves is GHASH's
// result, the lengths block included (see zTail).
func zCrypt(m mode, name string, final bool) {
	VSHUFI64X2(Imm(0), zCTR, zCTR, zCTR)
	VPADDD(ctrOffsets, zCTR, zCTR)
	CMPQ(Mem{Base: gKS, Disp: offRounds}, Imm(14))
	JE(LabelRef(name + "_aes256"))
	zGroups(m, name+"_aes128", 10, name+"_done", final)
	Label(name + "_aes256")
	zGroups(m, name+"_aes256", 14, name+"_done", final)
}

// genFused writes sealVAES512 and friends: a whole Seal or Open of up to
// chunkSize bytes of text and of additional data in one call, so that
// AES_K(J0), the hash of the additional data and the AES of the text all
// overlap; short messages are mostly that latency. With folds, crypt
// hashes the lengths block with the last blocks of text (one multiplication
// and reduction fewer on the way to the tag) and leaves GHASH's result in
// acc.
func genFused(suffix string, setup func(), hash func(name string), crypt func(m mode, name string, final bool), acc, ctr VecPhysical, folds bool) {
	for _, m := range []mode{modeEncrypt, modeDecrypt} {
		name := map[mode]string{modeEncrypt: "seal", modeDecrypt: "open"}[m] + suffix
		TEXT(name, NOSPLIT, "func(ks *byte, j0 *[16]byte, dst *byte, src *byte, n int, aad *byte, aadLen int, tag *[16]byte)")
		Doc(name+" "+map[mode]string{modeEncrypt: "encrypts", modeDecrypt: "decrypts"}[m]+
			" n bytes from src to dst and writes the tag for them and the additional data: GCM with the counter block J0.",
			"n + aadLen is at most chunkSize.")
		setup()
		Load(Param("ks"), gKS)
		Load(Param("tag"), gDST)
		Load(Param("j0"), gTMP)
		j0 := X0
		VMOVDQU(Mem{Base: gTMP}, j0)
		encryptBlock(j0, name+"_j0")
		VMOVDQU(j0, Mem{Base: gDST})

		VPXOR(acc.AsX(), acc.AsX(), acc.AsX())
		Load(Param("aad"), gSRC)
		Load(Param("aadLen"), gN)
		hash(name + "_aad")

		Load(Param("src"), gSRC)
		Load(Param("dst"), gDST)
		Load(Param("n"), gN)
		Load(Param("j0"), gTMP)
		// The text starts at counter 2, J0 + 1.
		VMOVDQU(Mem{Base: gTMP}, ctr.AsX())
		VPSHUFB(bswapMask, ctr.AsX(), ctr.AsX())
		VPADDD(ctrOffsets.Offset(16), ctr.AsX(), ctr.AsX())
		crypt(m, name, folds)

		Label(name + "_done")
		Load(Param("tag"), gDST)
		if folds {
			VPSHUFB(bswapMask, acc.AsX(), acc.AsX())
			VPXOR(Mem{Base: gDST}, acc.AsX(), acc.AsX())
			VMOVDQU(acc.AsX(), Mem{Base: gDST})
		} else {
			Load(Param("aadLen"), gSRC)
			Load(Param("n"), gN)
			finishTag(acc.AsX(), gSRC, gN, gDST)
		}
		VZEROUPPER()
		RET()
	}
}

// zRoundKeys maps round r of an AES with the given rounds to the register
// that holds its key: round 0 and the last ten rounds stay in registers;
// for AES-256, rounds 1 … 4 are loaded into zRKT when needed.
func zRoundKey(rounds, r int) (VecPhysical, bool) {
	if r == 0 {
		return zRK[0], true
	}
	if i := r - (rounds - 10); i >= 1 {
		return zRK[i], true
	}
	return zRKT, false
}

// zRound returns the emitter of AES round r (1 … rounds-1) on the states.
func zRound(rounds, r int, states []VecPhysical) func() {
	return func() {
		k, cached := zRoundKey(rounds, r)
		if !cached {
			VBROADCASTI32X4(roundKey(gKS, r), k)
		}
		for _, s := range states {
			VAESENC(k, s, s)
		}
	}
}

// zCounters loads the next counter blocks into the states, whitened with
// round key 0.
func zCounters(states []VecPhysical) {
	for _, s := range states {
		VPSHUFB(zSWAP, zCTR, s)
		VPADDD(ctrInc4, zCTR, zCTR)
		VPXORD(zRK[0], s, s)
	}
}

// In the 256-byte loop, zCTR holds the counters in GCM's byte order, and
// gLOW the low byte of the first one. While that byte does not carry, the
// next counters are a byte addition away, which saves the byte reversals;
// one group in 16 takes the long way. zToBigEndian and zToLittleEndian
// switch zCTR between the loop's form and the tail's.
var gLOW = R13

var zCounterGroups int

func zToBigEndian() {
	VMOVD(zCTR.AsX(), gLOW.As32())
	VPSHUFB(zSWAP, zCTR, zCTR)
}

func zToLittleEndian() {
	VPSHUFB(zSWAP, zCTR, zCTR)
}

// zGroupCounters loads the next 16 counter blocks into zA, whitened with
// round key 0, from the big-endian zCTR.
func zGroupCounters() {
	zCounterGroups++
	slow := fmt.Sprintf("ctr%d_carry", zCounterGroups)
	done := fmt.Sprintf("ctr%d_done", zCounterGroups)
	// The lanes end 19 past the low byte: it must not pass 255.
	CMPB(gLOW.As8(), U8(255-19))
	JA(LabelRef(slow))
	for _, s := range zA {
		VPXORD(zRK[0], zCTR, s)
		VPADDD(ctrInc4BigEndian, zCTR, zCTR)
	}
	JMP(LabelRef(done))
	Label(slow)
	VPSHUFB(zSWAP, zCTR, zT0)
	for _, s := range zA {
		VPSHUFB(zSWAP, zT0, s)
		VPADDD(ctrInc4, zT0, zT0)
		VPXORD(zRK[0], s, s)
	}
	VPSHUFB(zSWAP, zT0, zCTR)
	Label(done)
	ADDB(U8(16), gLOW.As8())
}

// zLastRound finishes the states and XORs in the input at src: AESENCLAST
// ends with an XOR, so XORing the input into the last round key first takes
// that XOR off the critical path. It clobbers the zD registers.
func zLastRound(rounds int, states []VecPhysical) {
	last, _ := zRoundKey(rounds, rounds)
	for i, s := range states {
		VPXORD(Mem{Base: gSRC, Disp: 64 * i}, last, zD[i])
		VAESENCLAST(zD[i], s, s)
	}
}

// zHashSteps returns the steps that multiply the four vectors in zD (the
// first already XORed with the hash state, if first) by the powers h, one
// power per block, and add the products, unreduced, to zLO, zMI, zHI (or
// start them, if first); with reduce, the steps end in zReduceSteps.
//
// The products are Karatsuba's: a·b = hi·x^128 + ((a0^a1)(b0^b1)^lo^hi)·x^64
// + lo, three carry-less multiplies instead of four; k holds b0^b1 for
// every power. zMI collects the (a0^a1)(b0^b1) and zFixMiddle adds lo and
// hi once per reduction.
func zHashSteps(h, k [4]Op, first, reduce bool) []func() {
	d := zD
	var steps []func()
	for i := 0; i < 4; i++ {
		if i == 0 && first {
			steps = append(steps,
				func() { VPSHUFD(Imm(0x4e), d[0], zMI) },
				func() { VPXORD(d[0], zMI, zMI) },
				func() { clmul(0x00, zMI, k[0], zMI) },
				func() { clmul(0x00, d[0], h[0], zLO) },
				func() { clmul(0x11, d[0], h[0], zHI) },
			)
			continue
		}
		steps = append(steps,
			func() { VPSHUFD(Imm(0x4e), d[i], zT0) },
			func() { VPXORD(d[i], zT0, zT0) },
			func() { clmul(0x00, zT0, k[i], zT0) },
			func() { clmul(0x00, d[i], h[i], zT1) },
			func() { clmul(0x11, d[i], h[i], d[i]) },
			func() { VPXORD(zT0, zMI, zMI) },
			func() { VPXORD(zT1, zLO, zLO) },
			func() { VPXORD(d[i], zHI, zHI) },
		)
	}
	if reduce {
		steps = append(steps, func() { VPTERNLOGD(Imm(0x96), zLO, zHI, zMI) })
		steps = append(steps, zReduceSteps()...)
	}
	return steps
}

// zLow and zHigh are the powers for the last and the first group of 16
// blocks of a 32-block reduction: H^16 … H^1 in registers, H^32 … H^17 read
// from the table.
var (
	zLow      = [4]Op{zH[0], zH[1], zH[2], zH[3]}
	zLowKara  = [4]Op{kara(gKS, 16), kara(gKS, 20), kara(gKS, 24), kara(gKS, 28)}
	zHigh     = [4]Op{htab(gKS, 0), htab(gKS, 4), htab(gKS, 8), htab(gKS, 12)}
	zHighKara = [4]Op{kara(gKS, 0), kara(gKS, 4), kara(gKS, 8), kara(gKS, 12)}
)

// zReduceSteps reduces zLO, zMI, zHI lane by lane and sums the lanes into
// zHI's low lane (the rest zeroed). It clobbers zD[1:].
func zReduceSteps() []func() {
	return []func(){
		func() { clmul(0x10, zLO, zPOLY, zT0) },
		func() { VPSHUFD(Imm(0x4e), zLO, zLO) },
		func() { VPTERNLOGD(Imm(0x96), zT0, zLO, zMI) },
		func() { clmul(0x10, zMI, zPOLY, zT0) },
		func() { VPSHUFD(Imm(0x4e), zMI, zMI) },
		func() { VPTERNLOGD(Imm(0x96), zT0, zMI, zHI) },
		func() { VEXTRACTI32X4(Imm(1), zHI, zD[1].AsX()) },
		func() { VEXTRACTI32X4(Imm(2), zHI, zD[2].AsX()) },
		func() { VEXTRACTI32X4(Imm(3), zHI, zD[3].AsX()) },
		func() { VPTERNLOGD(Imm(0x96), zD[2].AsX(), zD[1].AsX(), zHI.AsX()) },
		func() { VPXORD(zD[3].AsX(), zHI.AsX(), zHI.AsX()) },
	}
}

// zLoadHashInput loads 256 bytes at p into zD byte-reversed, with the hash
// state folded into the first block if first.
func zLoadHashInput(p GPPhysical, first bool) {
	for i, d := range zD {
		VMOVDQU64(Mem{Base: p, Disp: 64 * i}, d)
		VPSHUFB(zSWAP, d, d)
	}
	if first {
		VPXORD(zHI, zD[0], zD[0])
	}
}

// zCiphertextHashInput moves the ciphertext in zA to zD byte-reversed, with
// the hash state folded into the first block if first.
func zCiphertextHashInput(first bool) {
	for i, a := range zA {
		VPSHUFB(zSWAP, a, zD[i])
	}
	if first {
		VPXORD(zHI, zD[0], zD[0])
	}
}

// zGroups emits the 256-byte loop and the tail of one function for one key
// size (rounds is 0 for the hash-only function).
// done is where encryption and decryption jump when they are finished;
// final is zTail's.
func zGroups(m mode, prefix string, rounds int, done string, final bool) {
	label := func(s string) string { return prefix + "_" + s }
	if rounds > 0 {
		for i := range zRK {
			r := i
			if i > 0 {
				r = rounds - 10 + i
			}
			VBROADCASTI32X4(roundKey(gKS, r), zRK[i])
		}
	}
	var aesRounds []func()
	for r := 1; r < rounds; r++ {
		aesRounds = append(aesRounds, zRound(rounds, r, zA[:]))
	}
	advance := func() {
		if m != modeHash {
			ADDQ(U32(256), gDST)
		}
		ADDQ(U32(256), gSRC)
		SUBQ(U32(256), gN)
	}

	// Whole groups of 256 bytes, two at a time with one reduction while
	// there are two, then one more if there is one. Decryption and hashing
	// hash a group as they load it; encryption is software-pipelined: it
	// encrypts a group while it hashes the ciphertext of the one before,
	// which waits in zA.
	CMPQ(gN, U32(256))
	JB(LabelRef(label("tail")))
	group := func(first, reduce bool) {
		h, k := zLow, zLowKara
		if !reduce {
			h, k = zHigh, zHighKara
		}
		switch m {
		case modeHash:
			zLoadHashInput(gSRC, first)
			for _, step := range zHashSteps(h, k, first, reduce) {
				step()
			}
			advance()
		case modeDecrypt:
			prefetch(256)
			zLoadHashInput(gSRC, first)
			zGroupCounters()
			stitch(aesRounds, zHashSteps(h, k, first, reduce))
			zLastRound(rounds, zA[:])
			for i, a := range zA {
				VMOVDQU64(a, Mem{Base: gDST, Disp: 64 * i})
			}
			advance()
		case modeEncrypt:
			prefetch(256)
			zCiphertextHashInput(first)
			zGroupCounters()
			stitch(aesRounds, zHashSteps(h, k, first, reduce))
			zEncryptStore(rounds)
		}
	}
	if m != modeHash {
		zToBigEndian()
	}
	if m == modeEncrypt {
		zGroupCounters()
		for _, round := range aesRounds {
			round()
		}
		zEncryptStore(rounds)
	}
	Label(label("pairs"))
	CMPQ(gN, U32(512))
	JB(LabelRef(label("single")))
	group(true, false)
	group(false, true)
	JMP(LabelRef(label("pairs")))
	Label(label("single"))
	CMPQ(gN, U32(256))
	JB(LabelRef(label("last")))
	group(true, true)
	Label(label("last"))
	if m != modeHash {
		zToLittleEndian()
	}
	if m == modeEncrypt {
		zCiphertextHashInput(true)
		if final {
			// The text ended on a group boundary: the lengths block goes
			// into the last group's sum, by H, and the group's powers
			// are H^17 … H^2, so that the reduced sum is GHASH's result
			// as after zTail with final. (Decryption hashes its last
			// group while it decrypts it; doing the same there measured
			// no faster, so it leaves the lengths block to zTail.)
			TESTQ(gN, gN)
			JNZ(LabelRef(label("unfolded")))
			zLengthsProducts(zA[1].AsX(), zA[2].AsX())
			for _, step := range zHashSteps(zShifted, zShiftedKara, false, true) {
				step()
			}
			JMP(LabelRef(done))
			Label(label("unfolded"))
		}
		for _, step := range zHashSteps(zLow, zLowKara, true, true) {
			step()
		}
	}

	Label(label("tail"))
	zTail(m, label, rounds, final)
	if m != modeHash {
		JMP(LabelRef(done))
	}
}

// zShifted and zShiftedKara are the powers for a sealed text's last group of
// 16 blocks when GCM's lengths block follows it in the same sum:
// H^17 … H^2, one block further from the end than zLow.
var (
	zShifted     = [4]Op{htab(gKS, 15), htab(gKS, 19), htab(gKS, 23), htab(gKS, 27)}
	zShiftedKara = [4]Op{kara(gKS, 15), kara(gKS, 19), kara(gKS, 23), kara(gKS, 27)}
)

// zLengthsProducts starts the unreduced sums zLO, zMI, zHI with the
// products of GCM's lengths block and H (Karatsuba's middle term, as
// zHashSteps keeps it), clobbering the xmm registers lens and t. It reads
// the whole message's n and aadLen parameters; the hash state in zHI must
// already be folded into the first block of the group. The xmm results
// clear the sums' upper lanes.
func zLengthsProducts(lens, t Register) {
	zLengthsBlock(lens)
	clmul(0x00, lens, htab(gKS, 31), zLO.AsX())
	clmul(0x11, lens, htab(gKS, 31), zHI.AsX())
	VPSHUFD(Imm(0x4e), lens, t)
	VPXOR(lens, t, t)
	clmul(0x00, t, kara(gKS, 31), zMI.AsX())
}

// zLengthsBlock loads GCM's lengths block, in bits and byte-reversed, into
// the xmm register lens: the text's length (the parameter n) in the low
// half, the additional data's (aadLen) in the high half. It clobbers RDX
// and R9.
func zLengthsBlock(lens Register) {
	Load(Param("n"), RDX)
	SHLQ(Imm(3), RDX)
	VMOVQ(RDX, lens)
	Load(Param("aadLen"), R9)
	SHLQ(Imm(3), R9)
	VPINSRQ(Imm(1), R9, lens, lens)
}

func zEncryptStore(rounds int) {
	zLastRound(rounds, zA[:])
	for i, a := range zA {
		VMOVDQU64(a, Mem{Base: gDST, Disp: 64 * i})
	}
	ADDQ(U32(256), gDST)
	ADDQ(U32(256), gSRC)
	SUBQ(U32(256), gN)
}

// zTail handles the last n < 256 bytes one vector at a time, the last one
// partial under a byte mask. Block j of the m left is multiplied by
// H^(m-j), read from the table at an offset that depends on m; the zero
// padding after H^1 meets the zero-masked bytes past the end. The products
// are summed unreduced and reduced once.
//
// With final (only in a function that has the parameters n and aadLen, the
// whole message's), GCM's lengths block comes after the text: block j is
// multiplied by H^(m+1-j) and the lengths block by H, so that the reduced
// sum is GHASH's result and the tag needs no multiplication of its own. The
// lengths block's product does not wait for the text. With no text left,
// the hash state is folded into the lengths block and multiplied in one lane.
func zTail(m mode, label func(string) string, rounds int, final bool) {
	acc := zA[3] // the hash state, folded into the first block only
	if !final {
		TESTQ(gN, gN)
		JZ(LabelRef(label("end")))
	}
	// gPOW = the powers for the last ceil(n/16) blocks
	LEAQ(Mem{Base: gN, Disp: 15}, gTMP)
	ANDQ(I32(-16), gTMP)
	if final {
		LEAQ(Mem{Base: gKS, Disp: htabEnd - 16}, gPOW)
	} else {
		LEAQ(Mem{Base: gKS, Disp: htabEnd}, gPOW)
	}
	SUBQ(gTMP, gPOW)

	VMOVDQA64(zHI, acc)
	if final {
		lens, h := zD[1].AsX(), zA[1].AsX()
		zLengthsBlock(lens)
		TESTQ(gN, gN)
		JNZ(LabelRef(label("lens")))
		// No text left: (state ⊕ lengths)·H, one lane, as tagVAES does.
		VPXOR(acc.AsX(), lens, lens)
		mulZ(lens, htab(gKS, 31), zHI.AsX(), zT0.AsX(), zT1.AsX(), h, zPOLY.AsX())
		JMP(LabelRef(label("end")))
		Label(label("lens"))
		VMOVDQU(htab(gKS, 31), h)
		// xmm results clear the upper lanes of the sums.
		clmul(0x00, lens, h, zLO.AsX())
		clmul(0x11, lens, h, zHI.AsX())
		clmul(0x01, lens, h, zT0.AsX())
		clmul(0x10, lens, h, zMI.AsX())
		VPXOR(zT0.AsX(), zMI.AsX(), zMI.AsX())
	} else {
		VPXORD(zLO, zLO, zLO)
		VPXORD(zMI, zMI, zMI)
		VPXORD(zHI, zHI, zHI)
	}

	s, d := zA[0], zD[0]
	Label(label("tail_loop"))
	BZHIQ(gN, gONES, gTMP)
	KMOVQ(gTMP, K1)
	if m != modeHash {
		zCounters([]VecPhysical{s})
		for r := 1; r < rounds; r++ {
			zRound(rounds, r, []VecPhysical{s})()
		}
	}
	VMOVDQU8_Z(Mem{Base: gSRC}, K1, d)
	if m != modeHash {
		last, _ := zRoundKey(rounds, rounds)
		VPXORD(d, last, zT0)
		VAESENCLAST(zT0, s, s)
		VMOVDQU8(s, K1, Mem{Base: gDST})
		if m == modeEncrypt {
			VMOVDQU8_Z(s, K1, d)
		}
		ADDQ(Imm(64), gDST)
	}
	VPSHUFB(zSWAP, d, d)
	VPXORD(acc, d, d)
	VPXORD(acc, acc, acc)
	VMOVDQU64(Mem{Base: gPOW}, zT1)
	clmul(0x00, d, zT1, zT0)
	VPXORD(zT0, zLO, zLO)
	clmul(0x11, d, zT1, zT0)
	VPXORD(zT0, zHI, zHI)
	clmul(0x01, d, zT1, zT0)
	clmul(0x10, d, zT1, d)
	VPTERNLOGD(Imm(0x96), zT0, d, zMI)
	ADDQ(Imm(64), gSRC)
	ADDQ(Imm(64), gPOW)
	SUBQ(Imm(64), gN)
	JA(LabelRef(label("tail_loop")))

	for _, step := range zReduceSteps() {
		step()
	}
	Label(label("end"))
}
