package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// importIn imports material into key id through client c, wrapped by
// openssl under a fresh wrapping key; validTo nil means the material does
// not expire.
func importIn(t *testing.T, c *awskms.Client, id string, material []byte, validTo *time.Time) (*awskms.ImportKeyMaterialOutput, error) {
	t.Helper()
	ctx := context.Background()
	p, err := c.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: &id,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	if err != nil {
		t.Fatal(err)
	}
	in := &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: p.ImportToken,
		EncryptedKeyMaterial: opensslWrap(t, p.PublicKey, types.AlgorithmSpecRsaesOaepSha256, material),
		ExpirationModel:      types.ExpirationModelTypeKeyMaterialDoesNotExpire}
	if validTo != nil {
		in.ExpirationModel, in.ValidTo = types.ExpirationModelTypeKeyMaterialExpires, validTo
	}
	return c.ImportKeyMaterial(ctx, in)
}

// TestMultiRegionImportedOverTheWire is a multi-Region key with imported
// material in two Regions over the socket, as AWS's developer guide
// ("Importing key material into multi-Region keys") describes it: the
// primary is created PendingImport and cannot be replicated before it has
// material; its replica is created PendingImport with no material (AWS
// does not copy imported material to replicas); other material is refused
// by the replica (IncorrectKeyMaterialException) and the primary's is
// taken, with the primary's KeyMaterialId; ciphertext of each Region
// decrypts in the other and opens with the standard library under the raw
// material; each key has its own expiry, and the expiry of the primary's
// material leaves the replica usable; a restart keeps everything; new
// material and on-demand rotation stay refused.
func TestMultiRegionImportedOverTheWire(t *testing.T) {
	needOpenSSL(t)
	e, eu := newRegionsEnv(t)
	ctx := context.Background()
	us := e.client
	k, err := us.CreateKey(ctx, &awskms.CreateKeyInput{MultiRegion: aws.Bool(true), Origin: types.OriginTypeExternal})
	if err != nil {
		t.Fatal(err)
	}
	id := *k.KeyMetadata.KeyId
	if k.KeyMetadata.KeyState != types.KeyStatePendingImport || k.KeyMetadata.Origin != types.OriginTypeExternal || !aws.ToBool(k.KeyMetadata.MultiRegion) {
		t.Fatalf("CreateKey: %+v", k.KeyMetadata)
	}
	// The key-state table: ReplicateKey of a PendingImport key is [5].
	_, err = us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String(otherRegion)})
	wantCode(t, err, "KMSInvalidStateException")

	raw, other := make([]byte, 32), make([]byte, 32)
	rand.Read(raw)
	rand.Read(other)
	primaryValidTo := e.clock.Now().Add(2 * time.Hour).Truncate(time.Second)
	imp, err := importIn(t, us, id, raw, &primaryValidTo)
	if err != nil {
		t.Fatal(err)
	}
	c1 := must[*awskms.EncryptOutput](t)(us.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("from us")}))

	rep := must[*awskms.ReplicateKeyOutput](t)(us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String(otherRegion)}))
	m := rep.ReplicaKeyMetadata
	if m.KeyState != types.KeyStatePendingImport || m.Origin != types.OriginTypeExternal || m.ValidTo != nil || m.ExpirationModel != "" ||
		m.MultiRegionConfiguration == nil || m.MultiRegionConfiguration.MultiRegionKeyType != types.MultiRegionKeyTypeReplica {
		t.Fatalf("ReplicateKey of an EXTERNAL primary: %+v", m)
	}
	// No material in the replica yet.
	_, err = eu.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: c1.CiphertextBlob})
	wantCode(t, err, "KMSInvalidStateException")
	_, err = eu.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x")})
	wantCode(t, err, "KMSInvalidStateException")

	// Other material is refused; new material cannot be imported into a replica.
	_, err = importIn(t, eu, id, other, nil)
	wantCode(t, err, "IncorrectKeyMaterialException")
	p, err := eu.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: &id,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eu.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: p.ImportToken,
		EncryptedKeyMaterial: opensslWrap(t, p.PublicKey, types.AlgorithmSpecRsaesOaepSha256, other),
		ExpirationModel:      types.ExpirationModelTypeKeyMaterialDoesNotExpire, ImportType: types.ImportTypeNewKeyMaterial})
	wantCode(t, err, "UnsupportedOperationException")
	// A token of one Region's key is not the other's.
	pu, err := us.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: &id,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eu.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: pu.ImportToken,
		EncryptedKeyMaterial: opensslWrap(t, pu.PublicKey, types.AlgorithmSpecRsaesOaepSha256, raw),
		ExpirationModel:      types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	wantCode(t, err, "InvalidImportTokenException")

	// The same material, with its own expiry model: the primary's KeyMaterialId.
	rimp, err := importIn(t, eu, id, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *rimp.KeyMaterialId != *imp.KeyMaterialId || *rimp.KeyId != *m.Arn {
		t.Fatalf("replica import: %+v, primary's material %s", rimp, *imp.KeyMaterialId)
	}
	describe := func(c *awskms.Client) *types.KeyMetadata {
		t.Helper()
		return must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id})).KeyMetadata
	}
	if d := describe(eu); d.KeyState != types.KeyStateEnabled || d.ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire ||
		d.ValidTo != nil || *d.CurrentKeyMaterialId != *imp.KeyMaterialId {
		t.Fatalf("replica after import: %+v", d)
	}
	if d := describe(us); d.ExpirationModel != types.ExpirationModelTypeKeyMaterialExpires || !d.ValidTo.Equal(primaryValidTo) {
		t.Fatalf("primary's expiry changed: %s %v", d.ExpirationModel, d.ValidTo)
	}

	roundTrip := func(enc, dec *awskms.Client, msg string) []byte {
		t.Helper()
		ct := must[*awskms.EncryptOutput](t)(enc.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte(msg)}))
		pt := must[*awskms.DecryptOutput](t)(dec.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct.CiphertextBlob}))
		if string(pt.Plaintext) != msg {
			t.Fatalf("decrypted %q", pt.Plaintext)
		}
		return ct.CiphertextBlob
	}
	pt := must[*awskms.DecryptOutput](t)(eu.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: c1.CiphertextBlob}))
	if string(pt.Plaintext) != "from us" {
		t.Fatalf("eu-west-1 decrypted %q", pt.Plaintext)
	}
	roundTrip(us, eu, "us to eu")
	fromEU := roundTrip(eu, us, "eu to us")
	if got, ok := openWithStdlib(t, fromEU, raw); !ok || string(got) != "eu to us" {
		t.Fatal("the replica's ciphertext does not open under the raw material with the standard library")
	}
	if _, ok := openWithStdlib(t, fromEU, other); ok {
		t.Fatal("the replica's ciphertext opens under other material")
	}

	// Rotation of imported material in a family stays refused.
	_, err = importIn(t, us, id, other, nil)
	wantCode(t, err, "IncorrectKeyMaterialException") // not the primary's material, and no NEW_KEY_MATERIAL
	_, err = us.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id})
	wantCode(t, err, "UnsupportedOperationException")
	_, err = eu.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id})
	wantCode(t, err, "UnsupportedOperationException")

	// A restart keeps both keys, their material and their expiries.
	e.restart()
	us, eu = e.client, e.clientIn(otherRegion)
	roundTrip(us, eu, "after restart")
	roundTrip(eu, us, "after restart, back")

	// The primary's material expires (injected clock, maintenance loop):
	// the primary is PendingImport, the replica is unaffected.
	e.clock.Advance(3 * time.Hour)
	if _, _, err := e.svc.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	euSvc, err := e.svc.InRegion(otherRegion)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := euSvc.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	if s := describe(us).KeyState; s != types.KeyStatePendingImport {
		t.Fatalf("primary after its ValidTo: %s", s)
	}
	if s := describe(eu).KeyState; s != types.KeyStateEnabled {
		t.Fatalf("replica after the primary's ValidTo: %s", s)
	}
	_, err = us.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: fromEU})
	wantCode(t, err, "KMSInvalidStateException")
	pt = must[*awskms.DecryptOutput](t)(eu.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: c1.CiphertextBlob}))
	if string(pt.Plaintext) != "from us" {
		t.Fatalf("replica decrypted %q", pt.Plaintext)
	}
	// Re-importing the same material into the primary restores it.
	if _, err := importIn(t, us, id, raw, nil); err != nil {
		t.Fatal(err)
	}
	roundTrip(eu, us, "after re-import")
	if !bytes.Equal([]byte(*describe(us).CurrentKeyMaterialId), []byte(*describe(eu).CurrentKeyMaterialId)) {
		t.Fatal("the family's keys name different material")
	}
	// Deleting the replica's material leaves the primary as it is
	// (DeleteImportedKeyMaterial: "If you delete any key material of a
	// replica Region key, the primary Region key and other replica Region
	// keys remain unchanged").
	if _, err := eu.DeleteImportedKeyMaterial(ctx, &awskms.DeleteImportedKeyMaterialInput{KeyId: &id}); err != nil {
		t.Fatal(err)
	}
	if a, b := describe(eu).KeyState, describe(us).KeyState; a != types.KeyStatePendingImport || b != types.KeyStateEnabled {
		t.Fatalf("after deleting the replica's material: replica %s, primary %s", a, b)
	}
	roundTrip(us, us, "primary alone")
}

