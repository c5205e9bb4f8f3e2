package kms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/policy"
)

// What the asymmetric and HMAC operations share: the usages and algorithms
// of AWS's enums, the choice of a key's spec and usage at CreateKey, fresh
// material of any spec, and the translation of engine errors into AWS's
// exceptions.

// Key usages other than ENCRYPT_DECRYPT, as the AWS API spells them.
const (
	UsageSignVerify        = engine.UsageSignVerify
	UsageGenerateVerifyMAC = engine.UsageGenerateVerifyMAC
	UsageKeyAgreement      = engine.UsageKeyAgreement
)

// AWS's enums of the asymmetric and HMAC operations (botocore:
// SigningAlgorithmSpec, MessageType, MacAlgorithmSpec,
// KeyAgreementAlgorithmSpec, DataKeyPairSpec).
var (
	signingAlgorithms = []string{"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
		"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
		"ECDSA_SHA_256", "ECDSA_SHA_384", "ECDSA_SHA_512", "SM2DSA", "ML_DSA_SHAKE_256",
		"ED25519_SHA_512", "ED25519_PH_SHA_512"}
	messageTypes           = []string{engine.MessageRaw, engine.MessageDigest, engine.MessageExternalMu}
	macAlgorithms          = []string{"HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512"}
	keyAgreementAlgorithms = []string{"ECDH"}
	dataKeyPairSpecs       = engine.DataKeyPairSpecs()
)

// Limits of the asymmetric and HMAC operations (botocore: Sign/Verify/
// GenerateMac/VerifyMac Message 1..4096, Signature and Mac 1..6144,
// DeriveSharedSecret PublicKey 1..8192).
const (
	maxMessage   = 4096
	maxSignature = 6144
	maxMac       = 6144
	maxPublicKey = 8192
)

// keySpecUsage returns the usage of a new key of spec given the request's
// KeyUsage, as AWS decides it: KeyUsage is optional only for a symmetric
// encryption key ("This parameter is optional when you are creating a
// symmetric encryption KMS key; otherwise, it is required", botocore
// CreateKeyRequest.KeyUsage), and must be one the spec allows (reference
// §1.2). SM2 is offered only in the China Regions ("The SM2 key spec is
// only available in China Regions"), which Coffer is not: CreateKey's
// UnsupportedOperationException.
func keySpecUsage(spec, usage string) (string, error) {
	s, ok := engine.LookupSpec(spec)
	if !ok {
		return "", newError(ErrValidation, "1 validation error detected: Value '%s' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [%s]", truncate(spec), joinEnum(keySpecs))
	}
	if !s.Supported() {
		return "", newError(ErrUnsupportedOperation, "KeySpec %s is not supported in this Region.", spec)
	}
	if usage == "" {
		if spec != SpecSymmetric {
			return "", newError(ErrValidation, "You must specify a KeyUsage value for a KMS key with KeySpec %s.", spec)
		}
		usage = UsageEncryptDecrypt
	}
	if !s.Allows(usage) {
		return "", newError(ErrValidation, "KeyUsage %s is not compatible with KeySpec %s", usage, spec)
	}
	return usage, nil
}

