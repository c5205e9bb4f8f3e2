package kms

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// importAs imports material into key id with the given import type,
// KeyMaterialId and description, never expiring unless validTo is set.
func (e *importEnv) importAs(t *testing.T, id string, material []byte, typ, mid string, desc *string, validTo *time.Time) (*ImportKeyMaterialOutput, error) {
	t.Helper()
	p := e.params(t, id, wrapOAEPSHA256)
	in := &ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapForImport(t, p.PublicKey, wrapOAEPSHA256, material),
		ExpirationModel: ExpirationDoesNotExpire, ImportType: typ, KeyMaterialId: mid, KeyMaterialDescription: desc}
	if validTo != nil {
		in.ExpirationModel, in.ValidTo = ExpirationExpires, &Timestamp{*validTo}
	}
	return e.s.ImportKeyMaterial(context.Background(), e.c, in)
}

func (e *importEnv) rotations(t *testing.T, id, include string) []RotationsListEntry {
	t.Helper()
	out, err := e.s.ListKeyRotations(context.Background(), e.c, &ListKeyRotationsInput{KeyId: id, IncludeKeyMaterial: include})
	if err != nil {
		t.Fatal(err)
	}
	return out.Rotations
}

func (e *importEnv) describe(t *testing.T, id string) *KeyMetadata {
	t.Helper()
	d, err := e.s.DescribeKey(context.Background(), e.c, &KeyIDInput{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	return d.KeyMetadata
}

// openedUnder reports whether the ciphertext blob opens under raw material
// with the standard view of the blob (engine.Open), the way a holder of
// the imported key outside Coffer would open it.
func openedUnder(t *testing.T, blob, raw []byte) bool {
	t.Helper()
	b, err := engine.ParseBlob(blob)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := engine.Open(nil, engine.Material(raw), b, nil)
	return err == nil && string(pt) != ""
}

// TestImportRotationCycle is the on-demand rotation of an imported
// symmetric key: M1 imported, C1 under it; M2 imported as NEW_KEY_MATERIAL
// is PENDING_ROTATION and not used; RotateKeyOnDemand makes it current;
// C2 is under M2 (opened with M2's raw bytes); deleting the non-current
// M1 makes the key PendingImport, a restart keeps it all, M1 re-imported
// into its own version brings the key back; M2's expiry does the same.
func TestImportRotationCycle(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	id := e.createExternal(t, "", "")
	m1, m2 := bytes.Repeat([]byte{0x11}, 32), bytes.Repeat([]byte{0x22}, 32)
	first, second := "first material", "second material"

	imp1, err := e.importAs(t, id, m1, "", "", &first, nil)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := e.s.Encrypt(ctx, e.c, &EncryptInput{KeyId: id, Plaintext: []byte("one")})
	if err != nil {
		t.Fatal(err)
	}
	// ROTATIONS_ONLY lists no rotation; ALL_KEY_MATERIAL the first material.
	if r := e.rotations(t, id, ""); len(r) != 0 {
		t.Fatalf("rotations before any: %+v", r)
	}
	if r := e.rotations(t, id, "ALL_KEY_MATERIAL"); len(r) != 1 || r[0].KeyMaterialId != imp1.KeyMaterialId || r[0].KeyMaterialState != materialCurrent ||
		r[0].ImportState != importImported || r[0].ExpirationModel != ExpirationDoesNotExpire || r[0].ValidTo != nil ||
		r[0].KeyMaterialDescription == nil || *r[0].KeyMaterialDescription != first || r[0].RotationType != "" {
		t.Fatalf("ALL_KEY_MATERIAL after the first import: %+v", r)
	}

	validTo := e.clock.Now().Add(72 * time.Hour)
	imp2, err := e.importAs(t, id, m2, ImportTypeNew, "", &second, &validTo)
	if err != nil {
		t.Fatal(err)
	}
	if imp2.KeyMaterialId != importedMaterialID(id, m2) || imp2.KeyMaterialId == imp1.KeyMaterialId {
		t.Fatalf("KeyMaterialId of the new material: %s", imp2.KeyMaterialId)
	}
	if m := e.describe(t, id); m.CurrentKeyMaterialId != imp1.KeyMaterialId || m.ExpirationModel != ExpirationDoesNotExpire || m.ValidTo != nil {
		t.Fatalf("DescribeKey with material pending rotation: %+v", m)
	}
	r := e.rotations(t, id, "ALL_KEY_MATERIAL")
	if len(r) != 2 || r[1].KeyMaterialId != imp2.KeyMaterialId || r[1].KeyMaterialState != materialPendingRotation || r[1].ImportState != importImported ||
		r[1].ExpirationModel != ExpirationExpires || r[1].ValidTo == nil || !r[1].ValidTo.Equal(validTo) || *r[1].KeyMaterialDescription != second ||
		r[1].RotationDate != nil || r[0].KeyMaterialState != materialCurrent {
		t.Fatalf("ALL_KEY_MATERIAL with material pending rotation: %+v", r)
	}
	if r := e.rotations(t, id, "ROTATIONS_ONLY"); len(r) != 0 {
		t.Fatalf("ROTATIONS_ONLY lists pending material: %+v", r)
	}
	// Encryption still uses M1.
	c, _ := e.s.Encrypt(ctx, e.c, &EncryptInput{KeyId: id, Plaintext: []byte("still one")})
	if !openedUnder(t, c.CiphertextBlob, m1) || openedUnder(t, c.CiphertextBlob, m2) {
		t.Fatal("encryption with material pending rotation is not under the current material")
	}
	// One pending material at a time.
	_, err = e.importAs(t, id, bytes.Repeat([]byte{0x33}, 32), ImportTypeNew, "", nil, nil)
	wantKind(t, err, ErrInvalidState)

	if _, err := e.s.RotateKeyOnDemand(ctx, e.c, &KeyIDInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	rotatedAt := e.clock.Now()
	m := e.describe(t, id)
	if m.CurrentKeyMaterialId != imp2.KeyMaterialId || m.ExpirationModel != ExpirationExpires || m.ValidTo == nil || !m.ValidTo.Equal(validTo) {
		t.Fatalf("DescribeKey after the rotation: %+v", m)
	}
	c2, err := e.s.Encrypt(ctx, e.c, &EncryptInput{KeyId: id, Plaintext: []byte("two")})
	if err != nil {
		t.Fatal(err)
	}
	if !openedUnder(t, c2.CiphertextBlob, m2) || openedUnder(t, c2.CiphertextBlob, m1) {
		t.Fatal("C2 is not under M2")
	}
	if gdk, err := e.s.GenerateDataKey(ctx, e.c, &GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256"}); err != nil || gdk.KeyMaterialId != imp2.KeyMaterialId {
		t.Fatalf("GenerateDataKey KeyMaterialId: %+v, %v", gdk, err)
	}
	decrypts := func(when string) {
		t.Helper()
		for name, c := range map[string][]byte{"C1": c1.CiphertextBlob, "C2": c2.CiphertextBlob} {
			if _, err := e.s.Decrypt(ctx, e.c, &DecryptInput{CiphertextBlob: c}); err != nil {
				t.Fatalf("%s: Decrypt %s: %v", when, name, err)
			}
		}
	}
	decrypts("after the rotation")
	r = e.rotations(t, id, "")
	if len(r) != 1 || r[0].KeyMaterialId != imp2.KeyMaterialId || r[0].KeyMaterialState != materialCurrent || r[0].RotationType != rotationOnDemand ||
		r[0].RotationDate == nil || !r[0].RotationDate.Equal(rotatedAt) {
		t.Fatalf("ROTATIONS_ONLY after the rotation: %+v", r)
	}
	if r := e.rotations(t, id, "ALL_KEY_MATERIAL"); len(r) != 2 || r[0].KeyMaterialState != materialNonCurrent || r[1].KeyMaterialState != materialCurrent {
		t.Fatalf("ALL_KEY_MATERIAL after the rotation: %+v", r)
	}
	// Rotating again needs new pending material.
	_, err = e.s.RotateKeyOnDemand(ctx, e.c, &KeyIDInput{KeyId: id})
	wantKind(t, err, ErrInvalidState)

	// Deleting the non-current M1: the key is PendingImport, its entry
	// PENDING_IMPORT; C1 and C2 are refused.
	del, err := e.s.DeleteImportedKeyMaterial(ctx, e.c, &DeleteImportedKeyMaterialInput{KeyId: id, KeyMaterialId: imp1.KeyMaterialId})
	if err != nil || del.KeyMaterialId != imp1.KeyMaterialId {
		t.Fatalf("DeleteImportedKeyMaterial M1: %+v, %v", del, err)
	}
	if m := e.describe(t, id); m.KeyState != StatePendingImport || m.CurrentKeyMaterialId != imp2.KeyMaterialId {
		t.Fatalf("after deleting M1: %+v", m)
	}
	if r := e.rotations(t, id, "ALL_KEY_MATERIAL"); r[0].ImportState != importPending || r[0].ExpirationModel != "" || r[1].ImportState != importImported {
		t.Fatalf("ALL_KEY_MATERIAL after deleting M1: %+v", r)
	}
	_, err = e.s.Decrypt(ctx, e.c, &DecryptInput{CiphertextBlob: c2.CiphertextBlob})
	wantKind(t, err, ErrInvalidState)

	// A restart reads it all back; M1 re-imported by its KeyMaterialId
	// goes to its own version. Other material under M1's ID is refused.
	e.s = e.open(t)
	_, err = e.importAs(t, id, m2, ImportTypeExisting, imp1.KeyMaterialId, nil, nil)
	wantKind(t, err, ErrIncorrectKeyMaterial)
	if _, err := e.importAs(t, id, m1, ImportTypeExisting, imp1.KeyMaterialId, nil, nil); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, id); m.KeyState != StateEnabled || m.CurrentKeyMaterialId != imp2.KeyMaterialId {
		t.Fatalf("after re-importing M1: %+v", m)
	}
	decrypts("after re-importing M1 and a restart")
	if r := e.rotations(t, id, "ALL_KEY_MATERIAL"); *r[0].KeyMaterialDescription != first || r[0].ImportState != importImported {
		t.Fatalf("M1 after its re-import: %+v", r[0])
	}

	// M2 expires: the maintenance loop deletes it alone.
	e.clock.advance(72 * time.Hour)
	if _, _, err := e.s.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, id); m.KeyState != StatePendingImport || m.ExpirationModel != ExpirationDoesNotExpire {
		t.Fatalf("after M2 expired: %+v", m)
	}
	if r := e.rotations(t, id, "ALL_KEY_MATERIAL"); r[0].ImportState != importImported || r[1].ImportState != importPending {
		t.Fatalf("after M2 expired: %+v", r)
	}
	if _, err := e.importAs(t, id, m2, "", "", nil, nil); err != nil { // EXISTING by default, found by its ID
		t.Fatal(err)
	}
	decrypts("after re-importing M2")
}

// TestImportPendingMaterial: material pending rotation is not permanently
// associated: deleting it (by its KeyMaterialId) leaves the key as it
// was, its expiry likewise, and other material can take its place.
func TestImportPendingMaterial(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	id := e.createExternal(t, "", "")
	m1 := bytes.Repeat([]byte{1}, 32)
	if _, err := e.importAs(t, id, m1, "", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	p, err := e.importAs(t, id, bytes.Repeat([]byte{2}, 32), ImportTypeNew, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.DeleteImportedKeyMaterial(ctx, e.c, &DeleteImportedKeyMaterialInput{KeyId: id, KeyMaterialId: p.KeyMaterialId}); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, id); m.KeyState != StateEnabled {
		t.Fatalf("deleting pending material changed the key: %+v", m)
	}
	if r := e.rotations(t, id, "ALL_KEY_MATERIAL"); len(r) != 1 {
		t.Fatalf("pending material listed after its deletion: %+v", r)
	}
	_, err = e.s.RotateKeyOnDemand(ctx, e.c, &KeyIDInput{KeyId: id})
	wantKind(t, err, ErrInvalidState)
	// Its ID is gone: deleting it again is NotFound.
	_, err = e.s.DeleteImportedKeyMaterial(ctx, e.c, &DeleteImportedKeyMaterialInput{KeyId: id, KeyMaterialId: p.KeyMaterialId})
	wantKind(t, err, ErrNotFound)

	// Other material in its place, expiring: the expiry drops it.
	validTo := e.clock.Now().Add(time.Hour)
	p3, err := e.importAs(t, id, bytes.Repeat([]byte{3}, 32), ImportTypeNew, "", nil, &validTo)
	if err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, id); m.ValidTo != nil {
		t.Fatalf("DescribeKey's ValidTo counts pending material: %+v", m)
	}
	e.clock.advance(2 * time.Hour)
	if _, _, err := e.s.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, id); m.KeyState != StateEnabled {
		t.Fatalf("expiry of pending material changed the key: %+v", m)
	}
	if r := e.rotations(t, id, "ALL_KEY_MATERIAL"); len(r) != 1 {
		t.Fatalf("expired pending material listed: %+v", r)
	}
	_ = p3

	// The 25 on-demand rotations of AWS's quota count imported ones too.
	if _, err := e.s.updateKey(ctx, id, func(_ keystore.Tx, r *keyRecord) (*keyRecord, error) {
		r.OnDemandRotations = maxOnDemand
		return r, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.importAs(t, id, bytes.Repeat([]byte{4}, 32), ImportTypeNew, "", nil, nil); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.RotateKeyOnDemand(ctx, e.c, &KeyIDInput{KeyId: id})
	wantKind(t, err, ErrLimitExceeded)
}

// TestImportRotationRefusals: what keeps its one material (ImportType is
// "only usable with symmetric encryption keys": ValidationException), and
// what rotates only on demand.
func TestImportRotationRefusals(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	// An HMAC key and an asymmetric key cannot get new material.
	h := e.createExternal(t, "HMAC_256", "GENERATE_VERIFY_MAC")
	if _, err := e.importAs(t, h, bytes.Repeat([]byte{5}, 32), "", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	_, err := e.importAs(t, h, bytes.Repeat([]byte{6}, 32), ImportTypeNew, "", nil, nil)
	wantKind(t, err, ErrValidation)
	_, err = e.importAs(t, h, bytes.Repeat([]byte{5}, 32), ImportTypeExisting, "", nil, nil)
	wantKind(t, err, ErrValidation)
	ec := e.createExternal(t, "ECC_NIST_P256", "SIGN_VERIFY")
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	if _, err := e.importMaterial(t, ec, wrapAESKeyWrap256, der, nil); err != nil {
		t.Fatal(err)
	}
	p := e.params(t, ec, wrapAESKeyWrap256)
	priv2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der2, _ := x509.MarshalPKCS8PrivateKey(priv2)
	_, err = e.s.ImportKeyMaterial(ctx, e.c, &ImportKeyMaterialInput{KeyId: ec, ImportToken: p.ImportToken, ImportType: ImportTypeNew,
		EncryptedKeyMaterial: wrapForImport(t, p.PublicKey, wrapAESKeyWrap256, der2), ExpirationModel: ExpirationDoesNotExpire})
	wantKind(t, err, ErrValidation)
	_, err = e.s.RotateKeyOnDemand(ctx, e.c, &KeyIDInput{KeyId: h})
	wantKind(t, err, ErrUnsupportedOperation)

	// Automatic rotation stays refused for imported material.
	id := e.createExternal(t, "", "")
	if _, err := e.importAs(t, id, bytes.Repeat([]byte{7}, 32), "", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.EnableKeyRotation(ctx, e.c, &EnableKeyRotationInput{KeyId: id})
	wantKind(t, err, ErrUnsupportedOperation)
	_, err = e.s.DisableKeyRotation(ctx, e.c, &KeyIDInput{KeyId: id})
	wantKind(t, err, ErrUnsupportedOperation)
}

// TestImportWrappingChecks: the wrapping algorithms AWS's
// GetParametersForImport documents per kind of material.
func TestImportWrappingChecks(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	params := func(id, alg, spec string) error {
		_, err := e.s.GetParametersForImport(ctx, e.c, &GetParametersForImportInput{KeyId: id, WrappingAlgorithm: alg, WrappingKeySpec: spec})
		return err
	}
	rsaKey := e.createExternal(t, "RSA_2048", "SIGN_VERIFY")
	for _, alg := range []string{wrapOAEPSHA1, wrapOAEPSHA256} {
		wantKind(t, params(rsaKey, alg, "RSA_4096"), ErrUnsupportedOperation)
	}
	p521 := e.createExternal(t, "ECC_NIST_P521", "SIGN_VERIFY")
	for _, alg := range []string{wrapOAEPSHA1, wrapOAEPSHA256} {
		wantKind(t, params(p521, alg, "RSA_2048"), ErrUnsupportedOperation)
		if err := params(p521, alg, "RSA_3072"); err != nil {
			t.Errorf("%s with RSA_3072 for ECC_NIST_P521: %v", alg, err)
		}
	}
	if err := params(p521, wrapAESKeyWrap256, "RSA_2048"); err != nil {
		t.Errorf("RSA_AES_KEY_WRAP_SHA_256 with RSA_2048 for ECC_NIST_P521: %v", err)
	}
	// An RSA private key imported with RSA_AES_KEY_WRAP.
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	if _, err := e.importMaterial(t, rsaKey, wrapAESKeyWrapSHA1, der, nil); err != nil {
		t.Fatalf("RSA private key with RSA_AES_KEY_WRAP_SHA_1: %v", err)
	}
}

// TestImportLegacyRecord reads a key record written before expiry was
// kept per material (the expiry on the key): the current material gets
// it, DescribeKey and ListKeyRotations report it, and expiry applies.
func TestImportLegacyRecord(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	id := e.createExternal(t, "", "")
	raw := bytes.Repeat([]byte{8}, 32)
	validTo := e.clock.Now().Add(10 * time.Hour)
	if _, err := e.importMaterial(t, id, wrapOAEPSHA256, raw, &validTo); err != nil {
		t.Fatal(err)
	}
	// Rewrite the record in the old shape.
	if _, err := e.s.updateKey(ctx, id, func(_ keystore.Tx, r *keyRecord) (*keyRecord, error) {
		v := &r.Versions[0]
		r.ExpirationModel, r.ValidTo = v.ExpirationModel, v.ValidTo
		v.ExpirationModel, v.ValidTo = "", time.Time{}
		return r, nil
	}); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	e.s.store.View(ctx, func(tx keystore.Tx) (err error) {
		stored, err = tx.Get(bucketKeys, id)
		return err
	})
	if !bytes.Contains(stored, []byte(`"expirationModel":"KEY_MATERIAL_EXPIRES","validTo"`)) {
		t.Fatalf("the record was not rewritten in the old shape")
	}
	e.s = e.open(t)
	m := e.describe(t, id)
	if m.ExpirationModel != ExpirationExpires || m.ValidTo == nil || !m.ValidTo.Equal(validTo) {
		t.Fatalf("DescribeKey of an old record: %+v", m)
	}
	if r := e.rotations(t, id, "ALL_KEY_MATERIAL"); r[0].ExpirationModel != ExpirationExpires || !r[0].ValidTo.Equal(validTo) {
		t.Fatalf("ListKeyRotations of an old record: %+v", r)
	}
	e.clock.advance(11 * time.Hour)
	if _, _, err := e.s.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, id); m.KeyState != StatePendingImport {
		t.Fatalf("an old record's material did not expire: %+v", m)
	}
}

// TestRewrapImportTokens moves a data dir with an unused import token and
// material pending rotation to another root (RewrapAll): the token's
// wrapping private key opens under the new root (the token imports), and
// so does the pending material (rotated in, it encrypts under its raw
// bytes). A second run finds everything moved.
func TestRewrapImportTokens(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	id := e.createExternal(t, "", "")
	m1, m2 := bytes.Repeat([]byte{0x41}, 32), bytes.Repeat([]byte{0x42}, 32)
	if _, err := e.importAs(t, id, m1, "", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.importAs(t, id, m2, ImportTypeNew, "", nil, nil); err != nil {
		t.Fatal(err)
	}
	tok := e.params(t, id, wrapAESKeyWrap256) // left unused: to be moved
	// A token of a key that is gone by the time of the move is dropped.
	gone := e.createExternal(t, "", "")
	e.params(t, gone, wrapOAEPSHA256)
	if _, err := e.s.updateKey(ctx, gone, func(keystore.Tx, *keyRecord) (*keyRecord, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	e.s.Close()

	to, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := RewrapAll(ctx, e.store, "", e.root, to)
	if err != nil || st.ImportTokens != 1 || st.KeyVersions != 2 {
		t.Fatalf("RewrapAll: %+v, %v", st, err)
	}
	if st, err := RewrapAll(ctx, e.store, "", e.root, to); err != nil || st.ImportTokens != 0 || st.KeyVersions != 0 || st.AlreadyMoved != 4 {
		t.Fatalf("second RewrapAll: %+v, %v", st, err)
	}
	e.root = to
	e.s = e.open(t)
	if n := countImportTokens(t, e.s, ""); n != 1 {
		t.Fatalf("%d import tokens after the move, want the one of the live key", n)
	}
	// The moved token imports (M1 again, into its version).
	if _, err := e.s.ImportKeyMaterial(ctx, e.c, &ImportKeyMaterialInput{KeyId: id, ImportToken: tok.ImportToken,
		EncryptedKeyMaterial: wrapForImport(t, tok.PublicKey, wrapAESKeyWrap256, m1), ExpirationModel: ExpirationDoesNotExpire}); err != nil {
		t.Fatalf("import with a token moved to the new root: %v", err)
	}
	if _, err := e.s.RotateKeyOnDemand(ctx, e.c, &KeyIDInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	c, err := e.s.Encrypt(ctx, e.c, &EncryptInput{KeyId: id, Plaintext: []byte("moved")})
	if err != nil || !openedUnder(t, c.CiphertextBlob, m2) {
		t.Fatalf("encryption under the moved pending material: %v", err)
	}
}

// TestImportPendingConcurrent: concurrent NEW_KEY_MATERIAL imports of
// different material into one key leave exactly one material pending; the
// others are refused as a second pending material (or a conflict), never
// stored, and the one pending rotates in and encrypts under its bytes.
func TestImportPendingConcurrent(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	id := e.createExternal(t, "", "")
	if _, err := e.importAs(t, id, bytes.Repeat([]byte{0x50}, 32), "", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	const n = 6
	ins := make([]*ImportKeyMaterialInput, n)
	materials := make([][]byte, n)
	for i := range ins {
		materials[i] = bytes.Repeat([]byte{byte(0x60 + i)}, 32)
		p := e.params(t, id, wrapOAEPSHA256)
		ins[i] = &ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken, ImportType: ImportTypeNew,
			EncryptedKeyMaterial: wrapForImport(t, p.PublicKey, wrapOAEPSHA256, materials[i]), ExpirationModel: ExpirationDoesNotExpire}
	}
	errs := make([]error, n)
	done := make(chan int)
	for i := range ins {
		go func() {
			_, errs[i] = e.s.ImportKeyMaterial(ctx, e.c, ins[i])
			done <- i
		}()
	}
	for range n {
		<-done
	}
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("imports %d and %d both succeeded", won, i)
		case err == nil:
			won = i
		case kindOfErr(err) != ErrInvalidState && kindOfErr(err) != ErrConflict:
			t.Fatalf("import %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no import succeeded")
	}
	r := e.rotations(t, id, "ALL_KEY_MATERIAL")
	if len(r) != 2 || r[1].KeyMaterialState != materialPendingRotation || r[1].KeyMaterialId != importedMaterialID(id, materials[won]) {
		t.Fatalf("after the concurrent imports: %+v", r)
	}
	if _, err := e.s.RotateKeyOnDemand(ctx, e.c, &KeyIDInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	c, err := e.s.Encrypt(ctx, e.c, &EncryptInput{KeyId: id, Plaintext: []byte("x")})
	if err != nil || !openedUnder(t, c.CiphertextBlob, materials[won]) {
		t.Fatalf("encryption after rotating the winner in: %v", err)
	}
}
