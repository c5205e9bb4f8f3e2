package kms

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

type importEnv struct {
	s     *Service
	c     *Caller
	clock *testClock
	store keystore.Store
	root  hsm.Backend
}

func newImportEnv(t *testing.T) *importEnv {
	t.Helper()
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	e := &importEnv{clock: &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, store: keystore.NewMemory(), root: root,
		c: &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}}
	e.s = e.open(t)
	return e
}

// open makes a Service over the env's store and root (a restart).
func (e *importEnv) open(t *testing.T) *Service {
	t.Helper()
	s, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: e.store, Root: e.root, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (e *importEnv) createExternal(t *testing.T, spec, usage string) string {
	t.Helper()
	out, err := e.s.CreateKey(context.Background(), e.c, &CreateKeyInput{Origin: "EXTERNAL", KeySpec: spec, KeyUsage: usage})
	if err != nil {
		t.Fatal(err)
	}
	if m := out.KeyMetadata; m.KeyState != StatePendingImport || m.Origin != "EXTERNAL" || m.CurrentKeyMaterialId != "" {
		t.Fatalf("CreateKey EXTERNAL: %+v", m)
	}
	return out.KeyMetadata.KeyId
}

// wrapForImport wraps material as an importer does for alg, under the
// wrapping public key pubDER (SPKI).
func wrapForImport(t *testing.T, pubDER []byte, alg string, material []byte) []byte {
	t.Helper()
	p, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		t.Fatal(err)
	}
	pub := p.(*rsa.PublicKey)
	var h hash.Hash = sha256.New()
	if strings.HasSuffix(alg, "SHA_1") {
		h = sha1.New()
	}
	if strings.HasPrefix(alg, "RSAES_OAEP") {
		ct, err := rsa.EncryptOAEP(h, rand.Reader, pub, material, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	aesKey := make([]byte, 32)
	rand.Read(aesKey)
	head, err := rsa.EncryptOAEP(h, rand.Reader, pub, aesKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := engine.WrapKWP(aesKey, material)
	if err != nil {
		t.Fatal(err)
	}
	return append(head, tail...)
}

func (e *importEnv) params(t *testing.T, id, alg string) *GetParametersForImportOutput {
	t.Helper()
	p, err := e.s.GetParametersForImport(context.Background(), e.c, &GetParametersForImportInput{KeyId: id, WrappingAlgorithm: alg, WrappingKeySpec: "RSA_2048"})
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(24 * time.Hour); !p.ParametersValidTo.Equal(want) {
		t.Fatalf("ParametersValidTo %v, want %v", p.ParametersValidTo, want)
	}
	return p
}

func (e *importEnv) importMaterial(t *testing.T, id, alg string, material []byte, validTo *time.Time) (*ImportKeyMaterialOutput, error) {
	t.Helper()
	p := e.params(t, id, alg)
	in := &ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapForImport(t, p.PublicKey, alg, material),
		ExpirationModel: ExpirationDoesNotExpire}
	if validTo != nil {
		in.ExpirationModel, in.ValidTo = ExpirationExpires, &Timestamp{*validTo}
	}
	return e.s.ImportKeyMaterial(context.Background(), e.c, in)
}

// TestImportSymmetricCycle imports the same raw AES key under each
// wrapping algorithm, checks the ciphertexts open with the standard
// library's view of the blob (engine.Open under the raw key), deletes the
// material, re-imports it and decrypts the old ciphertext.
func TestImportSymmetricCycle(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	for _, alg := range []string{wrapOAEPSHA1, wrapOAEPSHA256, wrapAESKeyWrapSHA1, wrapAESKeyWrap256} {
		t.Run(alg, func(t *testing.T) {
			id := e.createExternal(t, "", "")
			raw := make([]byte, 32)
			rand.Read(raw)
			out, err := e.importMaterial(t, id, alg, raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			if out.KeyMaterialId != importedMaterialID(id, raw) {
				t.Fatalf("KeyMaterialId %s", out.KeyMaterialId)
			}
			d, _ := e.s.DescribeKey(ctx, e.c, &KeyIDInput{KeyId: id})
			if m := d.KeyMetadata; m.KeyState != StateEnabled || m.ExpirationModel != ExpirationDoesNotExpire || m.ValidTo != nil || m.CurrentKeyMaterialId != out.KeyMaterialId {
				t.Fatalf("after import: %+v", m)
			}
			enc, err := e.s.Encrypt(ctx, e.c, &EncryptInput{KeyId: id, Plaintext: []byte("imported"), EncryptionContext: map[string]string{"a": "b"}})
			if err != nil {
				t.Fatal(err)
			}
			blob, err := engine.ParseBlob(enc.CiphertextBlob)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := engine.Open(nil, engine.Material(raw), blob, map[string]string{"a": "b"})
			if err != nil || string(pt) != "imported" {
				t.Fatalf("engine.Open with the raw key: %q, %v", pt, err)
			}
			// The wrapping key is gone: its token cannot be used again.
			if n := countImportTokens(t, e.s, id); n != 0 {
				t.Fatalf("%d import tokens left after the import", n)
			}
			del, err := e.s.DeleteImportedKeyMaterial(ctx, e.c, &DeleteImportedKeyMaterialInput{KeyId: id})
			if err != nil || del.KeyMaterialId != out.KeyMaterialId {
				t.Fatalf("DeleteImportedKeyMaterial: %+v, %v", del, err)
			}
			_, err = e.s.Decrypt(ctx, e.c, &DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}})
			wantKind(t, err, ErrInvalidState)
			// Other material is refused; the same comes back and decrypts.
			other := bytes.Repeat([]byte{7}, 32)
			_, err = e.importMaterial(t, id, alg, other, nil)
			wantKind(t, err, ErrIncorrectKeyMaterial)
			if _, err := e.importMaterial(t, id, alg, raw, nil); err != nil {
				t.Fatal(err)
			}
			dec, err := e.s.Decrypt(ctx, e.c, &DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}})
			if err != nil || string(dec.Plaintext) != "imported" {
				t.Fatalf("Decrypt after re-import: %v", err)
			}
		})
	}
}

