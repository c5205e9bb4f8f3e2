package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"slices"
)

// ErrMACMismatch is the one error of a MAC that does not verify, whatever
// its length or bytes. (AWS: KMSInvalidMacException.)
var ErrMACMismatch = errors.New("engine: MAC does not verify")

// macHashes maps each HMAC key spec to its one MacAlgorithmSpec's hash.
var macHashes = map[string]func() hash.Hash{
	"HMAC_224": sha256.New224,
	"HMAC_256": sha256.New,
	"HMAC_384": sha512.New384,
	"HMAC_512": sha512.New,
}

func (k *Key) macHash(alg string) (func() hash.Hash, error) {
	if k.zeroed() {
		return nil, ErrKeyZeroed
	}
	u, ok := k.spec.lookupUsage(UsageGenerateVerifyMAC)
	if !ok || k.spec.kind != KindHMAC || !slices.Contains(u.algs.MAC, alg) {
		return nil, fmt.Errorf("%w: %s cannot MAC with %q", ErrAlgorithm, k.spec.name, alg)
	}
	return macHashes[k.spec.name], nil
}

// MAC returns the HMAC of message under the key with alg, which must be
// the key spec's one MacAlgorithm (HMAC_256 → HMAC_SHA_256, and so on).
// Errors: ErrAlgorithm, ErrKeyZeroed.
func (k *Key) MAC(alg string, message []byte) ([]byte, error) {
	h, err := k.macHash(alg)
	if err != nil {
		return nil, err
	}
	m := hmac.New(h, k.secret)
	m.Write(message)
	return m.Sum(nil), nil
}

// VerifyMAC checks mac is MAC(alg, message), comparing in constant time. A
// MAC of any other value or length, truncated ones included, is
// ErrMACMismatch; MAC's errors otherwise.
func (k *Key) VerifyMAC(alg string, message, mac []byte) error {
	want, err := k.MAC(alg, message)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, mac) {
		return ErrMACMismatch
	}
	return nil
}
