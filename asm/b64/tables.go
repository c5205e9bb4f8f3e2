package b64

// kernelTables are the kernels' constant vectors, in the order and at the
// offsets b64_amd64.s loads them from.
type kernelTables struct {
	alphabet [64]byte  // 0: 6-bit value → character
	encPerm  [64]byte  // 64: input bytes → two 24-bit groups per qword
	encShift [64]byte  // 128: bit offsets of the four 6-bit fields of each group
	decLUT   [128]byte // 192: character → 6-bit value, 0x80 when not in the alphabet
	decPerm  [64]byte  // 320: the three bytes of each 32-bit group, in order
}

const stdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

var tables = func() (t kernelTables) {
	copy(t.alphabet[:], stdAlphabet)
	// Encoding: qword j takes groups 2j and 2j+1 (input bytes a, b, c at
	// 3g, 3g+1, 3g+2) as little-endian dwords whose low 24 bits are
	// a<<16 | b<<8 | c; VPMULTISHIFTQB then takes bits 18, 12, 6 and 0 of
	// each dword, and VPERMB looks the low 6 bits of each up in alphabet.
	for j := range 8 {
		for h := range 2 {
			g := 2*j + h
			d := t.encPerm[8*j+4*h:]
			d[0], d[1], d[2], d[3] = byte(3*g+2), byte(3*g+1), byte(3*g), byte(3*g)
			s := t.encShift[8*j+4*h:]
			s[0], s[1], s[2], s[3] = byte(32*h+18), byte(32*h+12), byte(32*h+6), byte(32*h)
		}
	}
	// Decoding: VPMADDUBSW and VPMADDWD make each dword of four 6-bit
	// values v0..v3 into v0<<18 | v1<<12 | v2<<6 | v3, whose bytes 2, 1
	// and 0 are the output bytes in order.
	for i := range t.decLUT {
		t.decLUT[i] = 0x80
	}
	for v, c := range []byte(stdAlphabet) {
		t.decLUT[c] = byte(v)
	}
	for g := range 16 {
		t.decPerm[3*g], t.decPerm[3*g+1], t.decPerm[3*g+2] = byte(4*g+2), byte(4*g+1), byte(4*g)
	}
	return t
}()
