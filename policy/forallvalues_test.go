package policy

import (
	"errors"
	"strings"
	"testing"
)

// ForAllValues on a single-valued key holds for every request without the
// key, so an Allow on kms:EncryptionContext:<key> would allow a request
// with no encryption context at all (issue 19.7): Parse refuses it, naming
// the problem; ForAllValues on multivalued keys stays.
func TestForAllValuesOnSingleValuedKeyRefused(t *testing.T) {
	for _, cond := range []string{
		`{"ForAllValues:StringEquals":{"kms:EncryptionContext:tenant":"acme"}}`,
		`{"ForAllValues:StringLike":{"kms:encryptioncontext:Department":"I?"}}`,
		`{"ForAllValues:StringEquals":{"kms:CallerAccount":"111122223333"}}`,
		`{"ForAllValues:StringEquals":{"aws:ResourceTag/Project":"Alpha"}}`,
	} {
		doc := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":` + cond + `}}`
		_, err := Parse([]byte(doc), IdentityPolicy)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "ForAllValues with a single-valued condition key") {
			t.Errorf("%s: %v, want a malformed document naming ForAllValues", cond, err)
		}
	}
	for _, cond := range []string{
		`{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":"tenant"}}`,
		`{"ForAllValues:StringEquals":{"aws:TagKeys":"Project"}}`,
		`{"ForAllValues:StringEquals":{"kms:GrantOperations":"Decrypt"}}`,
		`{"ForAnyValue:StringEquals":{"kms:EncryptionContext:tenant":"acme"}}`,
	} {
		doc := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":` + cond + `}}`
		p, err := Parse([]byte(doc), IdentityPolicy)
		if err != nil {
			t.Errorf("%s: %v", cond, err)
			continue
		}
		// A request with no encryption context never satisfies a
		// condition on one of its keys.
		if strings.Contains(cond, "EncryptionContext:") && p.Evaluate(req(alice, "kms:Decrypt", &Context{})) != NotApplicable {
			t.Errorf("%s: allowed a request without an encryption context", cond)
		}
	}
}
