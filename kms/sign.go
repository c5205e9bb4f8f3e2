package kms

import (
	"context"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/policy"
)

// SignInput is the Sign request.
type SignInput struct {
	KeyId            string   `json:"KeyId"`
	Message          []byte   `json:"Message"`
	MessageType      string   `json:"MessageType"`
	GrantTokens      []string `json:"GrantTokens"`
	SigningAlgorithm string   `json:"SigningAlgorithm"`
	DryRun           bool     `json:"DryRun"`
}

// SignOutput is the Sign response.
type SignOutput struct {
	KeyId            string `json:"KeyId"`
	Signature        []byte `json:"Signature"`
	SigningAlgorithm string `json:"SigningAlgorithm"`
}

// Sign signs a message or digest with an asymmetric SIGN_VERIFY key.
func (s *Service) Sign(ctx context.Context, c *Caller, in *SignInput) (*SignOutput, error) {
	var v validator
	validateSigning(&v, in.KeyId, in.Message, in.MessageType, in.SigningAlgorithm, in.GrantTokens)
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	mt := messageType(in.MessageType)
	r, err := s.signingKey(ctx, c, &opSign.Keys[0], in.KeyId, in.SigningAlgorithm, mt)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, dryRun
	}
	var sig []byte
	err = s.withKey(ctx, r, func(k *engine.Key) error {
		var err error
		sig, err = k.Sign(in.SigningAlgorithm, mt, in.Message)
		return err
	})
	if err != nil {
		return nil, engineError(err, r, in.SigningAlgorithm)
	}
	return &SignOutput{KeyId: r.arn(), Signature: sig, SigningAlgorithm: in.SigningAlgorithm}, nil
}

// VerifyInput is the Verify request.
type VerifyInput struct {
	KeyId            string   `json:"KeyId"`
	Message          []byte   `json:"Message"`
	MessageType      string   `json:"MessageType"`
	Signature        []byte   `json:"Signature"`
	SigningAlgorithm string   `json:"SigningAlgorithm"`
	GrantTokens      []string `json:"GrantTokens"`
	DryRun           bool     `json:"DryRun"`
}

// VerifyOutput is the Verify response. A signature that does not verify
// is KMSInvalidSignatureException, never SignatureValid false.
type VerifyOutput struct {
	KeyId            string `json:"KeyId"`
	SignatureValid   bool   `json:"SignatureValid"`
	SigningAlgorithm string `json:"SigningAlgorithm"`
}

// Verify checks a signature Sign (or the key's private half anywhere)
// made.
func (s *Service) Verify(ctx context.Context, c *Caller, in *VerifyInput) (*VerifyOutput, error) {
	var v validator
	validateSigning(&v, in.KeyId, in.Message, in.MessageType, in.SigningAlgorithm, in.GrantTokens)
	if v.required("signature", in.Signature != nil) {
		v.secretLength("signature", in.Signature, 1, maxSignature)
	}
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	mt := messageType(in.MessageType)
	r, err := s.signingKey(ctx, c, &opVerify.Keys[0], in.KeyId, in.SigningAlgorithm, mt)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, dryRun
	}
	err = s.withKey(ctx, r, func(k *engine.Key) error {
		return k.Verify(in.SigningAlgorithm, mt, in.Message, in.Signature)
	})
	if err != nil {
		return nil, engineError(err, r, in.SigningAlgorithm)
	}
	return &VerifyOutput{KeyId: r.arn(), SignatureValid: true, SigningAlgorithm: in.SigningAlgorithm}, nil
}

// validateSigning checks the members Sign and Verify share, with the
// limits of botocore's model: Message 1..4096 bytes, MessageType and
// SigningAlgorithm from their enums, SigningAlgorithm required.
func validateSigning(v *validator, keyID string, message []byte, mt, alg string, tokens []string) {
	v.keyID("keyId", keyID)
	if v.required("message", message != nil) {
		v.secretLength("message", message, 1, maxMessage)
	}
	v.enum("messageType", mt, messageTypes)
	if v.required("signingAlgorithm", alg != "") {
		v.enum("signingAlgorithm", alg, signingAlgorithms)
	}
	v.grantTokens(tokens)
}

// messageType is MessageType with AWS's default, RAW.
func messageType(mt string) string {
	if mt == "" {
		return engine.MessageRaw
	}
	return mt
}

// signingKey resolves and authorizes the key of Sign or Verify (member
// k), with kms:SigningAlgorithm and kms:MessageType in the request
// context, and checks its state, usage and that its spec offers alg.
func (s *Service) signingKey(ctx context.Context, c *Caller, k *KeyMember, keyID, alg, mt string) (*keyRecord, error) {
	r, err := s.usableKey(ctx, c, k, keyID, func(pc *policy.Context) {
		extra(pc, "kms:signingalgorithm", alg)
		extra(pc, "kms:messagetype", mt)
	})
	if err != nil {
		return nil, err
	}
	if err := checkAlgorithm(r, alg, algorithmsOf(r).Signing); err != nil {
		return nil, err
	}
	return r, nil
}
