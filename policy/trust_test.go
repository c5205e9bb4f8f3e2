package policy

import (
	"errors"
	"testing"
)

func TestTrustPolicyParse(t *testing.T) {
	for _, c := range []struct {
		doc, err string
	}{
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + alice + `"},"Action":"sts:AssumeRole"}]}`, ""},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`, "Policy contains a statement with no Principal (statement 1); a trust policy must name who may assume the role."},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + alice + `"}}]}`, "Policy statement must contain actions (statement 1)."},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + alice + `"},"Action":"sts:AssumeRole","Resource":"*"}]}`, "A trust policy statement cannot name a Resource: it is about the role (statement 1)."},
	} {
		_, err := Parse([]byte(c.doc), TrustPolicy)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.doc, err)
		case c.err != "" && (err == nil || err.Error() != c.err || !errors.Is(err, ErrMalformed)):
			t.Errorf("%s: %v, want %s", c.doc, err, c.err)
		}
	}
}

// A trust policy is decided as a key policy is, its role the resource:
// naming the caller allows it; naming the account delegates to the
// caller's identity policies; a role is trusted by its sessions' ARN.
func TestTrustPolicyAuthorize(t *testing.T) {
	const role = "arn:aws:iam::111122223333:role/target"
	direct := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["`+alice+`","`+admin+`"]},"Action":"sts:AssumeRole"}]}`, TrustPolicy)
	account := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"`+acct+`"},"Action":"sts:AssumeRole"}]}`, TrustPolicy)
	mayAssume := identityPolicy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"`+role+`"}]}`)
	kmsOnly := identityPolicy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`)
	assume := func(principal string) *Request {
		r := req(principal, "sts:AssumeRole", nil)
		r.Resource = role
		return r
	}
	for _, c := range []struct {
		name     string
		trust    *Policy
		identity []*Policy
		r        *Request
		want     Decision
	}{
		{"named user", direct, nil, assume(alice), Allow},
		{"user not named", direct, nil, assume(bob), NotApplicable},
		{"session of a named role", direct, nil, assume(session), Allow},
		{"other action", direct, nil, req(alice, "sts:TagSession", nil), NotApplicable},
		{"account, identity allows", account, []*Policy{mayAssume}, assume(bob), Allow},
		{"account, identity allows kms only", account, []*Policy{kmsOnly}, assume(bob), NotApplicable},
		{"account, no identity policy", account, nil, assume(bob), NotApplicable},
		{"another account", account, []*Policy{mayAssume}, assume(mallory), NotApplicable},
	} {
		if got := Authorize(c.trust, acct, c.identity, false, c.r); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
