package engine

import (
	"crypto"
	"crypto/subtle"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
)

// ML-DSA (FIPS 204) comes from cloudflare/circl: the standard library has
// no public ML-DSA in Go 1.26.
//
// MessageType EXTERNAL_MU is not supported: signing a precomputed μ needs
// ML-DSA.Sign_internal entered after μ = H(tr ‖ M′), and circl v1.6.5 keeps
// that step behind an internal package (its SignTo always hashes tr and the
// message itself). Sign and Verify answer ErrUnsupported for it, after
// checking μ's length, until a library exposes the entry point.
//
// Stored form: PKCS#8 with the 32-byte seed, the "seed" CHOICE of RFC 9881
// (OIDs id-ml-dsa-44/65/87, 2.16.840.1.101.3.4.3.17/18/19, no parameters),
// from which the whole key is derived on parsing. Public keys are SPKI with
// the same AlgorithmIdentifier and the raw FIPS 204 public key.

const (
	mldsaSeedSize = 32
	mldsaMuSize   = 64
)

// mldsaParams is one ML-DSA parameter set, as closures over its circl
// package, whose key types differ per set.
type mldsaParams struct {
	oid     asn1.ObjectIdentifier
	pubSize int
	sigSize int
	// fromSeed derives the private key; Public gives its public key.
	fromSeed func(seed *[mldsaSeedSize]byte) crypto.Signer
	// signTo signs msg (pure ML-DSA, empty context, hedged) into sig.
	signTo   func(sk crypto.Signer, msg, sig []byte) error
	verify   func(pub crypto.PublicKey, msg, sig []byte) bool
	isPublic func(pub crypto.PublicKey) bool
	parsePub func(b []byte) (crypto.PublicKey, error)
	pubBytes func(pub crypto.PublicKey) []byte
	zero     func(sk crypto.Signer)
}

var mldsa44Params = &mldsaParams{
	oid: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 17}, pubSize: mldsa44.PublicKeySize, sigSize: mldsa44.SignatureSize,
	fromSeed: func(seed *[mldsaSeedSize]byte) crypto.Signer { _, sk := mldsa44.NewKeyFromSeed(seed); return sk },
	signTo: func(sk crypto.Signer, msg, sig []byte) error {
		return mldsa44.SignTo(sk.(*mldsa44.PrivateKey), msg, nil, true, sig)
	},
	verify: func(pub crypto.PublicKey, msg, sig []byte) bool {
		p, ok := pub.(*mldsa44.PublicKey)
		return ok && mldsa44.Verify(p, msg, nil, sig)
	},
	isPublic: func(pub crypto.PublicKey) bool { p, ok := pub.(*mldsa44.PublicKey); return ok && p != nil },
	parsePub: func(b []byte) (crypto.PublicKey, error) {
		p := new(mldsa44.PublicKey)
		return p, p.UnmarshalBinary(b)
	},
	pubBytes: func(pub crypto.PublicKey) []byte { return pub.(*mldsa44.PublicKey).Bytes() },
	zero:     func(sk crypto.Signer) { *sk.(*mldsa44.PrivateKey) = mldsa44.PrivateKey{} },
}

var mldsa65Params = &mldsaParams{
	oid: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}, pubSize: mldsa65.PublicKeySize, sigSize: mldsa65.SignatureSize,
	fromSeed: func(seed *[mldsaSeedSize]byte) crypto.Signer { _, sk := mldsa65.NewKeyFromSeed(seed); return sk },
	signTo: func(sk crypto.Signer, msg, sig []byte) error {
		return mldsa65.SignTo(sk.(*mldsa65.PrivateKey), msg, nil, true, sig)
	},
	verify: func(pub crypto.PublicKey, msg, sig []byte) bool {
		p, ok := pub.(*mldsa65.PublicKey)
		return ok && mldsa65.Verify(p, msg, nil, sig)
	},
	isPublic: func(pub crypto.PublicKey) bool { p, ok := pub.(*mldsa65.PublicKey); return ok && p != nil },
	parsePub: func(b []byte) (crypto.PublicKey, error) {
		p := new(mldsa65.PublicKey)
		return p, p.UnmarshalBinary(b)
	},
	pubBytes: func(pub crypto.PublicKey) []byte { return pub.(*mldsa65.PublicKey).Bytes() },
	zero:     func(sk crypto.Signer) { *sk.(*mldsa65.PrivateKey) = mldsa65.PrivateKey{} },
}

var mldsa87Params = &mldsaParams{
	oid: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 19}, pubSize: mldsa87.PublicKeySize, sigSize: mldsa87.SignatureSize,
	fromSeed: func(seed *[mldsaSeedSize]byte) crypto.Signer { _, sk := mldsa87.NewKeyFromSeed(seed); return sk },
	signTo: func(sk crypto.Signer, msg, sig []byte) error {
		return mldsa87.SignTo(sk.(*mldsa87.PrivateKey), msg, nil, true, sig)
	},
	verify: func(pub crypto.PublicKey, msg, sig []byte) bool {
		p, ok := pub.(*mldsa87.PublicKey)
		return ok && mldsa87.Verify(p, msg, nil, sig)
	},
	isPublic: func(pub crypto.PublicKey) bool { p, ok := pub.(*mldsa87.PublicKey); return ok && p != nil },
	parsePub: func(b []byte) (crypto.PublicKey, error) {
		p := new(mldsa87.PublicKey)
		return p, p.UnmarshalBinary(b)
	},
	pubBytes: func(pub crypto.PublicKey) []byte { return pub.(*mldsa87.PublicKey).Bytes() },
	zero:     func(sk crypto.Signer) { *sk.(*mldsa87.PrivateKey) = mldsa87.PrivateKey{} },
}

