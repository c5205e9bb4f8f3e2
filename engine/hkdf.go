package engine

import (
	"crypto/sha256"
	"hash"
	"sync"
)

// kdf computes HKDF-SHA-256 (RFC 5869) with a 32-byte output, the one
// block T(1), without allocating: the standard construction written out over
// a reusable SHA-256 state, because crypto/hkdf builds two HMAC objects per
// call and a message key is derived on every Encrypt and Decrypt.
type kdf struct {
	h   hash.Hash
	pad [sha256.BlockSize]byte
	prk [sha256.Size]byte
	in  [sha256.Size]byte
}

var kdfPool = sync.Pool{New: func() any { return &kdf{h: sha256.New()} }}

// mac writes HMAC-SHA-256(key, m1||m2||m3) into out. key is at most one
// block (our salts and PRKs are 32 bytes), so it is used as is, zero-padded.
func (k *kdf) mac(out *[sha256.Size]byte, key, m1, m2, m3 []byte) {
	if len(key) > sha256.BlockSize {
		panic("engine: internal error: HMAC key longer than a block")
	}
	for i := range k.pad {
		k.pad[i] = 0x36
	}
	for i, b := range key {
		k.pad[i] ^= b
	}
	k.h.Reset()
	k.h.Write(k.pad[:])
	k.h.Write(m1)
	k.h.Write(m2)
	k.h.Write(m3)
	k.h.Sum(k.in[:0])
	for i := range k.pad {
		k.pad[i] ^= 0x36 ^ 0x5c
	}
	k.h.Reset()
	k.h.Write(k.pad[:])
	k.h.Write(k.in[:])
	k.h.Sum(out[:0])
}

var one = []byte{1}

// derive writes HKDF-SHA-256(ikm, salt, info1||info2) into out.
func (k *kdf) derive(out *[32]byte, ikm, salt, info1, info2 []byte) {
	k.mac(&k.prk, salt, ikm, nil, nil)
	k.mac(out, k.prk[:], info1, info2, one)
	clear(k.prk[:])
	clear(k.in[:])
	clear(k.pad[:])
}
