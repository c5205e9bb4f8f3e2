package server_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestEncryptDecrypt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	id := e.createKey("crypto")
	arn := "arn:aws:kms:us-east-1:111122223333:key/" + id
	ec := map[string]string{"tenant": "acme", "purpose": "test"}
	for _, n := range []int{1, 100, 4096} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		enc := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: pt, EncryptionContext: ec}))
		if *enc.KeyId != arn || enc.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
			t.Fatalf("Encrypt output %+v", enc)
		}
		if bytes.Contains(enc.CiphertextBlob, pt) && n > 4 {
			t.Fatal("ciphertext contains plaintext")
		}
		dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}))
		if !bytes.Equal(dec.Plaintext, pt) || *dec.KeyId != arn {
			t.Fatalf("Decrypt of %d bytes", n)
		}
		dec = must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: &arn}))
		if !bytes.Equal(dec.Plaintext, pt) {
			t.Fatal("Decrypt with KeyId")
		}
	}
	enc := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("secret"), EncryptionContext: ec}))

	// Wrong context, missing context, flipped bits: one opaque error.
	for _, bad := range []map[string]string{nil, {"tenant": "acme"}, {"tenant": "ACME", "purpose": "test"}} {
		_, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: bad})
		wantCode(t, err, "InvalidCiphertextException")
	}
	for i := range enc.CiphertextBlob {
		blob := bytes.Clone(enc.CiphertextBlob)
		blob[i] ^= 0x20
		_, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
		if i >= 1 && i <= 16 { // the key ID: a well-formed blob naming a key that does not exist
			wantCode(t, err, "AccessDeniedException")
			continue
		}
		if apiCode(err) != "InvalidCiphertextException" && apiCode(err) != "IncorrectKeyException" {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
		if i > 20 { // past the header every failure must be the opaque one
			wantCode(t, err, "InvalidCiphertextException")
		}
	}
	_, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob[:40]})
	wantCode(t, err, "InvalidCiphertextException")
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: []byte("not a blob at all")})
	wantCode(t, err, "InvalidCiphertextException")

	// A KeyId that does not match the blob.
	other := e.createKey("other")
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: &other})
	wantCode(t, err, "IncorrectKeyException")

	// ReEncrypt to another key and context.
	re := must[*awskms.ReEncryptOutput](t)(c.ReEncrypt(ctx, &awskms.ReEncryptInput{
		CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec,
		DestinationKeyId: &other, DestinationEncryptionContext: map[string]string{"moved": "yes"},
	}))
	if *re.SourceKeyId != arn || *re.KeyId != "arn:aws:kms:us-east-1:111122223333:key/"+other {
		t.Fatalf("ReEncrypt ids %s %s", *re.SourceKeyId, *re.KeyId)
	}
	dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: map[string]string{"moved": "yes"}}))
	if string(dec.Plaintext) != "secret" {
		t.Fatal("ReEncrypt lost the plaintext")
	}
	_, err = c.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: &other})
	wantCode(t, err, "InvalidCiphertextException")

	// DryRun checks everything and changes nothing.
	_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x"), DryRun: aws.Bool(true)})
	wantCode(t, err, "DryRunOperationException")
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, DryRun: aws.Bool(true)})
	wantCode(t, err, "DryRunOperationException")

	// Limits.
	_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: make([]byte, 4097)})
	wantCode(t, err, "ValidationException")
	_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	wantCode(t, err, "InvalidKeyUsageException")
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: make([]byte, 6145)})
	wantCode(t, err, "ValidationException")
}

func TestGenerateDataKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	id := e.createKey("dek")
	ec := map[string]string{"object": "s3://bucket/key"}
	for _, tc := range []struct {
		spec types.DataKeySpec
		n    *int32
		want int
	}{{types.DataKeySpecAes256, nil, 32}, {types.DataKeySpecAes128, nil, 16}, {"", aws.Int32(1), 1}, {"", aws.Int32(1024), 1024}} {
		out := must[*awskms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: &id, KeySpec: tc.spec, NumberOfBytes: tc.n, EncryptionContext: ec}))
		if len(out.Plaintext) != tc.want {
			t.Fatalf("data key of %d bytes, want %d", len(out.Plaintext), tc.want)
		}
		dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec}))
		if !bytes.Equal(dec.Plaintext, out.Plaintext) {
			t.Fatal("data key blob does not decrypt to the data key")
		}
	}
	wo := must[*awskms.GenerateDataKeyWithoutPlaintextOutput](t)(c.GenerateDataKeyWithoutPlaintext(ctx, &awskms.GenerateDataKeyWithoutPlaintextInput{KeyId: &id, KeySpec: types.DataKeySpecAes256}))
	dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: wo.CiphertextBlob}))
	if len(dec.Plaintext) != 32 {
		t.Fatal("GenerateDataKeyWithoutPlaintext blob")
	}
	_, err := c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: &id})
	wantCode(t, err, "ValidationException")
	_, err = c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: &id, KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
	wantCode(t, err, "ValidationException")
	for _, n := range []int32{0, 1025} {
		_, err = c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: &id, NumberOfBytes: aws.Int32(n)})
		wantCode(t, err, "ValidationException")
	}
	_, err = c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: aws.String("alias/none"), KeySpec: types.DataKeySpecAes256})
	wantCode(t, err, "NotFoundException")
}

