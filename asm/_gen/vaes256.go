package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The AVX2 kernel: VAES and VPCLMULQDQ on ymm, VEX-encoded so that it runs
// on CPUs without AVX-512. 16 registers hold 4 vectors of 2 blocks: 128
// bytes in flight. Round keys other than the first and last, the powers of
// H and the data to hash are read from memory; for encryption that is the
// ciphertext of the previous group, just written to dst.
var (
	yA    = [4]VecPhysical{Y0, Y1, Y2, Y3}
	yLO   = Y4
	yMI   = Y5
	yHI   = Y6 // and, between groups, the hash state in its low lane
	yT0   = Y7
	yT1   = Y8
	yD    = Y9
	yT2   = Y10
	yCTR  = Y11
	ySWAP = Y12
	yRKT  = Y13
	yRK0  = Y14
	yRKL  = Y15
)

func genVAES256() {
	for _, m := range []mode{modeEncrypt, modeDecrypt, modeHash} {
		vaes256(m)
	}
	genFused("VAES256", ySetup, func(name string) { yGroups(modeHash, name, 0, "") }, yCrypt, yHI, yCTR, false)
}

func vaes256(m mode) {
	name := map[mode]string{modeEncrypt: "encVAES256", modeDecrypt: "decVAES256", modeHash: "ghashVAES256"}[m]
	if m == modeHash {
		TEXT(name, NOSPLIT, "func(ks *byte, acc *[16]byte, src *byte, n int)")
		Doc(name + " is ghashVAES512 for CPUs without AVX-512.")
	} else {
		TEXT(name, NOSPLIT, "func(ks *byte, acc *[16]byte, ctr *[16]byte, dst *byte, src *byte, n int)")
		Doc(name + " is " + map[mode]string{modeEncrypt: "encVAES512", modeDecrypt: "decVAES512"}[m] + " for CPUs without AVX-512.")
	}
	ySetup()
	Load(Param("src"), gSRC)
	Load(Param("n"), gN)
	Load(Param("acc"), gTMP)
	VMOVDQU(Mem{Base: gTMP}, yHI.AsX())
	if m == modeHash {
		yGroups(m, name, 0, "")
	} else {
		Load(Param("dst"), gDST)
		Load(Param("ctr"), gTMP)
		VMOVDQU(Mem{Base: gTMP}, yCTR.AsX())
		VPSHUFB(ySWAP.AsX(), yCTR.AsX(), yCTR.AsX())
		yCrypt(m, name, false)
	}
	Label(name + "_done")
	Load(Param("acc"), gTMP)
	VMOVDQU(yHI.AsX(), Mem{Base: gTMP})
	VZEROUPPER()
	RET()
}

// yBuf is the current function's 32 bytes of stack, for partial vectors.
var yBuf Mem

// ySetup allocates yBuf and loads what every AVX2 function keeps in
// registers.
func ySetup() {
	yBuf = AllocLocal(32)
	Load(Param("ks"), gKS)
	VBROADCASTI128(bswapMask, ySWAP)
}

// yCrypt is zCrypt for the AVX2 kernel.
// The AVX2 kernel does not fold the lengths block: final must be false.
func yCrypt(m mode, name string, final bool) {
	if final {
		panic("yCrypt: the AVX2 kernel does not fold the lengths block")
	}
	VINSERTI128(Imm(1), yCTR.AsX(), yCTR, yCTR)
	VPADDD(ctrOffsets, yCTR, yCTR)
	VBROADCASTI128(roundKey(gKS, 0), yRK0)
	CMPQ(Mem{Base: gKS, Disp: offRounds}, Imm(14))
	JE(LabelRef(name + "_aes256"))
	VBROADCASTI128(roundKey(gKS, 10), yRKL)
	yGroups(m, name+"_aes128", 10, name+"_done")
	Label(name + "_aes256")
	VBROADCASTI128(roundKey(gKS, 14), yRKL)
	yGroups(m, name+"_aes256", 14, name+"_done")
}

