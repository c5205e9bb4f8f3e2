package kms

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// Imported key material (Origin EXTERNAL), as AWS's developer guide
// "Importing key material for AWS KMS keys" and botocore's model of
// GetParametersForImport, ImportKeyMaterial and DeleteImportedKeyMaterial
// describe it.
//
// A key created with Origin EXTERNAL is PendingImport and has no material.
// GetParametersForImport makes a fresh RSA wrapping key pair (outside any
// transaction), wraps its private key under the root and stores it in
// bucketImports under "<key ID>/<token name>", with the wrapping algorithm
// and an expiry 24 hours on; it answers the public key and the import
// token. The token is one format byte and 32 random bytes; it is stored
// nowhere: its record is named by tokenName, SHA-256 of labelImportToken
// and the token, so a reader of the store cannot forge one and a token
// names its key only (another key's token is not found under this key's
// prefix: InvalidImportTokenException). ImportKeyMaterial decrypts the
// material with the token's private key, checks it as key material of the
// key's spec, wraps it under the root for its version index exactly as
// generated material (materialAAD: 0 for the first material), and in one
// transaction stores it, enables the key and deletes the token's record,
// destroying the wrapping private key. The KeyMaterialId of imported
// material is HMAC-SHA-256 keyed by the material over
// labelImportedMaterialID|<key ID>, so that only the same material can be
// imported again once it is deleted or expired: the version keeps its
// MaterialID with no wrapped material. Old ciphertexts name their version
// and decrypt again after a re-import.
//
// Material for an on-demand rotation (symmetric encryption keys only, as
// AWS has it): ImportKeyMaterial with ImportType NEW_KEY_MATERIAL into a
// key that has material stores the new material in the key record as
// PendingMaterial (AWS's PENDING_ROTATION), wrapped for the next version
// index; RotateKeyOnDemand (rotation.go) appends it to Versions, where it
// is current and the previous material NON_CURRENT. One material may be
// pending at a time. Pending material is not permanently associated with
// the key: deleting it (DeleteImportedKeyMaterial naming its KeyMaterialId)
// or its expiry removes it, ID and all, and the key's state is unchanged.
// Each version keeps its own ExpirationModel and ValidTo; deleting or
// expiring any permanently associated material (one version) makes the key
// PendingImport until the same material is imported again into its own
// version, which ImportKeyMaterial finds by its KeyMaterialId.

// Import limits and enums (botocore's kms model).
const (
	importTokenValidity   = 24 * time.Hour
	maxImportValidity     = 365 * 24 * time.Hour
	importTokenFormat     = 1
	importTokenSize       = 1 + 32
	maxImportBlob         = 6144
	maxMaterialDescLength = 256

	ExpirationExpires       = "KEY_MATERIAL_EXPIRES"
	ExpirationDoesNotExpire = "KEY_MATERIAL_DOES_NOT_EXPIRE"
	ImportTypeNew           = "NEW_KEY_MATERIAL"
	ImportTypeExisting      = "EXISTING_KEY_MATERIAL"

	wrapOAEPSHA1       = "RSAES_OAEP_SHA_1"
	wrapOAEPSHA256     = "RSAES_OAEP_SHA_256"
	wrapAESKeyWrapSHA1 = "RSA_AES_KEY_WRAP_SHA_1"
	wrapAESKeyWrap256  = "RSA_AES_KEY_WRAP_SHA_256"
	wrapPKCS1          = "RSAES_PKCS1_V1_5"
)

var (
	wrappingAlgorithms = []string{wrapPKCS1, wrapOAEPSHA1, wrapOAEPSHA256, wrapAESKeyWrapSHA1, wrapAESKeyWrap256, "SM2PKE"}
	wrappingKeySpecs   = []string{"RSA_2048", "RSA_3072", "RSA_4096", "SM2"}
	expirationModels   = []string{ExpirationExpires, ExpirationDoesNotExpire}
	importTypes        = []string{ImportTypeNew, ImportTypeExisting}
	materialIDPattern  = regexp.MustCompile(`^[a-f0-9]{64}$`)
	// KeyMaterialDescriptionType's pattern (botocore's model).
	materialDescPattern = regexp.MustCompile(`^[a-zA-Z0-9:/_\s.-]+$`)
)