// TestMultiRegionImportedHMACOverTheWire: an imported HMAC multi-Region
// key ("You can create Multi-Region keys with imported symmetric,
// asymmetric, or HMAC key material") verifies in one Region a MAC made in
// the other once both have the same material.
func TestMultiRegionImportedHMACOverTheWire(t *testing.T) {
	needOpenSSL(t)
	e, eu := newRegionsEnv(t)
	ctx := context.Background()
	us := e.client
	k, err := us.CreateKey(ctx, &awskms.CreateKeyInput{MultiRegion: aws.Bool(true), Origin: types.OriginTypeExternal,
		KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	id := *k.KeyMetadata.KeyId
	raw := make([]byte, 32)
	rand.Read(raw)
	if _, err := importIn(t, us, id, raw, nil); err != nil {
		t.Fatal(err)
	}
	must[*awskms.ReplicateKeyOutput](t)(us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String(otherRegion)}))
	if _, err := importIn(t, eu, id, raw, nil); err != nil {
		t.Fatal(err)
	}
	mac := must[*awskms.GenerateMacOutput](t)(us.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: &id, Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256}))
	v := must[*awskms.VerifyMacOutput](t)(eu.VerifyMac(ctx, &awskms.VerifyMacInput{KeyId: &id, Message: []byte("m"), Mac: mac.Mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256}))
	if !v.MacValid {
		t.Fatal("the replica does not verify the primary's MAC")
	}
}

