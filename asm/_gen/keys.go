package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// genInit writes initVAES, the key setup both VAES kernels share: the AES
// round keys, then H = AES_K(0) and its powers H^1 … H^16. It uses VEX
// instructions only (AES-NI, AVX2, VPCLMULQDQ on ymm) so that it runs on
// the AVX2 kernel's CPUs too.
func genInit() {
	TEXT("initVAES", NOSPLIT, "func(ks *byte, key *byte, powers int)")
	Doc("initVAES fills ks from key: the round keys and H^powers … H^1 (16 or 32); ks.rounds (10 or 14) must be set.")
	ks, key, rounds := RDI, RSI, RCX
	Load(Param("ks"), ks)
	Load(Param("key"), key)
	MOVQ(Mem{Base: ks, Disp: offRounds}, rounds)

	CMPQ(rounds, Imm(14))
	JE(LabelRef("init_aes256"))
	expandKey128(ks, key, X0)
	JMP(LabelRef("init_powers"))
	Label("init_aes256")
	expandKey256(ks, key, X0)

	Label("init_powers")
	hashKeyPowers(ks, X0)
	VZEROUPPER()
	RET()
}

// prefixXOR turns the four words w0 … w3 of w into w0, w0^w1, w0^w1^w2,
// w0^w1^w2^w3: the running XOR every AES key schedule step needs.
func prefixXOR(w, t VecPhysical) {
	VPSLLDQ(Imm(4), w, t)
	VPXOR(t, w, w)
	VPSLLDQ(Imm(8), w, t)
	VPXOR(t, w, w)
}

var rcon = [...]uint8{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36}

// expandKey128 writes the 11 AES-128 round keys (FIPS 197, 5.2): each one is
// the running XOR of the previous one's words, XORed with
// SubWord(RotWord(last word)) ^ Rcon, which AESKEYGENASSIST computes in its
// top word. It encrypts the zero block into h with each key as it comes.
func expandKey128(ks, key GPPhysical, h VecPhysical) {
	k, t, u := X1, X2, X3
	VMOVDQU(Mem{Base: key}, k)
	VMOVDQU(k, roundKey(ks, 0))
	VMOVDQA(k, h)
	for r := 1; r <= 10; r++ {
		VAESKEYGENASSIST(Imm(uint64(rcon[r-1])), k, t)
		VPSHUFD(Imm(0xff), t, t)
		prefixXOR(k, u)
		VPXOR(t, k, k)
		VMOVDQU(k, roundKey(ks, r))
		encryptRound(r, 10, k, h)
	}
}

// encryptRound applies round r of AES with key k to h.
func encryptRound(r, rounds int, k, h VecPhysical) {
	if r < rounds {
		VAESENC(k, h, h)
	} else {
		VAESENCLAST(k, h, h)
	}
}

// expandKey256 writes the 15 AES-256 round keys: even ones as for AES-128
// from the key two back, odd ones from the key two back and SubWord of the
// previous key's last word (AESKEYGENASSIST's third word), with no rotation
// and no Rcon. It encrypts the zero block into h as it goes.
func expandKey256(ks, key GPPhysical, h VecPhysical) {
	k := [2]VecPhysical{X1, X2}
	t, u := X3, X4
	VMOVDQU(Mem{Base: key}, k[0])
	VMOVDQU(Mem{Base: key, Disp: 16}, k[1])
	VMOVDQU(k[0], roundKey(ks, 0))
	VMOVDQU(k[1], roundKey(ks, 1))
	VMOVDQA(k[0], h)
	VAESENC(k[1], h, h)
	for r := 2; r <= 14; r++ {
		older, newer := k[r%2], k[(r+1)%2]
		if r%2 == 0 {
			VAESKEYGENASSIST(Imm(uint64(rcon[r/2-1])), newer, t)
			VPSHUFD(Imm(0xff), t, t)
		} else {
			VAESKEYGENASSIST(Imm(0), newer, t)
			VPSHUFD(Imm(0xaa), t, t)
		}
		prefixXOR(older, u)
		VPXOR(t, older, older)
		VMOVDQU(older, roundKey(ks, r))
		encryptRound(r, 14, older, h)
	}
}