// importStates are the states in which material may be imported, and
// import parameters asked for: a key pending deletion is refused ([8]).
var importStates = []string{StateEnabled, StateDisabled, StatePendingImport}

// importRecord is an import token's stored half.
type importRecord struct {
	KeyID     string    `json:"keyId"`
	Algorithm string    `json:"algorithm"`
	Spec      string    `json:"spec"`
	Wrapped   []byte    `json:"wrapped"` // the PKCS#8 private key under the root
	Created   time.Time `json:"created"`
	ValidTo   time.Time `json:"validTo"`
}

// tokenName names the record of an import token.
func tokenName(token []byte) string {
	h := sha256.New()
	h.Write([]byte(labelImportToken))
	h.Write(token)
	return hex.EncodeToString(h.Sum(nil))
}

func importStoreKey(keyID, name string) string { return keyID + "/" + name }

// wrappingKeyAAD binds a wrapping private key to its key and token.
func wrappingKeyAAD(arn, name string) []byte {
	return []byte(labelImportWrappingKey + "|" + arn + "|" + name)
}

// importedMaterialID is the KeyMaterialId of material imported into key id.
func importedMaterialID(id string, material []byte) string {
	m := hmac.New(sha256.New, material)
	m.Write([]byte(labelImportedMaterialID + "|" + id))
	return hex.EncodeToString(m.Sum(nil))
}

// checkImportable refuses a key that cannot have imported material (AWS's
// footnote [9]: UnsupportedOperationException, before the state), then a
// key in a state states does not accept.
func checkImportable(r *keyRecord, states []string) error {
	if err := checkCustomerManaged(r); err != nil {
		return err
	}
	if r.Origin != OriginExternal {
		return newError(ErrUnsupportedOperation, "%s origin is %s which is not valid for this operation.", r.arn(), r.Origin)
	}
	k := KeyMember{States: states}
	return k.checkState(r)
}

// allImported reports whether every material permanently associated with
// r is imported now: the condition for an EXTERNAL key to be usable.
func (r *keyRecord) allImported() bool {
	if len(r.Versions) == 0 {
		return false
	}
	for i := range r.Versions {
		if len(r.Versions[i].Wrapped) == 0 {
			return false
		}
	}
	return true
}

// upgradeImportExpiry moves the expiry of a record written while it was
// kept per key (one material) to that material's version.
func (r *keyRecord) upgradeImportExpiry() {
	if r.ExpirationModel == "" && r.ValidTo.IsZero() {
		return
	}
	if n := len(r.Versions); n > 0 && r.Versions[n-1].ExpirationModel == "" && len(r.Versions[n-1].Wrapped) > 0 {
		r.Versions[n-1].ExpirationModel, r.Versions[n-1].ValidTo = r.ExpirationModel, r.ValidTo
	}
	r.ExpirationModel, r.ValidTo = "", time.Time{}
}

// keyExpiry is DescribeKey's ExpirationModel and ValidTo for an EXTERNAL
// key: "the earliest time at which any imported key material permanently
// associated with this KMS key expires" (botocore's KeyMetadata.ValidTo),
// KEY_MATERIAL_DOES_NOT_EXPIRE when none of its imported material expires,
// nothing when none is imported.
func (r *keyRecord) keyExpiry() (model string, validTo time.Time) {
	for i := range r.Versions {
		v := &r.Versions[i]
		switch {
		case len(v.Wrapped) == 0 || v.ExpirationModel == "":
		case v.ExpirationModel == ExpirationExpires:
			if model != ExpirationExpires || v.ValidTo.Before(validTo) {
				model, validTo = ExpirationExpires, v.ValidTo
			}
		case model == "":
			model = ExpirationDoesNotExpire
		}
	}
	return model, validTo
}

