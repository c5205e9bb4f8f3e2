package kms

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
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
	// The principals CreateGrant names must exist (issue 19.6).
	for _, u := range []string{"bob", "carol"} {
		if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: u}); err != nil {
			t.Fatal(err)
		}
	}

	// run performs op on key id (alias/ck-<id> where the member takes an
	// alias, for kms:RequestAlias) as the account root.
	run := func(op *Operation, id string) error {
		alias := "alias/ck-" + id
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
			_, err = s.Encrypt(ctx, root, &EncryptInput{KeyId: alias, Plaintext: []byte("x"), EncryptionContext: probe})
		case opDecrypt:
			_, err = s.Decrypt(ctx, root, &DecryptInput{CiphertextBlob: blob(), KeyId: alias, EncryptionContext: probe})
		case opReEncrypt:
			_, err = s.ReEncrypt(ctx, root, &ReEncryptInput{CiphertextBlob: blob(), SourceKeyId: alias, SourceEncryptionContext: probe,
				DestinationKeyId: alias, DestinationEncryptionContext: probe})
		case opGenerateDataKey:
			_, err = s.GenerateDataKey(ctx, root, &GenerateDataKeyInput{KeyId: alias, EncryptionContext: probe, NumberOfBytes: &n32})
		case opGenerateDataKeyWithoutPlaintext:
			_, err = s.GenerateDataKeyWithoutPlaintext(ctx, root, &GenerateDataKeyInput{KeyId: alias, EncryptionContext: probe, NumberOfBytes: &n32})
		case opDescribeKey:
			_, err = s.DescribeKey(ctx, root, &KeyIDInput{KeyId: alias})
		case opEnableKey:
			_, err = s.EnableKey(ctx, root, &KeyIDInput{KeyId: id})
		case opDisableKey:
			_, err = s.DisableKey(ctx, root, &KeyIDInput{KeyId: id})
		case opUpdateKeyDescription:
			d := "d"
			_, err = s.UpdateKeyDescription(ctx, root, &UpdateKeyDescriptionInput{KeyId: id, Description: &d})
		case opDisableKeyRotation:
			_, err = s.DisableKeyRotation(ctx, root, &KeyIDInput{KeyId: id})
		case opGetKeyRotationStatus:
			_, err = s.GetKeyRotationStatus(ctx, root, &KeyIDInput{KeyId: id})
		case opGetKeyPolicy:
			_, err = s.GetKeyPolicy(ctx, root, &GetKeyPolicyInput{KeyId: id, PolicyName: "default"})
		case opListKeyPolicies:
			_, err = s.ListKeyPolicies(ctx, root, &ListKeyPoliciesInput{KeyId: id})
		case opListResourceTags:
			_, err = s.ListResourceTags(ctx, root, &ListResourceTagsInput{KeyId: id})
		case opListGrants:
			_, err = s.ListGrants(ctx, root, &ListGrantsInput{KeyId: id})
		case opTagResource:
			_, err = s.TagResource(ctx, root, &TagResourceInput{KeyId: id, Tags: []Tag{{TagKey: "probe", TagValue: "w"}}})
		case opUntagResource:
			_, err = s.UntagResource(ctx, root, &UntagResourceInput{KeyId: id, TagKeys: []string{"probe"}})
		case opCreateGrant:
			_, err = s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: id, GranteePrincipal: chainUser("bob").ARN,
				RetiringPrincipal: chainUser("carol").ARN, Operations: []string{"Decrypt"}, Constraints: &GrantConstraints{EncryptionContextSubset: probe}})
		case opScheduleKeyDeletion:
			days := 7
			_, err = s.ScheduleKeyDeletion(ctx, root, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: &days})
		case opEnableKeyRotation:
			days := 180
			_, err = s.EnableKeyRotation(ctx, root, &EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: &days})
		case opSign:
			_, err = s.Sign(ctx, root, &SignInput{KeyId: alias, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"})
		case opVerify:
			sig, serr := s.Sign(ctx, root, &SignInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"})
			if serr != nil {
				t.Fatal(serr)
			}
			_, err = s.Verify(ctx, root, &VerifyInput{KeyId: alias, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256", Signature: sig.Signature})
		case opGetPublicKey:
			_, err = s.GetPublicKey(ctx, root, &KeyIDInput{KeyId: alias})
		case opGenerateMac:
			_, err = s.GenerateMac(ctx, root, &GenerateMacInput{KeyId: alias, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256"})
		case opVerifyMac:
			mac, merr := s.GenerateMac(ctx, root, &GenerateMacInput{KeyId: id, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256"})
			if merr != nil {
				t.Fatal(merr)
			}
			_, err = s.VerifyMac(ctx, root, &VerifyMacInput{KeyId: alias, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256", Mac: mac.Mac})
		case opDeriveSharedSecret:
			_, err = s.DeriveSharedSecret(ctx, root, &DeriveSharedSecretInput{KeyId: alias, KeyAgreementAlgorithm: "ECDH", PublicKey: peerP256(t)})
		case opGenerateDataKeyPair:
			_, err = s.GenerateDataKeyPair(ctx, root, &GenerateDataKeyPairInput{KeyId: alias, EncryptionContext: probe, KeyPairSpec: "ECC_NIST_P256"})
		case opGenerateDataKeyPairWithoutPlaintext:
			_, err = s.GenerateDataKeyPairWithoutPlaintext(ctx, root, &GenerateDataKeyPairInput{KeyId: alias, EncryptionContext: probe, KeyPairSpec: "ECC_NIST_P256"})
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
	newKey := func(op *Operation, doc string) string {
		t.Helper()
		spec, usage := conditionKeySpec(op)
		out, err := s.CreateKey(ctx, root, &CreateKeyInput{Policy: &doc, BypassPolicyLockoutSafetyCheck: true,
			KeySpec: spec, KeyUsage: usage, Tags: []Tag{{TagKey: "probe", TagValue: "v"}}})
		if err != nil {
			t.Fatal(err)
		}
		id := out.KeyMetadata.KeyId
		if _, err := s.CreateAlias(ctx, root, &AliasInput{AliasName: "alias/ck-" + id, TargetKeyId: id}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// An operation without a key member (CreateKey) is decided by identity
	// policies: a user allowed everything, denied op.Action when the key is
	// present.
	identityOnly := func(op *Operation) {
		var user *Caller
		create := func(key string) error {
			t.Helper()
			if user == nil {
				if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: "ck"}); err != nil {
					t.Fatal(err)
				}
				user = &Caller{ARN: "arn:aws:iam::111122223333:user/ck", Account: "111122223333"}
			}
			doc := strings.NewReplacer("ACTION", op.Action, "KEY", key).Replace(`{"Version":"2012-10-17","Statement":[
				{"Effect":"Allow","Action":"*","Resource":"*"},
				{"Effect":"Deny","Action":"ACTION","Resource":"*","Condition":{"Null":{"KEY":"false"}}}]}`)
			if _, err := s.PutUserPolicy(ctx, root, &UserPolicyInput{UserName: "ck", PolicyName: "p", PolicyDocument: doc}); err != nil {
				t.Fatal(err)
			}
			switch op {
			case opCreateKey:
				_, err := s.CreateKey(ctx, user, &CreateKeyInput{Tags: []Tag{{TagKey: "probe", TagValue: "v"}}})
				return err
			}
			t.Fatalf("%s lists condition keys but this test cannot run it: add it", op.Name)
			return nil
		}
		if err := create("kms:NotARequestKey"); err != nil {
			t.Errorf("%s, baseline: %v", op.Name, err)
			return
		}
		for _, key := range op.ConditionKeys {
			if err := create(probeKey(key)); !isAccessDenied(err) {
				t.Errorf("%s: a Deny when %s is present: %v, want AccessDeniedException: the key is not in the request context", op.Name, key, err)
			}
		}
	}
	for _, op := range Operations() {
		if len(op.ConditionKeys) == 0 {
			continue
		}
		if len(op.Keys) == 0 {
			identityOnly(op)
			continue
		}
		for _, km := range op.Keys {
			if err := run(op, newKey(op, denyWhenPresent(km.Action, "kms:NotARequestKey"))); err != nil {
				t.Errorf("%s, baseline: %v", op.Name, err)
				continue
			}
			for _, key := range op.ConditionKeys {
				key = probeKey(key)
				err := run(op, newKey(op, denyWhenPresent(km.Action, key)))
				if !isAccessDenied(err) {
					t.Errorf("%s (%s): a Deny when %s is present: %v, want AccessDeniedException: the key is not in the request context",
						op.Name, km.Action, key, err)
				}
			}
		}
	}
}

// probeKey names the probe of a condition key that stands for a family.
func probeKey(key string) string {
	switch key {
	case "kms:EncryptionContext:", "aws:ResourceTag/", "aws:RequestTag/":
		return key + "probe"
	}
	return key
}

// denyWhenPresent is a key policy that allows the account everything and
// denies action to everyone when the request context holds key.
func denyWhenPresent(action, key string) string {
	return strings.NewReplacer("ACTION", action, "KEY", key).Replace(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Deny","Principal":"*","Action":"ACTION","Resource":"*","Condition":{"Null":{"KEY":"false"}}}]}`)
}

// conditionKeySpec is the spec and usage of the key an operation of
// TestConditionKeysInContext runs on ("" for a symmetric key).
func conditionKeySpec(op *Operation) (spec, usage string) {
	switch op {
	case opSign, opVerify, opGetPublicKey:
		return "ECC_NIST_P256", UsageSignVerify
	case opGenerateMac, opVerifyMac:
		return "HMAC_256", UsageGenerateVerifyMAC
	case opDeriveSharedSecret:
		return "ECC_NIST_P256", UsageKeyAgreement
	}
	return "", ""
}

// peerP256 is a fresh P-256 public key as DER SubjectPublicKeyInfo.
func peerP256(*testing.T) []byte {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.PublicKey())
	if err != nil {
		panic(err)
	}
	return der
}
