package kms

import (
	"context"
	"testing"
)

// The key-state table's rows of the asymmetric and HMAC operations (AWS's
// key-state table, reference §1.4): Sign, Verify, GetPublicKey,
// GenerateMac and VerifyMac are ✓ Enabled, ✗[1] Disabled (DisabledException),
// ✗[2/3] PendingDeletion (KMSInvalidStateException), and "N/A" for
// PendingImport and Unavailable: AWS has no such keys (no imported
// asymmetric material in a pending state Coffer can reach, no asymmetric
// keys in custom key stores). Those cells expect the exception the table's
// footnotes give every other cryptographic operation in those states,
// [5] and [11], KMSInvalidStateException. DeriveSharedSecret is newer than
// the table and is a cryptographic operation like Sign (botocore models DE
// and IS for it). GenerateDataKeyPair(WithoutPlaintext) have rows of their
// own there, Encrypt's.

func init() {
	crypto := [...]error{success, ErrDisabled, ErrInvalidState, ErrInvalidState, ErrInvalidState}
	p256Sign := specUsage{"ECC_NIST_P256", UsageSignVerify}
	p256Agree := specUsage{"ECC_NIST_P256", UsageKeyAgreement}
	hmac := specUsage{"HMAC_256", UsageGenerateVerifyMAC}
	stateRows = append(stateRows,
		stateRow{op: "Sign", want: crypto, kind: p256Sign, call: func(ctx context.Context, s *Service, c *Caller, k *cell) error {
			_, err := s.Sign(ctx, c, &SignInput{KeyId: k.id, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"})
			return err
		}},
		stateRow{op: "Verify", want: crypto, kind: p256Sign, call: func(ctx context.Context, s *Service, c *Caller, k *cell) error {
			_, err := s.Verify(ctx, c, &VerifyInput{KeyId: k.id, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256", Signature: k.sig})
			return err
		}},
		stateRow{op: "GetPublicKey", want: crypto, kind: p256Sign, call: func(ctx context.Context, s *Service, c *Caller, k *cell) error {
			_, err := s.GetPublicKey(ctx, c, &KeyIDInput{KeyId: k.id})
			return err
		}},
		stateRow{op: "GenerateMac", want: crypto, kind: hmac, call: func(ctx context.Context, s *Service, c *Caller, k *cell) error {
			_, err := s.GenerateMac(ctx, c, &GenerateMacInput{KeyId: k.id, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256"})
			return err
		}},
		stateRow{op: "VerifyMac", want: crypto, kind: hmac, call: func(ctx context.Context, s *Service, c *Caller, k *cell) error {
			_, err := s.VerifyMac(ctx, c, &VerifyMacInput{KeyId: k.id, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256", Mac: k.mac})
			return err
		}},
		stateRow{op: "DeriveSharedSecret", want: crypto, kind: p256Agree, call: func(ctx context.Context, s *Service, c *Caller, k *cell) error {
			_, err := s.DeriveSharedSecret(ctx, c, &DeriveSharedSecretInput{KeyId: k.id, KeyAgreementAlgorithm: "ECDH", PublicKey: peerP256(nil)})
			return err
		}},
		stateRow{op: "GenerateDataKeyPair", want: crypto, call: func(ctx context.Context, s *Service, c *Caller, k *cell) error {
			_, err := s.GenerateDataKeyPair(ctx, c, &GenerateDataKeyPairInput{KeyId: k.id, KeyPairSpec: "ECC_NIST_P256"})
			return err
		}},
		stateRow{op: "GenerateDataKeyPairWithoutPlaintext", want: crypto, call: func(ctx context.Context, s *Service, c *Caller, k *cell) error {
			_, err := s.GenerateDataKeyPairWithoutPlaintext(ctx, c, &GenerateDataKeyPairInput{KeyId: k.id, KeyPairSpec: "ECC_NIST_P256"})
			return err
		}},
	)
}

// newCellOf is newCell with the key under test of kind (zero: symmetric),
// and, made while it is Enabled, its signature or MAC over "m".
func newCellOf(t *testing.T, s *Service, c *Caller, kind specUsage) *cell {
	t.Helper()
	k := newCell(t, s, c)
	if kind == (specUsage{}) {
		return k
	}
	ctx := context.Background()
	out, err := s.CreateKey(ctx, c, &CreateKeyInput{KeySpec: kind.spec, KeyUsage: kind.usage})
	if err != nil {
		t.Fatal(err)
	}
	k.id = out.KeyMetadata.KeyId
	switch kind.usage {
	case UsageSignVerify:
		sig, err := s.Sign(ctx, c, &SignInput{KeyId: k.id, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"})
		if err != nil {
			t.Fatal(err)
		}
		k.sig = sig.Signature
	case UsageGenerateVerifyMAC:
		mac, err := s.GenerateMac(ctx, c, &GenerateMacInput{KeyId: k.id, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256"})
		if err != nil {
			t.Fatal(err)
		}
		k.mac = mac.Mac
	}
	return k
}