// materialIndex is the version of r whose material is id: -1 for none,
// len(r.Versions) for the pending material.
func (r *keyRecord) materialIndex(id string) int {
	for i := range r.Versions {
		if r.Versions[i].MaterialID == id {
			return i
		}
	}
	if r.PendingMaterial != nil && r.PendingMaterial.MaterialID == id {
		return len(r.Versions)
	}
	return -1
}

// checkWrapping refuses a wrapping algorithm and wrapping key spec that
// cannot carry material of spec, as botocore's
// GetParametersForImportRequest.WrappingAlgorithm tables them: the RSAES
// algorithms wrap any material but an RSA private key, and not
// ECC_NIST_P521 material under an RSA_2048 wrapping key (its PKCS#8 form
// is longer than RSA-OAEP under a 2048-bit key can encrypt).
func checkWrapping(arn, spec, alg, wrapSpec string) error {
	if alg != wrapOAEPSHA1 && alg != wrapOAEPSHA256 {
		return nil
	}
	switch {
	case strings.HasPrefix(spec, "RSA_"):
		return newError(ErrUnsupportedOperation, "%s is an RSA key: its key material can only be wrapped with an RSA_AES_KEY_WRAP wrapping algorithm, not %s.", arn, alg)
	case spec == "ECC_NIST_P521" && wrapSpec == "RSA_2048":
		return newError(ErrUnsupportedOperation, "The %s wrapping algorithm with the RSA_2048 wrapping key spec cannot wrap ECC_NIST_P521 key material of %s.", alg, arn)
	}
	return nil
}

// GetParametersForImportInput is the GetParametersForImport request.
type GetParametersForImportInput struct {
	KeyId             string `json:"KeyId"`
	WrappingAlgorithm string `json:"WrappingAlgorithm"`
	WrappingKeySpec   string `json:"WrappingKeySpec"`
}

// GetParametersForImportOutput is the GetParametersForImport response.
type GetParametersForImportOutput struct {
	KeyId             string     `json:"KeyId"`
	ImportToken       []byte     `json:"ImportToken"`
	PublicKey         []byte     `json:"PublicKey"`
	ParametersValidTo *Timestamp `json:"ParametersValidTo"`
}

