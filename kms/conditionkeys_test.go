package kms

import (
	"context"
	"strings"
	"testing"
)

// TestConditionKeysInContext holds the catalogue's ConditionKeys to the
// code: for every operation that lists condition keys, for each of its key
// authorizations and each listed key, a key policy denies the action when
// the key is present (Null: false), and the operation must be refused. A
// baseline on a key no request has proves the request itself succeeds.
func TestConditionKeysInContext(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	probe := map[string]string{"probe": "v"}
	n32 := 32

	// run performs op on key id as the account root.
	run := func(op *Operation, id string) error {
		blob := func() []byte {
			out, err := s.Encrypt(ctx, root, &EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionContext: probe})
			if err != nil {
				t.Fatal(err)
			}
			return out.CiphertextBlob
		}
		var err error
		switch op {
		case opEncrypt:
			_, err = s.Encrypt(ctx, root, &EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionContext: probe})
		case opDecrypt:
			_, err = s.Decrypt(ctx, root, &DecryptInput{CiphertextBlob: blob(), EncryptionContext: probe})
		case opReEncrypt:
			_, err = s.ReEncrypt(ctx, root, &ReEncryptInput{CiphertextBlob: blob(), SourceEncryptionContext: probe,
				DestinationKeyId: id, DestinationEncryptionContext: probe})
		case opGenerateDataKey:
			_, err = s.GenerateDataKey(ctx, root, &GenerateDataKeyInput{KeyId: id, EncryptionContext: probe, NumberOfBytes: &n32})
		case opGenerateDataKeyWithoutPlaintext:
			_, err = s.GenerateDataKeyWithoutPlaintext(ctx, root, &GenerateDataKeyInput{KeyId: id, EncryptionContext: probe, NumberOfBytes: &n32})
		case opCreateGrant:
			_, err = s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: id, GranteePrincipal: chainUser("bob").ARN,
				RetiringPrincipal: chainUser("carol").ARN, Operations: []string{"Decrypt"}, Constraints: &GrantConstraints{EncryptionContextSubset: probe}})
		case opScheduleKeyDeletion:
			days := 7
			_, err = s.ScheduleKeyDeletion(ctx, root, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: &days})
		case opEnableKeyRotation:
			days := 180
			_, err = s.EnableKeyRotation(ctx, root, &EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: &days})
		case opPutKeyPolicy:
			doc := denyWhenPresent("kms:PutKeyPolicy", "kms:NotARequestKey")
			_, err = s.PutKeyPolicy(ctx, root, &PutKeyPolicyInput{KeyId: id, Policy: &doc})
		default:
			t.Fatalf("%s lists condition keys but this test cannot run it: add it", op.Name)
		}
		return err
	}
	// newKey makes a key with policy doc (some deny PutKeyPolicy to the
	// caller: the lockout check is bypassed) and an alias, so that
	// kms:ResourceAliases has a value.
	newKey := func(doc string) string {
		t.Helper()
		out, err := s.CreateKey(ctx, root, &CreateKeyInput{Policy: &doc, BypassPolicyLockoutSafetyCheck: true})
		if err != nil {
			t.Fatal(err)
		}
		id := out.KeyMetadata.KeyId
		if _, err := s.CreateAlias(ctx, root, &AliasInput{AliasName: "alias/ck-" + id, TargetKeyId: id}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, op := range Operations() {
		if len(op.ConditionKeys) == 0 {
			continue
		}
		for _, km := range op.Keys {
			if err := run(op, newKey(denyWhenPresent(km.Action, "kms:NotARequestKey"))); err != nil {
				t.Errorf("%s, baseline: %v", op.Name, err)
				continue
			}
			for _, key := range op.ConditionKeys {
				if key == "kms:EncryptionContext:" {
					key += "probe"
				}
				err := run(op, newKey(denyWhenPresent(km.Action, key)))
				if !isAccessDenied(err) {
					t.Errorf("%s (%s): a Deny when %s is present: %v, want AccessDeniedException: the key is not in the request context",
						op.Name, km.Action, key, err)
				}
			}
		}
	}
}

// denyWhenPresent is a key policy that allows the account everything and
// denies action to everyone when the request context holds key.
func denyWhenPresent(action, key string) string {
	return strings.NewReplacer("ACTION", action, "KEY", key).Replace(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Deny","Principal":"*","Action":"ACTION","Resource":"*","Condition":{"Null":{"KEY":"false"}}}]}`)
}
