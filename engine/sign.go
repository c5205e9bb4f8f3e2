package engine

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"slices"
)

// Message types of Sign and Verify, as the AWS API spells them.
const (
	MessageRaw        = "RAW"         // the message itself; hashed here where the algorithm hashes
	MessageDigest     = "DIGEST"      // a digest of the algorithm's hash length
	MessageExternalMu = "EXTERNAL_MU" // ML-DSA's 64-byte μ, computed by the caller
)

var (
	// ErrSignatureMismatch is the one error of a signature that does not
	// verify, however it is wrong: bad bytes, bad encoding, wrong length,
	// another key's or another message's. (AWS: KMSInvalidSignatureException.)
	ErrSignatureMismatch = errors.New("engine: signature does not verify")

	// ErrAlgorithm is returned for an algorithm that the key's spec does
	// not offer for the operation, or an operation its kind cannot do
	// (Sign with an HMAC key, DecryptOAEP with a P-256 key). The key's
	// usage is the caller's to check: a Key knows its spec, not its usage.
	ErrAlgorithm = errors.New("engine: algorithm not valid for this key spec")

	// ErrMessageType is returned for a message type that is unknown or
	// that the algorithm does not take (AWS: ED25519_SHA_512 only RAW,
	// ED25519_PH_SHA_512 only DIGEST, EXTERNAL_MU only ML-DSA).
	ErrMessageType = errors.New("engine: message type not valid for this algorithm")

	// ErrDigestLength is returned for a DIGEST (or EXTERNAL_MU) message
	// whose length is not the algorithm's hash length.
	ErrDigestLength = errors.New("engine: digest length does not match the algorithm")

	// ErrUnsupported is returned for something AWS offers that Coffer
	// cannot do yet: ML-DSA with MessageType EXTERNAL_MU (see mldsa.go).
	ErrUnsupported = errors.New("engine: not supported")

	// ErrInvalidPublicKey is returned for a public key that is malformed,
	// not a valid point, or not of the spec or curve the operation needs.
	ErrInvalidPublicKey = errors.New("engine: invalid public key")
)

type sigScheme uint8

const (
	schemePSS sigScheme = iota + 1
	schemePKCS1
	schemeECDSA
	schemeEd25519   // pure Ed25519 over the message
	schemeEd25519ph // Ed25519ph over a SHA-512 digest
	schemeMLDSA
)

type sigAlg struct {
	scheme sigScheme
	hash   crypto.Hash // 0 for pure Ed25519 and ML-DSA
}

// sigAlgs is AWS's SigningAlgorithmSpec enum, less SM2DSA. Which spec
// offers which is the spec table's business.
var sigAlgs = map[string]sigAlg{
	"RSASSA_PSS_SHA_256":        {schemePSS, crypto.SHA256},
	"RSASSA_PSS_SHA_384":        {schemePSS, crypto.SHA384},
	"RSASSA_PSS_SHA_512":        {schemePSS, crypto.SHA512},
	"RSASSA_PKCS1_V1_5_SHA_256": {schemePKCS1, crypto.SHA256},
	"RSASSA_PKCS1_V1_5_SHA_384": {schemePKCS1, crypto.SHA384},
	"RSASSA_PKCS1_V1_5_SHA_512": {schemePKCS1, crypto.SHA512},
	"ECDSA_SHA_256":             {schemeECDSA, crypto.SHA256},
	"ECDSA_SHA_384":             {schemeECDSA, crypto.SHA384},
	"ECDSA_SHA_512":             {schemeECDSA, crypto.SHA512},
	"ED25519_SHA_512":           {schemeEd25519, 0},
	"ED25519_PH_SHA_512":        {schemeEd25519ph, crypto.SHA512},
	"ML_DSA_SHAKE_256":          {schemeMLDSA, 0},
}

