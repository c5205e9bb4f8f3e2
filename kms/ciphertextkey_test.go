package kms

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// TestCiphertextOfUnknownKey: a well-formed blob that names a key this
// Region does not have (never existed, deleted, or another Region's) is
// AWS's AccessDeniedException with AWS's message; every blob that does not
// parse or does not open stays the one InvalidCiphertextException.
func TestCiphertextOfUnknownKey(t *testing.T) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	store := keystore.NewMemory()
	east, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: store, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer east.Close()
	west, err := New(Config{Region: "eu-west-1", Account: "111122223333", Store: store, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer west.Close()
	ctx := context.Background()
	c := &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}
	k, err := east.CreateKey(ctx, c, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := east.Encrypt(ctx, c, &EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	blob := enc.CiphertextBlob

	const msg = "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access."
	unknownKey := bytes.Clone(blob)
	copy(unknownKey[1:17], bytes.Repeat([]byte{0x5a}, 16)) // version(1) | key ID(16) | …
	truncated := blob[:40]
	badTag := bytes.Clone(blob)
	badTag[len(badTag)-1] ^= 1

	cases := []struct {
		name string
		s    *Service
		blob []byte
		kind error
		msg  string
	}{
		{"key that never existed", east, unknownKey, ErrAccessDenied, msg},
		{"key of another Region", west, blob, ErrAccessDenied, msg},
		{"truncated", east, truncated, ErrInvalidCiphertext, ""},
		{"forged tag", east, badTag, ErrInvalidCiphertext, ""},
		{"not a blob", east, []byte("not a blob at all"), ErrInvalidCiphertext, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.Decrypt(ctx, c, &DecryptInput{CiphertextBlob: tc.blob})
			checkKindMessage(t, "Decrypt", err, tc.kind, tc.msg)
			dest, err := tc.s.CreateKey(ctx, c, &CreateKeyInput{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = tc.s.ReEncrypt(ctx, c, &ReEncryptInput{CiphertextBlob: tc.blob, DestinationKeyId: dest.KeyMetadata.KeyId})
			checkKindMessage(t, "ReEncrypt", err, tc.kind, tc.msg)
		})
	}
}

func checkKindMessage(t *testing.T, op string, err, kind error, msg string) {
	t.Helper()
	var ke *Error
	if !errors.Is(err, kind) || !errors.As(err, &ke) || ke.Message != msg {
		t.Fatalf("%s: %v, want %v %q", op, err, kind, msg)
	}
}
