package kms

import (
	"context"
	"testing"
)

// RetireGrant's permission (AWS developer guide, "Retiring and revoking
// grants"): the grant's retiring principal, its grantee when the grant
// includes RetireGrant, the issuing account and principals its identity
// policies delegate kms:RetireGrant to; never a key policy Allow; an
// explicit Deny wins.
func TestRetireGrantPermission(t *testing.T) {
	f := newChainFixture(t)
	ctx := context.Background()
	retireAllow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:RetireGrant","Resource":"*"}]}`
	retireDeny := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:RetireGrant","Resource":"*"}]}`
	for _, u := range []string{"retiree", "grantee", "ops", "denied", "stranger"} {
		if _, err := f.s.CreateUser(ctx, f.root, &UserNameInput{UserName: u}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(user, doc string) {
		t.Helper()
		if _, err := f.s.PutUserPolicy(ctx, f.root, &UserPolicyInput{UserName: user, PolicyName: "p", PolicyDocument: doc}); err != nil {
			t.Fatal(err)
		}
	}
	put("ops", retireAllow)
	put("denied", retireDeny)

	// newGrant makes a grant of f.key to grantee with ops, retired by retiring.
	newGrant := func(grantee, retiring string, ops ...string) (id, token string) {
		t.Helper()
		out, err := f.s.CreateGrant(ctx, f.root, &CreateGrantInput{KeyId: f.key, GranteePrincipal: grantee,
			RetiringPrincipal: retiring, Operations: ops})
		if err != nil {
			t.Fatal(err)
		}
		return out.GrantId, out.GrantToken
	}
	retireByID := func(c *Caller, id string) error {
		_, err := f.s.RetireGrant(ctx, c, &RetireGrantInput{KeyId: f.key, GrantId: id})
		return err
	}
	retireByToken := func(c *Caller, token string) error {
		_, err := f.s.RetireGrant(ctx, c, &RetireGrantInput{GrantToken: token})
		return err
	}
	user := chainUser

	t.Run("retiring principal", func(t *testing.T) {
		id, tok := newGrant(user("bob").ARN, user("retiree").ARN, "Decrypt")
		if err := retireByToken(user("stranger"), tok); !isAccessDenied(err) {
			t.Fatalf("an unrelated principal: %v, want AccessDeniedException", err)
		}
		if err := retireByID(user("retiree"), id); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("grantee with RetireGrant", func(t *testing.T) {
		id, _ := newGrant(user("grantee").ARN, "", "Decrypt", "RetireGrant")
		if err := retireByID(user("grantee"), id); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("grantee without RetireGrant", func(t *testing.T) {
		id, _ := newGrant(user("grantee").ARN, "", "Decrypt")
		if err := retireByID(user("grantee"), id); !isAccessDenied(err) {
			t.Fatalf("%v, want AccessDeniedException", err)
		}
	})
	t.Run("issuing account principal with kms:RetireGrant in its IAM policy", func(t *testing.T) {
		id, tok := newGrant(user("bob").ARN, "", "Decrypt")
		if err := retireByID(user("stranger"), id); !isAccessDenied(err) {
			t.Fatalf("a principal of the account without the permission: %v, want AccessDeniedException", err)
		}
		if err := retireByToken(user("ops"), tok); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("issuing account root", func(t *testing.T) {
		id, _ := newGrant(user("bob").ARN, "", "Decrypt")
		if err := retireByID(f.root, id); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("explicit deny beats the retiring principal", func(t *testing.T) {
		id, _ := newGrant(user("denied").ARN, user("denied").ARN, "Decrypt", "RetireGrant")
		if err := retireByID(user("denied"), id); !isAccessDenied(err) {
			t.Fatalf("%v, want AccessDeniedException", err)
		}
	})
	t.Run("other account", func(t *testing.T) {
		id, _ := newGrant(user("bob").ARN, "", "Decrypt")
		other := &Caller{ARN: "arn:aws:iam::444455556666:root", Account: "444455556666"}
		arn := "arn:aws:kms:us-east-1:" + chainAccount + ":key/" + f.key
		if _, err := f.s.RetireGrant(ctx, other, &RetireGrantInput{KeyId: arn, GrantId: id}); !isAccessDenied(err) {
			t.Fatalf("%v, want AccessDeniedException", err)
		}
	})
}

// TestRetireGrantKeyPolicy: kms:RetireGrant in a key policy allows no one
// (AWS: "not effective in a key policy"), and a Deny there refuses even
// the retiring principal (Coffer's stricter reading).
func TestRetireGrantKeyPolicy(t *testing.T) {
	f := newChainFixture(t)
	ctx := context.Background()
	doc := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:RetireGrant","Resource":"*"},
		{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:RetireGrant","Resource":"*"}]}`
	k, err := f.s.CreateKey(ctx, f.root, &CreateKeyInput{Policy: &doc})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.s.CreateGrant(ctx, f.root, &CreateGrantInput{KeyId: k.KeyMetadata.KeyId, GranteePrincipal: chainUser("carol").ARN,
		RetiringPrincipal: chainUser("bob").ARN, Operations: []string{"Decrypt"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"alice", "bob"} {
		if _, err := f.s.RetireGrant(ctx, chainUser(who), &RetireGrantInput{GrantToken: out.GrantToken}); !isAccessDenied(err) {
			t.Errorf("%s: %v, want AccessDeniedException", who, err)
		}
	}
	if _, err := f.s.RetireGrant(ctx, f.root, &RetireGrantInput{GrantToken: out.GrantToken}); err != nil {
		t.Errorf("the issuing account's root: %v", err)
	}
}

// TestRetireGrantDeletedRoleSession: a session of a role that was deleted
// retires nothing, though the grant names the role as retiring principal.
func TestRetireGrantDeletedRoleSession(t *testing.T) {
	f := newChainFixture(t)
	ctx := context.Background()
	role, err := f.s.CreateRole(ctx, f.root, &CreateRoleInput{RoleName: "janitor",
		AssumeRolePolicyDocument: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	session := &Caller{ARN: "arn:aws:sts::111122223333:assumed-role/janitor/s1", Account: chainAccount,
		RoleARN: role.Role.Arn, roleID: role.Role.RoleId}
	grant := func() string {
		out, err := f.s.CreateGrant(ctx, f.root, &CreateGrantInput{KeyId: f.key, GranteePrincipal: chainUser("bob").ARN,
			RetiringPrincipal: role.Role.Arn, Operations: []string{"Decrypt"}})
		if err != nil {
			t.Fatal(err)
		}
		return out.GrantToken
	}
	if _, err := f.s.RetireGrant(ctx, session, &RetireGrantInput{GrantToken: grant()}); err != nil {
		t.Fatalf("the live role's session: %v", err)
	}
	tok := grant()
	if _, err := f.s.DeleteRole(ctx, f.root, &RoleNameInput{RoleName: "janitor"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.RetireGrant(ctx, session, &RetireGrantInput{GrantToken: tok}); !isAccessDenied(err) {
		t.Fatalf("a session of the deleted role: %v, want AccessDeniedException", err)
	}
}
