package kms

import (
	"context"
	"errors"
	"testing"
)

// Grant chains: a principal whose CreateGrant permission comes from a grant
// creates only grants within that grant (AWS developer guide, "Creating
// grants", section "Granting CreateGrant permission"); one whose permission
// comes from a policy is not limited.

const chainAccount = "111122223333"

func chainUser(name string) *Caller {
	return &Caller{ARN: "arn:aws:iam::" + chainAccount + ":user/" + name, Account: chainAccount}
}

func isAccessDenied(err error) bool {
	var ke *Error
	return errors.As(err, &ke) && ke.Kind == ErrAccessDenied
}

// chainFixture is a key with the default key policy (the account delegates
// to IAM) and users with no identity policy, so that everything they may do
// on the key comes from grants.
type chainFixture struct {
	s    *Service
	root *Caller
	key  string
}

func newChainFixture(t *testing.T) *chainFixture {
	t.Helper()
	s, root := newFormsService(t)
	ctx := context.Background()
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: u}); err != nil {
			t.Fatal(err)
		}
	}
	k, err := s.CreateKey(ctx, root, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	return &chainFixture{s: s, root: root, key: k.KeyMetadata.KeyId}
}

func (f *chainFixture) grant(by *Caller, to string, ops []string, cons *GrantConstraints) error {
	_, err := f.s.CreateGrant(context.Background(), by, &CreateGrantInput{
		KeyId: f.key, GranteePrincipal: chainUser(to).ARN, Operations: ops, Constraints: cons})
	return err
}

func subset(kv ...string) *GrantConstraints {
	return &GrantConstraints{EncryptionContextSubset: pairs(kv)}
}

func equals(kv ...string) *GrantConstraints {
	return &GrantConstraints{EncryptionContextEquals: pairs(kv)}
}