// GetParametersForImport returns a fresh wrapping public key and the
// import token that goes with it, valid 24 hours.
func (s *Service) GetParametersForImport(ctx context.Context, c *Caller, in *GetParametersForImportInput) (*GetParametersForImportOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if v.required("wrappingAlgorithm", in.WrappingAlgorithm != "") {
		v.enum("wrappingAlgorithm", in.WrappingAlgorithm, wrappingAlgorithms)
	}
	if v.required("wrappingKeySpec", in.WrappingKeySpec != "") {
		v.enum("wrappingKeySpec", in.WrappingKeySpec, wrappingKeySpecs)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	switch {
	case in.WrappingAlgorithm == wrapPKCS1:
		// "As of October 10, 2023, KMS does not support the
		// RSAES_PKCS1_V1_5 wrapping algorithm" (botocore's model).
		return nil, newError(ErrUnsupportedOperation, "The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported.")
	case in.WrappingAlgorithm == "SM2PKE" || in.WrappingKeySpec == "SM2":
		return nil, newError(ErrUnsupportedOperation, "SM2 wrapping is available only in China Regions.")
	}
	withWrapping := func(r *keyRecord) *policy.Context {
		pc := s.requestContext(ctx, c, r)
		extra(pc, "kms:wrappingalgorithm", in.WrappingAlgorithm)
		extra(pc, "kms:wrappingkeyspec", in.WrappingKeySpec)
		return pc
	}
	r, err := s.keyFor(ctx, c, &opGetParametersForImport.Keys[0], in.KeyId, withWrapping)
	if err != nil {
		return nil, err
	}
	if err := checkImportable(r, importStates); err != nil {
		return nil, err
	}
	if err := checkWrapping(r.arn(), r.Spec, in.WrappingAlgorithm, in.WrappingKeySpec); err != nil {
		return nil, err
	}

	// The key pair, its wrap and the token are made before the transaction.
	wk, err := engine.GenerateKey(in.WrappingKeySpec, s.random)
	if err != nil {
		return nil, internal(err)
	}
	defer wk.Zero()
	pub, err := wk.PublicKeyDER()
	if err != nil {
		return nil, internal(err)
	}
	token, err := s.randomBytes(importTokenSize)
	if err != nil {
		return nil, err
	}
	token[0] = importTokenFormat
	name := tokenName(token)
	priv, err := wk.MarshalBinary()
	if err != nil {
		return nil, internal(err)
	}
	wrapped, err := s.root.Wrap(ctx, priv, wrappingKeyAAD(r.arn(), name))
	clear(priv)
	if err != nil {
		return nil, hsmFailure(err, r.arn())
	}
	now := s.now().UTC()
	rec := importRecord{KeyID: r.ID, Algorithm: in.WrappingAlgorithm, Spec: in.WrappingKeySpec, Wrapped: wrapped,
		Created: now, ValidTo: now.Add(importTokenValidity)}
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		return putJSON(tx, bucketImports, importStoreKey(r.ID, name), rec)
	})
	if err != nil {
		return nil, internal(err)
	}
	return &GetParametersForImportOutput{KeyId: r.arn(), ImportToken: token, PublicKey: pub, ParametersValidTo: ts(rec.ValidTo)}, nil
}

// ImportKeyMaterialInput is the ImportKeyMaterial request.
type ImportKeyMaterialInput struct {
	KeyId                  string     `json:"KeyId"`
	ImportToken            []byte     `json:"ImportToken"`
	EncryptedKeyMaterial   []byte     `json:"EncryptedKeyMaterial"`
	ValidTo                *Timestamp `json:"ValidTo"`
	ExpirationModel        string     `json:"ExpirationModel"`
	ImportType             string     `json:"ImportType"`
	KeyMaterialDescription *string    `json:"KeyMaterialDescription"`
	KeyMaterialId          string     `json:"KeyMaterialId"`
}

// ImportKeyMaterialOutput is the ImportKeyMaterial response.
type ImportKeyMaterialOutput struct {
	KeyId         string `json:"KeyId"`
	KeyMaterialId string `json:"KeyMaterialId"`
}