// countImportTokens counts the import-token records of key id ("": all).
func countImportTokens(t *testing.T, s *Service, id string) int {
	n := 0
	prefix := ""
	if id != "" {
		prefix = id + "/"
	}
	s.store.View(context.Background(), func(tx keystore.Tx) error {
		return tx.Scan(bucketImports, prefix, "", func(string, []byte) bool { n++; return true })
	})
	return n
}

// TestImportErrors covers every refusal of the import operations.
func TestImportErrors(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	id := e.createExternal(t, "", "")
	raw := bytes.Repeat([]byte{1}, 32)

	_, err := e.s.GetParametersForImport(ctx, e.c, &GetParametersForImportInput{KeyId: id, WrappingAlgorithm: wrapPKCS1, WrappingKeySpec: "RSA_2048"})
	wantKind(t, err, ErrUnsupportedOperation)
	_, err = e.s.GetParametersForImport(ctx, e.c, &GetParametersForImportInput{KeyId: id, WrappingAlgorithm: "RSA_OAEP", WrappingKeySpec: "RSA_2048"})
	wantKind(t, err, ErrValidation)
	kmsKey, _ := e.s.CreateKey(ctx, e.c, &CreateKeyInput{})
	_, err = e.s.GetParametersForImport(ctx, e.c, &GetParametersForImportInput{KeyId: kmsKey.KeyMetadata.KeyId, WrappingAlgorithm: wrapOAEPSHA256, WrappingKeySpec: "RSA_2048"})
	wantKind(t, err, ErrUnsupportedOperation)

	p := e.params(t, id, wrapOAEPSHA256)
	good := wrapForImport(t, p.PublicKey, wrapOAEPSHA256, raw)
	imp := func(mut func(*ImportKeyMaterialInput)) error {
		in := &ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: good, ExpirationModel: ExpirationDoesNotExpire}
		mut(in)
		_, err := e.s.ImportKeyMaterial(ctx, e.c, in)
		return err
	}
	now := e.clock.Now()
	for name, c := range map[string]struct {
		mut  func(*ImportKeyMaterialInput)
		kind error
	}{
		"expires without ValidTo": {func(in *ImportKeyMaterialInput) { in.ExpirationModel = "" }, ErrValidation},
		"ValidTo never expiring":  {func(in *ImportKeyMaterialInput) { in.ValidTo = &Timestamp{now.Add(time.Hour)} }, ErrValidation},
		"ValidTo past": {func(in *ImportKeyMaterialInput) {
			in.ExpirationModel, in.ValidTo = ExpirationExpires, &Timestamp{now.Add(-time.Hour)}
		}, ErrValidation},
		"ValidTo over 365 days": {func(in *ImportKeyMaterialInput) {
			in.ExpirationModel, in.ValidTo = ExpirationExpires, &Timestamp{now.Add(366 * 24 * time.Hour)}
		}, ErrValidation},
		"token of nothing": {func(in *ImportKeyMaterialInput) { in.ImportToken = bytes.Repeat([]byte{1}, importTokenSize) }, ErrInvalidImportToken},
		"token flipped":    {func(in *ImportKeyMaterialInput) { in.ImportToken = flip(in.ImportToken) }, ErrInvalidImportToken},
		"material flipped": {func(in *ImportKeyMaterialInput) { in.EncryptedKeyMaterial = flip(in.EncryptedKeyMaterial) }, ErrInvalidCiphertext},
		"material of another key": {func(in *ImportKeyMaterialInput) {
			in.EncryptedKeyMaterial = wrapForImport(t, p.PublicKey, wrapOAEPSHA1, raw)
		}, ErrInvalidCiphertext},
		"material too short": {func(in *ImportKeyMaterialInput) {
			in.EncryptedKeyMaterial = wrapForImport(t, p.PublicKey, wrapOAEPSHA256, raw[:16])
		}, ErrIncorrectKeyMaterial},
		"existing without any": {func(in *ImportKeyMaterialInput) { in.ImportType = ImportTypeExisting }, ErrIncorrectKeyMaterial},
		"description outside its pattern": {func(in *ImportKeyMaterialInput) {
			d := "no <tags>!"
			in.KeyMaterialDescription = &d
		}, ErrValidation},
		"material ID with NEW": {func(in *ImportKeyMaterialInput) {
			in.ImportType, in.KeyMaterialId = ImportTypeNew, strings.Repeat("a", 64)
		}, ErrValidation},
	} {
		if err := imp(c.mut); err == nil {
			t.Fatalf("%s: accepted", name)
		} else {
			var ke *Error
			if !errors.As(err, &ke) || ke.Kind != c.kind {
				t.Errorf("%s: %v, want %v", name, err, c.kind)
			}
		}
	}
	// Another key's token.
	id2 := e.createExternal(t, "", "")
	_, err = e.s.ImportKeyMaterial(ctx, e.c, &ImportKeyMaterialInput{KeyId: id2, ImportToken: p.ImportToken, EncryptedKeyMaterial: good, ExpirationModel: ExpirationDoesNotExpire})
	wantKind(t, err, ErrInvalidImportToken)
	// The token expires after 24 hours.
	e.clock.advance(24 * time.Hour)
	wantKind(t, imp(func(*ImportKeyMaterialInput) {}), ErrExpiredImportToken)
	if _, _, err := e.s.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countImportTokens(t, e.s, ""); n != 0 {
		t.Fatalf("%d expired tokens left after maintenance", n)
	}
	// The same material as NEW_KEY_MATERIAL for a key that has it is
	// refused; rotation without material pending rotation is refused.
	if _, err := e.importMaterial(t, id, wrapOAEPSHA256, raw, nil); err != nil {
		t.Fatal(err)
	}
	p = e.params(t, id, wrapOAEPSHA256)
	_, err = e.s.ImportKeyMaterial(ctx, e.c, &ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken, ImportType: ImportTypeNew,
		EncryptedKeyMaterial: wrapForImport(t, p.PublicKey, wrapOAEPSHA256, raw), ExpirationModel: ExpirationDoesNotExpire})
	wantKind(t, err, ErrIncorrectKeyMaterial)
	_, err = e.s.RotateKeyOnDemand(ctx, e.c, &KeyIDInput{KeyId: id})
	wantKind(t, err, ErrInvalidState)
	// Re-import of the same material into the enabled key, naming its ID.
	_, err = e.s.ImportKeyMaterial(ctx, e.c, &ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken, ImportType: ImportTypeExisting,
		KeyMaterialId: importedMaterialID(id, raw), EncryptedKeyMaterial: wrapForImport(t, p.PublicKey, wrapOAEPSHA256, raw), ExpirationModel: ExpirationDoesNotExpire})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.s.DeleteImportedKeyMaterial(ctx, e.c, &DeleteImportedKeyMaterialInput{KeyId: id, KeyMaterialId: strings.Repeat("b", 64)})
	wantKind(t, err, ErrNotFound)
	_, err = e.s.DeleteImportedKeyMaterial(ctx, e.c, &DeleteImportedKeyMaterialInput{KeyId: kmsKey.KeyMetadata.KeyId})
	wantKind(t, err, ErrUnsupportedOperation)
}

