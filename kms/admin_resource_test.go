package kms

import (
	"context"
	"errors"
	"testing"
)

// TestAccessKeyActionsOnUserResource: iam:DeleteAccessKey and
// iam:ListAccessKeys are authorized on the ARN of the user the keys belong
// to (issue 19.5), so that a resource-scoped Deny protecting user/admin
// holds while the same principal manages other users' keys.
func TestAccessKeyActionsOnUserResource(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	for _, u := range []string{"admin", "bob", "helpdesk"} {
		if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: u}); err != nil {
			t.Fatal(err)
		}
	}
	key := func(user string) string {
		t.Helper()
		out, err := s.CreateAccessKey(ctx, root, &UserNameInput{UserName: user})
		if err != nil {
			t.Fatal(err)
		}
		return out.AccessKey.AccessKeyId
	}
	adminKey, bobKey, bobKey2 := key("admin"), key("bob"), key("bob")
	if _, err := s.PutUserPolicy(ctx, root, &UserPolicyInput{UserName: "helpdesk", PolicyName: "keys", PolicyDocument: `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["iam:DeleteAccessKey","iam:ListAccessKeys"],"Resource":"*"},
		{"Effect":"Deny","Action":["iam:DeleteAccessKey","iam:ListAccessKeys"],"Resource":"arn:aws:iam::111122223333:user/admin"}]}`}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutUserPolicy(ctx, root, &UserPolicyInput{UserName: "bob", PolicyName: "own", PolicyDocument: `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["iam:DeleteAccessKey","iam:ListAccessKeys"],"Resource":"arn:aws:iam::111122223333:user/bob"}]}`}); err != nil {
		t.Fatal(err)
	}
	helpdesk, bob := chainUser("helpdesk"), chainUser("bob")
	bob.AccessKeyID = bobKey

	if _, err := s.ListAccessKeys(ctx, helpdesk, &UserNameInput{UserName: "admin"}); !isAccessDenied(err) {
		t.Errorf("helpdesk listing admin's keys: %v, want AccessDeniedException", err)
	}
	if out, err := s.ListAccessKeys(ctx, helpdesk, &UserNameInput{UserName: "bob"}); err != nil || len(out.AccessKeyMetadata) != 2 {
		t.Errorf("helpdesk listing bob's keys: %+v, %v; want bob's two keys", out, err)
	}
	if _, err := s.DeleteAccessKey(ctx, helpdesk, &AccessKeyIDInput{AccessKeyId: adminKey}); !isAccessDenied(err) {
		t.Errorf("helpdesk deleting admin's key: %v, want AccessDeniedException", err)
	}
	if _, err := s.DeleteAccessKey(ctx, helpdesk, &AccessKeyIDInput{AccessKeyId: bobKey2}); err != nil {
		t.Errorf("helpdesk deleting bob's key: %v", err)
	}
	// Allowed on every user, helpdesk learns that a key does not exist.
	if _, err := s.DeleteAccessKey(ctx, helpdesk, &AccessKeyIDInput{AccessKeyId: "AKIAAAAAAAAAAAAAAAAA"}); !isKind(err, ErrNotFound) {
		t.Errorf("helpdesk deleting a missing key: %v, want NotFoundException", err)
	}

	// bob, allowed on himself only: his own keys by default, as IAM does,
	// and no way to tell a key of admin's from one that does not exist.
	if out, err := s.ListAccessKeys(ctx, bob, &UserNameInput{}); err != nil || len(out.AccessKeyMetadata) != 1 || out.AccessKeyMetadata[0].AccessKeyId != bobKey {
		t.Errorf("bob listing his own keys: %+v, %v; want his one key", out, err)
	}
	if _, err := s.ListAccessKeys(ctx, bob, &UserNameInput{UserName: "helpdesk"}); !isAccessDenied(err) {
		t.Errorf("bob listing helpdesk's keys: %v, want AccessDeniedException", err)
	}
	_, errAdmin := s.DeleteAccessKey(ctx, bob, &AccessKeyIDInput{AccessKeyId: adminKey})
	_, errMissing := s.DeleteAccessKey(ctx, bob, &AccessKeyIDInput{AccessKeyId: "AKIAAAAAAAAAAAAAAAAA"})
	if !isAccessDenied(errAdmin) || errAdmin.Error() != errMissing.Error() {
		t.Errorf("bob deleting admin's key: %v; a missing key: %v; want the same AccessDeniedException", errAdmin, errMissing)
	}
	if out, err := s.ListAccessKeys(ctx, root, &UserNameInput{UserName: "admin"}); err != nil || len(out.AccessKeyMetadata) != 1 {
		t.Fatalf("admin's key after the refusals: %+v, %v", out, err)
	}
}

func isKind(err, kind error) bool {
	var ke *Error
	return errors.As(err, &ke) && ke.Kind == kind
}
