package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// genTag writes tagVAES, GCM's last step for both VAES kernels when a
// message took more than one call: fold the lengths block into the hash,
// multiply by H once more, and XOR with AES_K(J0).
func genTag() {
	TEXT("tagVAES", NOSPLIT, "func(ks *byte, acc *[16]byte, j0 *[16]byte, tag *[16]byte, aadLen, ptLen int)")
	Doc("tagVAES writes GCM's tag for the hash state acc and counter block J0.")
	ks, p := gKS, RAX
	Load(Param("ks"), ks)
	Load(Param("j0"), p)
	e := X0
	VMOVDQU(Mem{Base: p}, e)
	encryptBlock(e, "tagVAES_j0")
	Load(Param("tag"), p)
	VMOVDQU(e, Mem{Base: p})
	acc := X8
	Load(Param("acc"), RBX)
	VMOVDQU(Mem{Base: RBX}, acc)
	Load(Param("aadLen"), RBX)
	Load(Param("ptLen"), RCX)
	finishTag(acc, RBX, RCX, p)
	RET()
}

// encryptBlock encrypts the block in b with the key schedule at gKS; it
// clobbers gTMP.
func encryptBlock(b VecPhysical, prefix string) {
	VPXOR(roundKey(gKS, 0), b, b)
	for r := 1; r < 10; r++ {
		VAESENC(roundKey(gKS, r), b, b)
	}
	CMPQ(Mem{Base: gKS, Disp: offRounds}, Imm(14))
	JNE(LabelRef(prefix + "_last"))
	for r := 10; r < 14; r++ {
		VAESENC(roundKey(gKS, r), b, b)
	}
	Label(prefix + "_last")
	MOVQ(Mem{Base: gKS, Disp: offRounds}, gTMP)
	SHLQ(Imm(4), gTMP)
	VAESENCLAST(Mem{Base: gKS, Index: gTMP, Scale: 1, Disp: offRK}, b, b)
}

// finishTag turns the hash state in acc into the tag: it folds in the
// lengths block (aadLen and ptLen in bytes), multiplies by H, and XORs the
// result into AES_K(J0), which tag points to. It clobbers aadLen, ptLen and
// X1 … X7.
func finishTag(acc Op, aadLen, ptLen, tag GPPhysical) {
	// The lengths block in bits, byte-reversed: the text's length in the
	// low half, the additional data's in the high half.
	lens := X1
	SHLQ(Imm(3), ptLen)
	VMOVQ(ptLen, lens)
	SHLQ(Imm(3), aadLen)
	VPINSRQ(Imm(1), aadLen, lens, lens)
	VPXOR(lens, acc, acc)
	s := X2
	mulVEX(acc, htab(gKS, 31), s, X3, X4, X5, X6, gfPoly)
	VPSHUFB(bswapMask, s, s)
	VPXOR(Mem{Base: tag}, s, s)
	VMOVDQU(s, Mem{Base: tag})
}
