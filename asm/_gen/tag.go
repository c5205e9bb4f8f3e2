package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// genTag writes tagVAES, GCM's last step for both VAES kernels: fold the
// lengths block into the hash, multiply by H once more, and XOR with
// AES_K(J0).
func genTag() {
	TEXT("tagVAES", NOSPLIT, "func(ks *byte, acc *[16]byte, j0 *[16]byte, tag *[16]byte, aadLen, ptLen int)")
	Doc("tagVAES writes GCM's tag for the hash state acc and counter block J0.")
	ks, p, n := RDI, RSI, RAX
	Load(Param("ks"), ks)

	acc, lens := X0, X1
	Load(Param("acc"), p)
	VMOVDQU(Mem{Base: p}, acc)
	// The lengths block in bits, byte-reversed: the plaintext length in the
	// low half, the additional data's in the high half.
	Load(Param("ptLen"), n)
	SHLQ(Imm(3), n)
	VMOVQ(n, lens)
	Load(Param("aadLen"), n)
	SHLQ(Imm(3), n)
	VPINSRQ(Imm(1), n, lens, lens)
	VPXOR(lens, acc, acc)

	// AES_K(J0), independent of the multiply, so the two overlap.
	e := X2
	Load(Param("j0"), p)
	VMOVDQU(Mem{Base: p}, e)
	VPXOR(roundKey(ks, 0), e, e)
	for r := 1; r < 10; r++ {
		VAESENC(roundKey(ks, r), e, e)
	}
	CMPQ(Mem{Base: ks, Disp: offRounds}, Imm(14))
	JNE(LabelRef("tag_last"))
	for r := 10; r < 14; r++ {
		VAESENC(roundKey(ks, r), e, e)
	}
	Label("tag_last")
	MOVQ(Mem{Base: ks, Disp: offRounds}, n)
	SHLQ(Imm(4), n)
	VAESENCLAST(Mem{Base: ks, Index: n, Scale: 1, Disp: offRK}, e, e)

	s := X3
	mulVEX(acc, htab(ks, 15), s, X4, X5, X6, X7, gfPoly)
	VPSHUFB(bswapMask, s, s)
	VPXOR(e, s, s)
	Load(Param("tag"), p)
	VMOVDQU(s, Mem{Base: p})
	RET()
}
