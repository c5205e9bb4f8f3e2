package engine

import (
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"slices"
)

// DeriveSharedSecret returns the ECDH shared secret of the key and the
// peer's public key, given as DER SubjectPublicKeyInfo as AWS takes it:
// the raw x-coordinate of the shared point (Z of SP 800-56A), which AWS
// returns unhashed. alg is the KeyAgreementAlgorithm, "ECDH", and the key
// must be of a spec offering it (ECC_NIST_P256/P384/P521).
//
// The peer key is refused with ErrInvalidPublicKey if it is not one DER
// SPKI (trailing bytes included), not an EC key, on another curve, or not
// a valid point: crypto/x509 and crypto/ecdh check the point is on the
// curve and not the identity. Other errors: ErrAlgorithm, ErrKeyZeroed.
func (k *Key) DeriveSharedSecret(alg string, peerSPKI []byte) ([]byte, error) {
	if k.zeroed() {
		return nil, ErrKeyZeroed
	}
	u, ok := k.spec.lookupUsage(UsageKeyAgreement)
	priv, isEC := k.priv.(*ecdsa.PrivateKey)
	if !ok || !isEC || !slices.Contains(u.algs.KeyAgreement, alg) {
		return nil, fmt.Errorf("%w: %s cannot agree keys with %q", ErrAlgorithm, k.spec.name, alg)
	}
	parsed, err := x509.ParsePKIXPublicKey(peerSPKI)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPublicKey, err)
	}
	peer, ok := parsed.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: the peer key is a %T, not an EC key", ErrInvalidPublicKey, parsed)
	}
	if peer.Curve != priv.Curve {
		return nil, fmt.Errorf("%w: the peer key is on %s, not %s", ErrInvalidPublicKey, peer.Curve.Params().Name, priv.Curve.Params().Name)
	}
	peerECDH, err := peer.ECDH()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPublicKey, err)
	}
	// The conversion recomputes the public key each call (a scalar
	// multiplication); a hot KEY_AGREEMENT key could cache it.
	ours, err := priv.ECDH()
	if err != nil {
		return nil, err
	}
	z, err := ours.ECDH(peerECDH)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPublicKey, err)
	}
	return z, nil
}
