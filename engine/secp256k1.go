package engine

import (
	"bytes"
	"crypto"
	"crypto/subtle"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ECC_SECG_P256K1 is the one curve of the spec table the standard library
// does not have, so x509 neither parses nor marshals its keys: this file
// does, by hand, in the encodings OpenSSL and AWS use (RFC 5915 SEC 1
// ECPrivateKey inside PKCS#8, RFC 5480 SubjectPublicKeyInfo, named curve
// OID 1.3.132.0.10), with decred's secp256k1 for the arithmetic.

const specSecp256k1 = "ECC_SECG_P256K1"

var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}

	// secp256k1AlgID is the AlgorithmIdentifier of both the PKCS#8 and the
	// SPKI encodings: id-ecPublicKey with the named curve.
	secp256k1AlgID = pkix.AlgorithmIdentifier{
		Algorithm:  oidECPublicKey,
		Parameters: asn1.RawValue{FullBytes: mustMarshal(oidSecp256k1)},
	}
)

func mustMarshal(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic("engine: internal error: " + err.Error())
	}
	return b
}

// Secp256k1PublicKey is the public key of an ECC_SECG_P256K1 key, as
// Public and ParsePublicKey return it and VerifyPublic takes it: decred's
// point with the Equal method of the standard library's public keys.
type Secp256k1PublicKey struct{ *secp256k1.PublicKey }

// Equal reports whether o is the same public key.
func (p Secp256k1PublicKey) Equal(o crypto.PublicKey) bool {
	q, ok := o.(Secp256k1PublicKey)
	return ok && p.PublicKey != nil && q.PublicKey != nil && p.IsEqual(q.PublicKey)
}

// secp256k1Key is the private key of an ECC_SECG_P256K1 Key. It prints
// nothing of itself (Key's Format covers it) and Key.Zero clears it.
type secp256k1Key struct {
	k   secp256k1.PrivateKey
	pub *secp256k1.PublicKey
}

func newSecp256k1Key(k *secp256k1.PrivateKey) *secp256k1Key {
	return &secp256k1Key{k: *k, pub: k.PubKey()}
}

// Public returns a Secp256k1PublicKey.
func (p *secp256k1Key) Public() crypto.PublicKey { return Secp256k1PublicKey{p.pub} }

// Sign implements crypto.Signer over a digest; opts are ignored.
func (p *secp256k1Key) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	return p.sign(digest), nil
}

// sign returns the DER signature of digest. decred's signer is RFC 6979
// deterministic and emits the low-S form; verification accepts either S.
func (p *secp256k1Key) sign(digest []byte) []byte {
	return secpecdsa.Sign(&p.k, digest).Serialize()
}