// mldsaKey is the private key of an ML_DSA_* Key: the seed it is stored
// as, and circl's expanded key for signing. Key.Zero clears both.
type mldsaKey struct {
	params *mldsaParams
	seed   [mldsaSeedSize]byte
	sk     crypto.Signer
}

func newMLDSAKey(p *mldsaParams, seed *[mldsaSeedSize]byte) *mldsaKey {
	return &mldsaKey{params: p, seed: *seed, sk: p.fromSeed(seed)}
}

// Public returns circl's *mldsa44.PublicKey, *mldsa65.PublicKey or
// *mldsa87.PublicKey.
func (k *mldsaKey) Public() crypto.PublicKey { return k.sk.Public() }

// Sign implements crypto.Signer: pure ML-DSA over msg; opts must not name
// a hash.
func (k *mldsaKey) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != 0 {
		return nil, fmt.Errorf("%w: ML-DSA signs messages, not digests", ErrUnsupported)
	}
	return k.sign(msg)
}

func (k *mldsaKey) sign(msg []byte) ([]byte, error) {
	sig := make([]byte, k.params.sigSize)
	if err := k.params.signTo(k.sk, msg, sig); err != nil {
		return nil, err
	}
	return sig, nil
}

func (k *mldsaKey) Equal(o crypto.PrivateKey) bool {
	q, ok := o.(*mldsaKey)
	return ok && q.params == k.params && subtle.ConstantTimeCompare(k.seed[:], q.seed[:]) == 1
}

func (k *mldsaKey) zero() {
	clear(k.seed[:])
	k.params.zero(k.sk)
}

func generateMLDSA(s *Spec, rand io.Reader) (*Key, error) {
	var seed [mldsaSeedSize]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, err
	}
	return &Key{spec: s, priv: newMLDSAKey(s.mldsa, &seed)}, nil
}

// seedTag is the DER header of RFC 9881's seed [0] IMPLICIT OCTET STRING.
var seedTag = []byte{0x80, mldsaSeedSize}

func (k *mldsaKey) marshalPKCS8() ([]byte, error) {
	inner := append(append(make([]byte, 0, len(seedTag)+mldsaSeedSize), seedTag...), k.seed[:]...)
	defer clear(inner)
	return asn1.Marshal(pkcs8{Algo: pkix.AlgorithmIdentifier{Algorithm: k.params.oid}, PrivateKey: inner})
}

// parseMLDSA reads the seed form only; the expanded-key and "both" forms
// of RFC 9881 are refused, as Coffer never writes them.
func parseMLDSA(s *Spec, b []byte) (*Key, error) {
	var outer pkcs8
	if rest, err := asn1.Unmarshal(b, &outer); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: %s: not a PKCS#8 PrivateKeyInfo", ErrInvalidKey, s.name)
	}
	defer clear(outer.PrivateKey)
	if outer.Version != 0 || !outer.Algo.Algorithm.Equal(s.mldsa.oid) || len(outer.Algo.Parameters.FullBytes) != 0 {
		return nil, fmt.Errorf("%w: %s: not a PKCS#8 key of this ML-DSA parameter set", ErrInvalidKey, s.name)
	}
	p := outer.PrivateKey
	if len(p) != len(seedTag)+mldsaSeedSize || p[0] != seedTag[0] || p[1] != seedTag[1] {
		return nil, fmt.Errorf("%w: %s: not the RFC 9881 seed form", ErrInvalidKey, s.name)
	}
	var seed [mldsaSeedSize]byte
	defer clear(seed[:])
	copy(seed[:], p[len(seedTag):])
	return &Key{spec: s, priv: newMLDSAKey(s.mldsa, &seed)}, nil
}

func marshalMLDSASPKI(p *mldsaParams, pub crypto.PublicKey) ([]byte, error) {
	b := p.pubBytes(pub)
	return asn1.Marshal(spki{Algorithm: pkix.AlgorithmIdentifier{Algorithm: p.oid}, PublicKey: asn1.BitString{Bytes: b, BitLength: 8 * len(b)}})
}

func parseMLDSASPKI(s *Spec, der []byte) (crypto.PublicKey, error) {
	var v spki
	if rest, err := asn1.Unmarshal(der, &v); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: not one SubjectPublicKeyInfo", ErrInvalidPublicKey)
	}
	if !v.Algorithm.Algorithm.Equal(s.mldsa.oid) || len(v.Algorithm.Parameters.FullBytes) != 0 {
		return nil, fmt.Errorf("%w: not an %s public key", ErrInvalidPublicKey, s.name)
	}
	if v.PublicKey.BitLength != 8*s.mldsa.pubSize || len(v.PublicKey.Bytes) != s.mldsa.pubSize {
		return nil, fmt.Errorf("%w: an %s public key is %d bytes", ErrInvalidPublicKey, s.name, s.mldsa.pubSize)
	}
	pub, err := s.mldsa.parsePub(v.PublicKey.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidPublicKey, s.name, err)
	}
	return pub, nil
}
