package server_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestAWSExampleConditionPolicies runs AWS's documented example policies
// for the condition keys KMS fills over a real socket, each with a
// principal (or request) that must be allowed and one that must be denied.
// Sources: the AWS KMS Developer Guide's "AWS KMS condition keys"
// (docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html),
// "Use aliases to control access to KMS keys" (alias-authorization.html),
// "Use tags to control access to KMS keys" (tag-authorization.html) and
// "Controlling access to tags" (tag-permissions.html).
func TestAWSExampleConditionPolicies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// stmt wraps one of AWS's example statements in an identity policy that
	// otherwise allows KMS.
	withAllow := func(stmt string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"},` + stmt + `]}`
	}
	only := func(stmt string) string { return `{"Version":"2012-10-17","Statement":[` + stmt + `]}` }
	bob, _ := e.principal(t, testAccount, "bob", allowAll)

	t.Run("kms:BypassPolicyLockoutSafetyCheck", func(t *testing.T) {
		// conditions-kms.html, kms:BypassPolicyLockoutSafetyCheck.
		alice, _ := e.principal(t, testAccount, "bypass-alice", withAllow(`{"Effect":"Deny","Action":["kms:CreateKey","kms:PutKeyPolicy"],"Resource":"*",
			"Condition":{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":true}}}`))
		in := func() *awskms.CreateKeyInput {
			return &awskms.CreateKeyInput{Policy: aws.String(keyPolicy()), BypassPolicyLockoutSafetyCheck: true}
		}
		_, err := alice.CreateKey(ctx, in())
		wantCode(t, err, "AccessDeniedException")
		if _, err := bob.CreateKey(ctx, in()); err != nil {
			t.Errorf("bob: %v", err)
		}
		if _, err := alice.CreateKey(ctx, &awskms.CreateKeyInput{}); err != nil {
			t.Errorf("alice without the bypass: %v", err)
		}
	})

	t.Run("kms:KeySpec kms:KeyUsage kms:KeyOrigin on CreateKey", func(t *testing.T) {
		// conditions-kms.html: the kms:KeySpec, kms:KeyUsage and
		// kms:KeyOrigin examples allow CreateKey for one kind of key only.
		for _, c := range []struct{ key, want, other string }{
			{"kms:KeySpec", "SYMMETRIC_DEFAULT", "RSA_4096"},
			{"kms:KeyUsage", "ENCRYPT_DECRYPT", "SIGN_VERIFY"},
			{"kms:KeyOrigin", "AWS_KMS", "EXTERNAL"},
		} {
			allow := func(v string) string {
				return only(`{"Effect":"Allow","Action":"kms:CreateKey","Resource":"*","Condition":{"StringEquals":{"` + c.key + `":"` + v + `"}}}`)
			}
			yes, _ := e.principal(t, testAccount, "spec-yes-"+c.key[4:], allow(c.want))
			no, _ := e.principal(t, testAccount, "spec-no-"+c.key[4:], allow(c.other))
			if _, err := yes.CreateKey(ctx, &awskms.CreateKeyInput{}); err != nil {
				t.Errorf("%s=%s: %v", c.key, c.want, err)
			}
			_, err := no.CreateKey(ctx, &awskms.CreateKeyInput{})
			wantCode(t, err, "AccessDeniedException")
		}
	})

	t.Run("aws:RequestTag aws:TagKeys", func(t *testing.T) {
		// tag-permissions.html: deny tagging with a reserved tag key, and
		// deny a tag value.
		alice, _ := e.principal(t, testAccount, "tags-alice", withAllow(`{"Effect":"Deny","Action":["kms:CreateKey","kms:TagResource","kms:UntagResource"],"Resource":"*",
			"Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":"Purpose"}}},
			{"Effect":"Deny","Action":["kms:CreateKey","kms:TagResource"],"Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/Project":"Alpha"}}}`))
		key := e.createKey("tags")
		for _, tg := range [][]string{{"Purpose", "Test"}, {"Project", "Alpha"}} {
			_, err := alice.TagResource(ctx, &awskms.TagResourceInput{KeyId: aws.String(key), Tags: tags(tg...)})
			wantCode(t, err, "AccessDeniedException")
			_, err = alice.CreateKey(ctx, &awskms.CreateKeyInput{Tags: tags(tg...)})
			wantCode(t, err, "AccessDeniedException")
			if _, err := bob.TagResource(ctx, &awskms.TagResourceInput{KeyId: aws.String(key), Tags: tags(tg...)}); err != nil {
				t.Errorf("bob TagResource %v: %v", tg, err)
			}
		}
		_, err := alice.UntagResource(ctx, &awskms.UntagResourceInput{KeyId: aws.String(key), TagKeys: []string{"Purpose"}})
		wantCode(t, err, "AccessDeniedException")
		if _, err := alice.TagResource(ctx, &awskms.TagResourceInput{KeyId: aws.String(key), Tags: tags("Project", "Beta")}); err != nil {
			t.Errorf("alice, an allowed tag: %v", err)
		}
		if _, err := alice.UntagResource(ctx, &awskms.UntagResourceInput{KeyId: aws.String(key), TagKeys: []string{"Project"}}); err != nil {
			t.Errorf("alice, an allowed tag key: %v", err)
		}
	})

	t.Run("aws:ResourceTag", func(t *testing.T) {
		// tag-authorization.html: deny the cryptographic operations on
		// keys tagged Project=Alpha.
		alice, _ := e.principal(t, testAccount, "rt-alice", withAllow(`{"Effect":"Deny","Action":["kms:Encrypt","kms:GenerateDataKey*","kms:Decrypt","kms:ReEncrypt*"],
			"Resource":"arn:aws:kms:*:111122223333:key/*","Condition":{"StringEquals":{"aws:ResourceTag/Project":"Alpha"}}}`))
		alpha, err := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Tags: tags("Project", "Alpha")})
		if err != nil {
			t.Fatal(err)
		}
		// The tag key part is matched without regard to case (DESIGN.md).
		lower, err := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Tags: tags("project", "Alpha")})
		if err != nil {
			t.Fatal(err)
		}
		beta, err := e.client.CreateKey(ctx, &awskms.CreateKeyInput{Tags: tags("Project", "Beta")})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []*awskms.CreateKeyOutput{alpha, lower} {
			_, err = alice.Encrypt(ctx, &awskms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("x")})
			wantCode(t, err, "AccessDeniedException")
		}
		if _, err := bob.Encrypt(ctx, &awskms.EncryptInput{KeyId: alpha.KeyMetadata.KeyId, Plaintext: []byte("x")}); err != nil {
			t.Errorf("bob: %v", err)
		}
		if _, err := alice.Encrypt(ctx, &awskms.EncryptInput{KeyId: beta.KeyMetadata.KeyId, Plaintext: []byte("x")}); err != nil {
			t.Errorf("alice, key tagged Beta: %v", err)
		}
	})

	t.Run("kms:RequestAlias", func(t *testing.T) {
		// alias-authorization.html, kms:RequestAlias: allow the
		// cryptographic operations only through alias/finance-key.
		alice, _ := e.principal(t, testAccount, "ra-alice", only(`{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*","kms:DescribeKey"],
			"Resource":"arn:aws:kms:*:111122223333:key/*","Condition":{"StringEquals":{"kms:RequestAlias":"alias/finance-key"}}}`))
		key := e.createKey("finance")
		if _, err := e.client.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/finance-key"), TargetKeyId: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
		aliasARN := "arn:aws:kms:" + testRegion + ":" + testAccount + ":alias/finance-key"
		for _, id := range []string{"alias/finance-key", aliasARN} {
			if _, err := alice.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")}); err != nil {
				t.Errorf("alice through %s: %v", id, err)
			}
			if _, err := alice.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(id)}); err != nil {
				t.Errorf("alice DescribeKey through %s: %v", id, err)
			}
		}
		_, err := alice.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
		wantCode(t, err, "AccessDeniedException")
		_, err = alice.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(key)})
		wantCode(t, err, "AccessDeniedException")
	})
}
