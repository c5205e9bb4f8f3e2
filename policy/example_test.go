package policy_test

import (
	"fmt"

	"github.com/coffer-kms/coffer/policy"
)

func Example() {
	const account = "111122223333"
	keyPolicy, err := policy.Parse(policy.DefaultKeyPolicy(account), policy.KeyPolicy)
	if err != nil {
		panic(err)
	}
	// alice's identity policy lets her use keys, not delete them.
	alice, err := policy.Parse([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}`), policy.IdentityPolicy)
	if err != nil {
		panic(err)
	}
	for _, action := range []string{"kms:Encrypt", "kms:ScheduleKeyDeletion"} {
		r := &policy.Request{
			PrincipalARN:     "arn:aws:iam::111122223333:user/alice",
			PrincipalAccount: account,
			Action:           action,
			Resource:         "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
			Context:          &policy.Context{CallerAccount: account, EncryptionContext: map[string]string{"app": "x"}},
		}
		fmt.Println(action, policy.Authorize(keyPolicy, account, []*policy.Policy{alice}, false, r))
	}

	_, err = policy.Parse([]byte(`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEqualz":{"kms:CallerAccount":"1"}}}]}`), policy.KeyPolicy)
	fmt.Println(err)
	// Output:
	// kms:Encrypt Allow
	// kms:ScheduleKeyDeletion NotApplicable
	// Unknown condition operator: StringEqualz (statement 1).
}
