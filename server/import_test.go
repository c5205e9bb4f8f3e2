package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/coffer-kms/coffer/engine"
)

// opensslWrap wraps material for import as AWS's developer guide
// ("Encrypt the key material") does with OpenSSL: pkeyutl RSA-OAEP under
// the wrapping public key for RSAES_OAEP_*, and for RSA_AES_KEY_WRAP_* a
// fresh AES-256 key wrapping the material with id-aes256-wrap-pad (RFC
// 5649) followed by pkeyutl OAEP of the AES key, the OAEP part first.
func opensslWrap(t *testing.T, pubDER []byte, alg types.AlgorithmSpec, material []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	pub, mat := filepath.Join(dir, "pub.der"), filepath.Join(dir, "material.bin")
	os.WriteFile(pub, pubDER, 0o600)
	os.WriteFile(mat, material, 0o600)
	md := "sha256"
	if alg == types.AlgorithmSpecRsaesOaepSha1 || alg == types.AlgorithmSpecRsaAesKeyWrapSha1 {
		md = "sha1"
	}
	oaep := func(in string) []byte {
		out, err := exec.Command("openssl", "pkeyutl", "-encrypt", "-in", in, "-inkey", pub, "-keyform", "DER", "-pubin",
			"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+md).Output()
		if err != nil {
			t.Fatalf("openssl pkeyutl: %v", err)
		}
		return out
	}
	if alg == types.AlgorithmSpecRsaesOaepSha1 || alg == types.AlgorithmSpecRsaesOaepSha256 {
		return oaep(mat)
	}
	aesKey := make([]byte, 32)
	rand.Read(aesKey)
	aesFile := filepath.Join(dir, "aes.bin")
	os.WriteFile(aesFile, aesKey, 0o600)
	wrapped, err := exec.Command("openssl", "enc", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(aesKey), "-iv", "A65959A6", "-in", mat).Output()
	if err != nil {
		t.Fatalf("openssl enc -id-aes256-wrap-pad: %v", err)
	}
	return append(oaep(aesFile), wrapped...)
}

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed: the import tests wrap material with it as AWS's documentation does")
	}
}

func importWith(t *testing.T, e *testEnv, id string, alg types.AlgorithmSpec, spec types.WrappingKeySpec, material []byte, validTo *time.Time) (*awskms.ImportKeyMaterialOutput, error) {
	t.Helper()
	ctx := context.Background()
	p, err := e.client.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: &id, WrappingAlgorithm: alg, WrappingKeySpec: spec})
	if err != nil {
		t.Fatal(err)
	}
	// The wire carries milliseconds.
	if p.ParametersValidTo == nil || p.ParametersValidTo.Sub(e.clock.Now()).Round(time.Second) != 24*time.Hour {
		t.Fatalf("ParametersValidTo %v", p.ParametersValidTo)
	}
	in := &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: p.ImportToken, EncryptedKeyMaterial: opensslWrap(t, p.PublicKey, alg, material),
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}
	if validTo != nil {
		in.ExpirationModel, in.ValidTo = types.ExpirationModelTypeKeyMaterialExpires, validTo
	}
	return e.client.ImportKeyMaterial(ctx, in)
}

