package kms

import (
	"context"
	"regexp"
	"strconv"
	"strings"

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
	doc, err := s.showUniqueIDs(ctx, r)
	if err != nil {
		return nil, internal(err)
	}
	return &GetKeyPolicyOutput{Policy: doc, PolicyName: "default"}, nil
}

// showUniqueIDs returns r's policy with each principal ARN that no longer
// stands for the principal it was bound to (deleted, or deleted and
// created again) replaced by the bound unique ID, as AWS shows it ("Key
// policies in AWS KMS": a deleted principal's ARN appears as its unique
// ID). The document is otherwise as put.
func (s *Service) showUniqueIDs(ctx context.Context, r *keyRecord) (string, error) {
	ids, err := s.keyPolicyIDs(ctx, r.ID)
	if err != nil || len(ids) == 0 {
		return r.Policy, err
	}
	doc := r.Policy
	for arn, id := range ids {
		if id == "" {
			continue
		}
		p, err := s.principal(ctx, arn)
		if err != nil {
			return "", err
		}
		if p == nil || p.ID != id {
			doc = strings.ReplaceAll(doc, `"`+arn+`"`, `"`+id+`"`)
		}
	}
	return doc, nil
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
	compiled, err := policy.Parse([]byte(*in.Policy), policy.KeyPolicy)
	if err != nil { // checkNewKeyPolicy parsed it
		return nil, newError(ErrMalformedPolicy, "%s", err.Error())
	}
	_, err = s.updateKey(ctx, r.ID, func(tx keystore.Tx, r *keyRecord) (*keyRecord, error) {
		// The principals it names, bound in the transaction that puts it.
		if err := s.bindKeyPolicyTx(tx, r.ID, compiled, true); err != nil {
			return nil, err
		}
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
