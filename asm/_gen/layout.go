package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The key schedule the kernels read, asm's keySchedule; TestKeyScheduleLayout
// holds the Go struct to these offsets.
const (
	offHtab   = 0    // [32][16]byte: H^32 … H^1 in the kernels' representation
	offPad    = 512  // [3][16]byte of zeros, so a vector load that starts at one of the last powers reads zero powers past H^1
	offKara   = 560  // [32][16]byte: the halves of each power XORed together, for Karatsuba (AVX-512 kernel only)
	offRK     = 1072 // [15][16]byte: AES round keys 0 … rounds
	offRounds = 1312 // uint64: 10 or 14

	// htabEnd is the offset just past H^1: the powers for the last m
	// blocks of a message start 16·m bytes before it.
	htabEnd = offHtab + 32*16
)

// htab(ks, i) is H^(32-i).

func htab(ks GPPhysical, i int) Mem     { return Mem{Base: ks, Disp: offHtab + 16*i} }
func kara(ks GPPhysical, i int) Mem     { return Mem{Base: ks, Disp: offKara + 16*i} }
func roundKey(ks GPPhysical, r int) Mem { return Mem{Base: ks, Disp: offRK + 16*r} }

// Constants.
var (
	// bswapMask reverses the bytes of each 128-bit lane: GCM's bit order is
	// reflected, and byte reversal turns a block into an integer whose bit
	// i is the coefficient of x^(127-i), which the kernels work with.
	bswapMask Mem
	// gfPoly is x^127 + x^126 + x^121 + 1, the low terms of the reflected
	// field polynomial, in two lanes; its high half drives the reduction.
	gfPoly Mem
	// ctrOffsets adds 0, 1, 2, 3 to the counters of lanes 0 … 3.
	ctrOffsets Mem
	// ctrInc4 and ctrInc2 add 4 (2) to every lane's counter.
	ctrInc4 Mem
	ctrInc2 Mem
	// ctrInc4BigEndian and ctrInc2BigEndian add 4 (2) to the last byte of
	// every lane.
	ctrInc4BigEndian Mem
	ctrInc2BigEndian Mem
	// tailMask is 32 bytes of 0xff then 32 of zeros; the 32 bytes at
	// tailMask+32-n keep the first n bytes of a vector.
	tailMask Mem
)

func genConstants() {
	bswapMask = GLOBL("bswapMask", RODATA|NOPTR)
	DATA(0, U64(0x08090a0b0c0d0e0f))
	DATA(8, U64(0x0001020304050607))

	gfPoly = GLOBL("gfPoly", RODATA|NOPTR)
	for lane := 0; lane < 2; lane++ {
		DATA(16*lane, U64(1))
		DATA(16*lane+8, U64(0xc200000000000000))
	}

	ctrOffsets = GLOBL("ctrOffsets", RODATA|NOPTR)
	for lane := 0; lane < 4; lane++ {
		DATA(16*lane, U64(uint64(lane)))
		DATA(16*lane+8, U64(0))
	}
	ctrInc4 = GLOBL("ctrInc4", RODATA|NOPTR)
	for lane := 0; lane < 4; lane++ {
		DATA(16*lane, U64(4))
		DATA(16*lane+8, U64(0))
	}
	ctrInc4BigEndian = GLOBL("ctrInc4BigEndian", RODATA|NOPTR)
	for lane := 0; lane < 4; lane++ {
		DATA(16*lane, U64(0))
		DATA(16*lane+8, U64(4<<56))
	}
	ctrInc2BigEndian = GLOBL("ctrInc2BigEndian", RODATA|NOPTR)
	for lane := 0; lane < 2; lane++ {
		DATA(16*lane, U64(0))
		DATA(16*lane+8, U64(2<<56))
	}
	ctrInc2 = GLOBL("ctrInc2", RODATA|NOPTR)
	for lane := 0; lane < 2; lane++ {
		DATA(16*lane, U64(2))
		DATA(16*lane+8, U64(0))
	}
	tailMask = GLOBL("tailMask", RODATA|NOPTR)
	for i := 0; i < 8; i++ {
		DATA(8*i, U64(^uint64(0)>>(64*(i/4))))
	}
}

// clmul emits dst = a.q[imm&1] ⊗ b.q[imm>>4&1], a carry-less multiply of
// one 64-bit half of a by one of b in every 128-bit lane; b may be memory.
// (Go's operand order puts b before a.)
func clmul(imm uint8, a, b, dst Op) {
	VPCLMULQDQ(Imm(uint64(imm)), b, a, dst)
}

// stitch emits one AES round after another and spreads the GHASH steps
// evenly between them, so that the AES and the carry-less multiply units
// work at the same time.
func stitch(rounds []func(), ghash []func()) {
	done := 0
	for i, round := range rounds {
		round()
		for due := len(ghash) * (i + 1) / len(rounds); done < due; done++ {
			ghash[done]()
		}
	}
}

// prefetch asks for the input and output lines prefetchAhead bytes past
// a group of the given size at gSRC and gDST; both kernels' loops emit it
// before each group. A stream seals and opens megabytes that are in no
// cache; there, with the hardware's prefetchers alone, the loop stalls on
// the loads and on the stores' ownership requests, and the stalls add to
// the AES time rather than overlap it. Prefetching both 4 KiB ahead took
// 256 MiB through the sequential stream in 41 ms instead of 49 on the
// AVX-512 loop (BENCHMARKS.md, issue 24); input only or output only gave
// about a third of that each, 8 KiB ahead the same as 4, and data in cache
// (Seal and Open of 16 KiB and 1 MiB) ran as fast as without. A prefetch
// past the end of a buffer does not fault.
func prefetch(group int) {
	for off := 0; off < group; off += 64 {
		PREFETCHT0(Mem{Base: gSRC, Disp: prefetchAhead + off})
		PREFETCHT0(Mem{Base: gDST, Disp: prefetchAhead + off})
	}
}

const prefetchAhead = 4096
