package asm

import (
	"crypto/aes"
	"crypto/cipher"
)

// newStdlib returns crypto/cipher's AES-GCM, the kernel for CPUs without
// VAES: it uses AES-NI and PCLMULQDQ on amd64 and the ARMv8 crypto
// extensions on arm64.
func newStdlib(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
