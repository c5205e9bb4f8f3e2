package policy

import (
	"strings"
	"testing"
)

const (
	acct    = "111122223333"
	other   = "444455556666"
	root    = "arn:aws:iam::111122223333:root"
	alice   = "arn:aws:iam::111122223333:user/alice"
	bob     = "arn:aws:iam::111122223333:user/bob"
	admin   = "arn:aws:iam::111122223333:role/KeyAdmin"
	session = "arn:aws:sts::111122223333:assumed-role/KeyAdmin/maria"
	mallory = "arn:aws:iam::444455556666:user/mallory"
	otherRt = "arn:aws:iam::444455556666:root"
	keyARN  = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

func mustParse(t testing.TB, doc string, kind Kind) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc), kind)
	if err != nil {
		t.Fatalf("parse %s: %v", doc, err)
	}
	return p
}

func keyPolicy(t testing.TB, doc string) *Policy { t.Helper(); return mustParse(t, doc, KeyPolicy) }

func identityPolicy(t testing.TB, doc string) *Policy {
	t.Helper()
	return mustParse(t, doc, IdentityPolicy)
}

// req builds a request by principal (whose account is read from its ARN)
// on the test key.
func req(principal, action string, ctx *Context) *Request {
	account := ""
	if parts := strings.Split(principal, ":"); len(parts) > 4 {
		account = parts[4]
	}
	if ctx == nil {
		ctx = &Context{}
	}
	ctx.CallerAccount, ctx.PrincipalARN = account, principal
	return &Request{PrincipalARN: principal, PrincipalAccount: account, Action: action, Resource: keyARN, Context: ctx}
}

// defaultPolicy is AWS's default key policy for account acct, compact.
const defaultPolicy = `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`

// allowAll is an administrator's identity policy.
const allowAll = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`