func flip(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)/2] ^= 1
	return c
}

// TestImportExpiry lets imported material expire on the injected clock:
// the maintenance loop deletes it with a DeleteImportedKeyMaterial record
// of the service itself in the outbox, and re-import brings it back.
func TestImportExpiry(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	id := e.createExternal(t, "", "")
	raw := bytes.Repeat([]byte{9}, 32)
	validTo := e.clock.Now().Add(48 * time.Hour)
	if _, err := e.importMaterial(t, id, wrapAESKeyWrap256, raw, &validTo); err != nil {
		t.Fatal(err)
	}
	d, _ := e.s.DescribeKey(ctx, e.c, &KeyIDInput{KeyId: id})
	if m := d.KeyMetadata; m.ExpirationModel != ExpirationExpires || m.ValidTo == nil || !m.ValidTo.Equal(validTo) {
		t.Fatalf("DescribeKey: %+v", m)
	}
	enc, err := e.s.Encrypt(ctx, e.c, &EncryptInput{KeyId: id, Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.advance(47 * time.Hour)
	e.s.RunMaintenance(ctx)
	if _, err := e.s.Decrypt(ctx, e.c, &DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
		t.Fatalf("before ValidTo: %v", err)
	}
	e.clock.advance(time.Hour)
	if _, _, err := e.s.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ = e.s.DescribeKey(ctx, e.c, &KeyIDInput{KeyId: id})
	if d.KeyMetadata.KeyState != StatePendingImport {
		t.Fatalf("after ValidTo: %s", d.KeyMetadata.KeyState)
	}
	_, err = e.s.Decrypt(ctx, e.c, &DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	wantKind(t, err, ErrInvalidState)
	found := false
	e.s.store.View(ctx, func(tx keystore.Tx) error {
		return tx.Scan(bucketOutbox, "", "", func(_ string, raw []byte) bool {
			var r struct {
				EventName    string
				EventType    string                `json:"eventType"`
				UserIdentity struct{ Type string } `json:"userIdentity"`
			}
			json.Unmarshal(raw, &r)
			if strings.Contains(string(raw), `"DeleteImportedKeyMaterial"`) && strings.Contains(string(raw), id) && strings.Contains(string(raw), "AwsServiceEvent") {
				found = true
			}
			return true
		})
	})
	if !found {
		t.Error("no DeleteImportedKeyMaterial AwsServiceEvent in the outbox")
	}
	if _, err := e.importMaterial(t, id, wrapOAEPSHA1, raw, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Decrypt(ctx, e.c, &DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
		t.Fatalf("after re-import: %v", err)
	}
}

// TestImportHMACAndAsymmetric imports an HMAC key (checked with
// crypto/hmac) and an ECC_NIST_P256 signing key (checked with
// crypto/ecdsa), the latter as AWS requires with an RSA_AES wrapping.
func TestImportHMACAndAsymmetric(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	id := e.createExternal(t, "HMAC_256", "GENERATE_VERIFY_MAC")
	raw := bytes.Repeat([]byte{3}, 48) // HMAC_256 takes 32 to 64 bytes
	if _, err := e.importMaterial(t, id, wrapOAEPSHA256, raw, nil); err != nil {
		t.Fatal(err)
	}
	mac, err := e.s.GenerateMac(ctx, e.c, &GenerateMacInput{KeyId: id, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256"})
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, raw)
	h.Write([]byte("m"))
	if !hmac.Equal(h.Sum(nil), mac.Mac) {
		t.Fatal("GenerateMac differs from crypto/hmac under the imported key")
	}

	id = e.createExternal(t, "ECC_NIST_P256", "SIGN_VERIFY")
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	if _, err := e.importMaterial(t, id, wrapAESKeyWrap256, der, nil); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("m"))
	sig, err := e.s.Sign(ctx, e.c, &SignInput{KeyId: id, Message: digest[:], MessageType: "DIGEST", SigningAlgorithm: "ECDSA_SHA_256"})
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig.Signature) {
		t.Fatal("the signature does not verify under the imported key's public half")
	}
}
