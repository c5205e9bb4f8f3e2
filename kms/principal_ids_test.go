package kms

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Principals by unique ID (issue 19.6): a key policy statement or a grant
// naming an IAM user or role applies to the principal that existed when
// it was put, not to one deleted and created again under the same name;
// a policy or grant naming a principal that does not exist is refused.

const idsTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`

// authenticated is the caller an access key of user name authenticates as
// the transport does.
func authenticated(t *testing.T, s *Service, root *Caller, name string) *Caller {
	t.Helper()
	ak, err := s.CreateAccessKey(context.Background(), root, &UserNameInput{UserName: name})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := s.AccessKey(context.Background(), ak.AccessKey.AccessKeyId)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.userID, "AIDA") || len(c.userID) != 21 {
		t.Fatalf("user ID %q, want AIDA and 17 characters", c.userID)
	}
	return c
}

func recreateUser(t *testing.T, s *Service, root *Caller, name string) *Caller {
	t.Helper()
	ctx := context.Background()
	if _, err := s.DeleteUser(ctx, root, &UserNameInput{UserName: name}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: name}); err != nil {
		t.Fatal(err)
	}
	return authenticated(t, s, root, name)
}

func keyWithPolicy(t *testing.T, s *Service, root *Caller, doc string) string {
	t.Helper()
	k, err := s.CreateKey(context.Background(), root, &CreateKeyInput{Policy: &doc})
	if err != nil {
		t.Fatal(err)
	}
	return k.KeyMetadata.KeyId
}

func encryptAs(s *Service, c *Caller, key string) error {
	_, err := s.Encrypt(context.Background(), c, &EncryptInput{KeyId: key, Plaintext: []byte("x")})
	return err
}

const namingAlice = `{"Version":"2012-10-17","Statement":[
	{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
	{"Sid":"Alice","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Encrypt","Resource":"*"}]}`

func TestRecreatedUserGetsNothingFromKeyPolicy(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: "alice"}); err != nil {
		t.Fatal(err)
	}
	alice := authenticated(t, s, root, "alice")
	key := keyWithPolicy(t, s, root, namingAlice)
	if err := encryptAs(s, alice, key); err != nil {
		t.Fatalf("alice named in the key policy: %v", err)
	}
	// Also through PutKeyPolicy, on a second key.
	key2 := keyWithPolicy(t, s, root, string(defaultPolicyFor("111122223333")))
	doc := namingAlice
	if _, err := s.PutKeyPolicy(ctx, root, &PutKeyPolicyInput{KeyId: key2, Policy: &doc}); err != nil {
		t.Fatal(err)
	}
	if err := encryptAs(s, alice, key2); err != nil {
		t.Fatalf("alice named by PutKeyPolicy: %v", err)
	}
	alice2 := recreateUser(t, s, root, "alice")
	for _, k := range []string{key, key2} {
		if err := encryptAs(s, alice2, k); !isAccessDenied(err) {
			t.Fatalf("the re-created alice: %v, want AccessDeniedException", err)
		}
		// A caller made in process for the same ARN is the current alice too.
		if err := encryptAs(s, &Caller{ARN: alice.ARN, Account: alice.Account}, k); !isAccessDenied(err) {
			t.Fatalf("the re-created alice (in process): %v, want AccessDeniedException", err)
		}
	}
	// GetKeyPolicy shows the old alice's unique ID where her ARN was.
	out, err := s.GetKeyPolicy(ctx, root, &GetKeyPolicyInput{KeyId: key, PolicyName: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Policy, `"`+alice.userID+`"`) || strings.Contains(out.Policy, ":user/alice") {
		t.Fatalf("GetKeyPolicy after alice was re-created:\n%s", out.Policy)
	}
	// Putting the policy again binds the new alice.
	if _, err := s.PutKeyPolicy(ctx, root, &PutKeyPolicyInput{KeyId: key, Policy: &doc}); err != nil {
		t.Fatal(err)
	}
	if err := encryptAs(s, alice2, key); err != nil {
		t.Fatalf("alice named again: %v", err)
	}
}

// defaultPolicyFor is the default key policy of an account.
func defaultPolicyFor(account string) []byte {
	return []byte(`{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"}]}`)
}

func TestRecreatedUserGetsNothingFromGrant(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	for _, u := range []string{"alice", "bob"} {
		if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: u}); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob := authenticated(t, s, root, "alice"), authenticated(t, s, root, "bob")
	k, err := s.CreateKey(ctx, root, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	key := k.KeyMetadata.KeyId
	g, err := s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: key, GranteePrincipal: alice.ARN, RetiringPrincipal: bob.ARN,
		Operations: []string{"Encrypt"}, Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if err := encryptAs(s, alice, key); err != nil {
		t.Fatalf("the grantee: %v", err)
	}
	alice2 := recreateUser(t, s, root, "alice")
	if err := encryptAs(s, alice2, key); !isAccessDenied(err) {
		t.Fatalf("the re-created grantee: %v, want AccessDeniedException", err)
	}
	// The same named request for the new alice is a new grant, not the old one.
	g2, err := s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: key, GranteePrincipal: alice.ARN, RetiringPrincipal: bob.ARN,
		Operations: []string{"Encrypt"}, Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if g2.GrantId == g.GrantId {
		t.Fatal("CreateGrant for the re-created grantee returned the old grant")
	}
	if err := encryptAs(s, alice2, key); err != nil {
		t.Fatalf("the re-created grantee's own grant: %v", err)
	}
	// The re-created retiring principal retires nothing of the old bob's.
	bob2 := recreateUser(t, s, root, "bob")
	if _, err := s.RetireGrant(ctx, bob2, &RetireGrantInput{KeyId: key, GrantId: g.GrantId}); !isAccessDenied(err) {
		t.Fatalf("the re-created retiring principal: %v, want AccessDeniedException", err)
	}
}

func TestRecreatedRoleGetsNothing(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	mk := func() *Caller {
		r, err := s.CreateRole(ctx, root, &CreateRoleInput{RoleName: "app", AssumeRolePolicyDocument: idsTrust})
		if err != nil {
			t.Fatal(err)
		}
		return &Caller{ARN: "arn:aws:sts::111122223333:assumed-role/app/s1", Account: "111122223333", RoleARN: r.Role.Arn, roleID: r.Role.RoleId}
	}
	session := mk()
	key := keyWithPolicy(t, s, root, strings.ReplaceAll(namingAlice, "user/alice", "role/app"))
	gk, err := s.CreateKey(ctx, root, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: gk.KeyMetadata.KeyId, GranteePrincipal: session.RoleARN, Operations: []string{"Encrypt"}}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{key, gk.KeyMetadata.KeyId} {
		if err := encryptAs(s, session, k); err != nil {
			t.Fatalf("a session of the role: %v", err)
		}
	}
	if _, err := s.DeleteRole(ctx, root, &RoleNameInput{RoleName: "app"}); err != nil {
		t.Fatal(err)
	}
	session2 := mk()
	for _, k := range []string{key, gk.KeyMetadata.KeyId} {
		if err := encryptAs(s, session2, k); !isAccessDenied(err) {
			t.Fatalf("a session of the re-created role: %v, want AccessDeniedException", err)
		}
	}
}

func TestMissingPrincipalRefused(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: "alice"}); err != nil {
		t.Fatal(err)
	}
	ghost := strings.ReplaceAll(namingAlice, "user/alice", "user/ghost")
	ghostRole := strings.ReplaceAll(namingAlice, "user/alice", "role/ghost")
	malformed := func(what string, err error) {
		t.Helper()
		var ke *Error
		if !errors.As(err, &ke) || ke.Kind != ErrMalformedPolicy || !strings.HasPrefix(ke.Message, "Policy contains a statement with one or more invalid principals.") {
			t.Errorf("%s: %v, want MalformedPolicyDocumentException about invalid principals", what, err)
		}
	}
	for _, doc := range []string{ghost, ghostRole} {
		_, err := s.CreateKey(ctx, root, &CreateKeyInput{Policy: &doc})
		malformed("CreateKey", err)
	}
	k, err := s.CreateKey(ctx, root, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	key := k.KeyMetadata.KeyId
	_, err = s.PutKeyPolicy(ctx, root, &PutKeyPolicyInput{KeyId: key, Policy: &ghost})
	malformed("PutKeyPolicy", err)
	// The role of a user's name is not the user.
	userAsRole := strings.ReplaceAll(namingAlice, "user/alice", "role/alice")
	_, err = s.PutKeyPolicy(ctx, root, &PutKeyPolicyInput{KeyId: key, Policy: &userAsRole})
	malformed("PutKeyPolicy naming a user as a role", err)

	invalidArn := func(what string, in *CreateGrantInput) {
		t.Helper()
		in.KeyId, in.Operations = key, []string{"Decrypt"}
		_, err := s.CreateGrant(ctx, root, in)
		var ke *Error
		if !errors.As(err, &ke) || ke.Kind != ErrInvalidArn {
			t.Errorf("%s: %v, want InvalidArnException", what, err)
		}
	}
	invalidArn("missing grantee", &CreateGrantInput{GranteePrincipal: "arn:aws:iam::111122223333:user/ghost"})
	invalidArn("missing retiring principal", &CreateGrantInput{GranteePrincipal: "arn:aws:iam::111122223333:user/alice", RetiringPrincipal: "arn:aws:iam::111122223333:role/ghost"})
	invalidArn("missing grantee, dry run", &CreateGrantInput{GranteePrincipal: "arn:aws:iam::111122223333:user/ghost", DryRun: true})

	// Roots, accounts, services and existing principals are accepted.
	ok := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","444455556666","arn:aws:iam::111122223333:user/alice"]},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":"*","Action":"kms:DescribeKey","Resource":"*"}]}`
	if _, err := s.PutKeyPolicy(ctx, root, &PutKeyPolicyInput{KeyId: key, Policy: &ok}); err != nil {
		t.Fatalf("a policy naming accounts, * and an existing user: %v", err)
	}
	if _, err := s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: key, Operations: []string{"Decrypt"},
		GranteePrincipal: "arn:aws:iam::444455556666:root", RetiringPrincipal: "arn:aws:iam::111122223333:user/alice"}); err != nil {
		t.Fatalf("a grant to an account, retired by an existing user: %v", err)
	}
}

// Statements naming the account, "*", or the account root are not bound:
// a re-created user gets what they give any principal of the account.
func TestRecreatedUserKeepsAccountAndStarStatements(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: "alice"}); err != nil {
		t.Fatal(err)
	}
	doc := `{"Version":"2012-10-17","Statement":[
		{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Decrypt","Resource":"*"}]}`
	key := keyWithPolicy(t, s, root, doc)
	alice2 := recreateUser(t, s, root, "alice")
	if err := encryptAs(s, alice2, key); err != nil {
		t.Fatalf("Principal * after alice was re-created: %v", err)
	}
	if _, err := s.PutUserPolicy(ctx, root, &UserPolicyInput{UserName: "alice", PolicyName: "p",
		PolicyDocument: `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:DescribeKey","Resource":"*"}}`}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DescribeKey(ctx, alice2, &KeyIDInput{KeyId: key}); err != nil {
		t.Fatalf("the account principal delegating to the new alice's identity policy: %v", err)
	}
	if _, err := s.GetKeyPolicy(ctx, root, &GetKeyPolicyInput{KeyId: key}); err != nil {
		t.Fatal(err)
	}
}
