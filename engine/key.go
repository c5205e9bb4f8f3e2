package engine

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// ErrInvalidKey is returned by ParseKey for material that is not a key of
// the spec it was given as. Its wrapped message never includes key bytes.
var ErrInvalidKey = errors.New("engine: invalid key material")

// ErrKeyZeroed is returned by a Key whose Zero has run.
var ErrKeyZeroed = errors.New("engine: key has been zeroed")

// Key is the material of one KMS key version, of one spec. It holds exactly
// one of: symmetric Material (KindSymmetric), an HMAC secret (KindHMAC), or
// a private key (*rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey, or
// Coffer's own types for secp256k1 and ML-DSA).
//
// Once Zero has run, every accessor of material returns nil and
// MarshalBinary returns ErrKeyZeroed: a released key can never be used as
// an all-zero one. Keys come only from GenerateKey and ParseKey; the zero
// Key has no spec and is not usable. A Key is safe for concurrent use
// except with Zero, which the owner calls when no one else holds the key.
type Key struct {
	spec   *Spec
	secret Material      // KindSymmetric, KindHMAC
	priv   crypto.Signer // KindRSA, KindEC, KindEd25519, KindMLDSA
}

// GenerateKey returns a new key of the named spec: random bytes from rand
// for SYMMETRIC_DEFAULT (32) and HMAC (the digest length), a key pair for
// the asymmetric specs. A nil rand means crypto/rand.Reader. Since Go 1.26
// crypto/rsa and crypto/ecdsa ignore rand and always use the system's
// secure source; Ed25519 and secrets read rand. It returns ErrUnknownSpec
// or ErrUnsupportedSpec (wrapped) for specs it cannot make.
func GenerateKey(spec string, rand io.Reader) (*Key, error) {
	s, err := supportedSpec(spec)
	if err != nil {
		return nil, err
	}
	return s.Generate(rand)
}

func generateSecret(s *Spec, rand io.Reader) (*Key, error) {
	m := make(Material, s.size)
	if _, err := io.ReadFull(rand, m); err != nil {
		m.Zero()
		return nil, err
	}
	return &Key{spec: s, secret: m}, nil
}

func generateRSA(s *Spec, rand io.Reader) (*Key, error) {
	k, err := rsa.GenerateKey(rand, s.bits)
	if err != nil {
		return nil, err
	}
	return &Key{spec: s, priv: k}, nil
}

func generateEC(s *Spec, rand io.Reader) (*Key, error) {
	k, err := ecdsa.GenerateKey(s.curve, rand)
	if err != nil {
		return nil, err
	}
	return &Key{spec: s, priv: k}, nil
}

// generateEd25519 reads the seed itself rather than calling
// ed25519.GenerateKey, which leaves its seed buffer to the collector.
func generateEd25519(s *Spec, rand io.Reader) (*Key, error) {
	var seed [ed25519.SeedSize]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, err
	}
	return &Key{spec: s, priv: ed25519.NewKeyFromSeed(seed[:])}, nil
}

