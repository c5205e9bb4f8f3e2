package kms

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"
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
	// caller is who run calls as: the account root, or for the
	// kms:ViaService probe the root acting for S3 (managed.go).
	caller, via := root, viaS3(t, s, root)
	// ReplicateKey and UpdatePrimaryRegion need a second served Region.
	const replicaRegion = "eu-west-1"
	if _, err := s.InRegion(replicaRegion); err != nil {
		t.Fatal(err)
	}
	run := func(op *Operation, id string) error {
		alias := "alias/ck-" + id
		blob := func() []byte {
			out, err := s.Encrypt(ctx, caller, &EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionContext: probe})
			if err != nil {
				t.Fatal(err)
			}
			return out.CiphertextBlob
		}
		var err error
		switch op {
		case opEncrypt:
			_, err = s.Encrypt(ctx, caller, &EncryptInput{KeyId: alias, Plaintext: []byte("x"), EncryptionContext: probe})
		case opDecrypt:
			_, err = s.Decrypt(ctx, caller, &DecryptInput{CiphertextBlob: blob(), KeyId: alias, EncryptionContext: probe})
		case opReEncrypt:
			_, err = s.ReEncrypt(ctx, caller, &ReEncryptInput{CiphertextBlob: blob(), SourceKeyId: alias, SourceEncryptionContext: probe,
				DestinationKeyId: alias, DestinationEncryptionContext: probe})
		case opGenerateDataKey:
			_, err = s.GenerateDataKey(ctx, caller, &GenerateDataKeyInput{KeyId: alias, EncryptionContext: probe, NumberOfBytes: &n32})
		case opGenerateDataKeyWithoutPlaintext:
			_, err = s.GenerateDataKeyWithoutPlaintext(ctx, caller, &GenerateDataKeyInput{KeyId: alias, EncryptionContext: probe, NumberOfBytes: &n32})
		case opDescribeKey:
			_, err = s.DescribeKey(ctx, caller, &KeyIDInput{KeyId: alias})
		case opEnableKey:
			_, err = s.EnableKey(ctx, caller, &KeyIDInput{KeyId: id})
		case opDisableKey:
			_, err = s.DisableKey(ctx, caller, &KeyIDInput{KeyId: id})
		case opUpdateKeyDescription:
			d := "d"
			_, err = s.UpdateKeyDescription(ctx, caller, &UpdateKeyDescriptionInput{KeyId: id, Description: &d})
		case opDisableKeyRotation:
			_, err = s.DisableKeyRotation(ctx, caller, &KeyIDInput{KeyId: id})
		case opGetKeyRotationStatus:
			_, err = s.GetKeyRotationStatus(ctx, caller, &KeyIDInput{KeyId: id})
		case opGetKeyPolicy:
			_, err = s.GetKeyPolicy(ctx, caller, &GetKeyPolicyInput{KeyId: id, PolicyName: "default"})
		case opListKeyPolicies:
			_, err = s.ListKeyPolicies(ctx, caller, &ListKeyPoliciesInput{KeyId: id})
		case opListResourceTags:
			_, err = s.ListResourceTags(ctx, caller, &ListResourceTagsInput{KeyId: id})
		case opListGrants:
			_, err = s.ListGrants(ctx, caller, &ListGrantsInput{KeyId: id})
		case opTagResource:
			_, err = s.TagResource(ctx, caller, &TagResourceInput{KeyId: id, Tags: []Tag{{TagKey: "probe", TagValue: "w"}}})
		case opUntagResource:
			_, err = s.UntagResource(ctx, caller, &UntagResourceInput{KeyId: id, TagKeys: []string{"probe"}})
		case opCreateGrant:
			_, err = s.CreateGrant(ctx, caller, &CreateGrantInput{KeyId: id, GranteePrincipal: chainUser("bob").ARN,
				RetiringPrincipal: chainUser("carol").ARN, Operations: []string{"Decrypt"}, Constraints: &GrantConstraints{EncryptionContextSubset: probe}})
		case opScheduleKeyDeletion:
			days := 7
			_, err = s.ScheduleKeyDeletion(ctx, caller, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: &days})
		case opEnableKeyRotation:
			days := 180
			_, err = s.EnableKeyRotation(ctx, caller, &EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: &days})
		case opSign:
			_, err = s.Sign(ctx, caller, &SignInput{KeyId: alias, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"})
		case opVerify:
			sig, serr := s.Sign(ctx, caller, &SignInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"})
			if serr != nil {
				t.Fatal(serr)
			}
			_, err = s.Verify(ctx, caller, &VerifyInput{KeyId: alias, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256", Signature: sig.Signature})
		case opGetPublicKey:
			_, err = s.GetPublicKey(ctx, caller, &KeyIDInput{KeyId: alias})
		case opGenerateMac:
			_, err = s.GenerateMac(ctx, caller, &GenerateMacInput{KeyId: alias, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256"})
		case opVerifyMac:
			mac, merr := s.GenerateMac(ctx, caller, &GenerateMacInput{KeyId: id, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256"})
			if merr != nil {
				t.Fatal(merr)
			}
			_, err = s.VerifyMac(ctx, caller, &VerifyMacInput{KeyId: alias, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256", Mac: mac.Mac})
		case opDeriveSharedSecret:
			_, err = s.DeriveSharedSecret(ctx, caller, &DeriveSharedSecretInput{KeyId: alias, KeyAgreementAlgorithm: "ECDH", PublicKey: peerP256(t)})
		case opGenerateDataKeyPair:
			_, err = s.GenerateDataKeyPair(ctx, caller, &GenerateDataKeyPairInput{KeyId: alias, EncryptionContext: probe, KeyPairSpec: "ECC_NIST_P256"})
		case opGenerateDataKeyPairWithoutPlaintext:
			_, err = s.GenerateDataKeyPairWithoutPlaintext(ctx, caller, &GenerateDataKeyPairInput{KeyId: alias, EncryptionContext: probe, KeyPairSpec: "ECC_NIST_P256"})
		case opCancelKeyDeletion:
			days := 7
			if _, serr := s.ScheduleKeyDeletion(ctx, root, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: &days}); serr != nil {
				t.Fatal(serr)
			}
			_, err = s.CancelKeyDeletion(ctx, caller, &KeyIDInput{KeyId: id})
		case opRevokeGrant:
			g, gerr := s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: id, GranteePrincipal: chainUser("bob").ARN, Operations: []string{"Decrypt"}})
			if gerr != nil {
				t.Fatal(gerr)
			}
			_, err = s.RevokeGrant(ctx, caller, &RevokeGrantInput{KeyId: id, GrantId: g.GrantId})
		case opCreateAlias:
			_, err = s.CreateAlias(ctx, caller, &AliasInput{AliasName: "alias/ck2-" + id, TargetKeyId: id})
		case opUpdateAlias:
			other, oerr := s.CreateKey(ctx, root, &CreateKeyInput{})
			if oerr != nil {
				t.Fatal(oerr)
			}
			if _, oerr := s.CreateAlias(ctx, root, &AliasInput{AliasName: "alias/cku-" + id, TargetKeyId: other.KeyMetadata.KeyId}); oerr != nil {
				t.Fatal(oerr)
			}
			_, err = s.UpdateAlias(ctx, caller, &AliasInput{AliasName: "alias/cku-" + id, TargetKeyId: id})
		case opRotateKeyOnDemand:
			_, err = s.RotateKeyOnDemand(ctx, caller, &KeyIDInput{KeyId: id})
		case opListKeyRotations:
			_, err = s.ListKeyRotations(ctx, caller, &ListKeyRotationsInput{KeyId: id})
		case opDeleteImportedKeyMaterial:
			_, err = s.DeleteImportedKeyMaterial(ctx, caller, &DeleteImportedKeyMaterialInput{KeyId: id})
		case opGetParametersForImport:
			_, err = s.GetParametersForImport(ctx, caller, &GetParametersForImportInput{KeyId: id, WrappingAlgorithm: wrapOAEPSHA256, WrappingKeySpec: "RSA_2048"})
		case opImportKeyMaterial:
			p, perr := s.GetParametersForImport(ctx, root, &GetParametersForImportInput{KeyId: id, WrappingAlgorithm: wrapOAEPSHA256, WrappingKeySpec: "RSA_2048"})
			if perr != nil {
				t.Fatal(perr)
			}
			material := make([]byte, 32)
			rand.Read(material)
			_, err = s.ImportKeyMaterial(ctx, caller, &ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken,
				EncryptedKeyMaterial: wrapForImport(t, p.PublicKey, wrapOAEPSHA256, material),
				ExpirationModel:      ExpirationExpires, ValidTo: &Timestamp{time.Now().Add(time.Hour)}})
		case opGetKeyLastUsage:
			_, err = s.GetKeyLastUsage(ctx, caller, &KeyIDInput{KeyId: id})
		case opReplicateKey:
			_, err = s.ReplicateKey(ctx, caller, &ReplicateKeyInput{KeyId: id, ReplicaRegion: replicaRegion})
		case opUpdatePrimaryRegion:
			if _, rerr := s.ReplicateKey(ctx, root, &ReplicateKeyInput{KeyId: id, ReplicaRegion: replicaRegion}); rerr != nil {
				t.Fatal(rerr)
			}
			_, err = s.UpdatePrimaryRegion(ctx, caller, &UpdatePrimaryRegionInput{KeyId: id, PrimaryRegion: replicaRegion})
		case opRetireGrant:
			g, gerr := s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: id, GranteePrincipal: chainUser("bob").ARN, Operations: []string{"Decrypt"}})
			if gerr != nil {
				t.Fatal(gerr)
			}
			_, err = s.RetireGrant(ctx, caller, &RetireGrantInput{KeyId: id, GrantId: g.GrantId})
		case opPutKeyPolicy:
			doc := denyWhenPresent("kms:PutKeyPolicy", "kms:NotARequestKey")
			_, err = s.PutKeyPolicy(ctx, caller, &PutKeyPolicyInput{KeyId: id, Policy: &doc})
		default:
			t.Fatalf("%s lists condition keys but this test cannot run it: add it", op.Name)
		}
		return err
	}
	// multiRegion makes newKey's keys multi-Region primaries: for the
	// multi-Region operations, and for the kms:MultiRegionKeyType probe
	// (a single-Region key has none).
	multiRegion := false
	// newKey makes a key with policy doc (some deny PutKeyPolicy to the
	// caller: the lockout check is bypassed) and an alias, so that
	// kms:ResourceAliases has a value.
	newKey := func(op *Operation, doc string) string {
		t.Helper()
		spec, usage := conditionKeySpec(op)
		// The alias ops' policy would refuse the alias itself: it goes on
		// once the alias is made.
		aliasOp := op == opCreateAlias || op == opUpdateAlias
		in := &CreateKeyInput{Policy: &doc, BypassPolicyLockoutSafetyCheck: true,
			KeySpec: spec, KeyUsage: usage, Origin: conditionKeyOrigin(op), Tags: []Tag{{TagKey: "probe", TagValue: "v"}},
			MultiRegion: multiRegion || op == opReplicateKey || op == opUpdatePrimaryRegion}
		if aliasOp {
			in.Policy = nil
		}
		out, err := s.CreateKey(ctx, root, in)
		if err != nil {
			t.Fatal(err)
		}
		id := out.KeyMetadata.KeyId
		if _, err := s.CreateAlias(ctx, root, &AliasInput{AliasName: "alias/ck-" + id, TargetKeyId: id}); err != nil {
			t.Fatal(err)
		}
		if aliasOp {
			if _, err := s.PutKeyPolicy(ctx, root, &PutKeyPolicyInput{KeyId: id, Policy: &doc, BypassPolicyLockoutSafetyCheck: true}); err != nil {
				t.Fatal(err)
			}
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
			as := user
			if key == "kms:ViaService" {
				v := *user
				if err := s.ActAs(ctx, &v, "s3.us-east-1.amazonaws.com"); err != nil {
					t.Fatal(err)
				}
				as = &v
			}
			switch op {
			case opCreateKey:
				_, err := s.CreateKey(ctx, as, &CreateKeyInput{Tags: []Tag{{TagKey: "probe", TagValue: "v"}}, MultiRegion: key == "kms:MultiRegionKeyType"})
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
				multiRegion = key == "kms:MultiRegionKeyType"
				id := newKey(op, denyWhenPresent(km.Action, key))
				multiRegion = false
				if key == "kms:ViaService" {
					caller = via
				}
				err := run(op, id)
				caller = root
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

// conditionKeyOrigin is the origin of the key an operation of
// TestConditionKeysInContext runs on ("" for AWS_KMS).
func conditionKeyOrigin(op *Operation) string {
	switch op {
	case opGetParametersForImport, opImportKeyMaterial, opDeleteImportedKeyMaterial:
		return OriginExternal
	}
	return ""
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