// hashKeyPowers turns H = AES_K(0) in h into H^16 … H^1 (times x^-1, in
// the kernels' representation) at the end of the table, their Karatsuba
// halves and the zero padding; and, if the powers argument is 32, into
// H^32 … H^17 and their halves too.
func hashKeyPowers(ks GPPhysical, h VecPhysical) {
	poly := Y15
	VBROADCASTI128(gfPoly, poly)
	t0, t1, t2, t3 := Y10, Y11, Y12, Y13

	// H1 = H·x mod the reflected polynomial: a 128-bit left shift by one,
	// and gfPoly folded back in if a bit fell off the top.
	h1 := X1
	VPSHUFB(bswapMask, h, h)
	VPSLLQ(Imm(1), h, h1)
	VPSRLQ(Imm(63), h, X2)
	VPSLLDQ(Imm(8), X2, X2)
	VPXOR(X2, h1, h1)
	VPSHUFD(Imm(0xff), h, X3)
	VPSRAD(Imm(31), X3, X3)
	VPAND(gfPoly, X3, X3)
	VPXOR(X3, h1, h1)

	h2 := X2
	mulVEX(h1, h1, h2, t0.AsX(), t1.AsX(), t2.AsX(), t3.AsX(), poly.AsX())
	p21, p22 := Y3, Y4 // [H^2 | H^1], [H^2 | H^2]
	VINSERTI128(Imm(1), h1, h2.AsY(), p21)
	VINSERTI128(Imm(1), h2, h2.AsY(), p22)
	p43 := Y5
	mulVEX(p21, p22, p43, t0, t1, t2, t3, poly)
	VMOVDQU(p21, htab(ks, 30))
	VMOVDQU(p43, htab(ks, 28))

	p44 := Y6
	VPERMQ(Imm(0x44), p43, p44)
	p65, p87 := Y7, Y8
	mulVEX(p21, p44, p65, t0, t1, t2, t3, poly)
	mulVEX(p43, p44, p87, t0, t1, t2, t3, poly)
	VMOVDQU(p65, htab(ks, 26))
	VMOVDQU(p87, htab(ks, 24))

	p88 := Y9
	VPERMQ(Imm(0x44), p87, p88)
	p109, p1211, p1413, p1615 := Y0, Y1, Y2, Y14
	for i, low := range []VecPhysical{p21, p43, p65, p87} {
		high := []VecPhysical{p109, p1211, p1413, p1615}[i]
		mulVEX(low, p88, high, t0, t1, t2, t3, poly)
		VMOVDQU(high, htab(ks, 22-2*i))
	}

	// The Karatsuba halves, from the registers: reading back what was
	// just stored would stall on store forwarding.
	for i, p := range []VecPhysical{p1615, p1413, p1211, p109, p87, p65, p43, p21} {
		VPSHUFD(Imm(0x4e), p, t0)
		VPXOR(p, t0, t0)
		VMOVDQU(t0, kara(ks, 16+2*i))
	}
	VPXOR(X4, X4, X4)
	VMOVDQU(Y4, Mem{Base: ks, Disp: offPad})
	VMOVDQU(X4, Mem{Base: ks, Disp: offPad + 32})

	// H^32 … H^17 = (H^16 … H^1)·H^16, four powers per multiply, for the
	// AVX-512 kernel only: these are its instructions.
	Load(Param("powers"), RAX)
	CMPQ(RAX, Imm(32))
	JNE(LabelRef("init_done"))
	zpoly, h16 := Z31, Z30
	VBROADCASTI32X4(gfPoly, zpoly)
	VSHUFI64X2(Imm(0), p1615.AsZ(), p1615.AsZ(), h16)
	for i, pair := range [][2]VecPhysical{{p1615, p1413}, {p1211, p109}, {p87, p65}, {p43, p21}} {
		low, high := Z16, Z17
		VINSERTI64X4(Imm(1), pair[1], pair[0].AsZ(), low)
		mulZ(low, h16, high, Z18, Z19, Z20, zpoly)
		VMOVDQU64(high, htab(ks, 4*i))
		VPSHUFD(Imm(0x4e), high, Z18)
		VPXORD(high, Z18, Z18)
		VMOVDQU64(Z18, kara(ks, 4*i))
	}
	Label("init_done")
}