func (p *secp256k1Key) Equal(o crypto.PrivateKey) bool {
	q, ok := o.(*secp256k1Key)
	if !ok {
		return false
	}
	a, b := p.k.Key.Bytes(), q.k.Key.Bytes()
	defer clear(a[:])
	defer clear(b[:])
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func (p *secp256k1Key) zero() { p.k.Zero() }

func generateSecp256k1(s *Spec, rand io.Reader) (*Key, error) {
	k, err := secp256k1.GeneratePrivateKeyFromRand(rand)
	if err != nil {
		return nil, err
	}
	defer k.Zero()
	return &Key{spec: s, priv: newSecp256k1Key(k)}, nil
}

// pkcs8 is PKCS#8 v1 PrivateKeyInfo (RFC 5208), without attributes.
type pkcs8 struct {
	Version    int
	Algo       pkix.AlgorithmIdentifier
	PrivateKey []byte
}

// ecPrivateKey is RFC 5915's ECPrivateKey.
type ecPrivateKey struct {
	Version       int
	PrivateKey    []byte
	NamedCurveOID asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey     asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

// spki is SubjectPublicKeyInfo (RFC 5280).
type spki struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// marshalPKCS8 writes the key as x509 writes a NIST one: the curve in the
// AlgorithmIdentifier only, and the public key inside, as OpenSSL does.
func (p *secp256k1Key) marshalPKCS8() ([]byte, error) {
	d := p.k.Key.Bytes()
	defer clear(d[:])
	pub := p.pub.SerializeUncompressed()
	inner, err := asn1.Marshal(ecPrivateKey{
		Version:    1,
		PrivateKey: d[:],
		PublicKey:  asn1.BitString{Bytes: pub, BitLength: 8 * len(pub)},
	})
	if err != nil {
		return nil, err
	}
	defer clear(inner)
	return asn1.Marshal(pkcs8{Algo: secp256k1AlgID, PrivateKey: inner})
}

// parseSecp256k1 reads what marshalPKCS8 writes, and the same with the
// curve repeated in the ECPrivateKey or the public key left out; it
// refuses any other curve, a scalar outside [1, n-1], a public key that is
// not the scalar's, and trailing bytes.
func parseSecp256k1(s *Spec, b []byte) (*Key, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s: %s", ErrInvalidKey, s.name, what) }
	var outer pkcs8
	if rest, err := asn1.Unmarshal(b, &outer); err != nil || len(rest) != 0 {
		return nil, bad("not a PKCS#8 PrivateKeyInfo")
	}
	if outer.Version != 0 || !outer.Algo.Algorithm.Equal(oidECPublicKey) {
		return nil, bad("not a PKCS#8 EC private key")
	}
	if !bytes.Equal(outer.Algo.Parameters.FullBytes, secp256k1AlgID.Parameters.FullBytes) {
		return nil, bad("not a key on secp256k1")
	}
	var inner ecPrivateKey
	rest, err := asn1.Unmarshal(outer.PrivateKey, &inner)
	defer clear(outer.PrivateKey)
	defer clear(inner.PrivateKey)
	if err != nil || len(rest) != 0 || inner.Version != 1 || len(inner.PrivateKey) != 32 {
		return nil, bad("not an RFC 5915 ECPrivateKey of 32 bytes")
	}
	if inner.NamedCurveOID != nil && !inner.NamedCurveOID.Equal(oidSecp256k1) {
		return nil, bad("ECPrivateKey names another curve")
	}
	var d secp256k1.ModNScalar
	if overflow := d.SetByteSlice(inner.PrivateKey); overflow || d.IsZero() {
		d.Zero()
		return nil, bad("private scalar out of range")
	}
	k := newSecp256k1Key(secp256k1.NewPrivateKey(&d))
	d.Zero()
	if inner.PublicKey.BitLength != 0 {
		pub, err := parseSecp256k1Point(inner.PublicKey)
		if err != nil || !pub.IsEqual(k.pub) {
			k.zero()
			return nil, bad("public key does not match the private key")
		}
	}
	return &Key{spec: s, priv: k}, nil
}

// marshalSecp256k1SPKI encodes pub as RFC 5480 SPKI, uncompressed.
func marshalSecp256k1SPKI(pub *secp256k1.PublicKey) ([]byte, error) {
	pt := pub.SerializeUncompressed()
	return asn1.Marshal(spki{Algorithm: secp256k1AlgID, PublicKey: asn1.BitString{Bytes: pt, BitLength: 8 * len(pt)}})
}

// parseSecp256k1SPKI parses an SPKI of a secp256k1 key: uncompressed or
// compressed point on the curve, nothing after the DER.
func parseSecp256k1SPKI(der []byte) (*secp256k1.PublicKey, error) {
	var v spki
	if rest, err := asn1.Unmarshal(der, &v); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: not one SubjectPublicKeyInfo", ErrInvalidPublicKey)
	}
	if !v.Algorithm.Algorithm.Equal(oidECPublicKey) || !bytes.Equal(v.Algorithm.Parameters.FullBytes, secp256k1AlgID.Parameters.FullBytes) {
		return nil, fmt.Errorf("%w: not a key on secp256k1", ErrInvalidPublicKey)
	}
	return parseSecp256k1Point(v.PublicKey)
}

// parseSecp256k1Point refuses the hybrid encoding (0x06, 0x07), which
// decred accepts but RFC 5480 does not allow.
func parseSecp256k1Point(bs asn1.BitString) (*secp256k1.PublicKey, error) {
	b := bs.Bytes
	if bs.BitLength != 8*len(b) || len(b) == 0 || (b[0] != 4 && b[0] != 2 && b[0] != 3) {
		return nil, fmt.Errorf("%w: not an SEC 1 point", ErrInvalidPublicKey)
	}
	pub, err := secp256k1.ParsePubKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: not a point on secp256k1", ErrInvalidPublicKey)
	}
	return pub, nil
}

// verifySecp256k1 verifies a DER ECDSA signature over digest. The DER is
// parsed strictly here, as crypto/ecdsa parses it (minimal INTEGERs, no
// BER, nothing trailing), rather than by decred's parser, and both
// r and s must lie in [1, n-1]. High-S signatures verify: AWS documents
// no low-S rule and standard ECDSA has none.
func verifySecp256k1(pub *secp256k1.PublicKey, digest, sig []byte) bool {
	var r, s []byte
	var inner cryptobyte.String
	in := cryptobyte.String(sig)
	if !in.ReadASN1(&inner, casn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) || !inner.Empty() {
		return false
	}
	var rs, ss secp256k1.ModNScalar
	if !scalar(&rs, r) || !scalar(&ss, s) {
		return false
	}
	return secpecdsa.NewSignature(&rs, &ss).Verify(digest, pub)
}

// scalar sets x to the big-endian b, which must be in [1, n-1].
func scalar(x *secp256k1.ModNScalar, b []byte) bool {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) > 32 {
		return false
	}
	return !x.SetByteSlice(b) && !x.IsZero()
}
