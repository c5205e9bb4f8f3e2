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
	Load(Param("ks"), gKS)
	Load(Param("src"), gSRC)
	Load(Param("n"), gN)
	Load(Param("acc"), gTMP)
	VMOVDQU(Mem{Base: gTMP}, zHI.AsX())
	VBROADCASTI32X4(bswapMask, zSWAP)
	VBROADCASTI32X4(gfPoly, zPOLY)
	for i, h := range zH {
		VMOVDQU64(htab(gKS, 4*i), h)
	}
	MOVQ(I64(-1), gONES)
	if m == modeHash {
		zGroups(m, "", 0)
	} else {
		Load(Param("dst"), gDST)
		Load(Param("ctr"), gTMP)
		VMOVDQU(Mem{Base: gTMP}, zCTR.AsX())
		VPSHUFB(zSWAP.AsX(), zCTR.AsX(), zCTR.AsX())
		VSHUFI64X2(Imm(0), zCTR, zCTR, zCTR)
		VPADDD(ctrOffsets, zCTR, zCTR)
		CMPQ(Mem{Base: gKS, Disp: offRounds}, Imm(14))
		JE(LabelRef(name + "_aes256"))
		zGroups(m, name+"_aes128", 10)
		JMP(LabelRef(name + "_done"))
		Label(name + "_aes256")
		zGroups(m, name+"_aes256", 14)
	}
	Label(name + "_done")
	Load(Param("acc"), gTMP)
	VMOVDQU(zHI.AsX(), Mem{Base: gTMP})
	VZEROUPPER()
	RET()
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

// zHashSteps returns the steps that fold the four vectors in zD (the first
// already XORed with the hash state) into the hash state: one product per
// block with its power of H, summed unreduced, one reduction, and the sum of
// the four lanes left in zHI's low lane.
func zHashSteps() []func() {
	d, h := zD, zH
	steps := []func(){
		func() { clmul(0x00, d[0], h[0], zLO) },
		func() { clmul(0x11, d[0], h[0], zHI) },
		func() { clmul(0x01, d[0], h[0], zMI) },
		func() { clmul(0x10, d[0], h[0], zT0) },
		func() { VPXORD(zT0, zMI, zMI) },
	}
	for i := 1; i < 4; i++ {
		steps = append(steps,
			func() { clmul(0x00, d[i], h[i], zT0) },
			func() { clmul(0x11, d[i], h[i], zT1) },
			func() { VPXORD(zT0, zLO, zLO) },
			func() { VPXORD(zT1, zHI, zHI) },
			func() { clmul(0x01, d[i], h[i], zT0) },
			func() { clmul(0x10, d[i], h[i], d[i]) },
			func() { VPTERNLOGD(Imm(0x96), zT0, d[i], zMI) },
		)
	}
	return append(steps, zReduceSteps()...)
}

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
// state folded into the first block.
func zLoadHashInput(p GPPhysical) {
	for i, d := range zD {
		VMOVDQU64(Mem{Base: p, Disp: 64 * i}, d)
		VPSHUFB(zSWAP, d, d)
	}
	VPXORD(zHI, zD[0], zD[0])
}

// zGroups emits the 256-byte loop and the tail of one function for one key
// size (rounds is 0 for the hash-only function).
func zGroups(m mode, prefix string, rounds int) {
	label := func(s string) string { return prefix + "_" + s }
	if m == modeHash {
		label = func(s string) string { return "ghashVAES512_" + s }
	}
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

	CMPQ(gN, U32(256))
	JB(LabelRef(label("tail")))
	switch m {
	case modeHash:
		Label(label("loop"))
		zLoadHashInput(gSRC)
		for _, step := range zHashSteps() {
			step()
		}
		advance()
		CMPQ(gN, U32(256))
		JAE(LabelRef(label("loop")))

	case modeDecrypt:
		// Hash the ciphertext of a group while decrypting it.
		Label(label("loop"))
		zLoadHashInput(gSRC)
		zCounters(zA[:])
		stitch(aesRounds, zHashSteps())
		zLastRound(rounds, zA[:])
		for i, a := range zA {
			VMOVDQU64(a, Mem{Base: gDST, Disp: 64 * i})
		}
		advance()
		CMPQ(gN, U32(256))
		JAE(LabelRef(label("loop")))

	case modeEncrypt:
		// Software-pipelined: encrypt a group while hashing the ciphertext
		// of the one before, which stays in zA until then.
		zCounters(zA[:])
		for _, round := range aesRounds {
			round()
		}
		zEncryptStore(rounds)
		Label(label("loop"))
		CMPQ(gN, U32(256))
		JB(LabelRef(label("drain")))
		for i, a := range zA {
			VPSHUFB(zSWAP, a, zD[i])
		}
		VPXORD(zHI, zD[0], zD[0])
		zCounters(zA[:])
		stitch(aesRounds, zHashSteps())
		zEncryptStore(rounds)
		JMP(LabelRef(label("loop")))

		Label(label("drain"))
		for i, a := range zA {
			VPSHUFB(zSWAP, a, zD[i])
		}
		VPXORD(zHI, zD[0], zD[0])
		for _, step := range zHashSteps() {
			step()
		}
	}

	Label(label("tail"))
	zTail(m, label, rounds)
	if m != modeHash {
		JMP(LabelRef(map[mode]string{modeEncrypt: "encVAES512", modeDecrypt: "decVAES512"}[m] + "_done"))
	}
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
func zTail(m mode, label func(string) string, rounds int) {
	TESTQ(gN, gN)
	JZ(LabelRef(label("end")))
	// gPOW = &htab[16-ceil(n/16)]
	LEAQ(Mem{Base: gN, Disp: 15}, gTMP)
	ANDQ(I32(-16), gTMP)
	LEAQ(Mem{Base: gKS, Disp: offHtab + 256}, gPOW)
	SUBQ(gTMP, gPOW)

	acc := zA[3] // the hash state, folded into the first block only
	VMOVDQA64(zHI, acc)
	VPXORD(zLO, zLO, zLO)
	VPXORD(zMI, zMI, zMI)
	VPXORD(zHI, zHI, zHI)

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

var _ = fmt.Sprint
