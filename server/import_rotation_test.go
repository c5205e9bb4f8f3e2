package server_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"strconv"
	"testing"
	"time"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// openWithStdlib opens a symmetric ciphertext blob of Coffer's format
// (engine/blob.go: version | key ID | material version | salt | nonce |
// AES-256-GCM ciphertext and tag, the key HKDF-SHA-256 of the raw material
// with the salt and "coffer/v1 message key" | key ID | version, the header
// and an empty encryption context as additional data) with the standard
// library alone, under raw material: what an owner of imported material
// can do outside Coffer.
func openWithStdlib(t *testing.T, blob, raw []byte) ([]byte, bool) {
	t.Helper()
	if len(blob) < 65+16 || blob[0] != 1 {
		t.Fatalf("not a version-1 blob: %d bytes", len(blob))
	}
	header := blob[:65]
	info := append([]byte("coffer/v1 message key"), header[1:21]...)
	key, err := hkdf.Key(sha256.New, raw, header[21:53], string(info), 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	aad := append(bytes.Clone(header), 0, 0) // no encryption context: a zero pair count
	pt, err := gcm.Open(nil, header[53:65], blob[65:], aad)
	return pt, err == nil
}

// importTyped imports material into key id as importType (with
// KeyMaterialId mid when not ""), wrapped by openssl under a fresh
// wrapping key of alg and spec.
func importTyped(t *testing.T, e *testEnv, id string, alg types.AlgorithmSpec, spec types.WrappingKeySpec, material []byte,
	typ types.ImportType, mid string) (*awskms.ImportKeyMaterialOutput, error) {
	t.Helper()
	ctx := context.Background()
	p, err := e.client.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: &id, WrappingAlgorithm: alg, WrappingKeySpec: spec})
	if err != nil {
		t.Fatal(err)
	}
	in := &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: p.ImportToken, EncryptedKeyMaterial: opensslWrap(t, p.PublicKey, alg, material),
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire, ImportType: typ}
	if mid != "" {
		in.KeyMaterialId = &mid
	}
	return e.client.ImportKeyMaterial(ctx, in)
}

func listMaterial(t *testing.T, e *testEnv, id string, include types.IncludeKeyMaterial) []types.RotationsListEntry {
	t.Helper()
	out, err := e.client.ListKeyRotations(context.Background(), &awskms.ListKeyRotationsInput{KeyId: &id, IncludeKeyMaterial: include})
	if err != nil {
		t.Fatal(err)
	}
	return out.Rotations
}