// TestImportCycle is the whole import cycle over the wire, for each
// wrapping algorithm, with the material wrapped by openssl: Encrypt and
// Decrypt with the imported key, the ciphertext opened by engine.Open
// under the same raw key; delete; re-import; the old ciphertext decrypts.
func TestImportCycle(t *testing.T) {
	needOpenSSL(t)
	e := newEnv(t)
	ctx := context.Background()
	for _, alg := range []types.AlgorithmSpec{types.AlgorithmSpecRsaesOaepSha1, types.AlgorithmSpecRsaesOaepSha256,
		types.AlgorithmSpecRsaAesKeyWrapSha1, types.AlgorithmSpecRsaAesKeyWrapSha256} {
		t.Run(string(alg), func(t *testing.T) {
			k, err := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
			if err != nil {
				t.Fatal(err)
			}
			id := *k.KeyMetadata.KeyId
			if k.KeyMetadata.KeyState != types.KeyStatePendingImport {
				t.Fatalf("state %s", k.KeyMetadata.KeyState)
			}
			raw := make([]byte, 32)
			rand.Read(raw)
			spec := types.WrappingKeySpecRsa2048
			if alg == types.AlgorithmSpecRsaAesKeyWrapSha256 {
				spec = types.WrappingKeySpecRsa4096 // one 4096-bit case
			}
			imp, err := importWith(t, e, id, alg, spec, raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id})
			if err != nil || d.KeyMetadata.KeyState != types.KeyStateEnabled || *d.KeyMetadata.CurrentKeyMaterialId != *imp.KeyMaterialId ||
				d.KeyMetadata.ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire {
				t.Fatalf("DescribeKey after import: %+v, %v", d, err)
			}
			enc, err := e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("imported")})
			if err != nil {
				t.Fatal(err)
			}
			blob, err := engine.ParseBlob(enc.CiphertextBlob)
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := engine.Open(nil, engine.Material(raw), blob, nil); err != nil || string(pt) != "imported" {
				t.Fatalf("engine.Open under the raw key: %q %v", pt, err)
			}
			if _, err := e.client.DeleteImportedKeyMaterial(ctx, &awskms.DeleteImportedKeyMaterialInput{KeyId: &id}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); apiCode(err) != "KMSInvalidStateException" {
				t.Fatalf("Decrypt without material: %v", err)
			}
			if _, err := importWith(t, e, id, alg, types.WrappingKeySpecRsa2048, bytes.Repeat([]byte{1}, 32), nil); apiCode(err) != "IncorrectKeyMaterialException" {
				t.Fatalf("other material: %v", err)
			}
			if _, err := importWith(t, e, id, alg, types.WrappingKeySpecRsa2048, raw, nil); err != nil {
				t.Fatal(err)
			}
			dec, err := e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
			if err != nil || string(dec.Plaintext) != "imported" {
				t.Fatalf("Decrypt after re-import: %v", err)
			}
		})
	}
}

