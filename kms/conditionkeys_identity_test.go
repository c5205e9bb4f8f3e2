package kms

import (
	"context"
	"testing"
)

// TestIdentityConditionKeys: the keys about the caller, which AWS sets on
// every request (IAM's "AWS global condition context keys" and its table
// of aws:username / aws:userid by principal in "IAM policy elements:
// Variables and tags"): aws:username for IAM users only, aws:userid
// (account ID for the root, RoleId:session for a role session),
// sts:RoleSessionName for role sessions only. Each is held by a Deny in
// the key policy that must refuse one principal and not another.
func TestIdentityConditionKeys(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	for _, name := range []string{"alice", "bob"} {
		if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: name}); err != nil {
			t.Fatal(err)
		}
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`
	if _, err := s.CreateRole(ctx, root, &CreateRoleInput{RoleName: "ops", AssumeRolePolicyDocument: trust}); err != nil {
		t.Fatal(err)
	}
	allowRole := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`
	if _, err := s.PutRolePolicy(ctx, root, &RolePolicyInput{RoleName: "ops", PolicyName: "p", PolicyDocument: allowRole}); err != nil {
		t.Fatal(err)
	}
	session := func(name string) *Caller {
		t.Helper()
		out, err := s.AssumeRole(ctx, root, &AssumeRoleInput{RoleArn: "arn:aws:iam::111122223333:role/ops", RoleSessionName: name})
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := s.SessionCredentials(ctx, out.AccessKeyID, out.SessionToken)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	alice := &Caller{ARN: "arn:aws:iam::111122223333:user/alice", Account: "111122223333"}
	bob := &Caller{ARN: "arn:aws:iam::111122223333:user/bob", Account: "111122223333"}
	good, evil := session("good"), session("evil")
	goodID := ""
	if e, ok := s.cache.accessKeys.get(good.AccessKeyID); ok {
		goodID = e.userID
	}

	for _, c := range []struct {
		name             string
		cond             string
		allowed, refused *Caller
	}{
		{"aws:username", `{"StringEquals":{"aws:username":"bob"}}`, alice, bob},
		{"aws:username absent for a role session", `{"Null":{"aws:username":"false"}}`, good, alice},
		{"aws:userid of the root", `{"StringEquals":{"aws:userid":"111122223333"}}`, alice, root},
		{"aws:userid of a role session", `{"StringEquals":{"aws:userid":"` + goodID + `"}}`, evil, good},
		{"sts:RoleSessionName", `{"StringEquals":{"sts:RoleSessionName":"evil"}}`, good, evil},
		{"sts:RoleSessionName absent for a user", `{"Null":{"sts:RoleSessionName":"true"}}`, good, alice},
	} {
		doc := `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/alice","arn:aws:iam::111122223333:user/bob"]},"Action":"kms:*","Resource":"*"},
			{"Effect":"Deny","Principal":"*","Action":"kms:DescribeKey","Resource":"*","Condition":` + c.cond + `}]}`
		out, err := s.CreateKey(ctx, root, &CreateKeyInput{Policy: &doc, BypassPolicyLockoutSafetyCheck: true})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		id := out.KeyMetadata.KeyId
		if _, err := s.DescribeKey(ctx, c.allowed, &KeyIDInput{KeyId: id}); err != nil {
			t.Errorf("%s: %s refused: %v", c.name, c.allowed.ARN, err)
		}
		if _, err := s.DescribeKey(ctx, c.refused, &KeyIDInput{KeyId: id}); !isAccessDenied(err) {
			t.Errorf("%s: %s: %v, want AccessDeniedException", c.name, c.refused.ARN, err)
		}
	}
}
