package kms

import (
	"context"
	"testing"
)

// The operation × key-usage matrix again, on real keys of each kind this
// time (usage_matrix_test.go relabels symmetric records; here the material
// is RSA, P-256 or HMAC and the operations are the asymmetric ones too).
// Expected values are AWS's: an operation the key's KeyUsage does not
// allow, or whose algorithm its KeySpec does not offer, is
// InvalidKeyUsageException ("For signing and verifying messages, the
// KeyUsage must be SIGN_VERIFY. For generating and verifying message
// authentication codes (MACs), the KeyUsage must be GENERATE_VERIFY_MAC",
// botocore InvalidKeyUsageException); GetPublicKey on a key with no public
// half is UnsupportedOperationException (its modelled exception for a
// resource not valid for the operation).

// realCall is one operation on key id of kind k. alg picks the algorithm
// the column's key would use, so that only the usage decides.
type realCall func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error

func signAlg(k specUsage) string {
	if k.spec == "RSA_2048" {
		return "RSASSA_PSS_SHA_256"
	}
	return "ECDSA_SHA_256"
}

func encAlg(k specUsage) string {
	if k.spec == "RSA_2048" {
		return "RSAES_OAEP_SHA_256"
	}
	return ""
}

var (
	U  = ErrInvalidKeyUsage
	UO = ErrUnsupportedOperation
	ok error
)

var realUsageRows = []struct {
	op   string
	want [len(usageKinds)]error // SYMMETRIC, RSA ENCRYPT_DECRYPT, RSA SIGN_VERIFY, P256 SIGN_VERIFY, P256 KEY_AGREEMENT, HMAC_256
	call realCall
}{
	{"Encrypt", [...]error{ok, ok, U, U, U, U}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		_, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionAlgorithm: encAlg(k)})
		return err
	}},
	{"Decrypt", [...]error{ok, ok, U, U, U, U}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		blob := make([]byte, 256)
		if k.spec == "SYMMETRIC_DEFAULT" || k.usage == "ENCRYPT_DECRYPT" {
			out, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionAlgorithm: encAlg(k)})
			if err != nil {
				return err
			}
			blob = out.CiphertextBlob
		}
		_, err := s.Decrypt(ctx, c, &DecryptInput{KeyId: id, CiphertextBlob: blob, EncryptionAlgorithm: encAlg(k)})
		return err
	}},
	{"GenerateDataKey", [...]error{ok, U, U, U, U, U}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		_, err := s.GenerateDataKey(ctx, c, &GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256"})
		return err
	}},
	{"GenerateDataKeyPair", [...]error{ok, U, U, U, U, U}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		_, err := s.GenerateDataKeyPair(ctx, c, &GenerateDataKeyPairInput{KeyId: id, KeyPairSpec: "ECC_NIST_P256"})
		return err
	}},
	{"GenerateDataKeyPairWithoutPlaintext", [...]error{ok, U, U, U, U, U}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		_, err := s.GenerateDataKeyPairWithoutPlaintext(ctx, c, &GenerateDataKeyPairInput{KeyId: id, KeyPairSpec: "ECC_NIST_EDWARDS25519"})
		return err
	}},
	{"Sign", [...]error{U, U, ok, ok, U, U}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		_, err := s.Sign(ctx, c, &SignInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: signAlg(k)})
		return err
	}},
	{"Verify", [...]error{U, U, ok, ok, U, U}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		sig := []byte("not a signature")
		if k.usage == UsageSignVerify {
			out, err := s.Sign(ctx, c, &SignInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: signAlg(k)})
			if err != nil {
				return err
			}
			sig = out.Signature
		}
		_, err := s.Verify(ctx, c, &VerifyInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: signAlg(k), Signature: sig})
		return err
	}},
	{"GenerateMac", [...]error{U, U, U, U, U, ok}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		_, err := s.GenerateMac(ctx, c, &GenerateMacInput{KeyId: id, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256"})
		return err
	}},
	{"VerifyMac", [...]error{U, U, U, U, U, ok}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		mac := make([]byte, 32)
		if k.usage == UsageGenerateVerifyMAC {
			out, err := s.GenerateMac(ctx, c, &GenerateMacInput{KeyId: id, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256"})
			if err != nil {
				return err
			}
			mac = out.Mac
		}
		_, err := s.VerifyMac(ctx, c, &VerifyMacInput{KeyId: id, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256", Mac: mac})
		return err
	}},
	{"DeriveSharedSecret", [...]error{U, U, U, U, ok, U}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		_, err := s.DeriveSharedSecret(ctx, c, &DeriveSharedSecretInput{KeyId: id, KeyAgreementAlgorithm: "ECDH", PublicKey: peerP256(nil)})
		return err
	}},
	{"GetPublicKey", [...]error{UO, ok, ok, ok, ok, UO}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		_, err := s.GetPublicKey(ctx, c, &KeyIDInput{KeyId: id})
		return err
	}},
	{"EnableKeyRotation", [...]error{ok, UO, UO, UO, UO, UO}, func(ctx context.Context, s *Service, c *Caller, id string, k specUsage) error {
		_, err := s.EnableKeyRotation(ctx, c, &EnableKeyRotationInput{KeyId: id})
		return err
	}},
}

func TestUsageMatrixRealKeys(t *testing.T) {
	s, c := sharedAsym(t)
	ctx := context.Background()
	for _, row := range realUsageRows {
		for i, kind := range usageKinds {
			t.Run(row.op+"/"+kind.spec+"/"+kind.usage, func(t *testing.T) {
				id := asymKey(t, kind.spec, kind.usage)
				checkCell(t, row.call(ctx, s, c, id, kind), row.want[i], "")
			})
		}
	}
}