// TestImportErrorsOverTheWire sends each import error's AWS code, expiry
// by the injected clock included, and an HMAC import checked with
// crypto/hmac.
func TestImportErrorsOverTheWire(t *testing.T) {
	needOpenSSL(t)
	e := newEnv(t)
	ctx := context.Background()
	k, _ := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
	id := *k.KeyMetadata.KeyId
	raw := bytes.Repeat([]byte{5}, 32)
	p, err := e.client.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: &id,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	if err != nil {
		t.Fatal(err)
	}
	good := opensslWrap(t, p.PublicKey, types.AlgorithmSpecRsaesOaepSha256, raw)
	bad := bytes.Clone(good)
	bad[10] ^= 1
	badToken := bytes.Clone(p.ImportToken)
	badToken[5] ^= 1
	for _, c := range []struct {
		name, code  string
		token, blob []byte
	}{
		{"bad token", "InvalidImportTokenException", badToken, good},
		{"bad material", "InvalidCiphertextException", p.ImportToken, bad},
	} {
		_, err := e.client.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: c.token, EncryptedKeyMaterial: c.blob,
			ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
		if apiCode(err) != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
	}
	if _, err := e.client.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{KeyId: &id,
		WrappingAlgorithm: types.AlgorithmSpecRsaesPkcs1V15, WrappingKeySpec: types.WrappingKeySpecRsa2048}); apiCode(err) != "UnsupportedOperationException" {
		t.Errorf("RSAES_PKCS1_V1_5: %v", err)
	}
	far := e.clock.Now().Add(400 * 24 * time.Hour)
	if _, err := e.client.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: p.ImportToken, EncryptedKeyMaterial: good,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialExpires, ValidTo: &far}); apiCode(err) != "ValidationException" {
		t.Errorf("ValidTo past 365 days: %v", err)
	}
	e.clock.Advance(25 * time.Hour)
	if _, err := e.client.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: &id, ImportToken: p.ImportToken, EncryptedKeyMaterial: good,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}); apiCode(err) != "ExpiredImportTokenException" {
		t.Errorf("expired token: %v", err)
	}

	// Expiry by the injected clock: the maintenance loop deletes the material.
	validTo := e.clock.Now().Add(time.Hour).Truncate(time.Second)
	if _, err := importWith(t, e, id, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048, raw, &validTo); err != nil {
		t.Fatal(err)
	}
	d, _ := e.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id})
	if d.KeyMetadata.ValidTo == nil || !d.KeyMetadata.ValidTo.Equal(validTo) || d.KeyMetadata.ExpirationModel != types.ExpirationModelTypeKeyMaterialExpires {
		t.Fatalf("DescribeKey ValidTo %v, model %s", d.KeyMetadata.ValidTo, d.KeyMetadata.ExpirationModel)
	}
	e.clock.Advance(2 * time.Hour)
	if _, _, err := e.svc.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ = e.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id})
	if d.KeyMetadata.KeyState != types.KeyStatePendingImport {
		t.Fatalf("after ValidTo: %s", d.KeyMetadata.KeyState)
	}

	// HMAC.
	hk, _ := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	hraw := bytes.Repeat([]byte{6}, 32)
	if _, err := importWith(t, e, *hk.KeyMetadata.KeyId, types.AlgorithmSpecRsaAesKeyWrapSha1, types.WrappingKeySpecRsa2048, hraw, nil); err != nil {
		t.Fatal(err)
	}
	mac, err := e.client.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: hk.KeyMetadata.KeyId, Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, hraw)
	h.Write([]byte("m"))
	if !hmac.Equal(h.Sum(nil), mac.Mac) {
		t.Fatal("GenerateMac differs from crypto/hmac")
	}
}

// TestGetKeyLastUsageOverTheWire: each kind of cryptographic operation is
// the key's last usage, with the request ID and a CloudTrail event ID, and
// survives a restart.
func TestGetKeyLastUsageOverTheWire(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	k, _ := e.client.CreateKey(ctx, &awskms.CreateKeyInput{})
	id := k.KeyMetadata.KeyId
	last := func() *types.KeyLastUsageData {
		t.Helper()
		out, err := e.client.GetKeyLastUsage(ctx, &awskms.GetKeyLastUsageInput{KeyId: id})
		if err != nil {
			t.Fatal(err)
		}
		if out.TrackingStartDate == nil || out.KeyCreationDate == nil {
			t.Fatalf("no dates: %+v", out)
		}
		return out.KeyLastUsage
	}
	if u := last(); u == nil || u.Operation != "" {
		t.Fatalf("unused key: %+v", u)
	}
	enc, err := e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if u := last(); u.Operation != types.KeyLastUsageTrackingOperationEncrypt || aws.ToString(u.CloudTrailEventId) == "" || aws.ToString(u.KmsRequestId) == "" {
		t.Fatalf("after Encrypt: %+v", u)
	}
	e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if u := last(); u.Operation != types.KeyLastUsageTrackingOperationDecrypt {
		t.Fatalf("after Decrypt: %+v", u)
	}
	e.client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: id, KeySpec: types.DataKeySpecAes256})
	want := last()
	if want.Operation != types.KeyLastUsageTrackingOperationGenerateDataKey {
		t.Fatalf("after GenerateDataKey: %+v", want)
	}
	e.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: id})
	if u := last(); u.Operation != want.Operation {
		t.Fatalf("DescribeKey changed the last usage: %+v", u)
	}
	e.restart()
	u := last()
	if u.Operation != want.Operation || aws.ToString(u.CloudTrailEventId) != aws.ToString(want.CloudTrailEventId) || !u.Timestamp.Equal(*want.Timestamp) {
		t.Fatalf("after a restart: %+v, want %+v", u, want)
	}
}
