package kms

import (
	"testing"

	"github.com/coffer-kms/coffer/policy"
)

// The policy evaluation cost bound (issue 19.9) assumes the request limits
// kms enforces; a kms limit raised past the bound's would let a request
// cost more than the bound, and the evaluator would deny it.
func TestRequestLimitsWithinPolicyCostBound(t *testing.T) {
	if maxEncryptionContextBytes > policy.MaxEncryptionContextBytes {
		t.Errorf("kms accepts encryption contexts of %d bytes; the policy cost bound assumes %d", maxEncryptionContextBytes, policy.MaxEncryptionContextBytes)
	}
	if maxTagsPerKey > policy.MaxRequestListValues || maxAliasesPerKey > policy.MaxRequestListValues {
		t.Errorf("kms allows %d tags and %d aliases per key; the policy cost bound assumes %d", maxTagsPerKey, maxAliasesPerKey, policy.MaxRequestListValues)
	}
	for _, op := range Operations() {
		actions := []string{op.Action}
		for _, k := range op.Keys {
			actions = append(actions, k.Action)
		}
		for _, a := range actions {
			if len(a) > policy.MaxActionBytes {
				t.Errorf("action %s is longer than policy.MaxActionBytes", a)
			}
		}
	}
}