// TestImportRotationOverTheWire is the on-demand rotation of an imported
// symmetric key through the SDK over the socket, material wrapped by
// openssl as AWS's guide shows: M1 imported, C1; M2 imported as
// NEW_KEY_MATERIAL shows PENDING_ROTATION; RotateKeyOnDemand makes it
// current; C2 opens with the standard library under M2's raw bytes (and
// not M1's), C1 under M1's; both decrypt; M1 deleted by KeyMaterialId,
// a restart, M1 re-imported into its own version; both decrypt again.
// Then each refusal's AWS code.
func TestImportRotationOverTheWire(t *testing.T) {
	needOpenSSL(t)
	e := newEnv(t)
	ctx := context.Background()
	k, err := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
	if err != nil {
		t.Fatal(err)
	}
	id := *k.KeyMetadata.KeyId
	m1, m2 := make([]byte, 32), make([]byte, 32)
	rand.Read(m1)
	rand.Read(m2)

	imp1, err := importTyped(t, e, id, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, m1, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c1, err := e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("under M1")})
	if err != nil {
		t.Fatal(err)
	}
	// RotateKeyOnDemand without material pending rotation.
	_, err = e.client.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id})
	wantCode(t, err, "KMSInvalidStateException")

	imp2, err := importTyped(t, e, id, types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa3072, m2, types.ImportTypeNewKeyMaterial, "")
	if err != nil {
		t.Fatal(err)
	}
	r := listMaterial(t, e, id, types.IncludeKeyMaterialAllKeyMaterial)
	if len(r) != 2 || *r[0].KeyMaterialId != *imp1.KeyMaterialId || r[0].KeyMaterialState != types.KeyMaterialStateCurrent ||
		*r[1].KeyMaterialId != *imp2.KeyMaterialId || r[1].KeyMaterialState != types.KeyMaterialStatePendingRotation ||
		r[1].ImportState != types.ImportStateImported || r[1].ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire {
		t.Fatalf("ListKeyRotations ALL_KEY_MATERIAL with M2 pending: %+v", r)
	}
	if r := listMaterial(t, e, id, types.IncludeKeyMaterialRotationsOnly); len(r) != 0 {
		t.Fatalf("ROTATIONS_ONLY before the rotation: %+v", r)
	}
	// A second pending material, and the same material again, are refused.
	_, err = importTyped(t, e, id, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, bytes.Repeat([]byte{9}, 32), types.ImportTypeNewKeyMaterial, "")
	wantCode(t, err, "KMSInvalidStateException")
	_, err = importTyped(t, e, id, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, m1, types.ImportTypeNewKeyMaterial, "")
	wantCode(t, err, "IncorrectKeyMaterialException")

	if _, err := e.client.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id}); err != nil {
		t.Fatal(err)
	}
	d, err := e.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id})
	if err != nil || *d.KeyMetadata.CurrentKeyMaterialId != *imp2.KeyMaterialId {
		t.Fatalf("DescribeKey after the rotation: %+v, %v", d, err)
	}
	c2, err := e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("under M2")})
	if err != nil {
		t.Fatal(err)
	}
	if pt, ok := openWithStdlib(t, c2.CiphertextBlob, m2); !ok || string(pt) != "under M2" {
		t.Fatal("C2 does not open under M2 with the standard library")
	}
	if _, ok := openWithStdlib(t, c2.CiphertextBlob, m1); ok {
		t.Fatal("C2 opens under M1")
	}
	if pt, ok := openWithStdlib(t, c1.CiphertextBlob, m1); !ok || string(pt) != "under M1" {
		t.Fatal("C1 does not open under M1 with the standard library")
	}
	r = listMaterial(t, e, id, types.IncludeKeyMaterialRotationsOnly)
	if len(r) != 1 || *r[0].KeyMaterialId != *imp2.KeyMaterialId || r[0].RotationType != types.RotationTypeOnDemand || r[0].RotationDate == nil ||
		r[0].KeyMaterialState != types.KeyMaterialStateCurrent {
		t.Fatalf("ROTATIONS_ONLY after the rotation: %+v", r)
	}
	decryptBoth := func(when string) {
		t.Helper()
		for _, c := range []struct {
			blob []byte
			want string
		}{{c1.CiphertextBlob, "under M1"}, {c2.CiphertextBlob, "under M2"}} {
			dec, err := e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: c.blob})
			if err != nil || string(dec.Plaintext) != c.want {
				t.Fatalf("%s: Decrypt %q: %v", when, c.want, err)
			}
		}
	}
	decryptBoth("after the rotation")

	// Delete the non-current M1: the key is PendingImport.
	del, err := e.client.DeleteImportedKeyMaterial(ctx, &awskms.DeleteImportedKeyMaterialInput{KeyId: &id, KeyMaterialId: imp1.KeyMaterialId})
	if err != nil || *del.KeyMaterialId != *imp1.KeyMaterialId {
		t.Fatalf("DeleteImportedKeyMaterial M1: %+v, %v", del, err)
	}
	_, err = e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: c2.CiphertextBlob})
	wantCode(t, err, "KMSInvalidStateException")
	if r := listMaterial(t, e, id, types.IncludeKeyMaterialAllKeyMaterial); r[0].ImportState != types.ImportStatePendingImport || r[1].ImportState != types.ImportStateImported {
		t.Fatalf("ALL_KEY_MATERIAL after deleting M1: %+v", r)
	}

	e.restart()
	_, err = importTyped(t, e, id, types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa2048, m2, types.ImportTypeExistingKeyMaterial, *imp1.KeyMaterialId)
	wantCode(t, err, "IncorrectKeyMaterialException")
	if _, err := importTyped(t, e, id, types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa2048, m1, types.ImportTypeExistingKeyMaterial, *imp1.KeyMaterialId); err != nil {
		t.Fatal(err)
	}
	d, _ = e.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id})
	if d.KeyMetadata.KeyState != types.KeyStateEnabled || *d.KeyMetadata.CurrentKeyMaterialId != *imp2.KeyMaterialId {
		t.Fatalf("after re-importing M1: %+v", d.KeyMetadata)
	}
	decryptBoth("after a restart and M1's re-import")

	// Refusals, each with AWS's exception.
	_, err = e.client.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: &id})
	wantCode(t, err, "UnsupportedOperationException")
	_, err = e.client.DeleteImportedKeyMaterial(ctx, &awskms.DeleteImportedKeyMaterialInput{KeyId: &id, KeyMaterialId: ptr(string(bytes.Repeat([]byte{'c'}, 64)))})
	wantCode(t, err, "NotFoundException")
	hk, _ := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if _, err := importTyped(t, e, *hk.KeyMetadata.KeyId, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, bytes.Repeat([]byte{1}, 32), "", ""); err != nil {
		t.Fatal(err)
	}
	_, err = importTyped(t, e, *hk.KeyMetadata.KeyId, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, bytes.Repeat([]byte{2}, 32), types.ImportTypeNewKeyMaterial, "")
	wantCode(t, err, "ValidationException")
	rk, _ := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
	_, err = e.client.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: rk.KeyMetadata.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa3072})
	wantCode(t, err, "UnsupportedOperationException")
	pk, _ := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecEccNistP521, KeyUsage: types.KeyUsageTypeSignVerify})
	_, err = e.client.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: pk.KeyMetadata.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha1, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	wantCode(t, err, "UnsupportedOperationException")
}