func joinEnum(set []string) string {
	out := ""
	for i, v := range set {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}

// newMaterial generates the stored form of fresh material of spec: the raw
// bytes of a symmetric or HMAC key, PKCS#8 DER of a private key. It is
// secret and the caller's to clear once wrapped.
func newMaterial(spec string, random io.Reader) ([]byte, error) {
	k, err := engine.GenerateKey(spec, random)
	if err != nil {
		return nil, newError(ErrInternal, "Key generation failed.")
	}
	defer k.Zero()
	b, err := k.MarshalBinary()
	if err != nil {
		return nil, internal(err)
	}
	return b, nil
}

// specOf returns r's spec from the engine's table; every stored key has
// one (CreateKey refuses the others).
func specOf(r *keyRecord) *engine.Spec {
	s, _ := engine.LookupSpec(r.Spec)
	return s
}

// algorithmsOf is the algorithm lists of r's spec and usage.
func algorithmsOf(r *keyRecord) engine.Algorithms {
	if s := specOf(r); s != nil {
		a, _ := s.Algorithms(r.Usage)
		return a
	}
	return engine.Algorithms{}
}

// incompatibleAlgorithm is AWS's InvalidKeyUsageException for an
// algorithm the key's spec does not offer, worded as AWS words it ("Algorithm
// SYMMETRIC_DEFAULT is incompatible with key spec RSA_4096.").
func incompatibleAlgorithm(alg string, r *keyRecord) error {
	return newError(ErrInvalidKeyUsage, "Algorithm %s is incompatible with key spec %s.", alg, r.Spec)
}

// usableKey resolves keyID for the caller's operation k, authorizes it with
// the request context adjust completes, and checks the key's state and
// usage: the common front of Sign, Verify, GetPublicKey, GenerateMac,
// VerifyMac and DeriveSharedSecret.
func (s *Service) usableKey(ctx context.Context, c *Caller, k *KeyMember, keyID string, adjust func(*policy.Context)) (*keyRecord, error) {
	r, err := s.keyFor(ctx, c, k, keyID, func(r *keyRecord) *policy.Context {
		pc := s.requestContext(ctx, c, r)
		if adjust != nil {
			adjust(pc)
		}
		return pc
	})
	if err != nil {
		return nil, err
	}
	if err := k.checkState(r); err != nil {
		return nil, err
	}
	if err := k.checkUsage(r); err != nil {
		return nil, err
	}
	return r, nil
}

// asymmetric reports whether keys of kind k have a private key.
func (k keyKind) asymmetric() bool { return k == kindRSA || k == kindEC || k == kindMLDSA }

// withKey runs fn with the current material of r, released after.
func (s *Service) withKey(ctx context.Context, r *keyRecord, fn func(*engine.Key) error) error {
	if r.kind() == kindHSM || r.kind() == kindUnsupported {
		return internal(fmt.Errorf("kms: %s has no material in the root", r.arn()))
	}
	key, e, err := s.material(ctx, r, len(r.Versions)-1)
	if err != nil {
		return err
	}
	defer s.cache.materials.release(e)
	return fn(key)
}

// extra sets condition key name (lower case, as policy.Context.Extra
// keeps them) to value.
func extra(pc *policy.Context, name, value string) {
	if pc.Extra == nil {
		pc.Extra = map[string][]string{}
	}
	pc.Extra[name] = []string{value}
}

// engineError translates an error of the engine's asymmetric or HMAC
// primitives into AWS's exception for r's request. Algorithm and message
// type errors are the caller's (InvalidKeyUsageException and
// ValidationException); a failure of the primitive itself is internal.
func engineError(err error, r *keyRecord, alg string) error {
	switch {
	case errors.Is(err, engine.ErrSignatureMismatch):
		return newError(ErrInvalidSignature, "")
	case errors.Is(err, engine.ErrMACMismatch):
		return newError(ErrInvalidMac, "")
	case errors.Is(err, engine.ErrInvalidCiphertext):
		return invalidCiphertext
	case errors.Is(err, engine.ErrAlgorithm):
		return incompatibleAlgorithm(alg, r)
	case errors.Is(err, engine.ErrDigestLength):
		return newError(ErrValidation, "Digest is invalid length for algorithm %s.", alg)
	case errors.Is(err, engine.ErrMessageType):
		return newError(ErrValidation, "The signing algorithm %s is not compatible with the MessageType in the request.", alg)
	case errors.Is(err, engine.ErrUnsupported):
		return newError(ErrUnsupportedOperation, "MessageType EXTERNAL_MU is not supported by this server.")
	case errors.Is(err, engine.ErrInvalidPublicKey):
		return newError(ErrValidation, "The public key in the request is not a valid public key for %s.", r.Spec)
	case errors.Is(err, engine.ErrPlaintextTooLong):
		return newError(ErrValidation, "Plaintext is too long for algorithm %s with key spec %s.", alg, r.Spec)
	}
	return internal(err)
}

// checkAlgorithm refuses an algorithm the key does not offer in list.
func checkAlgorithm(r *keyRecord, alg string, list []string) error {
	if !slices.Contains(list, alg) {
		return incompatibleAlgorithm(alg, r)
	}
	return nil
}

// checkEncryption checks that r may encrypt or decrypt for member k with
// alg ("" meaning SYMMETRIC_DEFAULT): an ENCRYPT_DECRYPT key whose spec
// offers alg. A symmetric request to an RSA key, or an RSAES_OAEP one to a
// symmetric key, is AWS's InvalidKeyUsageException ("Algorithm
// SYMMETRIC_DEFAULT is incompatible with key spec RSA_4096.").
func checkEncryption(r *keyRecord, k *KeyMember, alg string) error {
	if err := k.checkUsage(r); err != nil {
		return err
	}
	if alg == "" {
		alg = AlgSymmetric
	}
	// algorithmsOf would copy every list of the spec on each call.
	if s := specOf(r); s == nil || !s.Offers(r.Usage, encryptionList, alg) {
		return incompatibleAlgorithm(alg, r)
	}
	return nil
}

func encryptionList(a *engine.Algorithms) []string { return a.Encryption }

// checkAsymmetricContext refuses an encryption context with an RSA key:
// "An encryption context is supported only on operations with symmetric
// encryption KMS keys" (botocore EncryptRequest.EncryptionContext); the
// request member is invalid for the key, a ValidationException.
func checkAsymmetricContext(r *keyRecord, ec map[string]string) error {
	if len(ec) != 0 && r.kind() == kindRSA {
		return newError(ErrValidation, "EncryptionContext is not supported with asymmetric KMS keys; %s has key spec %s.", r.arn(), r.Spec)
	}
	return nil
}

// sealFor encrypts plaintext under r with alg and returns the ciphertext
// and the algorithm used: RSAES_OAEP with the public half of an RSA key
// (AWS's raw OAEP ciphertext, which anyone with GetPublicKey's key can
// make too), the symmetric blob otherwise.
func (s *Service) sealFor(ctx context.Context, r *keyRecord, alg string, plaintext []byte, ec map[string]string) ([]byte, string, error) {
	if r.kind() != kindRSA {
		blob, err := s.seal(ctx, r, plaintext, ec)
		return blob, AlgSymmetric, err
	}
	if max := engine.MaxOAEPPlaintext(r.Spec, alg); len(plaintext) > max {
		// botocore EncryptRequest.Plaintext: RSA_2048 with RSAES_OAEP_SHA_1
		// takes up to 214 bytes, and so on.
		return nil, "", newError(ErrValidation, "Plaintext is too long: %s with %s encrypts up to %d bytes.", r.Spec, alg, max)
	}
	var ct []byte
	err := s.withKey(ctx, r, func(k *engine.Key) error {
		var err error
		ct, err = engine.EncryptOAEP(k.Public(), r.Spec, alg, plaintext)
		return err
	})
	if err != nil {
		return nil, "", engineError(err, r, alg)
	}
	return ct, alg, nil
}

// openAny opens a ciphertext for Decrypt or ReEncrypt's source (member
// k). An RSA ciphertext carries no key reference, so it opens only when
// the request names an RSA key (AWS: KeyId and EncryptionAlgorithm are
// required for an asymmetric ciphertext); everything else goes to open,
// where a blob that is not Coffer's format is InvalidCiphertextException.
func (s *Service) openAny(ctx context.Context, c *Caller, k *KeyMember, raw []byte, keyID, alg string, ec map[string]string, dry bool,
	adjust func(*policy.Context, *keyRecord)) (*opened, error) {
	if keyID == "" {
		return s.open(ctx, c, k, raw, keyID, alg, ec, dry, adjust)
	}
	named, err := s.resolveKeyAs(ctx, c, keyID, k.Forms)
	if err != nil || named.kind() == kindSymmetric || named.kind() == kindHSM {
		return s.open(ctx, c, k, raw, keyID, alg, ec, dry, adjust)
	}
	// An asymmetric or HMAC key: only an RSA ENCRYPT_DECRYPT key gets past
	// checkEncryption, the others are its InvalidKeyUsageException.
	r := named
	if r.Account != c.Account && !k.CrossAccount {
		return nil, keyNotFound(r.arn())
	}
	pc := withEncryptionContext(s.requestContext(ctx, c, r), ec, alg)
	pc.RequestAlias = requestAlias(keyID)
	if adjust != nil {
		adjust(pc, r)
	}
	if err := s.authorizeKey(ctx, c, r, k.Action, pc); err != nil {
		return nil, err
	}
	if err := k.checkState(r); err != nil {
		return nil, err
	}
	if err := checkEncryption(r, k, alg); err != nil {
		return nil, err
	}
	if err := checkAsymmetricContext(r, ec); err != nil {
		return nil, err
	}
	if dry {
		return nil, dryRun
	}
	v := len(r.Versions) - 1
	var pt []byte
	err = s.withKey(ctx, r, func(key *engine.Key) error {
		var err error
		pt, err = key.DecryptOAEP(alg, raw)
		return err
	})
	if err != nil {
		return nil, engineError(err, r, alg)
	}
	return &opened{key: r, plaintext: pt, materialID: r.Versions[v].MaterialID, alg: alg}, nil
}
