package engine

import (
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"slices"
)

// ErrUnknownSpec is returned for a name that is not an AWS KMS key spec.
var ErrUnknownSpec = errors.New("engine: unknown key spec")

// ErrUnsupportedSpec is returned for a key spec AWS documents but Coffer
// cannot generate or parse: SM2, by design (see the table).
var ErrUnsupportedSpec = errors.New("engine: key spec not supported")

// Kind is the family of a key's material, which decides the operations that
// can use it. Package kms dispatches on it.
type Kind uint8

const (
	KindSymmetric Kind = iota + 1 // AES-256 Material (Seal, Open)
	KindRSA                       // *rsa.PrivateKey
	KindEC                        // *ecdsa.PrivateKey (NIST curves; ECDH too), or secp256k1's own type
	KindEd25519                   // ed25519.PrivateKey
	KindMLDSA                     // an ML-DSA key of cloudflare/circl (mldsa.go)
	KindHMAC                      // an HMAC secret
	KindSM2                       // known to the table only: no Key ever has it
)

var kindNames = [...]string{
	KindSymmetric: "Symmetric",
	KindRSA:       "RSA",
	KindEC:        "EC",
	KindEd25519:   "Ed25519",
	KindMLDSA:     "MLDSA",
	KindHMAC:      "HMAC",
	KindSM2:       "SM2",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "Kind(invalid)"
}

// Key usages, as the AWS API spells them.
const (
	UsageEncryptDecrypt    = "ENCRYPT_DECRYPT"
	UsageSignVerify        = "SIGN_VERIFY"
	UsageGenerateVerifyMAC = "GENERATE_VERIFY_MAC"
	UsageKeyAgreement      = "KEY_AGREEMENT"
)

// Algorithms are the algorithm lists DescribeKey reports for a key of one
// spec and usage. Lists AWS leaves out for that usage are nil.
type Algorithms struct {
	Encryption   []string // EncryptionAlgorithms
	Signing      []string // SigningAlgorithms
	KeyAgreement []string // KeyAgreementAlgorithms
	MAC          []string // MacAlgorithms
}

func (a Algorithms) clone() Algorithms {
	return Algorithms{
		Encryption:   slices.Clone(a.Encryption),
		Signing:      slices.Clone(a.Signing),
		KeyAgreement: slices.Clone(a.KeyAgreement),
		MAC:          slices.Clone(a.MAC),
	}
}

// Spec is one AWS KMS key spec: its kind, the usages AWS allows for it and
// the algorithms each usage offers, and how Coffer makes its material. Specs
// live in one read-only table; look them up with LookupSpec.
type Spec struct {
	name string
	kind Kind
	// usages are in AWS's order. Only SYMMETRIC_DEFAULT has a default
	// usage (its one); CreateKey requires KeyUsage for every other spec.
	usages []usage

	bits  int            // KindRSA: modulus size in bits
	size  int            // KindSymmetric, KindHMAC: bytes of generated material
	curve elliptic.Curve // KindEC, where the standard library has the curve
	mldsa *mldsaParams   // KindMLDSA
	// minSize and maxSize bound an HMAC secret ParseKey accepts: AWS imports
	// HMAC material from the digest length up to the hash's block size.
	minSize, maxSize int

	// generate makes new material; nil where Coffer cannot (see the table),
	// which makes the spec unsupported.
	generate func(s *Spec, rand io.Reader) (*Key, error)
}

type usage struct {
	name string
	algs Algorithms
}

var (
	rsaEncryption = Algorithms{Encryption: []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}}
	rsaSigning    = Algorithms{Signing: []string{
		"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
		"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
	}}
	ecdhAgreement = Algorithms{KeyAgreement: []string{"ECDH"}}
)