// TestImportedRotationStatusOverTheWire: GetKeyRotationStatus of a
// symmetric key with imported material answers KeyRotationEnabled false
// with no period, next date or on-demand start (automatic rotation cannot
// be enabled for it; on-demand rotation completes within the call), before
// and after an on-demand rotation and while it is disabled; in
// PendingImport, and for an imported HMAC key, it is refused with
// UnsupportedOperationException.
func TestImportedRotationStatusOverTheWire(t *testing.T) {
	needOpenSSL(t)
	e := newEnv(t)
	ctx := context.Background()
	k, err := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
	if err != nil {
		t.Fatal(err)
	}
	id := *k.KeyMetadata.KeyId
	_, err = e.client.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: &id})
	wantCode(t, err, "UnsupportedOperationException") // PendingImport, the key-state table's [6]
	status := func(when string) {
		t.Helper()
		st, err := e.client.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: &id})
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if st.KeyRotationEnabled || st.RotationPeriodInDays != nil || st.NextRotationDate != nil || st.OnDemandRotationStartDate != nil ||
			*st.KeyId != *k.KeyMetadata.Arn {
			t.Fatalf("%s: %+v", when, st)
		}
	}
	m1, m2 := make([]byte, 32), make([]byte, 32)
	rand.Read(m1)
	rand.Read(m2)
	if _, err := importTyped(t, e, id, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, m1, "", ""); err != nil {
		t.Fatal(err)
	}
	status("after the first import")
	if _, err := importTyped(t, e, id, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, m2, types.ImportTypeNewKeyMaterial, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id}); err != nil {
		t.Fatal(err)
	}
	status("after an on-demand rotation")
	if _, err := e.client.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &id}); err != nil {
		t.Fatal(err)
	}
	status("disabled")
	hk, _ := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if _, err := importTyped(t, e, *hk.KeyMetadata.KeyId, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, bytes.Repeat([]byte{1}, 32), "", ""); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: hk.KeyMetadata.KeyId})
	wantCode(t, err, "UnsupportedOperationException")
}

// TestImportConditionKeysOverTheWire applies AWS's example policies for
// the import condition keys (developer guide, "AWS KMS condition keys"):
// deny GetParametersForImport unless kms:WrappingAlgorithm is
// RSAES_OAEP_SHA_256 and kms:WrappingKeySpec RSA_3072; allow
// ImportKeyMaterial only with KEY_MATERIAL_DOES_NOT_EXPIRE, or only with
// a kms:ValidTo before a date.
func TestImportConditionKeysOverTheWire(t *testing.T) {
	needOpenSSL(t)
	e := newEnv(t)
	ctx := context.Background()
	limit := e.clock.Now().Add(48 * time.Hour).Unix()
	doc := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Deny","Principal":"*","Action":"kms:GetParametersForImport","Resource":"*",
		 "Condition":{"StringNotEquals":{"kms:WrappingAlgorithm":"RSAES_OAEP_SHA_256"}}},
		{"Effect":"Deny","Principal":"*","Action":"kms:GetParametersForImport","Resource":"*",
		 "Condition":{"StringNotEquals":{"kms:WrappingKeySpec":"RSA_3072"}}},
		{"Effect":"Deny","Principal":"*","Action":"kms:ImportKeyMaterial","Resource":"*",
		 "Condition":{"StringEquals":{"kms:ExpirationModel":"KEY_MATERIAL_EXPIRES"},"NumericGreaterThan":{"kms:ValidTo":"` + strconv.FormatInt(limit, 10) + `.0"}}}]}`
	k, err := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal, Policy: &doc, BypassPolicyLockoutSafetyCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	id := *k.KeyMetadata.KeyId
	for _, c := range []struct {
		alg  types.AlgorithmSpec
		spec types.WrappingKeySpec
		code string
	}{
		{types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa3072, "AccessDeniedException"},
		{types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, "AccessDeniedException"},
		{types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa3072, ""},
	} {
		_, err := e.client.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: &id, WrappingAlgorithm: c.alg, WrappingKeySpec: c.spec})
		if apiCode(err) != c.code {
			t.Errorf("GetParametersForImport %s %s: %v, want %q", c.alg, c.spec, err, c.code)
		}
	}
	raw := bytes.Repeat([]byte{4}, 32)
	imp := func(validTo *time.Time) error {
		p, err := e.client.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: &id,
			WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa3072})
		if err != nil {
			t.Fatal(err)
		}
		in := &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: p.ImportToken,
			EncryptedKeyMaterial: opensslWrap(t, p.PublicKey, types.AlgorithmSpecRsaesOaepSha256, raw),
			ExpirationModel:      types.ExpirationModelTypeKeyMaterialDoesNotExpire}
		if validTo != nil {
			in.ExpirationModel, in.ValidTo = types.ExpirationModelTypeKeyMaterialExpires, validTo
		}
		_, err = e.client.ImportKeyMaterial(ctx, in)
		return err
	}
	late, early := e.clock.Now().Add(72*time.Hour), e.clock.Now().Add(24*time.Hour)
	wantCode(t, imp(&late), "AccessDeniedException")
	if err := imp(&early); err != nil {
		t.Fatalf("ValidTo before the policy's limit: %v", err)
	}
	if err := imp(nil); err != nil {
		t.Fatalf("KEY_MATERIAL_DOES_NOT_EXPIRE: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
