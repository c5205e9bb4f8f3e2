package kms

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// One service and one key per spec and usage for the whole test binary:
// RSA_4096 keys take seconds to generate on a slow core, so each is made
// once and shared by every test that needs one (the tests only read them).
var asymEnv struct {
	once sync.Once
	s    *Service
	c    *Caller
	err  error
	mu   sync.Mutex
	keys map[specUsage]string
}

func sharedAsym(t *testing.T) (*Service, *Caller) {
	t.Helper()
	asymEnv.once.Do(func() {
		root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
		if err != nil {
			asymEnv.err = err
			return
		}
		asymEnv.s, asymEnv.err = New(Config{Region: "us-east-1", Account: matrixAccount, Store: keystore.NewMemory(), Root: root})
		asymEnv.c = &Caller{ARN: matrixRoot, Account: matrixAccount}
		asymEnv.keys = map[specUsage]string{}
	})
	if asymEnv.err != nil {
		t.Fatal(asymEnv.err)
	}
	return asymEnv.s, asymEnv.c
}

// asymKey returns the shared key of spec and usage, creating it once.
func asymKey(t *testing.T, spec, usage string) string {
	t.Helper()
	s, c := sharedAsym(t)
	asymEnv.mu.Lock()
	defer asymEnv.mu.Unlock()
	if id, ok := asymEnv.keys[specUsage{spec, usage}]; ok {
		return id
	}
	out, err := s.CreateKey(context.Background(), c, &CreateKeyInput{KeySpec: spec, KeyUsage: usage})
	if err != nil {
		t.Fatalf("CreateKey %s %s: %v", spec, usage, err)
	}
	asymEnv.keys[specUsage{spec, usage}] = out.KeyMetadata.KeyId
	return out.KeyMetadata.KeyId
}

// awsAlgorithms is, for each spec and usage AWS allows, the algorithm
// lists DescribeKey returns: the AWS KMS developer guide's key spec
// reference (asymmetric-key-specs.md, hmac.md), as reference §1.2 copies
// it. Encoded here, not read from the engine's table, so that the test
// checks the table too.
var awsAlgorithms = map[specUsage][4][]string{ // Encryption, Signing, KeyAgreement, Mac
	{"SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"}: {{"SYMMETRIC_DEFAULT"}, nil, nil, nil},
	{"RSA_2048", "ENCRYPT_DECRYPT"}:          {{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}, nil, nil, nil},
	{"RSA_3072", "ENCRYPT_DECRYPT"}:          {{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}, nil, nil, nil},
	{"RSA_4096", "ENCRYPT_DECRYPT"}:          {{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}, nil, nil, nil},
	{"RSA_2048", "SIGN_VERIFY"}:              {nil, rsaSigningAlgs, nil, nil},
	{"RSA_3072", "SIGN_VERIFY"}:              {nil, rsaSigningAlgs, nil, nil},
	{"RSA_4096", "SIGN_VERIFY"}:              {nil, rsaSigningAlgs, nil, nil},
	{"ECC_NIST_P256", "SIGN_VERIFY"}:         {nil, {"ECDSA_SHA_256"}, nil, nil},
	{"ECC_NIST_P384", "SIGN_VERIFY"}:         {nil, {"ECDSA_SHA_384"}, nil, nil},
	{"ECC_NIST_P521", "SIGN_VERIFY"}:         {nil, {"ECDSA_SHA_512"}, nil, nil},
	{"ECC_NIST_P256", "KEY_AGREEMENT"}:       {nil, nil, {"ECDH"}, nil},
	{"ECC_NIST_P384", "KEY_AGREEMENT"}:       {nil, nil, {"ECDH"}, nil},
	{"ECC_NIST_P521", "KEY_AGREEMENT"}:       {nil, nil, {"ECDH"}, nil},
	{"ECC_SECG_P256K1", "SIGN_VERIFY"}:       {nil, {"ECDSA_SHA_256"}, nil, nil},
	{"ECC_NIST_EDWARDS25519", "SIGN_VERIFY"}: {nil, {"ED25519_SHA_512", "ED25519_PH_SHA_512"}, nil, nil},
	{"ML_DSA_44", "SIGN_VERIFY"}:             {nil, {"ML_DSA_SHAKE_256"}, nil, nil},
	{"ML_DSA_65", "SIGN_VERIFY"}:             {nil, {"ML_DSA_SHAKE_256"}, nil, nil},
	{"ML_DSA_87", "SIGN_VERIFY"}:             {nil, {"ML_DSA_SHAKE_256"}, nil, nil},
	{"HMAC_224", "GENERATE_VERIFY_MAC"}:      {nil, nil, nil, {"HMAC_SHA_224"}},
	{"HMAC_256", "GENERATE_VERIFY_MAC"}:      {nil, nil, nil, {"HMAC_SHA_256"}},
	{"HMAC_384", "GENERATE_VERIFY_MAC"}:      {nil, nil, nil, {"HMAC_SHA_384"}},
	{"HMAC_512", "GENERATE_VERIFY_MAC"}:      {nil, nil, nil, {"HMAC_SHA_512"}},
}