// pssOptions: AWS's RSASSA_PSS algorithms use a salt as long as the hash
// and MGF1 with the same hash; Verify accepts no other salt length.
var pssOptions = rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}

// prepare checks that spec offers alg and alg takes messageType, and
// returns what the primitive signs: the digest for the hashing schemes
// (computed for RAW, checked for DIGEST), the message itself otherwise.
func prepare(s *Spec, alg, messageType string, message []byte) (sigAlg, []byte, error) {
	a, ok := sigAlgs[alg]
	u, allowed := s.lookupUsage(UsageSignVerify)
	if !ok || !allowed || !slices.Contains(u.algs.Signing, alg) {
		return a, nil, fmt.Errorf("%w: %s cannot sign with %q", ErrAlgorithm, s.name, alg)
	}
	switch a.scheme {
	case schemeEd25519:
		if messageType != MessageRaw {
			return a, nil, fmt.Errorf("%w: %s takes RAW, not %q", ErrMessageType, alg, messageType)
		}
		return a, message, nil
	case schemeEd25519ph:
		if messageType != MessageDigest {
			return a, nil, fmt.Errorf("%w: %s takes DIGEST, not %q", ErrMessageType, alg, messageType)
		}
	case schemeMLDSA:
		switch messageType {
		case MessageRaw:
			return a, message, nil
		case MessageExternalMu:
			if len(message) != mldsaMuSize {
				return a, nil, fmt.Errorf("%w: EXTERNAL_MU is %d bytes, got %d", ErrDigestLength, mldsaMuSize, len(message))
			}
			return a, nil, fmt.Errorf("%w: ML-DSA with EXTERNAL_MU", ErrUnsupported)
		}
		return a, nil, fmt.Errorf("%w: %s takes RAW or EXTERNAL_MU, not %q", ErrMessageType, alg, messageType)
	default:
		if messageType == MessageRaw {
			return a, digest(a.hash, message), nil
		}
		if messageType != MessageDigest {
			return a, nil, fmt.Errorf("%w: %s takes RAW or DIGEST, not %q", ErrMessageType, alg, messageType)
		}
	}
	if len(message) != a.hash.Size() {
		return a, nil, fmt.Errorf("%w: %s needs a %d-byte digest, got %d", ErrDigestLength, alg, a.hash.Size(), len(message))
	}
	return a, message, nil
}

// digest hashes m with one of the three hashes AWS signs with, without the
// allocations of a hash.Hash.
func digest(h crypto.Hash, m []byte) []byte {
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(m)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(m)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(m)
		return d[:]
	}
	panic("engine: internal error: no digest for " + h.String())
}

// Sign signs message with the key under the AWS signing algorithm alg
// (SigningAlgorithmSpec) and message type (MessageRaw, MessageDigest,
// MessageExternalMu), and returns the signature as AWS does: ASN.1 DER for
// ECDSA, the raw signature otherwise. RSA-PSS, ECDSA and ML-DSA signatures
// are randomized (ECDSA on secp256k1 is deterministic, RFC 6979).
//
// Errors: ErrAlgorithm (alg not offered by the key's spec, or a key that
// does not sign), ErrMessageType, ErrDigestLength, ErrUnsupported
// (EXTERNAL_MU), ErrKeyZeroed. The message's length limit (4096 bytes) is
// the caller's to check. Errors never include the message or key bytes.
func (k *Key) Sign(alg, messageType string, message []byte) ([]byte, error) {
	if k.zeroed() {
		return nil, ErrKeyZeroed
	}
	a, m, err := prepare(k.spec, alg, messageType, message)
	if err != nil {
		return nil, err
	}
	switch p := k.priv.(type) {
	case *rsa.PrivateKey:
		if a.scheme == schemePSS {
			return rsa.SignPSS(rand.Reader, p, a.hash, m, &pssOptions)
		}
		return rsa.SignPKCS1v15(nil, p, a.hash, m)
	case *ecdsa.PrivateKey:
		return ecdsa.SignASN1(rand.Reader, p, m)
	case *secp256k1Key:
		return p.sign(m), nil
	case ed25519.PrivateKey:
		if a.scheme == schemeEd25519ph {
			return p.Sign(nil, m, &ed25519.Options{Hash: crypto.SHA512})
		}
		return ed25519.Sign(p, m), nil
	case *mldsaKey:
		return p.sign(m)
	}
	panic("engine: internal error: " + k.spec.name + " offers a signing algorithm but holds no signing key")
}

