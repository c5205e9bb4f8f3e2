package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
)

// The field arithmetic. Blocks are byte-reversed, so a 128-bit value's bit i
// is the coefficient of x^(127-i) of GHASH's polynomial. In that
// representation the carry-less product of a and b, folded twice from its
// low end with gfPoly, is a·b·x^-128 modulo x^128+x^127+x^126+x^121+1, and
// that equals GHASH's a·b·x: the tables hold every power of H multiplied by
// x^-1 once, at key setup, so that no product needs a correction.

// reduceVEX folds lo into mi and mi into hi, leaving the product in hi; lo,
// mi and t are clobbered. poly holds gfPoly in every lane. Only VEX
// instructions: the AVX2 kernel, key setup and the tag use it.
func reduceVEX(lo, mi, hi, t, poly Op) {
	clmul(0x10, lo, poly, t) // lo.low · (x^63+x^62+x^57)
	VPSHUFD(Imm(0x4e), lo, lo)
	VPXOR(lo, mi, mi)
	VPXOR(t, mi, mi)
	clmul(0x10, mi, poly, t)
	VPSHUFD(Imm(0x4e), mi, mi)
	VPXOR(mi, hi, hi)
	VPXOR(t, hi, hi)
}

// mulVEX emits dst = a·b in every lane (xmm or ymm registers); t0 … t3 are
// clobbered and dst may not be one of them.
func mulVEX(a, b, dst, t0, t1, t2, t3, poly Op) {
	clmul(0x00, a, b, t0)
	clmul(0x01, a, b, t1)
	clmul(0x10, a, b, t2)
	clmul(0x11, a, b, dst)
	VPXOR(t2, t1, t1)
	reduceVEX(t0, t1, dst, t3, poly)
}

// mulZ is mulVEX on zmm registers, with VPTERNLOGD.
func mulZ(a, b, dst, t0, t1, t2, poly Op) {
	clmul(0x00, a, b, t0)
	clmul(0x01, a, b, t1)
	clmul(0x10, a, b, t2)
	clmul(0x11, a, b, dst)
	VPXORD(t2, t1, t1)
	clmul(0x10, t0, poly, t2)
	VPSHUFD(Imm(0x4e), t0, t0)
	VPTERNLOGD(Imm(0x96), t2, t0, t1)
	clmul(0x10, t1, poly, t2)
	VPSHUFD(Imm(0x4e), t1, t1)
	VPTERNLOGD(Imm(0x96), t2, t1, dst)
}