// ImportKeyMaterial imports material wrapped under the public key of an
// import token of the key.
func (s *Service) ImportKeyMaterial(ctx context.Context, c *Caller, in *ImportKeyMaterialInput) (*ImportKeyMaterialOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if v.required("importToken", in.ImportToken != nil) {
		v.secretLength("importToken", in.ImportToken, 1, maxImportBlob)
	}
	if v.required("encryptedKeyMaterial", in.EncryptedKeyMaterial != nil) {
		v.secretLength("encryptedKeyMaterial", in.EncryptedKeyMaterial, 1, maxImportBlob)
	}
	v.enum("expirationModel", in.ExpirationModel, expirationModels)
	v.enum("importType", in.ImportType, importTypes)
	if in.KeyMaterialDescription != nil {
		v.length("keyMaterialDescription", *in.KeyMaterialDescription, 0, maxMaterialDescLength)
		v.pattern("keyMaterialDescription", *in.KeyMaterialDescription, materialDescPattern)
	}
	v.pattern("keyMaterialId", in.KeyMaterialId, materialIDPattern)
	if err := v.err(); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	model := in.ExpirationModel
	if model == "" {
		model = ExpirationExpires
	}
	var validTo time.Time
	switch {
	case model == ExpirationExpires && in.ValidTo == nil:
		return nil, newError(ErrValidation, "ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES.")
	case model == ExpirationDoesNotExpire && in.ValidTo != nil:
		return nil, newError(ErrValidation, "ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.")
	case in.ValidTo != nil:
		validTo = in.ValidTo.UTC()
		if !validTo.After(now) || validTo.After(now.Add(maxImportValidity)) {
			return nil, newError(ErrValidation, "ValidTo must be in the future and at most 365 days from now.")
		}
	}
	if in.KeyMaterialId != "" && in.ImportType == ImportTypeNew {
		return nil, newError(ErrValidation, "You cannot specify KeyMaterialId with ImportType NEW_KEY_MATERIAL.")
	}
	// kms:ExpirationModel is the model the import applies (the default
	// when the request has none); kms:ValidTo, in seconds since the epoch
	// for the Numeric operators of AWS's examples, only when ValidTo is set.
	withExpiry := func(r *keyRecord) *policy.Context {
		pc := s.requestContext(ctx, c, r)
		extra(pc, "kms:expirationmodel", model)
		if in.ValidTo != nil {
			extra(pc, "kms:validto", strconv.FormatInt(in.ValidTo.Unix(), 10))
		}
		return pc
	}
	r, err := s.keyFor(ctx, c, &opImportKeyMaterial.Keys[0], in.KeyId, withExpiry)
	if err != nil {
		return nil, err
	}
	if err := checkImportable(r, importStates); err != nil {
		return nil, err
	}
	// ImportType, KeyMaterialId and KeyMaterialDescription are "only usable
	// with symmetric encryption keys" (botocore's ImportKeyMaterialRequest):
	// an asymmetric or HMAC key keeps its one material.
	if r.Spec != SpecSymmetric && (in.ImportType != "" || in.KeyMaterialId != "" || in.KeyMaterialDescription != nil) {
		return nil, newError(ErrValidation, "ImportType, KeyMaterialId and KeyMaterialDescription apply only to symmetric encryption keys.")
	}

	name := tokenName(in.ImportToken)
	var rec *importRecord
	err = s.store.View(ctx, func(tx keystore.Tx) error {
		raw, err := tx.Get(bucketImports, importStoreKey(r.ID, name))
		if err != nil || raw == nil {
			return err
		}
		rec = new(importRecord)
		return json.Unmarshal(raw, rec)
	})
	if err != nil {
		return nil, internal(err)
	}
	if rec == nil || len(in.ImportToken) != importTokenSize || in.ImportToken[0] != importTokenFormat {
		return nil, newError(ErrInvalidImportToken, "The import token is not valid for %s.", r.arn())
	}
	if !now.Before(rec.ValidTo) {
		return nil, newError(ErrExpiredImportToken, "The import token expired at %s.", rec.ValidTo.Format(time.RFC3339))
	}
	if err := checkWrapping(r.arn(), r.Spec, rec.Algorithm, rec.Spec); err != nil {
		return nil, err
	}

	material, err := s.unwrapImport(ctx, r, name, rec, in.EncryptedKeyMaterial)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	if k, err := engine.ParseKey(r.Spec, material); err != nil {
		return nil, newError(ErrIncorrectKeyMaterial, "The key material is not valid %s key material.", r.Spec)
	} else {
		k.Zero()
	}
	mid := importedMaterialID(r.ID, material)
	idx, err := importTarget(r, in, mid)
	if err != nil {
		return nil, err
	}
	// The wrap binds the version the material is for, as generated
	// material's does; the transaction checks it is still that one.
	wrapped, err := s.root.Wrap(ctx, material, materialAAD(r.arn(), idx))
	clear(material)
	if err != nil {
		return nil, hsmFailure(err, r.arn())
	}

	out, err := s.updateKey(ctx, r.ID, func(tx keystore.Tx, r *keyRecord) (*keyRecord, error) {
		// The key may have changed since it was read: check it again.
		if err := checkImportable(r, importStates); err != nil {
			return nil, err
		}
		if i, err := importTarget(r, in, mid); err != nil {
			return nil, err
		} else if i != idx {
			return nil, newError(ErrConflict, "The key material of %s is being changed by another request. Try again later.", r.arn())
		}
		key := importStoreKey(r.ID, name)
		if raw, err := tx.Get(bucketImports, key); err != nil {
			return nil, err
		} else if raw == nil {
			return nil, newError(ErrInvalidImportToken, "The import token is not valid for %s.", r.arn())
		}
		if err := tx.Delete(bucketImports, key); err != nil { // the wrapping private key goes
			return nil, err
		}
		ver := keyVersion{MaterialID: mid, Wrapped: wrapped, Created: now, Imported: now, ExpirationModel: model, ValidTo: validTo}
		var old *keyVersion
		switch {
		case idx < len(r.Versions):
			old = &r.Versions[idx]
		case r.PendingMaterial != nil:
			old = r.PendingMaterial
		}
		if old != nil { // a re-import: the material keeps its place
			ver.Created, ver.RotationType, ver.Description = old.Created, old.RotationType, old.Description
		}
		if in.KeyMaterialDescription != nil {
			ver.Description = *in.KeyMaterialDescription
		}
		if idx < len(r.Versions) {
			r.Versions[idx] = ver
		} else if len(r.Versions) == 0 {
			r.Versions = []keyVersion{ver}
		} else {
			r.PendingMaterial = &ver
		}
		if r.State == StatePendingImport && r.allImported() {
			r.State = StateEnabled
		}
		return r, nil
	})
	if err != nil {
		return nil, internal(err)
	}
	// A re-import ends the cached material's time in memory, as deletion does.
	s.cache.invalidate(cacheKey, out.ID)
	return &ImportKeyMaterialOutput{KeyId: out.arn(), KeyMaterialId: mid}, nil
}