// Verify checks signature over message as Sign made it, with the key's
// public half. It returns nil for a good signature, ErrSignatureMismatch
// for any signature that does not verify (malformed bytes included), and
// Sign's errors for a request Sign would refuse.
func (k *Key) Verify(alg, messageType string, message, signature []byte) error {
	if k.zeroed() {
		return ErrKeyZeroed
	}
	if k.priv == nil {
		return fmt.Errorf("%w: %s cannot verify with %q", ErrAlgorithm, k.spec.name, alg)
	}
	return verify(k.spec, k.priv.Public(), alg, messageType, message, signature)
}

// VerifyPublic is Verify with only a public key of the named spec, as
// Public or ParsePublicKey returns it: *rsa.PublicKey, *ecdsa.PublicKey,
// ed25519.PublicKey, Secp256k1PublicKey or an ML-DSA public key of
// cloudflare/circl. A public key of another type, size or curve than the
// spec's is ErrInvalidPublicKey.
func VerifyPublic(pub crypto.PublicKey, spec, alg, messageType string, message, signature []byte) error {
	s, err := supportedSpec(spec)
	if err != nil {
		return err
	}
	if err := checkPublic(s, pub); err != nil {
		return err
	}
	return verify(s, pub, alg, messageType, message, signature)
}

func verify(s *Spec, pub crypto.PublicKey, alg, messageType string, message, signature []byte) error {
	a, m, err := prepare(s, alg, messageType, message)
	if err != nil {
		return err
	}
	ok := false
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if a.scheme == schemePSS {
			ok = rsa.VerifyPSS(p, a.hash, m, signature, &pssOptions) == nil
		} else {
			ok = rsa.VerifyPKCS1v15(p, a.hash, m, signature) == nil
		}
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(p, m, signature)
	case Secp256k1PublicKey:
		ok = verifySecp256k1(p.PublicKey, m, signature)
	case ed25519.PublicKey:
		if a.scheme == schemeEd25519ph {
			ok = ed25519.VerifyWithOptions(p, m, signature, &ed25519.Options{Hash: crypto.SHA512}) == nil
		} else {
			ok = ed25519.Verify(p, m, signature)
		}
	default:
		if s.mldsa == nil {
			panic("engine: internal error: a checked public key of an unknown type")
		}
		ok = s.mldsa.verify(pub, m, signature)
	}
	if !ok {
		return ErrSignatureMismatch
	}
	return nil
}

// checkPublic checks pub is a public key of spec s: its type, RSA modulus
// size or curve.
func checkPublic(s *Spec, pub crypto.PublicKey) error {
	ok := false
	switch p := pub.(type) {
	case *rsa.PublicKey:
		ok = s.kind == KindRSA && p.N != nil && p.N.BitLen() == s.bits
	case *ecdsa.PublicKey:
		ok = s.kind == KindEC && s.curve != nil && p.Curve == s.curve
	case Secp256k1PublicKey:
		ok = s.name == specSecp256k1 && p.PublicKey != nil
	case ed25519.PublicKey:
		ok = s.kind == KindEd25519 && len(p) == ed25519.PublicKeySize
	default:
		ok = s.mldsa != nil && s.mldsa.isPublic(pub)
	}
	if !ok {
		return fmt.Errorf("%w: a %T is not a public key of %s", ErrInvalidPublicKey, pub, s.name)
	}
	return nil
}
