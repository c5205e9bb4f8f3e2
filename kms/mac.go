package kms

import (
	"context"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/policy"
)

// GenerateMacInput is the GenerateMac request.
type GenerateMacInput struct {
	Message      []byte   `json:"Message"`
	KeyId        string   `json:"KeyId"`
	MacAlgorithm string   `json:"MacAlgorithm"`
	GrantTokens  []string `json:"GrantTokens"`
	DryRun       bool     `json:"DryRun"`
}

// GenerateMacOutput is the GenerateMac response.
type GenerateMacOutput struct {
	Mac          []byte `json:"Mac"`
	MacAlgorithm string `json:"MacAlgorithm"`
	KeyId        string `json:"KeyId"`
}

// GenerateMac computes the HMAC of a message with a GENERATE_VERIFY_MAC
// key, whose spec has exactly one MacAlgorithm.
func (s *Service) GenerateMac(ctx context.Context, c *Caller, in *GenerateMacInput) (*GenerateMacOutput, error) {
	var v validator
	validateMac(&v, in.KeyId, in.Message, in.MacAlgorithm, in.GrantTokens)
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	r, err := s.macKey(ctx, c, &opGenerateMac.Keys[0], in.KeyId, in.MacAlgorithm)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, dryRun
	}
	var mac []byte
	err = s.withKey(ctx, r, func(k *engine.Key) error {
		var err error
		mac, err = k.MAC(in.MacAlgorithm, in.Message)
		return err
	})
	if err != nil {
		return nil, engineError(err, r, in.MacAlgorithm)
	}
	return &GenerateMacOutput{Mac: mac, MacAlgorithm: in.MacAlgorithm, KeyId: r.arn()}, nil
}

// VerifyMacInput is the VerifyMac request.
type VerifyMacInput struct {
	Message      []byte   `json:"Message"`
	KeyId        string   `json:"KeyId"`
	MacAlgorithm string   `json:"MacAlgorithm"`
	Mac          []byte   `json:"Mac"`
	GrantTokens  []string `json:"GrantTokens"`
	DryRun       bool     `json:"DryRun"`
}

// VerifyMacOutput is the VerifyMac response: MacValid is always true, a
// MAC that does not verify being KMSInvalidMacException.
type VerifyMacOutput struct {
	KeyId        string `json:"KeyId"`
	MacValid     bool   `json:"MacValid"`
	MacAlgorithm string `json:"MacAlgorithm"`
}

// VerifyMac recomputes the HMAC and compares it in constant time.
func (s *Service) VerifyMac(ctx context.Context, c *Caller, in *VerifyMacInput) (*VerifyMacOutput, error) {
	var v validator
	validateMac(&v, in.KeyId, in.Message, in.MacAlgorithm, in.GrantTokens)
	if v.required("mac", in.Mac != nil) {
		v.secretLength("mac", in.Mac, 1, maxMac)
	}
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	r, err := s.macKey(ctx, c, &opVerifyMac.Keys[0], in.KeyId, in.MacAlgorithm)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, dryRun
	}
	err = s.withKey(ctx, r, func(k *engine.Key) error { return k.VerifyMAC(in.MacAlgorithm, in.Message, in.Mac) })
	if err != nil {
		return nil, engineError(err, r, in.MacAlgorithm)
	}
	return &VerifyMacOutput{KeyId: r.arn(), MacValid: true, MacAlgorithm: in.MacAlgorithm}, nil
}

// validateMac checks the members GenerateMac and VerifyMac share
// (botocore: Message 1..4096, MacAlgorithm required, from its enum).
func validateMac(v *validator, keyID string, message []byte, alg string, tokens []string) {
	if v.required("message", message != nil) {
		v.secretLength("message", message, 1, maxMessage)
	}
	v.keyID("keyId", keyID)
	if v.required("macAlgorithm", alg != "") {
		v.enum("macAlgorithm", alg, macAlgorithms)
	}
	v.grantTokens(tokens)
}

// macKey resolves and authorizes the HMAC key of GenerateMac or VerifyMac
// with kms:MacAlgorithm, and checks that alg is its spec's one algorithm.
func (s *Service) macKey(ctx context.Context, c *Caller, k *KeyMember, keyID, alg string) (*keyRecord, error) {
	r, err := s.usableKey(ctx, c, k, keyID, func(pc *policy.Context) { extra(pc, "kms:macalgorithm", alg) })
	if err != nil {
		return nil, err
	}
	if err := checkAlgorithm(r, alg, algorithmsOf(r).MAC); err != nil {
		return nil, err
	}
	return r, nil
}