// importTarget is where material mid, imported by in, goes in r: the index
// of the version it is imported again into, 0 for a key's first material,
// or len(r.Versions) for material pending rotation (new, or imported
// again). It refuses material other than what in names or r holds
// (IncorrectKeyMaterialException), new material for a key that cannot
// have more than one (asymmetric, HMAC and multi-Region keys), and a
// second pending material.
func importTarget(r *keyRecord, in *ImportKeyMaterialInput, mid string) (int, error) {
	n := len(r.Versions)
	if n == 0 {
		if in.ImportType == ImportTypeExisting || in.KeyMaterialId != "" {
			return 0, newError(ErrIncorrectKeyMaterial, "%s has no key material to import again.", r.arn())
		}
		return 0, nil
	}
	if in.ImportType == ImportTypeNew {
		switch {
		case r.Spec != SpecSymmetric:
			return 0, newError(ErrUnsupportedOperation, "%s is not a symmetric encryption key: its key material cannot be changed after the first import.", r.arn())
		case r.PrimaryRegion != "":
			// No rotation of imported material in a multi-Region family
			// (checkRotatable, rotation.go, cites the texts); a replica
			// takes only its primary's material, which its versions name
			// (pendingImportVersions, mrk.go).
			return 0, newError(ErrUnsupportedOperation, "Importing new key material into the multi-Region key %s is not supported.", r.arn())
		case r.materialIndex(mid) >= 0:
			return 0, newError(ErrIncorrectKeyMaterial, "The key material is already associated with %s.", r.arn())
		case r.PendingMaterial != nil:
			return 0, newError(ErrInvalidState, "%s already has key material %s pending rotation: rotate the key or delete that key material first.", r.arn(), r.PendingMaterial.MaterialID)
		}
		return n, nil
	}
	if in.KeyMaterialId != "" {
		if r.materialIndex(in.KeyMaterialId) < 0 {
			return 0, newError(ErrIncorrectKeyMaterial, "Key material %s is not associated with %s.", in.KeyMaterialId, r.arn())
		}
		if !hmac.Equal([]byte(in.KeyMaterialId), []byte(mid)) {
			return 0, newError(ErrIncorrectKeyMaterial, "The key material is not key material %s of %s.", in.KeyMaterialId, r.arn())
		}
	}
	if i := r.materialIndex(mid); i >= 0 {
		return i, nil
	}
	return 0, newError(ErrIncorrectKeyMaterial, "The key material is not the key material previously imported into %s.", r.arn())
}