func yRound(r int, states []VecPhysical) func() {
	return func() {
		VBROADCASTI128(roundKey(gKS, r), yRKT)
		for _, s := range states {
			VAESENC(yRKT, s, s)
		}
	}
}

// yToBigEndian, yToLittleEndian and yGroupCounters are zToBigEndian … for
// the AVX2 kernel, whose group of 8 counters ends 9 past the low byte.
func yToBigEndian() {
	VMOVD(yCTR.AsX(), gLOW.As32())
	VPSHUFB(ySWAP, yCTR, yCTR)
}

func yToLittleEndian() {
	VPSHUFB(ySWAP, yCTR, yCTR)
}

func yGroupCounters() {
	zCounterGroups++
	slow := fmt.Sprintf("ctr%d_carry", zCounterGroups)
	done := fmt.Sprintf("ctr%d_done", zCounterGroups)
	CMPB(gLOW.As8(), U8(255-9))
	JA(LabelRef(slow))
	for _, s := range yA {
		VPXOR(yRK0, yCTR, s)
		VPADDD(ctrInc2BigEndian, yCTR, yCTR)
	}
	JMP(LabelRef(done))
	Label(slow)
	VPSHUFB(ySWAP, yCTR, yT0)
	for _, s := range yA {
		VPSHUFB(ySWAP, yT0, s)
		VPADDD(ctrInc2, yT0, yT0)
		VPXOR(yRK0, s, s)
	}
	VPSHUFB(ySWAP, yT0, yCTR)
	Label(done)
	ADDB(U8(8), gLOW.As8())
}

func yCounters(states []VecPhysical) {
	for _, s := range states {
		VPSHUFB(ySWAP, yCTR, s)
		VPADDD(ctrInc2, yCTR, yCTR)
		VPXOR(yRK0, s, s)
	}
}

// yLastRound finishes the states with the input at src XORed in through the
// last round key, and stores them at dst.
func yLastRound(states []VecPhysical) {
	temps := []VecPhysical{yT0, yT1, yD, yT2}
	for i, s := range states {
		VPXOR(Mem{Base: gSRC, Disp: 32 * i}, yRKL, temps[i])
		VAESENCLAST(temps[i], s, s)
	}
	for i, s := range states {
		VMOVDQU(s, Mem{Base: gDST, Disp: 32 * i})
	}
}

// yHashSteps returns the steps that multiply the 128 bytes at p+disp
// (byte-reversed, the first block XORed with the hash state if first) by
// H^(first+7) … H^first, one power per block, and add the Karatsuba
// products (see zHashSteps), unreduced, to yLO, yMI, yHI (or start them, if
// first); with reduce, the steps end in a reduction that leaves the hash
// state in yHI's low lane.
func yHashSteps(p GPPhysical, disp int, power int, first, reduce bool) []func() {
	var steps []func()
	for i := 0; i < 4; i++ {
		h, k := htab(gKS, 32-power-7+2*i), kara(gKS, 32-power-7+2*i)
		steps = append(steps,
			func() { VMOVDQU(Mem{Base: p, Disp: disp + 32*i}, yD) },
			func() { VPSHUFB(ySWAP, yD, yD) },
		)
		if i == 0 && first {
			steps = append(steps,
				func() { VPXOR(yHI, yD, yD) },
				func() { VPSHUFD(Imm(0x4e), yD, yMI) },
				func() { VPXOR(yD, yMI, yMI) },
				func() { clmul(0x00, yMI, k, yMI) },
				func() { clmul(0x00, yD, h, yLO) },
				func() { clmul(0x11, yD, h, yHI) },
			)
			continue
		}
		steps = append(steps,
			func() { VPSHUFD(Imm(0x4e), yD, yT0) },
			func() { VPXOR(yD, yT0, yT0) },
			func() { clmul(0x00, yT0, k, yT0) },
			func() { VPXOR(yT0, yMI, yMI) },
			func() { clmul(0x00, yD, h, yT1) },
			func() { VPXOR(yT1, yLO, yLO) },
			func() { clmul(0x11, yD, h, yT1) },
			func() { VPXOR(yT1, yHI, yHI) },
		)
	}
	if reduce {
		steps = append(steps,
			func() { VPXOR(yLO, yMI, yMI) },
			func() { VPXOR(yHI, yMI, yMI) },
		)
		steps = append(steps, yReduceSteps()...)
	}
	return steps
}

