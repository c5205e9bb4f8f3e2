package kms

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/policy"
)

// Limits of the cryptographic operations, as AWS's.
const (
	maxPlaintext   = 4096
	maxBlob        = engine.MaxBlobSize
	maxRandomBytes = 1024
)

// EncryptInput is the Encrypt request.
type EncryptInput struct {
	KeyId               string            `json:"KeyId"`
	Plaintext           []byte            `json:"Plaintext"`
	EncryptionContext   map[string]string `json:"EncryptionContext"`
	GrantTokens         []string          `json:"GrantTokens"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm"`
	DryRun              bool              `json:"DryRun"`
}

// EncryptOutput is the Encrypt response.
type EncryptOutput struct {
	CiphertextBlob      []byte `json:"CiphertextBlob"`
	KeyId               string `json:"KeyId"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
}

// Encrypt seals up to 4 KiB under the key's current material.
func (s *Service) Encrypt(ctx context.Context, c *Caller, in *EncryptInput) (*EncryptOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if v.required("plaintext", in.Plaintext != nil) {
		v.secretLength("plaintext", in.Plaintext, 1, maxPlaintext)
	}
	v.encryptionContext("encryptionContext", in.EncryptionContext)
	v.grantTokens(in.GrantTokens)
	v.enum("encryptionAlgorithm", in.EncryptionAlgorithm, encryptionAlgorithms)
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	r, err := s.encryptionKey(ctx, c, &opEncrypt.Keys[0], in.KeyId, in.EncryptionAlgorithm, in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	if err := checkAsymmetricContext(r, in.EncryptionContext); err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, dryRun
	}
	blob, alg, err := s.sealFor(ctx, r, in.EncryptionAlgorithm, in.Plaintext, in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	return &EncryptOutput{CiphertextBlob: blob, KeyId: r.arn(), EncryptionAlgorithm: alg}, nil
}

// encryptionKey resolves keyID (request member k), authorizes k's action on
// it and checks it may encrypt now with alg.
func (s *Service) encryptionKey(ctx context.Context, c *Caller, k *KeyMember, keyID, alg string, ec map[string]string) (*keyRecord, error) {
	return s.encryptionKeyWith(ctx, c, k, keyID, alg, ec, nil)
}

// encryptionKeyWith is encryptionKey with more condition keys: adjust, if
// not nil, completes the request context for the key found.
func (s *Service) encryptionKeyWith(ctx context.Context, c *Caller, k *KeyMember, keyID, alg string, ec map[string]string, adjust func(*policy.Context, *keyRecord)) (*keyRecord, error) {
	r, err := s.keyFor(ctx, c, k, keyID, func(r *keyRecord) *policy.Context {
		pc := withEncryptionContext(s.requestContext(ctx, c, r), ec, alg)
		if adjust != nil {
			adjust(pc, r)
		}
		return pc
	})
	if err != nil {
		return nil, err
	}
	if err := k.checkState(r); err != nil {
		return nil, err
	}
	if err := checkEncryption(r, k, alg); err != nil {
		return nil, err
	}
	return r, nil
}

// seal encrypts plaintext under r's newest material, as r's kind does.
func (s *Service) seal(ctx context.Context, r *keyRecord, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	v := len(r.Versions) - 1
	switch r.kind() {
	case kindHSM:
		return s.sealInStore(ctx, r, v, plaintext, encCtx)
	case kindSymmetric:
		key, e, err := s.material(ctx, r, v)
		if err != nil {
			return nil, err
		}
		defer s.cache.materials.release(e)
		kid, _ := parseKeyID(r.ID)
		blob, err := engine.Seal(output(ctx, engine.BlobOverhead+len(plaintext)), key.Symmetric(), kid, uint32(v), plaintext, encCtx)
		if err != nil {
			return nil, internal(err)
		}
		return blob, nil
	}
	return nil, internal(fmt.Errorf("kms: seal with %s, a %s key", r.arn(), r.Spec)) // usage is checked before
}

// sealInStore encrypts plaintext inside the HSM under r's key version v,
// as a version-2 blob.
func (s *Service) sealInStore(ctx context.Context, r *keyRecord, v int, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	kid, _ := parseKeyID(r.ID)
	header := engine.AppendHSMBlobHeader(make([]byte, 0, engine.HSMBlobHeaderSize), kid, uint32(v))
	sealed, err := s.ks.Encrypt(ctx, r.Versions[v].HSMKey, plaintext, engine.HSMBlobAAD(nil, header, encCtx))
	if err != nil {
		return nil, storeFailure(err, r.arn())
	}
	blob := append(header, sealed...)
	if len(blob) > engine.MaxBlobSize {
		return nil, newError(ErrInternal, "The HSM returned an oversized ciphertext.")
	}
	return blob, nil
}

// DecryptInput is the Decrypt request.
type DecryptInput struct {
	CiphertextBlob      []byte            `json:"CiphertextBlob"`
	EncryptionContext   map[string]string `json:"EncryptionContext"`
	GrantTokens         []string          `json:"GrantTokens"`
	KeyId               string            `json:"KeyId"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm"`
	Recipient           json.RawMessage   `json:"Recipient"`
	DryRun              bool              `json:"DryRun"`
}