// unwrapImport decrypts EncryptedKeyMaterial with the token's wrapping
// private key. Every failure to decrypt is InvalidCiphertextException.
func (s *Service) unwrapImport(ctx context.Context, r *keyRecord, name string, rec *importRecord, enc []byte) ([]byte, error) {
	der, err := s.root.Unwrap(ctx, rec.Wrapped, wrappingKeyAAD(r.arn(), name))
	if err != nil {
		return nil, hsmFailure(err, r.arn())
	}
	wk, err := engine.ParseKey(rec.Spec, der)
	clear(der)
	if err != nil {
		return nil, internal(err)
	}
	defer wk.Zero()
	var material []byte
	switch rec.Algorithm {
	case wrapOAEPSHA1, wrapOAEPSHA256:
		material, err = wk.DecryptOAEP(rec.Algorithm, enc)
	case wrapAESKeyWrapSHA1, wrapAESKeyWrap256:
		// RSA-OAEP of an ephemeral AES key, then that key's RFC 5649
		// wrap of the material (CKM_RSA_AES_KEY_WRAP).
		oaep := wrapOAEPSHA1
		if rec.Algorithm == wrapAESKeyWrap256 {
			oaep = wrapOAEPSHA256
		}
		pub, ok := wk.Public().(*rsa.PublicKey)
		if !ok {
			return nil, internal(errors.New("kms: an import wrapping key is not RSA"))
		}
		n := pub.Size()
		if len(enc) <= n {
			return nil, invalidCiphertext
		}
		var aesKey []byte
		aesKey, err = wk.DecryptOAEP(oaep, enc[:n])
		if err == nil {
			material, err = engine.UnwrapKWP(aesKey, enc[n:])
			clear(aesKey)
		}
	default:
		return nil, internal(errors.New("kms: import token with unknown wrapping algorithm " + rec.Algorithm))
	}
	if err != nil {
		return nil, invalidCiphertext
	}
	return material, nil
}

// DeleteImportedKeyMaterialInput is the DeleteImportedKeyMaterial request.
type DeleteImportedKeyMaterialInput struct {
	KeyId         string `json:"KeyId"`
	KeyMaterialId string `json:"KeyMaterialId"`
}

// DeleteImportedKeyMaterialOutput is the DeleteImportedKeyMaterial response.
type DeleteImportedKeyMaterialOutput struct {
	KeyId         string `json:"KeyId"`
	KeyMaterialId string `json:"KeyMaterialId,omitempty"`
}