func TestGenerateRandom(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := must[*awskms.GenerateRandomOutput](t)(e.client.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(1024)}))
	b := must[*awskms.GenerateRandomOutput](t)(e.client.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(1024)}))
	if len(a.Plaintext) != 1024 || bytes.Equal(a.Plaintext, b.Plaintext) {
		t.Fatal("GenerateRandom")
	}
	for _, n := range []*int32{nil, aws.Int32(0), aws.Int32(1025)} {
		_, err := e.client.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: n})
		wantCode(t, err, "ValidationException")
	}
}

func TestRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	id := e.createKey("rotating")
	old := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("before")}))

	st := must[*awskms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: &id}))
	if st.KeyRotationEnabled {
		t.Fatal("rotation enabled by default")
	}
	for _, p := range []int32{89, 2561} {
		_, err := c.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: &id, RotationPeriodInDays: aws.Int32(p)})
		wantCode(t, err, "ValidationException")
	}
	must[*awskms.EnableKeyRotationOutput](t)(c.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: &id, RotationPeriodInDays: aws.Int32(90)}))
	st = must[*awskms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: &id}))
	if !st.KeyRotationEnabled || *st.RotationPeriodInDays != 90 || st.NextRotationDate.Sub(e.clock.Now().Add(90*24*time.Hour)).Abs() > time.Second {
		t.Fatalf("rotation status %+v", st)
	}

	// On demand: a new version, the old ciphertext still opens.
	must[*awskms.RotateKeyOnDemandOutput](t)(c.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id}))
	mid := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("between")}))

	// Automatic: nothing before the period, one rotation after it.
	e.clock.Advance(89 * 24 * time.Hour)
	if r, _, _ := e.svc.RunMaintenance(ctx); r != 0 {
		t.Fatal("rotated before the period passed")
	}
	e.clock.Advance(2 * 24 * time.Hour)
	if r, _, err := e.svc.RunMaintenance(ctx); r != 1 || err != nil {
		t.Fatalf("rotated %d after the period (%v)", r, err)
	}
	if r, _, _ := e.svc.RunMaintenance(ctx); r != 0 {
		t.Fatal("rotated twice in one period")
	}
	newer := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("after")}))
	for blob, want := range map[*awskms.EncryptOutput]string{old: "before", mid: "between", newer: "after"} {
		dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blob.CiphertextBlob}))
		if string(dec.Plaintext) != want {
			t.Fatalf("decrypted %q, want %q", dec.Plaintext, want)
		}
	}
	if bytes.Equal(old.CiphertextBlob[17:21], newer.CiphertextBlob[17:21]) {
		t.Fatal("new ciphertext does not use the newest version")
	}

	all := must[*awskms.ListKeyRotationsOutput](t)(c.ListKeyRotations(ctx, &awskms.ListKeyRotationsInput{KeyId: &id, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial}))
	if len(all.Rotations) != 3 || all.Rotations[2].KeyMaterialState != types.KeyMaterialStateCurrent {
		t.Fatalf("ListKeyRotations ALL: %+v", all.Rotations)
	}
	rot := must[*awskms.ListKeyRotationsOutput](t)(c.ListKeyRotations(ctx, &awskms.ListKeyRotationsInput{KeyId: &id, Limit: aws.Int32(1)}))
	if len(rot.Rotations) != 1 || rot.Rotations[0].RotationType != types.RotationTypeOnDemand || !rot.Truncated {
		t.Fatalf("ListKeyRotations page 1: %+v", rot)
	}
	rot = must[*awskms.ListKeyRotationsOutput](t)(c.ListKeyRotations(ctx, &awskms.ListKeyRotationsInput{KeyId: &id, Marker: rot.NextMarker}))
	if len(rot.Rotations) != 1 || rot.Rotations[0].RotationType != types.RotationTypeAutomatic || rot.Truncated {
		t.Fatalf("ListKeyRotations page 2: %+v", rot)
	}

	must[*awskms.DisableKeyRotationOutput](t)(c.DisableKeyRotation(ctx, &awskms.DisableKeyRotationInput{KeyId: &id}))
	e.clock.Advance(400 * 24 * time.Hour)
	if r, _, _ := e.svc.RunMaintenance(ctx); r != 0 {
		t.Fatal("rotated with rotation disabled")
	}

	// 25 on-demand rotations, then LimitExceededException.
	for range 24 {
		must[*awskms.RotateKeyOnDemandOutput](t)(c.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id}))
	}
	_, err := c.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id})
	wantCode(t, err, "LimitExceededException")
	dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: old.CiphertextBlob}))
	if string(dec.Plaintext) != "before" {
		t.Fatal("oldest ciphertext after 26 rotations")
	}

	must[*awskms.DisableKeyOutput](t)(c.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &id}))
	_, err = c.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: &id})
	wantCode(t, err, "DisabledException")
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: old.CiphertextBlob})
	wantCode(t, err, "DisabledException")
}
