package engine

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// AES Key Wrap with Padding (RFC 5649), the second half of AWS's
// RSA_AES_KEY_WRAP_SHA_* import wrapping: the importer wraps its key
// material under a fresh AES key with KWP and the AES key under the
// wrapping RSA key with OAEP (CKM_RSA_AES_KEY_WRAP). It is written from the
// standard library's AES block cipher: crypto has no KWP, and OpenSSL's
// id-aes256-wrap-pad is what AWS's documentation uses to make the input.

// ErrUnwrap is every failure of UnwrapKWP: a wrong key, a tampered or
// truncated input, a bad integrity value or padding. It says no more.
var ErrUnwrap = errors.New("engine: key unwrap failed")

// kwpIV is RFC 5649's Alternative Initial Value prefix (§3).
var kwpIV = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// maxKWP bounds what WrapKWP takes: the 32-bit message length indicator.
const maxKWP = 1<<32 - 1

// WrapKWP wraps plaintext (1 to 2³²−1 bytes) under kek, an AES key of 16,
// 24 or 32 bytes, as RFC 5649 §4.1 says.
func WrapKWP(kek, plaintext []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("engine: KWP key: %w", err)
	}
	if len(plaintext) == 0 || uint64(len(plaintext)) > maxKWP {
		return nil, fmt.Errorf("engine: KWP takes 1 to %d bytes, got %d", uint64(maxKWP), len(plaintext))
	}
	padded := (len(plaintext) + 7) &^ 7
	out := make([]byte, 8+padded)
	copy(out, kwpIV[:])
	binary.BigEndian.PutUint32(out[4:8], uint32(len(plaintext)))
	copy(out[8:], plaintext) // the padding is the zeros make left
	if padded == 8 {
		// One block: AIV | P encrypted once (§4.1, second case).
		b.Encrypt(out, out)
		return out, nil
	}
	// RFC 3394 §2.2.1 with the AIV as its initial value, in place.
	n := padded / 8
	var blk [16]byte
	for j := range 6 {
		for i := 1; i <= n; i++ {
			copy(blk[:8], out[:8])
			copy(blk[8:], out[8*i:8*i+8])
			b.Encrypt(blk[:], blk[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(out[:8], binary.BigEndian.Uint64(blk[:8])^t)
			copy(out[8*i:], blk[8:])
		}
	}
	clear(blk[:])
	return out, nil
}

// UnwrapKWP reverses WrapKWP, checking the integrity value, the length
// indicator and the zero padding (RFC 5649 §4.2, §3). Every failure is
// ErrUnwrap. The result is secret and the caller's to clear.
func UnwrapKWP(kek, wrapped []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, ErrUnwrap
	}
	if len(wrapped) < 16 || len(wrapped)%8 != 0 {
		return nil, ErrUnwrap
	}
	buf := make([]byte, len(wrapped))
	copy(buf, wrapped)
	n := len(buf)/8 - 1
	if n == 1 {
		b.Decrypt(buf, buf)
	} else {
		var blk [16]byte
		for j := 5; j >= 0; j-- {
			for i := n; i >= 1; i-- {
				t := uint64(n*j + i)
				binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(buf[:8])^t)
				copy(blk[8:], buf[8*i:8*i+8])
				b.Decrypt(blk[:], blk[:])
				copy(buf[:8], blk[:8])
				copy(buf[8*i:], blk[8:])
			}
		}
		clear(blk[:])
	}
	mli := int(binary.BigEndian.Uint32(buf[4:8]))
	ok := subtle.ConstantTimeCompare(buf[:4], kwpIV[:])
	// 8·(n−1) < MLI ≤ 8·n, and the padding is zeros.
	if ok != 1 || mli <= 8*(n-1) || mli > 8*n {
		clear(buf)
		return nil, ErrUnwrap
	}
	var pad byte
	for _, c := range buf[8+mli:] {
		pad |= c
	}
	if pad != 0 {
		clear(buf)
		return nil, ErrUnwrap
	}
	out := make([]byte, mli)
	copy(out, buf[8:8+mli])
	clear(buf)
	return out, nil
}