// specs is every key spec in botocore's KeySpec enum, with the usages and
// algorithms of the AWS KMS developer guide ("Key spec reference") as
// /work/shared/reference/aws-kms-api.md §1.2 records them.
var specs = []*Spec{
	{
		name: "SYMMETRIC_DEFAULT", kind: KindSymmetric, size: 32,
		usages:   []usage{{UsageEncryptDecrypt, Algorithms{Encryption: []string{"SYMMETRIC_DEFAULT"}}}},
		generate: generateSecret,
	},

	{name: "RSA_2048", kind: KindRSA, bits: 2048, usages: rsaUsages, generate: generateRSA},
	{name: "RSA_3072", kind: KindRSA, bits: 3072, usages: rsaUsages, generate: generateRSA},
	{name: "RSA_4096", kind: KindRSA, bits: 4096, usages: rsaUsages, generate: generateRSA},

	{name: "ECC_NIST_P256", kind: KindEC, curve: elliptic.P256(), usages: nistUsages("ECDSA_SHA_256"), generate: generateEC},
	{name: "ECC_NIST_P384", kind: KindEC, curve: elliptic.P384(), usages: nistUsages("ECDSA_SHA_384"), generate: generateEC},
	{name: "ECC_NIST_P521", kind: KindEC, curve: elliptic.P521(), usages: nistUsages("ECDSA_SHA_512"), generate: generateEC},
	// secp256k1 is not in the standard library: decred's package
	// (secp256k1.go).
	{name: specSecp256k1, kind: KindEC, usages: signOnly("ECDSA_SHA_256"), generate: generateSecp256k1},

	// ED25519_SHA_512 signs a RAW message, ED25519_PH_SHA_512 a DIGEST
	// (Ed25519ph); the message type is checked by the operation.
	{name: "ECC_NIST_EDWARDS25519", kind: KindEd25519, usages: signOnly("ED25519_SHA_512", "ED25519_PH_SHA_512"), generate: generateEd25519},

	// ML-DSA (FIPS 204) has no public standard-library package yet:
	// cloudflare/circl (mldsa.go).
	{name: "ML_DSA_44", kind: KindMLDSA, mldsa: mldsa44Params, usages: signOnly("ML_DSA_SHAKE_256"), generate: generateMLDSA},
	{name: "ML_DSA_65", kind: KindMLDSA, mldsa: mldsa65Params, usages: signOnly("ML_DSA_SHAKE_256"), generate: generateMLDSA},
	{name: "ML_DSA_87", kind: KindMLDSA, mldsa: mldsa87Params, usages: signOnly("ML_DSA_SHAKE_256"), generate: generateMLDSA},

	// Generated HMAC keys are as long as the digest (HMAC_224 is 224 bits);
	// imported ones may be up to a block.
	{name: "HMAC_224", kind: KindHMAC, size: 28, minSize: 28, maxSize: 64, usages: macOnly("HMAC_SHA_224"), generate: generateSecret},
	{name: "HMAC_256", kind: KindHMAC, size: 32, minSize: 32, maxSize: 64, usages: macOnly("HMAC_SHA_256"), generate: generateSecret},
	{name: "HMAC_384", kind: KindHMAC, size: 48, minSize: 48, maxSize: 128, usages: macOnly("HMAC_SHA_384"), generate: generateSecret},
	{name: "HMAC_512", kind: KindHMAC, size: 64, minSize: 64, maxSize: 128, usages: macOnly("HMAC_SHA_512"), generate: generateSecret},

	// SM2 stays in the table, unsupported, rather than out of it: botocore's
	// KeySpec enum has it, so kms must tell "a spec this server does not
	// offer" (UnsupportedOperationException) from "not a key spec"
	// (ValidationException), and this table is where it asks. AWS offers SM2
	// only in the China Regions, which Coffer does not emulate (its
	// SYMMETRIC_DEFAULT is AES-GCM, not SM4), so it has no generator by
	// design, not for want of a library.
	{name: "SM2", kind: KindSM2, usages: []usage{
		{UsageEncryptDecrypt, Algorithms{Encryption: []string{"SM2PKE"}}},
		{UsageSignVerify, Algorithms{Signing: []string{"SM2DSA"}}},
		{UsageKeyAgreement, Algorithms{KeyAgreement: []string{"ECDH"}}},
	}},
}

var rsaUsages = []usage{{UsageEncryptDecrypt, rsaEncryption}, {UsageSignVerify, rsaSigning}}

func nistUsages(signing string) []usage {
	return []usage{{UsageSignVerify, Algorithms{Signing: []string{signing}}}, {UsageKeyAgreement, ecdhAgreement}}
}

func signOnly(signing ...string) []usage {
	return []usage{{UsageSignVerify, Algorithms{Signing: signing}}}
}

func macOnly(mac string) []usage {
	return []usage{{UsageGenerateVerifyMAC, Algorithms{MAC: []string{mac}}}}
}

// LookupSpec returns the key spec AWS names name (case-sensitive, as the
// API is), or false if AWS has no such spec. A spec that is found may still
// be unsupported: see Supported.
func LookupSpec(name string) (*Spec, bool) {
	for _, s := range specs {
		if s.name == name {
			return s, true
		}
	}
	return nil, false
}

// Specs returns every key spec AWS documents, supported or not, in the
// table's order.
func Specs() []*Spec { return slices.Clone(specs) }

// Name returns the spec's AWS name, such as "RSA_2048".
func (s *Spec) Name() string { return s.name }

// Kind returns the family of the spec's material.
func (s *Spec) Kind() Kind { return s.kind }

// Supported reports whether Coffer can generate and parse keys of this spec
// today. Where it cannot, GenerateKey and ParseKey return ErrUnsupportedSpec.
func (s *Spec) Supported() bool { return s.generate != nil }

// Usages returns the key usages AWS allows for the spec, in AWS's order.
func (s *Spec) Usages() []string {
	out := make([]string, len(s.usages))
	for i, u := range s.usages {
		out[i] = u.name
	}
	return out
}

// Allows reports whether AWS allows a key of this spec to have usage.
func (s *Spec) Allows(usage string) bool {
	_, ok := s.lookupUsage(usage)
	return ok
}

// Algorithms returns the algorithms DescribeKey lists for a key of this
// spec with usage, and false if the spec does not allow usage. The lists
// are the caller's to keep.
func (s *Spec) Algorithms(usage string) (Algorithms, bool) {
	u, ok := s.lookupUsage(usage)
	if !ok {
		return Algorithms{}, false
	}
	return u.algs.clone(), true
}

// Offers reports whether a key of this spec with usage offers alg in the
// list pick selects (func(a *Algorithms) []string { return a.Encryption },
// …): what Algorithms says, without copying the lists, for the check every
// Encrypt and Decrypt makes.
func (s *Spec) Offers(usage string, pick func(*Algorithms) []string, alg string) bool {
	u, ok := s.lookupUsage(usage)
	return ok && slices.Contains(pick(&u.algs), alg)
}

func (s *Spec) lookupUsage(name string) (*usage, bool) {
	for i := range s.usages {
		if s.usages[i].name == name {
			return &s.usages[i], true
		}
	}
	return nil, false
}

// Generate returns a new key of this spec. See GenerateKey.
func (s *Spec) Generate(random io.Reader) (*Key, error) {
	if s.generate == nil {
		return nil, unsupported(s.name)
	}
	if random == nil {
		random = rand.Reader
	}
	return s.generate(s, random)
}
