package kms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
)

// BenchmarkSign measures Sign, Verify and GenerateMac through the service
// on a hot key (its parsed private key cached), each beside the bare
// standard-library operation on the same key in the same run: the
// difference is what the service adds per call (issue 20's goal: ≤ 2 µs).
func BenchmarkSign(b *testing.B) {
	s, c, _ := benchService(b)
	ctx := context.Background()
	msg := []byte("the message a pipeline signs, of a typical size for a digest or a token")
	digest := sha256.Sum256(msg)
	for _, tc := range []struct{ spec, usage, alg string }{
		{"ECC_NIST_P256", UsageSignVerify, "ECDSA_SHA_256"},
		{"ECC_NIST_EDWARDS25519", UsageSignVerify, "ED25519_SHA_512"},
		{"RSA_2048", UsageSignVerify, "RSASSA_PSS_SHA_256"},
		{"HMAC_256", UsageGenerateVerifyMAC, "HMAC_SHA_256"},
	} {
		out, err := s.CreateKey(ctx, c, &CreateKeyInput{KeySpec: tc.spec, KeyUsage: tc.usage})
		if err != nil {
			b.Fatal(err)
		}
		id := out.KeyMetadata.KeyId
		r, err := s.loadKey(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		key, e, err := s.material(ctx, r, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer s.cache.materials.release(e)
		if tc.usage == UsageGenerateVerifyMAC {
			b.Run("op=GenerateMac/spec="+tc.spec+"/via=service", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.GenerateMac(ctx, c, &GenerateMacInput{KeyId: id, Message: msg, MacAlgorithm: tc.alg}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("op=GenerateMac/spec="+tc.spec+"/via=stdlib", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					h := hmac.New(sha256.New, key.HMAC())
					h.Write(msg)
					h.Sum(nil)
				}
			})
			continue
		}
		signed, err := s.Sign(ctx, c, &SignInput{KeyId: id, Message: msg, MessageType: "RAW", SigningAlgorithm: tc.alg})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("op=Sign/spec="+tc.spec+"/via=service", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(ctx, c, &SignInput{KeyId: id, Message: msg, MessageType: "RAW", SigningAlgorithm: tc.alg}); err != nil {
					b.Fatal(err)
				}
			}
		})
		priv := key.Private()
		b.Run("op=Sign/spec="+tc.spec+"/via=stdlib", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var err error
				switch p := priv.(type) {
				case ed25519.PrivateKey:
					ed25519.Sign(p, msg)
				case *ecdsa.PrivateKey:
					d := sha256.Sum256(msg)
					_, err = ecdsa.SignASN1(rand.Reader, p, d[:])
				case *rsa.PrivateKey:
					d := sha256.Sum256(msg)
					_, err = rsa.SignPSS(rand.Reader, p, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("op=Verify/spec="+tc.spec+"/via=service", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Verify(ctx, c, &VerifyInput{KeyId: id, Message: msg, MessageType: "RAW", Signature: signed.Signature, SigningAlgorithm: tc.alg}); err != nil {
					b.Fatal(err)
				}
			}
		})
		pub := key.Public()
		b.Run("op=Verify/spec="+tc.spec+"/via=stdlib", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var ok bool
				switch p := pub.(type) {
				case ed25519.PublicKey:
					ok = ed25519.Verify(p, msg, signed.Signature)
				case *ecdsa.PublicKey:
					ok = ecdsa.VerifyASN1(p, digest[:], signed.Signature)
				case *rsa.PublicKey:
					ok = rsa.VerifyPSS(p, crypto.SHA256, digest[:], signed.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
				}
				if !ok {
					b.Fatal("the service's signature does not verify")
				}
			}
		})
	}
}
