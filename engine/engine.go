// Package engine is Coffer's symmetric cryptography: the AEAD chosen for this
// CPU, per-message key derivation, and the ciphertext-blob format that KMS
// Encrypt and GenerateDataKey return.
//
// It also knows every AWS KMS key spec (LookupSpec: kind, allowed usages,
// the algorithms DescribeKey lists) and holds a KMS key's material of any
// kind as a Key, which GenerateKey makes, MarshalBinary stores and ParseKey
// reads back. Package kms dispatches on Key.Kind, not on a blob's bytes.
//
// A CMK version's material never encrypts caller data directly. Every Seal
// draws a 256-bit random salt and derives a one-time AES-256 key from the
// material with HKDF-SHA-256, so the random-nonce bounds of SP 800-38D never
// bind however many messages a key version serves. The blob header (format
// version, key ID, material version, salt, nonce) and the canonical encoding
// of the encryption context are authenticated as additional data.
//
// Every failure to open a blob is the same opaque ErrInvalidCiphertext:
// callers learn nothing about which check failed.
package engine

import (
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/coffer-kms/coffer/asm"
)

// ErrInvalidCiphertext is the one error every malformed, forged or
// mismatched ciphertext blob produces.
var ErrInvalidCiphertext = errors.New("engine: invalid ciphertext")

// Material is secret key material. It has no String method that could print
// it; compare with Equal and release with Zero.
type Material []byte

// Equal reports whether m and o are the same material, in constant time.
func (m Material) Equal(o Material) bool { return subtle.ConstantTimeCompare(m, o) == 1 }

// Zero overwrites the material.
func (m Material) Zero() { clear(m) }

// Format implements fmt.Formatter so that no verb ever prints the bytes.
func (m Material) Format(f fmt.State, _ rune) { io.WriteString(f, "[REDACTED]") }

// NewAEAD returns AES-GCM (12-byte nonce, 16-byte tag) for a 16- or 32-byte
// key using the fastest kernel this CPU runs (package asm).
func NewAEAD(key []byte) (cipher.AEAD, error) { return asm.New(key) }
