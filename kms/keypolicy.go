package kms

import (
	"context"
	"regexp"
	"strconv"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// GetKeyPolicyInput is the GetKeyPolicy request.
type GetKeyPolicyInput struct {
	KeyId      string `json:"KeyId"`
	PolicyName string `json:"PolicyName"`
}

// GetKeyPolicyOutput is the GetKeyPolicy response.
type GetKeyPolicyOutput struct {
	Policy     string `json:"Policy"`
	PolicyName string `json:"PolicyName"`
}

var policyNamePattern = regexp.MustCompile(`^[\w]+$`)

func checkPolicyName(v *validator, name string) {
	if name != "" {
		v.length("policyName", name, 1, 128)
		v.pattern("policyName", name, policyNamePattern)
	}
}

// GetKeyPolicy returns the key policy ("default", the only one a key has).
func (s *Service) GetKeyPolicy(ctx context.Context, c *Caller, in *GetKeyPolicyInput) (*GetKeyPolicyOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	checkPolicyName(&v, in.PolicyName)
	if err := v.err(); err != nil {
		return nil, err
	}
	r, err := s.keyFor(ctx, c, &opGetKeyPolicy.Keys[0], in.KeyId, nil)
	if err != nil {
		return nil, err
	}
	if in.PolicyName != "" && in.PolicyName != "default" {
		return nil, newError(ErrNotFound, "No such policy exists")
	}
	return &GetKeyPolicyOutput{Policy: r.Policy, PolicyName: "default"}, nil
}

// PutKeyPolicyInput is the PutKeyPolicy request.
type PutKeyPolicyInput struct {
	KeyId                          string  `json:"KeyId"`
	PolicyName                     string  `json:"PolicyName"`
	Policy                         *string `json:"Policy"`
	BypassPolicyLockoutSafetyCheck bool    `json:"BypassPolicyLockoutSafetyCheck"`
}

// PutKeyPolicy replaces the key policy.
func (s *Service) PutKeyPolicy(ctx context.Context, c *Caller, in *PutKeyPolicyInput) (*Empty, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	checkPolicyName(&v, in.PolicyName)
	if v.required("policy", in.Policy != nil) {
		v.length("policy", *in.Policy, 1, 131072)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.PolicyName != "" && in.PolicyName != "default" {
		return nil, newError(ErrNotFound, "No such policy exists")
	}
	r, err := s.keyFor(ctx, c, &opPutKeyPolicy.Keys[0], in.KeyId, func(r *keyRecord) *policy.Context {
		// Present with its default when the member is absent (AWS KMS
		// condition keys: kms:BypassPolicyLockoutSafetyCheck).
		pc := s.requestContext(ctx, c, r)
		pc.Extra = map[string][]string{"kms:bypasspolicylockoutsafetycheck": {strconv.FormatBool(in.BypassPolicyLockoutSafetyCheck)}}
		return pc
	})
	if err != nil {
		return nil, err
	}
	if err := checkCustomerManaged(r); err != nil {
		return nil, err
	}
	if err := s.checkNewKeyPolicy(ctx, c, *in.Policy, r.arn(), r.Account, in.BypassPolicyLockoutSafetyCheck); err != nil {
		return nil, err
	}
	_, err = s.updateKey(ctx, r.ID, func(_ keystore.Tx, r *keyRecord) (*keyRecord, error) {
		r.Policy = *in.Policy
		return r, nil
	})
	if err != nil {
		return nil, internal(err)
	}
	return &Empty{}, err
}

// ListKeyPoliciesInput is the ListKeyPolicies request.
type ListKeyPoliciesInput struct {
	KeyId string `json:"KeyId"`
	ListInput
}

// ListKeyPoliciesOutput is the ListKeyPolicies response.
type ListKeyPoliciesOutput struct {
	PolicyNames []string `json:"PolicyNames"`
	NextMarker  string   `json:"NextMarker,omitempty"`
	Truncated   bool     `json:"Truncated"`
}

// ListKeyPolicies names the key's policies: always just "default".
func (s *Service) ListKeyPolicies(ctx context.Context, c *Caller, in *ListKeyPoliciesInput) (*ListKeyPoliciesOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	v.limit(in.Limit)
	v.marker(in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	if _, err := decodeMarker("policies", in.Marker); err != nil {
		return nil, err
	}
	if _, err := s.keyFor(ctx, c, &opListKeyPolicies.Keys[0], in.KeyId, nil); err != nil {
		return nil, err
	}
	return &ListKeyPoliciesOutput{PolicyNames: []string{"default"}}, nil
}
