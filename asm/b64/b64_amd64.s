//go:build !purego

#include "textflag.h"

// The kernels' constants are in kernelTables (tables.go), at these offsets.
#define ALPHABET 0
#define ENC_PERM 64
#define ENC_SHIFT 128
#define DEC_LUT 192
#define DEC_PERM 320

// func encodeBlocks(dst, src *byte, blocks int, t *kernelTables)
//
// Per block: a masked load of 48 bytes; VPERMB lays each 3-byte group out
// as a dword; VPMULTISHIFTQB pulls its four 6-bit fields into bytes;
// VPERMB (which reads the low 6 bits of each index) maps them to
// characters.
TEXT ·encodeBlocks(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	MOVQ t+24(FP), DX
	VMOVDQU64 ALPHABET(DX), Z0
	VMOVDQU64 ENC_PERM(DX), Z1
	VMOVDQU64 ENC_SHIFT(DX), Z2
	MOVQ $0x0000ffffffffffff, AX
	KMOVQ AX, K1

encodeLoop:
	VMOVDQU8.Z     (SI), K1, Z3
	VPERMB         Z3, Z1, Z3
	VPMULTISHIFTQB Z3, Z2, Z3
	VPERMB         Z0, Z3, Z3
	VMOVDQU8       Z3, (DI)
	ADDQ $48, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  encodeLoop
	VZEROUPPER
	RET

// func decodeBlocks(dst, src *byte, blocks int, t *kernelTables) int
//
// Per block: VPERMI2B looks the low 7 bits of each character up in the
// 128-entry table; a character that is not in the alphabet has its top bit
// set there or in itself, and ends the loop before anything is stored.
// VPMADDUBSW and VPMADDWD join each four 6-bit values into 24 bits, and
// VPERMB gathers the 48 bytes for a masked store.
TEXT ·decodeBlocks(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	MOVQ t+24(FP), DX
	VMOVDQU64 DEC_LUT(DX), Z0
	VMOVDQU64 DEC_LUT+64(DX), Z1
	VMOVDQU64 DEC_PERM(DX), Z2
	MOVL $0x01400140, AX // bytes 0x40, 0x01: v0<<6 | v1 per word
	VPBROADCASTD AX, Z3
	MOVL $0x00011000, AX // words 0x1000, 0x0001: w0<<12 | w1 per dword
	VPBROADCASTD AX, Z4
	MOVQ $0x0000ffffffffffff, AX
	KMOVQ AX, K1
	XORQ BX, BX

decodeLoop:
	VMOVDQU8   (SI), Z5
	VMOVDQA64  Z5, Z6
	VPERMI2B   Z1, Z0, Z6
	VPORQ      Z5, Z6, Z7
	VPMOVB2M   Z7, K2
	KORTESTQ   K2, K2
	JNZ        decodeDone
	VPMADDUBSW Z3, Z6, Z6
	VPMADDWD   Z4, Z6, Z6
	VPERMB     Z6, Z2, Z6
	VMOVDQU8   Z6, K1, (DI)
	ADDQ $64, SI
	ADDQ $48, DI
	INCQ BX
	DECQ CX
	JNZ  decodeLoop

decodeDone:
	MOVQ BX, ret+32(FP)
	VZEROUPPER
	RET
