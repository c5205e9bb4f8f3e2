package engine

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"slices"
)

// ErrPlaintextTooLong is returned by EncryptOAEP for a plaintext longer
// than MaxOAEPPlaintext.
var ErrPlaintextTooLong = errors.New("engine: plaintext too long for the key and algorithm")

// oaepHash returns the hash of an AWS RSAES_OAEP algorithm; MGF1 uses the
// same one and the label is always empty.
func oaepHash(alg string) (crypto.Hash, func() hash.Hash, bool) {
	switch alg {
	case "RSAES_OAEP_SHA_1":
		return crypto.SHA1, sha1.New, true
	case "RSAES_OAEP_SHA_256":
		return crypto.SHA256, sha256.New, true
	}
	return 0, nil, false
}

// oaepSpec checks that spec is an RSA spec offering alg for encryption.
func oaepSpec(s *Spec, alg string) (crypto.Hash, func() hash.Hash, error) {
	h, newHash, ok := oaepHash(alg)
	u, allowed := s.lookupUsage(UsageEncryptDecrypt)
	if !ok || !allowed || s.kind != KindRSA || !slices.Contains(u.algs.Encryption, alg) {
		return 0, nil, fmt.Errorf("%w: %s cannot encrypt with %q", ErrAlgorithm, s.name, alg)
	}
	return h, newHash, nil
}

// MaxOAEPPlaintext returns the longest plaintext EncryptOAEP takes for a
// key of spec under alg, AWS's limits (RSA_2048: 214 with
// RSAES_OAEP_SHA_1, 190 with RSAES_OAEP_SHA_256; RSA_3072: 342/318;
// RSA_4096: 470/446), which are OAEP's own: k − 2·hLen − 2. It returns 0
// where spec does not offer alg.
func MaxOAEPPlaintext(spec, alg string) int {
	s, ok := LookupSpec(spec)
	if !ok {
		return 0
	}
	h, _, err := oaepSpec(s, alg)
	if err != nil {
		return 0
	}
	return s.bits/8 - 2*h.Size() - 2
}

// EncryptOAEP encrypts plaintext to pub, an RSA public key of the named
// spec, with alg (RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256). Errors:
// ErrUnknownSpec, ErrAlgorithm, ErrInvalidPublicKey, ErrPlaintextTooLong.
func EncryptOAEP(pub crypto.PublicKey, spec, alg string, plaintext []byte) ([]byte, error) {
	s, err := supportedSpec(spec)
	if err != nil {
		return nil, err
	}
	_, newHash, err := oaepSpec(s, alg)
	if err != nil {
		return nil, err
	}
	if err := checkPublic(s, pub); err != nil {
		return nil, err
	}
	if max := s.bits/8 - 2*newHash().Size() - 2; len(plaintext) > max {
		return nil, fmt.Errorf("%w: %s with %s takes up to %d bytes, got %d", ErrPlaintextTooLong, s.name, alg, max, len(plaintext))
	}
	return rsa.EncryptOAEP(newHash(), rand.Reader, pub.(*rsa.PublicKey), plaintext, nil)
}

// DecryptOAEP decrypts an RSAES_OAEP ciphertext made with the key's public
// half. Every failure to decrypt (wrong length, wrong key, bad padding,
// another algorithm's ciphertext) is the one opaque ErrInvalidCiphertext;
// ErrAlgorithm and ErrKeyZeroed are for requests it could never serve.
func (k *Key) DecryptOAEP(alg string, ciphertext []byte) ([]byte, error) {
	if k.zeroed() {
		return nil, ErrKeyZeroed
	}
	h, _, err := oaepSpec(k.spec, alg)
	if err != nil {
		return nil, err
	}
	p, ok := k.priv.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s holds no RSA key", ErrAlgorithm, k.spec.name)
	}
	pt, err := p.Decrypt(nil, ciphertext, &rsa.OAEPOptions{Hash: h, MGFHash: h})
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	return pt, nil
}
