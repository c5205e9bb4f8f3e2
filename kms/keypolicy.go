package kms

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
)

// DefaultKeyPolicy is AWS's default key policy: the account root may do
// everything, which delegates the decision to the account's identity
// policies.
func DefaultKeyPolicy(account string) string {
	return fmt.Sprintf(`{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::%s:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}`, account)
}

// keyPolicyFor returns the policy to store for a new key: the given one,
// validated, or the default.
func (s *Service) keyPolicyFor(c *Caller, doc *string, bypass bool) (string, error) {
	if doc == nil {
		return DefaultKeyPolicy(c.Account), nil
	}
	if err := validatePolicy(*doc); err != nil {
		return "", err
	}
	return *doc, nil
}

// validatePolicy checks a key policy document's size and structure.
func validatePolicy(doc string) error {
	if len(doc) > maxPolicyBytes {
		return newError(ErrLimitExceeded, "Policy document exceeds the maximum size of %d bytes.", maxPolicyBytes)
	}
	var p struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return newError(ErrMalformedPolicy, "The policy is not valid JSON.")
	}
	if len(p.Statement) == 0 || p.Statement[0] != '[' && p.Statement[0] != '{' {
		return newError(ErrMalformedPolicy, "The policy must contain a Statement.")
	}
	return nil
}

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
	r, err := s.resolveKey(ctx, c, in.KeyId)
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
	doc, err := s.keyPolicyFor(c, in.Policy, in.BypassPolicyLockoutSafetyCheck)
	if err != nil {
		return nil, err
	}
	_, err = s.mutateKey(ctx, c, in.KeyId, func(r *keyRecord) error {
		if err := checkCustomerManaged(r); err != nil {
			return err
		}
		r.Policy = doc
		return nil
	})
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
	if _, err := s.resolveKey(ctx, c, in.KeyId); err != nil {
		return nil, err
	}
	return &ListKeyPoliciesOutput{PolicyNames: []string{"default"}}, nil
}