func yReduceSteps() []func() {
	return []func(){
		func() { clmul(0x10, yLO, gfPoly, yT0) },
		func() { VPSHUFD(Imm(0x4e), yLO, yLO) },
		func() { VPXOR(yLO, yMI, yMI) },
		func() { VPXOR(yT0, yMI, yMI) },
		func() { clmul(0x10, yMI, gfPoly, yT0) },
		func() { VPSHUFD(Imm(0x4e), yMI, yMI) },
		func() { VPXOR(yMI, yHI, yHI) },
		func() { VPXOR(yT0, yHI, yHI) },
		func() { VEXTRACTI128(Imm(1), yHI, yT0.AsX()) },
		func() { VPXOR(yT0.AsX(), yHI.AsX(), yHI.AsX()) },
	}
}

func yGroups(m mode, prefix string, rounds int, done string) {
	buf := yBuf
	label := func(s string) string { return prefix + "_" + s }
	var aesRounds []func()
	for r := 1; r < rounds; r++ {
		aesRounds = append(aesRounds, yRound(r, yA[:]))
	}
	advance := func() {
		if m != modeHash {
			ADDQ(U32(128), gDST)
		}
		ADDQ(U32(128), gSRC)
		SUBQ(U32(128), gN)
	}

	// As zGroups: 128-byte groups, two per reduction.
	CMPQ(gN, U32(128))
	JB(LabelRef(label("tail")))
	group := func(first, reduce bool) {
		power := 1
		if !reduce {
			power = 9
		}
		switch m {
		case modeHash:
			for _, step := range yHashSteps(gSRC, 0, power, first, reduce) {
				step()
			}
			advance()
		case modeDecrypt:
			prefetch(128)
			yGroupCounters()
			stitch(aesRounds, yHashSteps(gSRC, 0, power, first, reduce))
			yLastRound(yA[:])
			advance()
		case modeEncrypt:
			prefetch(128)
			yGroupCounters()
			stitch(aesRounds, yHashSteps(gDST, -128, power, first, reduce))
			yLastRound(yA[:])
			advance()
		}
	}
	if m != modeHash {
		yToBigEndian()
	}
	if m == modeEncrypt {
		yGroupCounters()
		for _, round := range aesRounds {
			round()
		}
		yLastRound(yA[:])
		advance()
	}
	Label(label("pairs"))
	CMPQ(gN, U32(256))
	JB(LabelRef(label("single")))
	group(true, false)
	group(false, true)
	JMP(LabelRef(label("pairs")))
	Label(label("single"))
	CMPQ(gN, U32(128))
	JB(LabelRef(label("last")))
	group(true, true)
	Label(label("last"))
	if m != modeHash {
		yToLittleEndian()
	}
	if m == modeEncrypt {
		for _, step := range yHashSteps(gDST, -128, 1, true, true) {
			step()
		}
	}

	Label(label("tail"))
	yTail(m, label, rounds, buf)
	if m != modeHash {
		JMP(LabelRef(done))
	}
}

