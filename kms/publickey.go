package kms

import (
	"context"

	"github.com/coffer-kms/coffer/engine"
)

// GetPublicKeyOutput is the GetPublicKey response: the public key as DER
// SubjectPublicKeyInfo and the metadata a caller needs to use it outside
// the service.
type GetPublicKeyOutput struct {
	KeyId                  string   `json:"KeyId"`
	PublicKey              []byte   `json:"PublicKey"`
	CustomerMasterKeySpec  string   `json:"CustomerMasterKeySpec"`
	KeySpec                string   `json:"KeySpec"`
	KeyUsage               string   `json:"KeyUsage"`
	EncryptionAlgorithms   []string `json:"EncryptionAlgorithms,omitempty"`
	SigningAlgorithms      []string `json:"SigningAlgorithms,omitempty"`
	KeyAgreementAlgorithms []string `json:"KeyAgreementAlgorithms,omitempty"`
}

// GetPublicKey returns the public half of an asymmetric key. Symmetric and
// HMAC keys have none: UnsupportedOperationException, which botocore
// models for the operation.
func (s *Service) GetPublicKey(ctx context.Context, c *Caller, in *KeyIDInput) (*GetPublicKeyOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	v.grantTokens(in.GrantTokens)
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	r, err := s.usableKey(ctx, c, &opGetPublicKey.Keys[0], in.KeyId, nil)
	if err != nil {
		return nil, err
	}
	if !r.kind().asymmetric() {
		return nil, newError(ErrUnsupportedOperation, "%s key spec is %s, which has no public key. You can perform this operation only on an asymmetric KMS key.", r.arn(), r.Spec)
	}
	var der []byte
	err = s.withKey(ctx, r, func(k *engine.Key) error {
		var err error
		der, err = k.PublicKeyDER()
		return err
	})
	if err != nil {
		return nil, internal(err)
	}
	algs := algorithmsOf(r)
	return &GetPublicKeyOutput{
		KeyId: r.arn(), PublicKey: der, CustomerMasterKeySpec: r.Spec, KeySpec: r.Spec, KeyUsage: r.Usage,
		EncryptionAlgorithms: algs.Encryption, SigningAlgorithms: algs.Signing, KeyAgreementAlgorithms: algs.KeyAgreement,
	}, nil
}
