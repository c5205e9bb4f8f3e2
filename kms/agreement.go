package kms

import (
	"context"
	"encoding/json"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/policy"
)

// DeriveSharedSecretInput is the DeriveSharedSecret request.
type DeriveSharedSecretInput struct {
	KeyId                 string          `json:"KeyId"`
	KeyAgreementAlgorithm string          `json:"KeyAgreementAlgorithm"`
	PublicKey             []byte          `json:"PublicKey"`
	GrantTokens           []string        `json:"GrantTokens"`
	DryRun                bool            `json:"DryRun"`
	Recipient             json.RawMessage `json:"Recipient"`
}

// DeriveSharedSecretOutput is the DeriveSharedSecret response.
type DeriveSharedSecretOutput struct {
	KeyId                 string `json:"KeyId"`
	SharedSecret          []byte `json:"SharedSecret,omitempty"`
	KeyAgreementAlgorithm string `json:"KeyAgreementAlgorithm"`
	KeyOrigin             string `json:"KeyOrigin"`
}

// DeriveSharedSecret runs ECDH between a KEY_AGREEMENT key's private half
// and the peer's public key (DER SubjectPublicKeyInfo) and returns the raw
// shared secret, as AWS does. A peer key that is malformed, not a point of
// the key's curve, or of another curve is a ValidationException: botocore
// models no other exception for a bad member of the request.
func (s *Service) DeriveSharedSecret(ctx context.Context, c *Caller, in *DeriveSharedSecretInput) (*DeriveSharedSecretOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if v.required("keyAgreementAlgorithm", in.KeyAgreementAlgorithm != "") {
		v.enum("keyAgreementAlgorithm", in.KeyAgreementAlgorithm, keyAgreementAlgorithms)
	}
	if v.required("publicKey", in.PublicKey != nil) {
		v.secretLength("publicKey", in.PublicKey, 1, maxPublicKey)
	}
	v.grantTokens(in.GrantTokens)
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	if err := checkRecipient(in.Recipient); err != nil {
		return nil, err
	}
	alg := in.KeyAgreementAlgorithm
	r, err := s.usableKey(ctx, c, &opDeriveSharedSecret.Keys[0], in.KeyId, func(pc *policy.Context) {
		extra(pc, "kms:keyagreementalgorithm", alg)
	})
	if err != nil {
		return nil, err
	}
	if err := checkAlgorithm(r, alg, algorithmsOf(r).KeyAgreement); err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, dryRun
	}
	var z []byte
	err = s.withKey(ctx, r, func(k *engine.Key) error {
		var err error
		z, err = k.DeriveSharedSecret(alg, in.PublicKey)
		return err
	})
	if err != nil {
		return nil, engineError(err, r, alg)
	}
	return &DeriveSharedSecretOutput{KeyId: r.arn(), SharedSecret: toOutput(ctx, z), KeyAgreementAlgorithm: alg, KeyOrigin: r.Origin}, nil
}