// yTail handles the last n < 128 bytes two blocks at a time, as zTail does
// with four; without masks, the last partial vector goes through the
// zeroed 32-byte buffer on the stack.
func yTail(m mode, label func(string) string, rounds int, buf Mem) {
	TESTQ(gN, gN)
	JZ(LabelRef(label("end")))
	LEAQ(Mem{Base: gN, Disp: 15}, gTMP)
	ANDQ(I32(-16), gTMP)
	LEAQ(Mem{Base: gKS, Disp: htabEnd}, gPOW)
	SUBQ(gTMP, gPOW)

	acc := yA[3]
	VMOVDQA(yHI, acc)
	VPXOR(yLO, yLO, yLO)
	VPXOR(yMI, yMI, yMI)
	VPXOR(yHI, yHI, yHI)

	s := yA[0]
	// crypt turns the input in yD into the output in s.
	crypt := func() {
		yCounters([]VecPhysical{s})
		for r := 1; r < rounds; r++ {
			yRound(r, []VecPhysical{s})()
		}
		VPXOR(yD, yRKL, yT0)
		VAESENCLAST(yT0, s, s)
	}
	hash := func() {
		VPSHUFB(ySWAP, yD, yD)
		VPXOR(acc, yD, yD)
		VPXOR(acc, acc, acc)
		VMOVDQU(Mem{Base: gPOW}, yT1)
		clmul(0x00, yD, yT1, yT0)
		VPXOR(yT0, yLO, yLO)
		clmul(0x11, yD, yT1, yT0)
		VPXOR(yT0, yHI, yHI)
		clmul(0x01, yD, yT1, yT0)
		VPXOR(yT0, yMI, yMI)
		clmul(0x10, yD, yT1, yT0)
		VPXOR(yT0, yMI, yMI)
	}

	Label(label("tail_loop"))
	CMPQ(gN, Imm(32))
	JB(LabelRef(label("partial")))
	VMOVDQU(Mem{Base: gSRC}, yD)
	if m != modeHash {
		crypt()
		VMOVDQU(s, Mem{Base: gDST})
		if m == modeEncrypt {
			VMOVDQA(s, yD)
		}
		ADDQ(Imm(32), gDST)
	}
	hash()
	ADDQ(Imm(32), gSRC)
	ADDQ(Imm(32), gPOW)
	SUBQ(Imm(32), gN)
	JMP(LabelRef(label("tail_loop")))

	Label(label("partial"))
	TESTQ(gN, gN)
	JZ(LabelRef(label("reduce")))
	VPXOR(yD, yD, yD)
	VMOVDQU(yD, buf)
	LEAQ(buf, R10)
	copyShort(gSRC, R10, label("in"))
	VMOVDQU(buf, yD)
	if m != modeHash {
		crypt()
		VMOVDQU(s, buf)
		LEAQ(buf, R10)
		copyShort(R10, gDST, label("out"))
		if m == modeEncrypt {
			// The ciphertext past the end is keystream: zero it.
			LEAQ(tailMask, gTMP)
			SUBQ(gN, gTMP)
			VPAND(Mem{Base: gTMP, Disp: 32}, s, yD)
		}
	}
	hash()

	Label(label("reduce"))
	for _, step := range yReduceSteps() {
		step()
	}
	Label(label("end"))
}

// copyShort copies gN (< 32) bytes from src to dst, clobbering both
// pointers, R9 and R13.
func copyShort(src, dst GPPhysical, prefix string) {
	MOVQ(gN, R9)
	for _, w := range []int{16, 8, 4, 2, 1} {
		skip := prefix + "_" + map[int]string{16: "16", 8: "8", 4: "4", 2: "2", 1: "1"}[w]
		TESTQ(U32(uint32(w)), R9)
		JZ(LabelRef(skip))
		switch w {
		case 16:
			VMOVDQU(Mem{Base: src}, X10)
			VMOVDQU(X10, Mem{Base: dst})
		case 8:
			MOVQ(Mem{Base: src}, R13)
			MOVQ(R13, Mem{Base: dst})
		case 4:
			MOVL(Mem{Base: src}, R13L)
			MOVL(R13L, Mem{Base: dst})
		case 2:
			MOVW(Mem{Base: src}, R13W)
			MOVW(R13W, Mem{Base: dst})
		case 1:
			MOVB(Mem{Base: src}, R13B)
			MOVB(R13B, Mem{Base: dst})
		}
		ADDQ(Imm(uint64(w)), src)
		ADDQ(Imm(uint64(w)), dst)
		Label(skip)
	}
}