// ParseKey parses the stored form of a key of the named spec, as
// MarshalBinary produces it: the raw bytes of a symmetric or HMAC key, a
// PKCS#8 DER private key otherwise (for ECC_SECG_P256K1 the RFC 5915 EC
// key with the curve OID 1.3.132.0.10, for ML_DSA_* RFC 9881's seed form).
// It copies what it keeps; b stays the caller's to clear.
//
// A symmetric key must be 32 bytes; an HMAC key from its digest length up
// to its hash's block size, the lengths AWS accepts for imported material.
// A private key must be of the spec's type and size: an RSA modulus of
// exactly the spec's bits (two primes), the spec's curve, and nothing after
// the DER. Failures wrap ErrInvalidKey, ErrUnknownSpec or ErrUnsupportedSpec.
func ParseKey(spec string, b []byte) (*Key, error) {
	s, err := supportedSpec(spec)
	if err != nil {
		return nil, err
	}
	switch s.kind {
	case KindSymmetric, KindHMAC:
		lo, hi := s.size, s.size
		if s.kind == KindHMAC {
			lo, hi = s.minSize, s.maxSize
		}
		if len(b) < lo || len(b) > hi {
			if lo == hi {
				return nil, fmt.Errorf("%w: %s needs %d bytes, got %d", ErrInvalidKey, s.name, lo, len(b))
			}
			return nil, fmt.Errorf("%w: %s needs %d to %d bytes, got %d", ErrInvalidKey, s.name, lo, hi, len(b))
		}
		return &Key{spec: s, secret: Material(append([]byte(nil), b...))}, nil
	}

	var outer asn1.RawValue
	if rest, err := asn1.Unmarshal(b, &outer); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: %s: not one DER value", ErrInvalidKey, s.name)
	}
	switch {
	case s.kind == KindMLDSA:
		return parseMLDSA(s, b)
	case s.name == specSecp256k1:
		return parseSecp256k1(s, b)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidKey, s.name, err)
	}
	k := &Key{spec: s}
	switch p := parsed.(type) {
	case *rsa.PrivateKey:
		k.priv = p
		if s.kind != KindRSA {
			break
		}
		if p.N.BitLen() != s.bits || len(p.Primes) != 2 {
			k.Zero()
			return nil, fmt.Errorf("%w: %s: the DER holds a %d-bit, %d-prime RSA key", ErrInvalidKey, s.name, p.N.BitLen(), len(p.Primes))
		}
		return k, nil
	case *ecdsa.PrivateKey:
		k.priv = p
		if s.kind != KindEC {
			break
		}
		if p.Curve != s.curve {
			k.Zero()
			return nil, fmt.Errorf("%w: %s: the DER holds a key on %s", ErrInvalidKey, s.name, p.Curve.Params().Name)
		}
		return k, nil
	case ed25519.PrivateKey:
		k.priv = p
		if s.kind == KindEd25519 {
			return k, nil
		}
	default:
		// An X25519 *ecdh.PrivateKey or whatever x509 learns next: nothing
		// to clear that we can reach through the interface.
		return nil, fmt.Errorf("%w: %s: the DER holds a %T", ErrInvalidKey, s.name, parsed)
	}
	k.Zero()
	return nil, fmt.Errorf("%w: %s: the DER holds a %T", ErrInvalidKey, s.name, parsed)
}

// supportedSpec looks name up and refuses specs Coffer cannot handle.
func supportedSpec(name string) (*Spec, error) {
	s, ok := LookupSpec(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSpec, name)
	}
	if !s.Supported() {
		return nil, unsupported(name)
	}
	return s, nil
}

func unsupported(name string) error { return fmt.Errorf("%w: %s", ErrUnsupportedSpec, name) }

// Spec returns the key's spec.
func (k *Key) Spec() *Spec { return k.spec }

// Kind returns the family of the key's material.
func (k *Key) Kind() Kind { return k.spec.kind }

// Symmetric returns the AES-256 material of a KindSymmetric key, for Seal
// and Open, or nil for any other kind or once Zero has run. It is the key's
// own storage, not a copy: Zero clears it.
func (k *Key) Symmetric() Material {
	if k.spec.kind != KindSymmetric {
		return nil
	}
	return k.secret
}

// HMAC returns the secret of a KindHMAC key, or nil for any other kind or
// once Zero has run. It is the key's own storage, not a copy: Zero clears it.
func (k *Key) HMAC() Material {
	if k.spec.kind != KindHMAC {
		return nil
	}
	return k.secret
}

// Private returns the private key of an asymmetric key (*rsa.PrivateKey,
// *ecdsa.PrivateKey or ed25519.PrivateKey; an opaque crypto.Signer for
// ECC_SECG_P256K1, over digests, and ML_DSA_*, over messages), or nil for a symmetric or HMAC
// key or once Zero has run. It is the key's own, not a copy: Zero clears
// what it can of it, so do not keep it beyond the Key.
func (k *Key) Private() crypto.Signer { return k.priv }