var rsaSigningAlgs = []string{"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
	"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"}

func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	var ke *Error
	if !errors.As(err, &ke) || ke.Kind != kind {
		t.Fatalf("got %v (%s), want %s", err, answerName(err), kind)
	}
}

// TestCreateKeyEverySpec creates a key of every spec × usage pair: the
// pairs AWS allows succeed with AWS's metadata, the others are AWS's
// ValidationException ("KeyUsage … is not compatible with KeySpec …"),
// SM2 (China Regions only) UnsupportedOperationException.
func TestCreateKeyEverySpec(t *testing.T) {
	s, c := sharedAsym(t)
	ctx := context.Background()
	for _, spec := range keySpecs {
		for _, usage := range keyUsages {
			su := specUsage{spec, usage}
			want, allowed := awsAlgorithms[su]
			t.Run(spec+"/"+usage, func(t *testing.T) {
				if spec == "SM2" {
					_, err := s.CreateKey(ctx, c, &CreateKeyInput{KeySpec: spec, KeyUsage: usage})
					wantKind(t, err, ErrUnsupportedOperation)
					return
				}
				if !allowed {
					_, err := s.CreateKey(ctx, c, &CreateKeyInput{KeySpec: spec, KeyUsage: usage})
					wantKind(t, err, ErrValidation)
					return
				}
				id := asymKey(t, spec, usage)
				d, err := s.DescribeKey(ctx, c, &KeyIDInput{KeyId: id})
				if err != nil {
					t.Fatal(err)
				}
				m := d.KeyMetadata
				if m.KeySpec != spec || m.CustomerMasterKeySpec != spec || m.KeyUsage != usage || m.KeyState != StateEnabled || m.Origin != OriginAWSKMS {
					t.Errorf("metadata %+v", m)
				}
				got := [4][]string{m.EncryptionAlgorithms, m.SigningAlgorithms, m.KeyAgreementAlgorithms, m.MacAlgorithms}
				for i := range got {
					if !slices.Equal(got[i], want[i]) {
						t.Errorf("algorithm list %d: %v, AWS %v", i, got[i], want[i])
					}
				}
				// The material is stored wrapped and unwraps to a key of
				// the spec.
				r, err := s.loadKey(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				key, e, err := s.material(ctx, r, 0)
				if err != nil {
					t.Fatal(err)
				}
				if key.Spec().Name() != spec {
					t.Errorf("material of spec %s", key.Spec().Name())
				}
				s.cache.materials.release(e)
				if spec != SpecSymmetric {
					// Rotation is for symmetric encryption keys only.
					_, err := s.EnableKeyRotation(ctx, c, &EnableKeyRotationInput{KeyId: id})
					wantKind(t, err, ErrUnsupportedOperation)
					_, err = s.RotateKeyOnDemand(ctx, c, &KeyIDInput{KeyId: id})
					wantKind(t, err, ErrUnsupportedOperation)
					_, err = s.GetKeyRotationStatus(ctx, c, &KeyIDInput{KeyId: id})
					wantKind(t, err, ErrUnsupportedOperation)
				}
			})
		}
	}
}

func TestCreateKeySpecRules(t *testing.T) {
	s, c := sharedAsym(t)
	ctx := context.Background()
	// KeyUsage is required for every spec but SYMMETRIC_DEFAULT.
	for _, spec := range []string{"RSA_2048", "ECC_NIST_P256", "HMAC_256", "ECC_NIST_EDWARDS25519"} {
		_, err := s.CreateKey(ctx, c, &CreateKeyInput{KeySpec: spec})
		wantKind(t, err, ErrValidation)
	}
	// KeySpec and the deprecated CustomerMasterKeySpec are exclusive.
	_, err := s.CreateKey(ctx, c, &CreateKeyInput{KeySpec: "ECC_NIST_P256", CustomerMasterKeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	wantKind(t, err, ErrValidation)
	// CustomerMasterKeySpec alone works as KeySpec.
	out, err := s.CreateKey(ctx, c, &CreateKeyInput{CustomerMasterKeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	if err != nil {
		t.Fatal(err)
	}
	if m := out.KeyMetadata; m.KeySpec != "ECC_NIST_P256" || m.CustomerMasterKeySpec != "ECC_NIST_P256" || !slices.Equal(m.SigningAlgorithms, []string{"ECDSA_SHA_256"}) {
		t.Errorf("metadata %+v", m)
	}
	// Custom key stores hold symmetric encryption keys only.
	_, err = s.CreateKey(ctx, c, &CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC", CustomKeyStoreId: "cks-1234567890abcdef0", Origin: "AWS_CLOUDHSM"})
	wantKind(t, err, ErrUnsupportedOperation)
	// A symmetric key's usage must be ENCRYPT_DECRYPT.
	_, err = s.CreateKey(ctx, c, &CreateKeyInput{KeyUsage: "SIGN_VERIFY"})
	wantKind(t, err, ErrValidation)
}
