package kms

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/policy"
)

// GenerateDataKeyPairInput is the GenerateDataKeyPair(WithoutPlaintext)
// request.
type GenerateDataKeyPairInput struct {
	EncryptionContext map[string]string `json:"EncryptionContext"`
	KeyId             string            `json:"KeyId"`
	KeyPairSpec       string            `json:"KeyPairSpec"`
	GrantTokens       []string          `json:"GrantTokens"`
	Recipient         json.RawMessage   `json:"Recipient"`
	DryRun            bool              `json:"DryRun"`
}

// GenerateDataKeyPairOutput is the GenerateDataKeyPair response;
// PrivateKeyPlaintext is empty for GenerateDataKeyPairWithoutPlaintext.
type GenerateDataKeyPairOutput struct {
	PrivateKeyCiphertextBlob []byte `json:"PrivateKeyCiphertextBlob"`
	PrivateKeyPlaintext      []byte `json:"PrivateKeyPlaintext,omitempty"`
	PublicKey                []byte `json:"PublicKey"`
	KeyId                    string `json:"KeyId"`
	KeyPairSpec              string `json:"KeyPairSpec"`
	KeyMaterialId            string `json:"KeyMaterialId,omitempty"`
}

// GenerateDataKeyPair returns a fresh key pair for use outside the
// service: the public key (DER SubjectPublicKeyInfo), the private key
// (DER PKCS#8) and the private key sealed under a symmetric encryption key
// exactly as GenerateDataKey seals a data key, so Decrypt returns it.
func (s *Service) GenerateDataKeyPair(ctx context.Context, c *Caller, in *GenerateDataKeyPairInput) (*GenerateDataKeyPairOutput, error) {
	return s.generateDataKeyPair(ctx, c, in, opGenerateDataKeyPair)
}

// GenerateDataKeyPairWithoutPlaintext is GenerateDataKeyPair without the
// plaintext private key.
func (s *Service) GenerateDataKeyPairWithoutPlaintext(ctx context.Context, c *Caller, in *GenerateDataKeyPairInput) (*GenerateDataKeyPairOutput, error) {
	if err := noRecipient(opGenerateDataKeyPairWithoutPlaintext, in.Recipient); err != nil {
		return nil, err
	}
	return s.generateDataKeyPair(ctx, c, in, opGenerateDataKeyPairWithoutPlaintext)
}

func (s *Service) generateDataKeyPair(ctx context.Context, c *Caller, in *GenerateDataKeyPairInput, op *Operation) (*GenerateDataKeyPairOutput, error) {
	var v validator
	v.encryptionContext("encryptionContext", in.EncryptionContext)
	v.keyID("keyId", in.KeyId)
	if v.required("keyPairSpec", in.KeyPairSpec != "") {
		v.enum("keyPairSpec", in.KeyPairSpec, dataKeyPairSpecs)
	}
	v.grantTokens(in.GrantTokens)
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	if err := checkRecipient(in.Recipient); err != nil {
		return nil, err
	}
	spec := in.KeyPairSpec
	r, err := s.encryptionKeyWith(ctx, c, &op.Keys[0], in.KeyId, "", in.EncryptionContext, func(pc *policy.Context, _ *keyRecord) {
		extra(pc, "kms:datakeypairspec", spec)
	})
	if err != nil {
		return nil, err
	}
	// "You cannot use an asymmetric KMS key or a KMS key in a custom key
	// store" (botocore GenerateDataKeyPair): the first is the
	// InvalidKeyUsageException of encryptionKeyWith, the second the
	// operation's modelled UnsupportedOperationException.
	if r.kind() == kindHSM {
		return nil, newError(ErrUnsupportedOperation, "%s is in a custom key store. You cannot use a KMS key in a custom key store to generate a data key pair.", r.arn())
	}
	// SM2 is in DataKeyPairSpec but offered only in the China Regions.
	if s, ok := engine.LookupSpec(spec); !ok || !s.Supported() || !slices.Contains(dataKeyPairSpecs, spec) {
		return nil, newError(ErrUnsupportedOperation, "KeyPairSpec %s is not supported in this Region.", spec)
	}
	if in.DryRun {
		return nil, dryRun
	}
	pub, priv, err := engine.GenerateKeyPair(spec, s.random)
	if err != nil {
		return nil, newError(ErrInternal, "Key pair generation failed.")
	}
	blob, err := s.seal(ctx, r, priv, in.EncryptionContext)
	if err != nil {
		clear(priv)
		return nil, err
	}
	out := &GenerateDataKeyPairOutput{PrivateKeyCiphertextBlob: blob, PublicKey: pub, KeyId: r.arn(), KeyPairSpec: spec,
		KeyMaterialId: r.Versions[len(r.Versions)-1].MaterialID}
	if op == opGenerateDataKeyPair {
		out.PrivateKeyPlaintext = toOutput(ctx, priv)
	} else {
		clear(priv)
	}
	return out, nil
}