// Public returns the public half of an asymmetric key, or nil for a
// symmetric or HMAC key or once Zero has run: *rsa.PublicKey,
// *ecdsa.PublicKey, ed25519.PublicKey, Secp256k1PublicKey or
// circl's *mldsa44/65/87.PublicKey. PublicKeyDER encodes it.
func (k *Key) Public() crypto.PublicKey {
	if k.priv == nil {
		return nil
	}
	return k.priv.Public()
}

// Equal reports whether k and o are of the same spec and hold the same
// material, comparing secrets in constant time (the private keys' own Equal
// methods compare in constant time too). Zeroed keys equal nothing.
func (k *Key) Equal(o *Key) bool {
	if k.spec != o.spec || k.zeroed() || o.zeroed() {
		return false
	}
	if k.secret != nil {
		return subtle.ConstantTimeCompare(k.secret, o.secret) == 1
	}
	type equaler interface{ Equal(crypto.PrivateKey) bool }
	e, ok := k.priv.(equaler)
	return ok && e.Equal(o.priv)
}

func (k *Key) zeroed() bool { return k.secret == nil && k.priv == nil }

// MarshalBinary returns the key's stored form, which ParseKey reads back:
// a copy of the raw bytes of a symmetric or HMAC key, PKCS#8 DER for a
// private key. The result is secret and the caller's to clear once it is
// sealed or written. It returns ErrKeyZeroed once Zero has run.
func (k *Key) MarshalBinary() ([]byte, error) {
	switch {
	case k.secret != nil:
		return append([]byte(nil), k.secret...), nil
	case k.priv != nil:
		switch p := k.priv.(type) {
		case *secp256k1Key:
			return p.marshalPKCS8()
		case *mldsaKey:
			return p.marshalPKCS8()
		}
		return x509.MarshalPKCS8PrivateKey(k.priv)
	}
	return nil, ErrKeyZeroed
}

// Zero overwrites the key's secret material and drops it, after which the
// key refuses use (see Key).
//
// What it can reach it clears: symmetric and HMAC bytes and an Ed25519
// private key entirely, and for RSA and ECDSA the limbs of the private
// big.Int values (D, the primes, the CRT values). That is the best Go
// allows, and not everything: math/big may have left copies while
// computing, decred's secp256k1 leaves its precomputations' temporaries
// and circl nothing we know of (its expanded key is cleared in place),
// crypto/rsa keeps its own precomputed form of the key in an
// unexported field, crypto/ecdsa caches one per key, and x509 parsing and
// marshalling leave intermediate buffers, none of which can be reached. The
// collector reclaims them; it does not overwrite them.
func (k *Key) Zero() {
	k.secret.Zero()
	k.secret = nil
	switch p := k.priv.(type) {
	case ed25519.PrivateKey:
		clear(p)
	case *rsa.PrivateKey:
		clearInts(p.D, p.Precomputed.Dp, p.Precomputed.Dq, p.Precomputed.Qinv)
		clearInts(p.Primes...)
		for _, v := range p.Precomputed.CRTValues {
			clearInts(v.Exp, v.Coeff, v.R)
		}
	case *ecdsa.PrivateKey:
		clearInts(p.D)
	case *secp256k1Key:
		p.zero()
	case *mldsaKey:
		p.zero()
	}
	k.priv = nil
}

// clearInts overwrites the limbs of each x in place, then leaves x a
// well-formed zero.
func clearInts(xs ...*big.Int) {
	for _, x := range xs {
		if x != nil {
			clear(x.Bits())
			x.SetInt64(0)
		}
	}
}

// Format implements fmt.Formatter so that no verb ever prints key material:
// it prints the spec alone. It has a value receiver so that a Key printed
// by value is covered too.
func (k Key) Format(f fmt.State, _ rune) {
	name := "<nil spec>"
	if k.spec != nil {
		name = k.spec.name
	}
	fmt.Fprintf(f, "engine.Key(%s)", name)
}
