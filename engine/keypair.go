package engine

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// dataKeyPairSpecs is botocore's DataKeyPairSpec enum. SM2 is in it and
// stays unsupported here, as it is for KMS keys (see the spec table).
var dataKeyPairSpecs = []string{
	"RSA_2048", "RSA_3072", "RSA_4096",
	"ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
	"ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "SM2",
}

// DataKeyPairSpecs returns AWS's DataKeyPairSpec values, SM2 included.
func DataKeyPairSpecs() []string { return append([]string(nil), dataKeyPairSpecs...) }

// GenerateKeyPair makes a data key pair for GenerateDataKeyPair: the public
// key as DER SubjectPublicKeyInfo (RFC 5280) and the private key as DER
// PKCS#8 (RFC 5958), which ParseKey also reads. The private bytes are the
// caller's to clear once sealed. A nil rand means crypto/rand.Reader.
// Errors: ErrUnknownSpec for a name that is not a DataKeyPairSpec (HMAC_256,
// ML_DSA_44 and SYMMETRIC_DEFAULT are key specs but not data key pair
// specs), ErrUnsupportedSpec for SM2.
func GenerateKeyPair(spec string, rand io.Reader) (publicDER, privatePKCS8 []byte, err error) {
	if !slices.Contains(dataKeyPairSpecs, spec) {
		return nil, nil, fmt.Errorf("%w: %q is not a DataKeyPairSpec", ErrUnknownSpec, spec)
	}
	k, err := GenerateKey(spec, rand)
	if err != nil {
		return nil, nil, err
	}
	defer k.Zero()
	if publicDER, err = k.PublicKeyDER(); err != nil {
		return nil, nil, err
	}
	if privatePKCS8, err = k.MarshalBinary(); err != nil {
		return nil, nil, err
	}
	return publicDER, privatePKCS8, nil
}

// PublicKeyDER returns the public half of an asymmetric key as DER
// SubjectPublicKeyInfo, as GetPublicKey returns it: RFC 5480 with the named
// curve and an uncompressed point for EC keys (secp256k1 too), RFC 8410 for
// Ed25519, RFC 9881 for ML-DSA. It returns ErrAlgorithm for a symmetric or
// HMAC key and ErrKeyZeroed once Zero has run.
func (k *Key) PublicKeyDER() ([]byte, error) {
	if k.zeroed() {
		return nil, ErrKeyZeroed
	}
	if k.priv == nil {
		return nil, fmt.Errorf("%w: %s has no public key", ErrAlgorithm, k.spec.name)
	}
	switch p := k.priv.(type) {
	case *secp256k1Key:
		return marshalSecp256k1SPKI(p.pub)
	case *mldsaKey:
		return marshalMLDSASPKI(p.params, p.Public())
	}
	return x509.MarshalPKIXPublicKey(k.priv.Public())
}

// ParsePublicKey parses a DER SubjectPublicKeyInfo as a public key of the
// named spec, for VerifyPublic and EncryptOAEP: the key type, RSA size and
// curve must be the spec's, and nothing may follow the DER. Errors:
// ErrInvalidPublicKey, ErrUnknownSpec, ErrUnsupportedSpec.
func ParsePublicKey(spec string, der []byte) (crypto.PublicKey, error) {
	s, err := supportedSpec(spec)
	if err != nil {
		return nil, err
	}
	var pub crypto.PublicKey
	switch {
	case s.kind == KindSymmetric || s.kind == KindHMAC:
		return nil, fmt.Errorf("%w: %s has no public key", ErrInvalidPublicKey, s.name)
	case s.kind == KindMLDSA:
		pub, err = parseMLDSASPKI(s, der)
	case s.name == specSecp256k1:
		var p *secp256k1.PublicKey
		if p, err = parseSecp256k1SPKI(der); err == nil {
			pub = Secp256k1PublicKey{p}
		}
	default:
		pub, err = x509.ParsePKIXPublicKey(der)
		if err != nil {
			err = fmt.Errorf("%w: %v", ErrInvalidPublicKey, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := checkPublic(s, pub); err != nil {
		return nil, err
	}
	return pub, nil
}