// DecryptOutput is the Decrypt response.
type DecryptOutput struct {
	KeyId               string `json:"KeyId"`
	Plaintext           []byte `json:"Plaintext"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
	KeyMaterialId       string `json:"KeyMaterialId,omitempty"`
}

// Decrypt opens a blob made by Encrypt or GenerateDataKey. KeyId is
// optional; when given it must name the blob's key.
func (s *Service) Decrypt(ctx context.Context, c *Caller, in *DecryptInput) (*DecryptOutput, error) {
	var v validator
	if v.required("ciphertextBlob", in.CiphertextBlob != nil) {
		v.secretLength("ciphertextBlob", in.CiphertextBlob, 1, maxBlob)
	}
	if in.KeyId != "" {
		v.length("keyId", in.KeyId, 1, 2048)
	}
	v.encryptionContext("encryptionContext", in.EncryptionContext)
	v.grantTokens(in.GrantTokens)
	v.enum("encryptionAlgorithm", in.EncryptionAlgorithm, encryptionAlgorithms)
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	if err := checkRecipient(in.Recipient); err != nil {
		return nil, err
	}
	o, err := s.openAny(ctx, c, &opDecrypt.Keys[0], in.CiphertextBlob, in.KeyId, in.EncryptionAlgorithm, in.EncryptionContext, in.DryRun, nil)
	if err != nil {
		return nil, err
	}
	return &DecryptOutput{KeyId: o.key.arn(), Plaintext: o.plaintext, EncryptionAlgorithm: o.algorithm(), KeyMaterialId: o.materialID}, nil
}

// noRecipient refuses a Recipient for the …WithoutPlaintext operations, whose
// request shape has no such member (the input type is shared with the
// operation that has it).
func noRecipient(op *Operation, raw json.RawMessage) error {
	if len(raw) != 0 && string(raw) != "null" {
		return newError(ErrValidation, "1 validation error detected: Recipient is not a member of %sRequest", op.Name)
	}
	return nil
}

func checkRecipient(raw json.RawMessage) error {
	if len(raw) != 0 && string(raw) != "null" {
		return newError(ErrUnsupportedOperation, "Recipient (attested enclave) requests are not supported by this server.")
	}
	return nil
}

type opened struct {
	key        *keyRecord
	plaintext  []byte
	materialID string
	alg        string // "" for SYMMETRIC_DEFAULT
}

func (o *opened) algorithm() string {
	if o.alg == "" {
		return AlgSymmetric
	}
	return o.alg
}

// open authenticates a blob for the caller, who names its key (if at all)
// in request member k. Forged, malformed and mismatched blobs all give the
// same InvalidCiphertextException.
//
// adjust, if not nil, completes the request context for the blob's key.
func (s *Service) open(ctx context.Context, c *Caller, k *KeyMember, raw []byte, keyID, alg string, encCtx map[string]string, dry bool,
	adjust func(*policy.Context, *keyRecord)) (*opened, error) {
	kid, ver, ok := blobKey(raw)
	if !ok {
		return nil, invalidCiphertext
	}
	var (
		r   *keyRecord
		err error
	)
	if keyID != "" {
		named, err := s.resolveKeyAs(ctx, c, keyID, k.Forms)
		if err != nil {
			return nil, err
		}
		if !blobKeyMatches(named.ID, kid) {
			return nil, newError(ErrIncorrectKey, "The key ID in the request does not identify a CMK that can perform this operation.")
		}
		r = named
	} else {
		r, err = s.loadBlobKey(ctx, kid) // mrk.go: a UUID key, else an mrk- key
		if err != nil {
			return nil, internal(err)
		}
		if r == nil || r.Region != s.region {
			// A blob of the right shape naming a key this Region does not
			// have: AWS answers AccessDeniedException, not the opaque
			// InvalidCiphertextException (see unknownCiphertextKey).
			return nil, unknownCiphertextKey
		}
		noteKey(ctx, r)
	}
	pc := withEncryptionContext(s.requestContext(ctx, c, r), encCtx, alg)
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
	if err := checkSymmetric(r, k); err != nil {
		return nil, err
	}
	if alg != "" && alg != AlgSymmetric {
		return nil, newError(ErrInvalidKeyUsage, "%s is not a supported encryption algorithm for %s.", alg, r.arn())
	}
	if ver >= len(r.Versions) {
		return nil, invalidCiphertext
	}
	// The key decides how the blob is opened; a blob of another key
	// kind's format is a malformed blob for this key.
	switch r.kind() {
	case kindHSM:
		inStore, err := engine.ParseHSMBlob(raw)
		if err != nil {
			return nil, invalidCiphertext
		}
		if dry {
			return nil, dryRun
		}
		pt, err := s.ks.Decrypt(ctx, r.Versions[ver].HSMKey, inStore.Sealed(), engine.HSMBlobAAD(nil, inStore.Header(), encCtx))
		if err != nil {
			return nil, storeFailure(err, r.arn())
		}
		return &opened{key: r, plaintext: pt, materialID: r.Versions[ver].MaterialID}, nil
	case kindSymmetric:
		blob, err := engine.ParseBlob(raw)
		if err != nil {
			return nil, invalidCiphertext
		}
		if dry {
			return nil, dryRun
		}
		key, e, err := s.material(ctx, r, ver)
		if err != nil {
			return nil, err
		}
		defer s.cache.materials.release(e)
		pt, err := engine.Open(output(ctx, len(blob)-engine.BlobOverhead), key.Symmetric(), blob, encCtx)
		if err != nil {
			return nil, invalidCiphertext
		}
		return &opened{key: r, plaintext: pt, materialID: r.Versions[ver].MaterialID}, nil
	}
	return nil, invalidCiphertext
}

// blobKey returns the key and material version a ciphertext blob names,
// once the framing of the format it claims is checked. Which key opens it,
// and how, is the key's to decide (open).
func blobKey(raw []byte) (kid engine.KeyID, ver int, ok bool) {
	if engine.IsHSMBlob(raw) {
		b, err := engine.ParseHSMBlob(raw)
		if err != nil {
			return kid, 0, false
		}
		return b.KeyID(), int(b.MaterialVersion()), true
	}
	b, err := engine.ParseBlob(raw)
	if err != nil {
		return kid, 0, false
	}
	return b.KeyID(), int(b.MaterialVersion()), true
}

// ReEncryptInput is the ReEncrypt request.
type ReEncryptInput struct {
	CiphertextBlob                 []byte            `json:"CiphertextBlob"`
	SourceEncryptionContext        map[string]string `json:"SourceEncryptionContext"`
	SourceKeyId                    string            `json:"SourceKeyId"`
	DestinationKeyId               string            `json:"DestinationKeyId"`
	DestinationEncryptionContext   map[string]string `json:"DestinationEncryptionContext"`
	SourceEncryptionAlgorithm      string            `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm string            `json:"DestinationEncryptionAlgorithm"`
	GrantTokens                    []string          `json:"GrantTokens"`
	DryRun                         bool              `json:"DryRun"`
}

