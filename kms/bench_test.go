package kms

import (
	"context"
	"fmt"
	"testing"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

func benchService(b *testing.B) (*Service, *Caller, string) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: keystore.NewMemory(), Root: root})
	if err != nil {
		b.Fatal(err)
	}
	c := &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"} // the account root: allowed by the default key policy
	out, err := s.CreateKey(context.Background(), c, &CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	return s, c, out.KeyMetadata.KeyId
}

// BenchmarkService measures the hot operations through the service layer,
// without HTTP: resolution, state checks, cached material, the engine.
func BenchmarkService(b *testing.B) {
	s, c, id := benchService(b)
	ctx := context.Background()
	ec := map[string]string{"purpose": "bench"}
	for _, size := range []int{64, 1024, 4096} {
		pt := make([]byte, size)
		b.Run(fmt.Sprintf("op=Encrypt/size=%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: id, Plaintext: pt, EncryptionContext: ec}); err != nil {
					b.Fatal(err)
				}
			}
		})
		enc, _ := s.Encrypt(ctx, c, &EncryptInput{KeyId: id, Plaintext: pt, EncryptionContext: ec})
		b.Run(fmt.Sprintf("op=Decrypt/size=%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Decrypt(ctx, c, &DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("op=GenerateDataKey/spec=AES_256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GenerateDataKey(ctx, c, &GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256", EncryptionContext: ec}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=Encrypt/keyid=alias", func(b *testing.B) {
		s.CreateAlias(ctx, c, &AliasInput{AliasName: "alias/bench", TargetKeyId: id})
		pt := make([]byte, 64)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: "alias/bench", Plaintext: pt}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