// TestMultiRegionConditionKeysOverTheWire applies AWS's example policies
// for the multi-Region condition keys (developer guide, "AWS KMS condition
// keys" and "Control access to multi-Region keys") over the socket: a key
// policy that denies ReplicateKey unless kms:ReplicaRegion is eu-west-1
// refuses a replica in ap-south-1 (before the Region is even looked at)
// and allows one in eu-west-1; a replica whose key policy denies Decrypt
// when kms:MultiRegionKeyType is REPLICA refuses it while its primary
// decrypts; a key policy that denies Encrypt for multi-Region keys
// (kms:MultiRegion true) refuses it on a multi-Region key only.
func TestMultiRegionConditionKeysOverTheWire(t *testing.T) {
	e, eu := newRegionsEnv(t)
	ctx := context.Background()
	us := e.client
	const allowRoot = `{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}`
	onlyEU := `{"Version":"2012-10-17","Statement":[` + allowRoot + `,
		{"Effect":"Deny","Principal":"*","Action":"kms:ReplicateKey","Resource":"*",
		 "Condition":{"StringNotEquals":{"kms:ReplicaRegion":["eu-west-1"]}}}]}`
	k, err := us.CreateKey(ctx, &awskms.CreateKeyInput{MultiRegion: aws.Bool(true), Policy: aws.String(onlyEU)})
	if err != nil {
		t.Fatal(err)
	}
	id := *k.KeyMetadata.KeyId
	_, err = us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("ap-south-1")})
	wantCode(t, err, "AccessDeniedException")

	noReplicaDecrypt := `{"Version":"2012-10-17","Statement":[` + allowRoot + `,
		{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*",
		 "Condition":{"StringEquals":{"kms:MultiRegionKeyType":"REPLICA"}}}]}`
	if _, err := us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String(otherRegion),
		Policy: aws.String(noReplicaDecrypt)}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: &id, PolicyName: aws.String("default"), Policy: aws.String(noReplicaDecrypt)}); err != nil {
		t.Fatal(err)
	}
	ct := must[*awskms.EncryptOutput](t)(eu.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x")}))
	_, err = eu.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	wantCode(t, err, "AccessDeniedException")
	if _, err := us.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct.CiphertextBlob}); err != nil {
		t.Fatalf("the primary (same policy) refuses Decrypt: %v", err)
	}

	singleRegionOnly := `{"Version":"2012-10-17","Statement":[` + allowRoot + `,
		{"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*",
		 "Condition":{"Bool":{"kms:MultiRegion":"true"}}}]}`
	for _, multi := range []bool{false, true} {
		k, err := us.CreateKey(ctx, &awskms.CreateKeyInput{MultiRegion: aws.Bool(multi), Policy: aws.String(singleRegionOnly)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = us.Encrypt(ctx, &awskms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("x")})
		if multi {
			wantCode(t, err, "AccessDeniedException")
		} else if err != nil {
			t.Fatalf("single-Region key: %v", err)
		}
	}
}