func pairs(kv []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestGrantChainChildWithinParent(t *testing.T) {
	f := newChainFixture(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Parents, created by the account root (a policy permission: no limit).
	must(f.grant(f.root, "alice", []string{"CreateGrant", "Decrypt", "GenerateDataKey"}, subset("Department", "IT")))
	must(f.grant(f.root, "carol", []string{"CreateGrant", "Decrypt"}, equals("Department", "IT")))
	must(f.grant(f.root, "dave", []string{"CreateGrant", "Encrypt"}, nil))
	must(f.grant(f.root, "dave", []string{"CreateGrant", "Decrypt"}, subset("Department", "IT")))

	cases := []struct {
		name  string
		by    string
		ops   []string
		cons  *GrantConstraints
		allow bool
	}{
		// alice: {CreateGrant, Decrypt, GenerateDataKey}, Subset {Department: IT}.
		{"same constraint, fewer operations", "alice", []string{"Decrypt"}, subset("Department", "IT"), true},
		{"subset with added pairs", "alice", []string{"CreateGrant", "Decrypt"}, subset("Department", "IT", "Purpose", "Test"), true},
		{"subset turned into equals", "alice", []string{"Decrypt"}, equals("Department", "IT"), true},
		{"equals holding the parent's pairs and more", "alice", []string{"GenerateDataKey"}, equals("Department", "IT", "Purpose", "Test"), true},
		{"all the parent's operations", "alice", []string{"CreateGrant", "Decrypt", "GenerateDataKey"}, subset("Department", "IT"), true},
		{"an operation the parent lacks", "alice", []string{"Encrypt"}, subset("Department", "IT"), false},
		{"one operation too many", "alice", []string{"Decrypt", "ReEncryptFrom"}, subset("Department", "IT"), false},
		{"RetireGrant not in the parent", "alice", []string{"Decrypt", "RetireGrant"}, subset("Department", "IT"), false},
		{"no constraints", "alice", []string{"Decrypt"}, nil, false},
		{"empty constraints", "alice", []string{"Decrypt"}, &GrantConstraints{}, false},
		{"a pair removed", "alice", []string{"Decrypt"}, subset("Purpose", "Test"), false},
		{"a value changed", "alice", []string{"Decrypt"}, subset("Department", "HR"), false},
		{"a key in another case", "alice", []string{"Decrypt"}, subset("department", "IT"), false},
		{"equals without the parent's pairs", "alice", []string{"Decrypt"}, equals("Purpose", "Test"), false},
		// carol: {CreateGrant, Decrypt}, Equals {Department: IT}.
		{"the same equals", "carol", []string{"Decrypt"}, equals("Department", "IT"), true},
		{"equals loosened to subset", "carol", []string{"Decrypt"}, subset("Department", "IT"), false},
		{"equals with a pair added", "carol", []string{"Decrypt"}, equals("Department", "IT", "Purpose", "Test"), false},
		{"equals emptied", "carol", []string{"Decrypt"}, &GrantConstraints{EncryptionContextEquals: map[string]string{}}, false},
		{"equals dropped", "carol", []string{"Decrypt"}, nil, false},
		{"equals parent, operation it lacks", "carol", []string{"Encrypt"}, equals("Department", "IT"), false},
		// dave: {CreateGrant, Encrypt} unconstrained and {CreateGrant, Decrypt} Subset {Department: IT}.
		{"from the unconstrained parent", "dave", []string{"Encrypt"}, nil, true},
		{"from the unconstrained parent, constrained", "dave", []string{"Encrypt", "CreateGrant"}, subset("Any", "thing"), true},
		{"from the constrained parent", "dave", []string{"Decrypt"}, subset("Department", "IT"), true},
		{"Decrypt needs the constrained parent's constraint", "dave", []string{"Decrypt"}, nil, false},
		{"no one parent holds both operations", "dave", []string{"Encrypt", "Decrypt"}, subset("Department", "IT"), false},
		// erin has no grant at all.
		{"no parent", "erin", []string{"Decrypt"}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := f.grant(chainUser(tc.by), "bob", tc.ops, tc.cons)
			switch {
			case tc.allow && err != nil:
				t.Fatalf("%s creating %v %+v: %v, want success", tc.by, tc.ops, tc.cons, err)
			case !tc.allow && !isAccessDenied(err):
				t.Fatalf("%s creating %v %+v: %v, want AccessDeniedException", tc.by, tc.ops, tc.cons, err)
			}
		})
	}
}

// TestGrantChainGrandchild: a child grant that includes CreateGrant limits
// its own grantee in turn; the limits follow the child, not the root grant.
func TestGrantChainGrandchild(t *testing.T) {
	f := newChainFixture(t)
	if err := f.grant(f.root, "alice", []string{"CreateGrant", "Decrypt", "Encrypt"}, subset("Department", "IT")); err != nil {
		t.Fatal(err)
	}
	alice, bob := chainUser("alice"), chainUser("bob")
	if err := f.grant(alice, "bob", []string{"CreateGrant", "Decrypt"}, equals("Department", "IT")); err != nil {
		t.Fatal(err)
	}
	if err := f.grant(bob, "carol", []string{"Decrypt"}, equals("Department", "IT")); err != nil {
		t.Errorf("grandchild within its parent: %v", err)
	}
	for _, tc := range []struct {
		ops  []string
		cons *GrantConstraints
	}{
		{[]string{"Decrypt"}, subset("Department", "IT")}, // alice's constraint, looser than bob's
		{[]string{"Encrypt"}, equals("Department", "IT")}, // alice's operation, not bob's
	} {
		if err := f.grant(bob, "carol", tc.ops, tc.cons); !isAccessDenied(err) {
			t.Errorf("bob creating %v %+v: %v, want AccessDeniedException", tc.ops, tc.cons, err)
		}
	}
}

// TestGrantChainPolicyPermissionUnlimited: a principal allowed CreateGrant
// by a policy is not held to the grants it also has.
func TestGrantChainPolicyPermissionUnlimited(t *testing.T) {
	f := newChainFixture(t)
	ctx := context.Background()
	if err := f.grant(f.root, "alice", []string{"CreateGrant", "Decrypt"}, equals("Department", "IT")); err != nil {
		t.Fatal(err)
	}
	alice := chainUser("alice")
	if err := f.grant(alice, "bob", []string{"Encrypt", "Decrypt"}, nil); !isAccessDenied(err) {
		t.Fatalf("before the policy: %v, want AccessDeniedException", err)
	}
	if _, err := f.s.PutUserPolicy(ctx, f.root, &UserPolicyInput{UserName: "alice", PolicyName: "grants",
		PolicyDocument: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateGrant","Resource":"*"}]}`}); err != nil {
		t.Fatal(err)
	}
	if err := f.grant(alice, "bob", []string{"Encrypt", "Decrypt"}, nil); err != nil {
		t.Fatalf("with kms:CreateGrant from an identity policy: %v", err)
	}
}
