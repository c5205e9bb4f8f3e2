package kms

import (
	"context"
	"testing"

	"github.com/coffer-kms/coffer/keystore"
)

// The key-usage table: which key specs and usages the symmetric
// cryptographic operations and the rotation operations accept. Expected
// values are AWS's (reference §1.1, §1.2 and the API reference):
//
//   - Encrypt, Decrypt, ReEncrypt and GenerateDataKey* need a KMS key whose
//     KeyUsage is ENCRYPT_DECRYPT and whose KeySpec supports the
//     SYMMETRIC_DEFAULT algorithm; data keys only come from symmetric keys.
//     Otherwise InvalidKeyUsageException: "the KeyUsage value of the KMS
//     key is incompatible with the API operation" or "the encryption
//     algorithm … is incompatible with the type of key material in the KMS
//     key (KeySpec)". An RSA ENCRYPT_DECRYPT key is refused by the second
//     clause: none of these requests names an RSAES_OAEP algorithm.
//   - Automatic and on-demand rotation are "supported only on symmetric
//     encryption KMS keys": EnableKeyRotation, DisableKeyRotation,
//     GetKeyRotationStatus, RotateKeyOnDemand and ListKeyRotations answer
//     UnsupportedOperationException for every other key.
//
// Coffer creates only SYMMETRIC_DEFAULT keys today, so the other kinds are
// records rewritten through updateKey after creation (material and
// ciphertexts stay symmetric: what is tested is that the usage is checked
// before the material is used).

// specUsage is one column: a KeySpec with a KeyUsage AWS allows for it.
type specUsage struct{ spec, usage string }

var usageKinds = [...]specUsage{
	{"SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"},
	{"RSA_2048", "ENCRYPT_DECRYPT"},
	{"RSA_2048", "SIGN_VERIFY"},
	{"ECC_NIST_P256", "SIGN_VERIFY"},
	{"ECC_NIST_P256", "KEY_AGREEMENT"},
	{"HMAC_256", "GENERATE_VERIFY_MAC"},
}

// usageRow is one operation across usageKinds.
type usageRow struct {
	op             string
	call           matrixCall
	want           [len(usageKinds)]error // nil: success
	knownDeviation map[specUsage]string
}

// Every row but the symmetric column fails with one kind.
func onlySymmetric(kind error) (w [len(usageKinds)]error) {
	for i := 1; i < len(w); i++ {
		w[i] = kind
	}
	return w
}

var usageRows = []usageRow{
	{op: "Encrypt", want: onlySymmetric(ErrInvalidKeyUsage), call: stateRowCall("Encrypt")},
	{op: "Decrypt", want: onlySymmetric(ErrInvalidKeyUsage), call: stateRowCall("Decrypt")},
	{op: "ReEncrypt/source", want: onlySymmetric(ErrInvalidKeyUsage), call: stateRowCall("ReEncrypt/source")},
	{op: "ReEncrypt/destination", want: onlySymmetric(ErrInvalidKeyUsage), call: stateRowCall("ReEncrypt/destination")},
	{op: "GenerateDataKey", want: onlySymmetric(ErrInvalidKeyUsage), call: stateRowCall("GenerateDataKey")},
	{op: "GenerateDataKeyWithoutPlaintext", want: onlySymmetric(ErrInvalidKeyUsage), call: stateRowCall("GenerateDataKeyWithoutPlaintext")},

	{op: "EnableKeyRotation", want: onlySymmetric(ErrUnsupportedOperation), call: stateRowCall("EnableKeyRotation")},
	{op: "DisableKeyRotation", want: onlySymmetric(ErrUnsupportedOperation), call: stateRowCall("DisableKeyRotation")},
	{op: "GetKeyRotationStatus", want: onlySymmetric(ErrUnsupportedOperation), call: stateRowCall("GetKeyRotationStatus")},
	{op: "RotateKeyOnDemand", want: onlySymmetric(ErrUnsupportedOperation), call: stateRowCall("RotateKeyOnDemand")},
	{op: "ListKeyRotations", want: onlySymmetric(ErrUnsupportedOperation), call: stateRowCall("ListKeyRotations")},
}

// stateRowCall reuses the call of the key-state table's row op, so both
// tables send the same request.
func stateRowCall(op string) matrixCall {
	for _, r := range stateRows {
		if r.op == op {
			return r.call
		}
	}
	panic("kms: internal error: no state-table row " + op)
}

// setKind rewrites an Enabled key's spec and usage through the service's
// write path, and checks that DescribeKey reports them.
func setKind(t *testing.T, s *Service, c *Caller, id string, kind specUsage) {
	t.Helper()
	ctx := context.Background()
	if kind != usageKinds[0] {
		_, err := s.updateKey(ctx, id, func(_ keystore.Tx, r *keyRecord) (*keyRecord, error) {
			r.Spec, r.Usage = kind.spec, kind.usage
			return r, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.DescribeKey(ctx, c, &KeyIDInput{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	if m := d.KeyMetadata; m.KeySpec != kind.spec || m.KeyUsage != kind.usage || m.KeyState != StateEnabled {
		t.Fatalf("key is %s/%s %s, want %s/%s Enabled", m.KeySpec, m.KeyUsage, m.KeyState, kind.spec, kind.usage)
	}
}

func TestUsageMatrix(t *testing.T) {
	s, c := newMatrixService(t)
	ctx := context.Background()
	for _, row := range usageRows {
		for i, kind := range usageKinds {
			t.Run(row.op+"/"+kind.spec+"/"+kind.usage, func(t *testing.T) {
				k := newCell(t, s, c)
				setKind(t, s, c, k.id, kind)
				checkCell(t, row.call(ctx, s, c, k), row.want[i], row.knownDeviation[kind])
			})
		}
	}
}