// ReEncryptOutput is the ReEncrypt response.
type ReEncryptOutput struct {
	CiphertextBlob                 []byte `json:"CiphertextBlob"`
	SourceKeyId                    string `json:"SourceKeyId"`
	KeyId                          string `json:"KeyId"`
	SourceEncryptionAlgorithm      string `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm string `json:"DestinationEncryptionAlgorithm"`
	SourceKeyMaterialId            string `json:"SourceKeyMaterialId,omitempty"`
	DestinationKeyMaterialId       string `json:"DestinationKeyMaterialId,omitempty"`
}

// ReEncrypt opens a blob and seals its plaintext under another key or
// context without the plaintext leaving the service.
func (s *Service) ReEncrypt(ctx context.Context, c *Caller, in *ReEncryptInput) (*ReEncryptOutput, error) {
	var v validator
	if v.required("ciphertextBlob", in.CiphertextBlob != nil) {
		v.secretLength("ciphertextBlob", in.CiphertextBlob, 1, maxBlob)
	}
	if in.SourceKeyId != "" {
		v.length("sourceKeyId", in.SourceKeyId, 1, 2048)
	}
	v.keyID("destinationKeyId", in.DestinationKeyId)
	v.encryptionContext("sourceEncryptionContext", in.SourceEncryptionContext)
	v.encryptionContext("destinationEncryptionContext", in.DestinationEncryptionContext)
	v.enum("sourceEncryptionAlgorithm", in.SourceEncryptionAlgorithm, encryptionAlgorithms)
	v.enum("destinationEncryptionAlgorithm", in.DestinationEncryptionAlgorithm, encryptionAlgorithms)
	v.grantTokens(in.GrantTokens)
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	// kms:ReEncryptOnSameKey, in both authorizations: whether the source
	// and destination keys are the same (AWS KMS condition keys,
	// kms:ReEncryptOnSameKey). The source key is the blob's; a blob that
	// names none is refused by open, and counts as another key here.
	var srcKID *engine.KeyID
	if kid, _, ok := blobKey(in.CiphertextBlob); ok {
		srcKID = &kid
	}
	dst, err := s.encryptionKeyWith(ctx, c, opReEncrypt.Key("DestinationKeyId"), in.DestinationKeyId, in.DestinationEncryptionAlgorithm,
		in.DestinationEncryptionContext, func(pc *policy.Context, r *keyRecord) {
			pc.ReEncryptOnSameKey, pc.HasReEncryptOnSameKey = srcKID != nil && blobKeyMatches(r.ID, *srcKID), true
		})
	if err != nil {
		return nil, err
	}
	if err := checkAsymmetricContext(dst, in.DestinationEncryptionContext); err != nil {
		return nil, err
	}
	o, err := s.openAny(ctx, c, opReEncrypt.Key("SourceKeyId"), in.CiphertextBlob, in.SourceKeyId, in.SourceEncryptionAlgorithm, in.SourceEncryptionContext, in.DryRun,
		func(pc *policy.Context, r *keyRecord) {
			pc.ReEncryptOnSameKey, pc.HasReEncryptOnSameKey = r.ID == dst.ID, true
		})
	if err != nil {
		return nil, err
	}
	defer clear(o.plaintext)
	blob, dstAlg, err := s.sealFor(ctx, dst, in.DestinationEncryptionAlgorithm, o.plaintext, in.DestinationEncryptionContext)
	if err != nil {
		return nil, err
	}
	return &ReEncryptOutput{
		CiphertextBlob:                 blob,
		SourceKeyId:                    o.key.arn(),
		KeyId:                          dst.arn(),
		SourceEncryptionAlgorithm:      o.algorithm(),
		DestinationEncryptionAlgorithm: dstAlg,
		SourceKeyMaterialId:            o.materialID,
		DestinationKeyMaterialId:       dst.Versions[len(dst.Versions)-1].MaterialID,
	}, nil
}

// GenerateDataKeyInput is the GenerateDataKey(WithoutPlaintext) request.
type GenerateDataKeyInput struct {
	KeyId             string            `json:"KeyId"`
	EncryptionContext map[string]string `json:"EncryptionContext"`
	NumberOfBytes     *int              `json:"NumberOfBytes"`
	KeySpec           string            `json:"KeySpec"`
	GrantTokens       []string          `json:"GrantTokens"`
	Recipient         json.RawMessage   `json:"Recipient"`
	DryRun            bool              `json:"DryRun"`
}

// GenerateDataKeyOutput is the GenerateDataKey response; Plaintext is
// empty for GenerateDataKeyWithoutPlaintext.
type GenerateDataKeyOutput struct {
	CiphertextBlob []byte `json:"CiphertextBlob"`
	Plaintext      []byte `json:"Plaintext,omitempty"`
	KeyId          string `json:"KeyId"`
	KeyMaterialId  string `json:"KeyMaterialId,omitempty"`
}

// GenerateDataKey returns a fresh data key and its blob under the key.
func (s *Service) GenerateDataKey(ctx context.Context, c *Caller, in *GenerateDataKeyInput) (*GenerateDataKeyOutput, error) {
	return s.generateDataKey(ctx, c, in, opGenerateDataKey)
}

// GenerateDataKeyWithoutPlaintext returns only the blob of a fresh data key.
func (s *Service) GenerateDataKeyWithoutPlaintext(ctx context.Context, c *Caller, in *GenerateDataKeyInput) (*GenerateDataKeyOutput, error) {
	if err := noRecipient(opGenerateDataKeyWithoutPlaintext, in.Recipient); err != nil {
		return nil, err
	}
	return s.generateDataKey(ctx, c, in, opGenerateDataKeyWithoutPlaintext)
}

func (s *Service) generateDataKey(ctx context.Context, c *Caller, in *GenerateDataKeyInput, op *Operation) (*GenerateDataKeyOutput, error) {
	withPlaintext := op == opGenerateDataKey
	var v validator
	v.keyID("keyId", in.KeyId)
	v.encryptionContext("encryptionContext", in.EncryptionContext)
	if in.NumberOfBytes != nil {
		v.rangeInt("numberOfBytes", *in.NumberOfBytes, 1, maxRandomBytes)
	}
	v.enum("keySpec", in.KeySpec, dataKeySpecs)
	v.grantTokens(in.GrantTokens)
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	if err := checkRecipient(in.Recipient); err != nil {
		return nil, err
	}
	var n int
	switch {
	case in.NumberOfBytes != nil && in.KeySpec != "":
		return nil, newError(ErrValidation, "KeySpec and NumberOfBytes are mutually exclusive; specify only one.")
	case in.NumberOfBytes != nil:
		n = *in.NumberOfBytes
	case in.KeySpec == "AES_128":
		n = 16
	case in.KeySpec == "AES_256":
		n = 32
	default:
		return nil, newError(ErrValidation, "Please specify either number of bytes or key spec.")
	}
	r, err := s.encryptionKey(ctx, c, &op.Keys[0], in.KeyId, "", in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, dryRun
	}
	dk := output(ctx, n)[:n]
	if err := s.fillRandom(dk); err != nil {
		return nil, err
	}
	blob, err := s.seal(ctx, r, dk, in.EncryptionContext)
	if err != nil {
		clear(dk)
		return nil, err
	}
	out := &GenerateDataKeyOutput{CiphertextBlob: blob, KeyId: r.arn(), KeyMaterialId: r.Versions[len(r.Versions)-1].MaterialID}
	if withPlaintext {
		out.Plaintext = dk
	} else {
		clear(dk)
	}
	return out, nil
}

// GenerateRandomInput is the GenerateRandom request.
type GenerateRandomInput struct {
	NumberOfBytes    *int            `json:"NumberOfBytes"`
	CustomKeyStoreId string          `json:"CustomKeyStoreId"`
	Recipient        json.RawMessage `json:"Recipient"`
}

// GenerateRandomOutput is the GenerateRandom response.
type GenerateRandomOutput struct {
	Plaintext []byte `json:"Plaintext"`
}

// GenerateRandom returns 1..1024 random bytes.
func (s *Service) GenerateRandom(ctx context.Context, c *Caller, in *GenerateRandomInput) (*GenerateRandomOutput, error) {
	if in.NumberOfBytes == nil {
		return nil, newError(ErrValidation, "NumberOfBytes is required.")
	}
	var v validator
	v.rangeInt("numberOfBytes", *in.NumberOfBytes, 1, maxRandomBytes)
	if in.CustomKeyStoreId != "" {
		v.length("customKeyStoreId", in.CustomKeyStoreId, 1, 64)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkRecipient(in.Recipient); err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opGenerateRandom.Action, "*"); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreId != "" {
		ks, err := s.connectedKeyStore(ctx, c.Account, in.CustomKeyStoreId)
		if err != nil {
			return nil, err
		}
		b, err := s.ks.GenerateRandom(ctx, *in.NumberOfBytes)
		if err != nil {
			return nil, storeFailure(err, ks.ID)
		}
		return &GenerateRandomOutput{Plaintext: toOutput(ctx, b)}, nil
	}
	// Random bytes are often made into keys: they live in the request's
	// output memory, cleared once the response is written.
	b := output(ctx, *in.NumberOfBytes)[:*in.NumberOfBytes]
	if err := s.fillRandom(b); err != nil {
		return nil, err
	}
	return &GenerateRandomOutput{Plaintext: b}, nil
}
