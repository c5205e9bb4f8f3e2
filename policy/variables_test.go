package policy

import "testing"

// Policy variables (IAM's "IAM policy elements: Variables and tags",
// docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
func TestPolicyVariables(t *testing.T) {
	ec := func(user string) *Context {
		return &Context{EncryptionContext: map[string]string{"user": user}, HasEncryptionContext: true}
	}
	named := func(principal, username string, c *Context) *Request {
		r := req(principal, "kms:Decrypt", c)
		r.Context.Username = username
		return r
	}
	// A per-user pattern: each user may decrypt only what was encrypted for
	// it (the encryption context names the user).
	perUser := identityPolicy(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*",
		"Condition":{"StringEquals":{"kms:EncryptionContext:user":"${aws:username}"}}}}`)
	// IAM's "Allows IAM users to manage their own credentials" pattern:
	// the variable in the Resource.
	ownKey := identityPolicy(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:CreateAccessKey",
		"Resource":"arn:aws:iam::*:user/${aws:username}"}}`)
	own := func(principal, username, resource string) *Request {
		r := req(principal, "iam:CreateAccessKey", &Context{Username: username})
		r.Resource = resource
		return r
	}
	for _, c := range []struct {
		name string
		p    *Policy
		r    *Request
		want Decision
	}{
		{"the user's own context", perUser, named(alice, "alice", ec("alice")), Allow},
		{"another user's context", perUser, named(bob, "bob", ec("alice")), NotApplicable},
		{"the literal placeholder is no value", perUser, named(bob, "bob", ec("${aws:username}")), NotApplicable},
		{"no aws:username (a role session): unresolved, no match", perUser, named(session, "", ec("")), NotApplicable},
		{"no aws:username, literal placeholder", perUser, named(session, "", ec("${aws:username}")), NotApplicable},
		{"own user in the Resource", ownKey, own(alice, "alice", "arn:aws:iam::111122223333:user/alice"), Allow},
		{"another user in the Resource", ownKey, own(alice, "alice", "arn:aws:iam::111122223333:user/bob"), NotApplicable},
		{"Resource, the literal placeholder", ownKey, own(alice, "alice", "arn:aws:iam::111122223333:user/${aws:username}"), NotApplicable},
		{"Resource, unresolved", ownKey, own(session, "", "arn:aws:iam::111122223333:user/"), NotApplicable},
	} {
		if got := c.p.Evaluate(c.r); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}

	// A Deny per user: nobody may decrypt another user's data.
	deny := identityPolicy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"},
		{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*","Condition":{"StringNotEquals":{"kms:EncryptionContext:user":"${aws:username}"}}}]}`)
	if got := deny.Evaluate(named(bob, "bob", ec("alice"))); got != Deny {
		t.Errorf("Deny per user, wrong user: %v", got)
	}
	if got := deny.Evaluate(named(bob, "bob", ec("${aws:username}"))); got != Deny {
		t.Errorf("Deny per user, literal placeholder: %v", got)
	}
	if got := deny.Evaluate(named(alice, "alice", ec("alice"))); got != Allow {
		t.Errorf("Deny per user, own data: %v", got)
	}

	// The escapes are literal characters, never wildcards.
	esc := identityPolicy(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*",
		"Condition":{"StringLike":{"kms:EncryptionContext:user":"${*}${?}${$}-*"}}}}`)
	for v, want := range map[string]Decision{"*?$-x": Allow, "*?$-": Allow, "ab$-x": NotApplicable, "*?x-x": NotApplicable} {
		if got := esc.Evaluate(named(alice, "alice", ec(v))); got != want {
			t.Errorf("escapes, %q: %v, want %v", v, got, want)
		}
	}
	// ArnLike with a variable in the resource part.
	arn := identityPolicy(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*",
		"Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/${aws:username}"}}}}`)
	if got := arn.Evaluate(named(alice, "alice", nil)); got != Allow {
		t.Errorf("ArnLike, own ARN: %v", got)
	}
	if got := arn.Evaluate(named(alice, "bob", nil)); got != NotApplicable {
		t.Errorf("ArnLike, another user: %v", got)
	}
	// In a 2008-10-17 document "${…}" is literal text.
	old := identityPolicy(t, `{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*",
		"Condition":{"StringEquals":{"kms:EncryptionContext:user":"${aws:username}"}}}}`)
	if got := old.Evaluate(named(alice, "alice", ec("alice"))); got != NotApplicable {
		t.Errorf("2008-10-17, expanded: %v", got)
	}
	if got := old.Evaluate(named(alice, "alice", ec("${aws:username}"))); got != Allow {
		t.Errorf("2008-10-17, literal: %v", got)
	}
}