// DeleteImportedKeyMaterial deletes one imported material of a key: the
// one KeyMaterialId names, or the current one. Deleting material pending
// rotation drops it and leaves the key as it is; deleting a version's makes
// the key PendingImport until the same material is imported again (a key
// pending deletion stays so).
func (s *Service) DeleteImportedKeyMaterial(ctx context.Context, c *Caller, in *DeleteImportedKeyMaterialInput) (*DeleteImportedKeyMaterialOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	v.pattern("keyMaterialId", in.KeyMaterialId, materialIDPattern)
	if err := v.err(); err != nil {
		return nil, err
	}
	mid := ""
	r, err := s.mutateKey(ctx, c, &opDeleteImportedKeyMaterial.Keys[0], in.KeyId, nil, func(r *keyRecord) error {
		if err := checkImportable(r, opDeleteImportedKeyMaterial.Keys[0].States); err != nil {
			return err
		}
		mid = in.KeyMaterialId
		if mid == "" {
			if len(r.Versions) == 0 {
				return nil // nothing was ever imported
			}
			mid = r.Versions[len(r.Versions)-1].MaterialID
		}
		i := r.materialIndex(mid)
		if i < 0 {
			return newError(ErrNotFound, "Key material %s is not associated with %s.", mid, r.arn())
		}
		deleteMaterial(r, i)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.cache.invalidate(cacheKey, r.ID)
	return &DeleteImportedKeyMaterialOutput{KeyId: r.arn(), KeyMaterialId: mid}, nil
}

// deleteMaterial deletes the material of r's version i, or the pending
// material for i == len(r.Versions). A version keeps its MaterialID, which
// says which material may come back; pending material goes altogether.
func deleteMaterial(r *keyRecord, i int) {
	if i == len(r.Versions) {
		clear(r.PendingMaterial.Wrapped)
		r.PendingMaterial = nil
		return
	}
	v := &r.Versions[i]
	v.Wrapped, v.ExpirationModel, v.ValidTo = nil, "", time.Time{}
	if r.State == StateEnabled || r.State == StateDisabled {
		r.State = StatePendingImport
	}
}

// expiredMaterial is the index (as materialIndex) of an imported material
// of r whose ValidTo has passed at now, or -1.
func expiredMaterial(r *keyRecord, now time.Time) int {
	if r.Origin != OriginExternal {
		return -1
	}
	expired := func(v *keyVersion) bool {
		return len(v.Wrapped) > 0 && v.ExpirationModel == ExpirationExpires && !v.ValidTo.IsZero() && !now.Before(v.ValidTo)
	}
	for i := range r.Versions {
		if expired(&r.Versions[i]) {
			return i
		}
	}
	if r.PendingMaterial != nil && expired(r.PendingMaterial) {
		return len(r.Versions)
	}
	return -1
}

// materialExpired reports whether any imported material of r has passed its ValidTo.
func materialExpired(r *keyRecord, now time.Time) bool { return expiredMaterial(r, now) >= 0 }

// expireMaterial deletes key id's imported material whose ValidTo has
// passed, as AWS does: with a DeleteImportedKeyMaterial record of the
// service itself (an AwsServiceEvent) through the outbox, one record for
// each material.
func (s *Service) expireMaterial(ctx context.Context, id string, now time.Time) error {
	for {
		ectx, event, err := s.serviceEventContext(ctx, "DeleteImportedKeyMaterial")
		if err != nil {
			return err
		}
		more := false
		_, err = s.updateKey(ectx, id, func(_ keystore.Tx, r *keyRecord) (*keyRecord, error) {
			event.on(nil)
			i := expiredMaterial(r, now)
			if i < 0 {
				return r, nil // re-imported or deleted meanwhile
			}
			event.on(r)
			deleteMaterial(r, i)
			more = materialExpired(r, now)
			return r, nil
		})
		s.cache.invalidate(cacheKey, id)
		if err == errKeyGone {
			return nil
		}
		if err != nil || !more {
			return err
		}
	}
}

// sweepImportTokens deletes the records of import tokens that have
// expired, with their wrapping private keys.
func (s *Service) sweepImportTokens(ctx context.Context, now time.Time) error {
	var due []string
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		return tx.Scan(bucketImports, "", "", func(k string, raw []byte) bool {
			var rec importRecord
			if json.Unmarshal(raw, &rec) == nil && !now.Before(rec.ValidTo) {
				due = append(due, k)
			}
			return true
		})
	})
	if err != nil || len(due) == 0 {
		return err
	}
	return s.store.Update(ctx, func(tx keystore.Tx) error {
		for _, k := range due {
			if err := tx.Delete(bucketImports, k); err != nil {
				return err
			}
		}
		return nil
	})
}
