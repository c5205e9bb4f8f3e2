package kms

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

func kindOfErr(err error) error {
	var ke *Error
	if errors.As(err, &ke) {
		return ke.Kind
	}
	return err
}

// viaS3 is the account root acting for S3 in us-east-1.
func viaS3(t *testing.T, s *Service, c *Caller) *Caller {
	t.Helper()
	v := *c
	if err := s.ActAs(context.Background(), &v, "s3.us-east-1.amazonaws.com"); err != nil {
		t.Fatal(err)
	}
	return &v
}

// TestManagedKeyFirstUse: 64 concurrent first uses of alias/aws/s3 —
// DescribeKey directly and GenerateDataKey through S3 — create exactly one
// key, AWS managed, which every caller gets, with its alias listed.
func TestManagedKeyFirstUse(t *testing.T) {
	s, root := newFormsService(t)
	via := viaS3(t, s, root)
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make([]string, 64)
	errs := make([]error, 64)
	for i := range 64 {
		wg.Go(func() {
			if i%2 == 0 {
				out, err := s.DescribeKey(ctx, root, &KeyIDInput{KeyId: "alias/aws/s3"})
				if err == nil {
					ids[i] = out.KeyMetadata.KeyId
				}
				errs[i] = err
				return
			}
			out, err := s.GenerateDataKey(ctx, via, &GenerateDataKeyInput{KeyId: "alias/aws/s3", KeySpec: "AES_256"})
			if err == nil {
				ids[i] = out.KeyId[len(out.KeyId)-36:]
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("first use %d: %v", i, err)
		}
		if ids[i] != ids[0] {
			t.Fatalf("first use %d got key %s, first use 0 got %s", i, ids[i], ids[0])
		}
	}
	keys, err := s.ListKeys(ctx, root, &ListInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) != 1 || keys.Keys[0].KeyId != ids[0] {
		t.Fatalf("ListKeys after 64 first uses = %+v, want the one key %s", keys.Keys, ids[0])
	}
	// The creation committed with its own record (a service event in the
	// outbox), exactly once: the 63 losers changed nothing.
	pending, err := s.PendingAudits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	creations := 0
	for _, e := range pending {
		if strings.HasPrefix(e.ID, ServiceEventPrefix) && strings.Contains(string(e.Record), `"eventName":"CreateKey"`) &&
			strings.Contains(string(e.Record), ids[0]) {
			creations++
		}
	}
	if creations != 1 || len(pending) != 1 {
		t.Fatalf("%d CreateKey service events (%d outbox entries) for one managed key, want exactly 1", creations, len(pending))
	}
	aliases, err := s.ListAliases(ctx, root, &ListAliasesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(aliases.Aliases) != 1 || aliases.Aliases[0].AliasName != "alias/aws/s3" || aliases.Aliases[0].TargetKeyId != ids[0] {
		t.Fatalf("ListAliases = %+v, want alias/aws/s3 → %s", aliases.Aliases, ids[0])
	}
	d, err := s.DescribeKey(ctx, root, &KeyIDInput{KeyId: ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	m := d.KeyMetadata
	if m.KeyManager != ManagerAWS || m.KeyState != StateEnabled || m.KeySpec != SpecSymmetric || m.Origin != OriginAWSKMS {
		t.Fatalf("managed key metadata = %+v", m)
	}
}

// TestManagedKeyRefusals: every management call on an AWS managed key is
// refused as AWS refuses it. The key's policy allows the account only
// Describe*, Get*, List* and RevokeGrant, so AWS answers the others
// AccessDeniedException ("… because no resource-based policy allows the
// kms:DisableKey action"); aliases under alias/aws/ are reserved
// (NotAuthorizedException).
func TestManagedKeyRefusals(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	d, err := s.DescribeKey(ctx, root, &KeyIDInput{KeyId: "alias/aws/ebs"})
	if err != nil {
		t.Fatal(err)
	}
	id := d.KeyMetadata.KeyId
	own, err := s.CreateKey(ctx, root, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAlias(ctx, root, &AliasInput{AliasName: "alias/mine", TargetKeyId: own.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
	desc, week := "mine now", 7
	period := 365
	calls := []struct {
		name string
		call func(c *Caller) error
		want error
	}{
		{"PutKeyPolicy", func(c *Caller) error {
			_, err := s.PutKeyPolicy(ctx, c, &PutKeyPolicyInput{KeyId: id, Policy: &pol})
			return err
		}, ErrAccessDenied},
		{"DisableKey", func(c *Caller) error { _, err := s.DisableKey(ctx, c, &KeyIDInput{KeyId: id}); return err }, ErrAccessDenied},
		{"EnableKey", func(c *Caller) error { _, err := s.EnableKey(ctx, c, &KeyIDInput{KeyId: id}); return err }, ErrAccessDenied},
		{"ScheduleKeyDeletion", func(c *Caller) error {
			_, err := s.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: &week})
			return err
		}, ErrAccessDenied},
		{"CancelKeyDeletion", func(c *Caller) error { _, err := s.CancelKeyDeletion(ctx, c, &KeyIDInput{KeyId: id}); return err }, ErrAccessDenied},
		{"RotateKeyOnDemand", func(c *Caller) error { _, err := s.RotateKeyOnDemand(ctx, c, &KeyIDInput{KeyId: id}); return err }, ErrAccessDenied},
		{"EnableKeyRotation", func(c *Caller) error {
			_, err := s.EnableKeyRotation(ctx, c, &EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: &period})
			return err
		}, ErrAccessDenied},
		{"DisableKeyRotation", func(c *Caller) error { _, err := s.DisableKeyRotation(ctx, c, &KeyIDInput{KeyId: id}); return err }, ErrAccessDenied},
		{"UpdateKeyDescription", func(c *Caller) error {
			_, err := s.UpdateKeyDescription(ctx, c, &UpdateKeyDescriptionInput{KeyId: id, Description: &desc})
			return err
		}, ErrAccessDenied},
		{"TagResource", func(c *Caller) error {
			_, err := s.TagResource(ctx, c, &TagResourceInput{KeyId: id, Tags: []Tag{{TagKey: "k", TagValue: "v"}}})
			return err
		}, ErrAccessDenied},
		{"UntagResource", func(c *Caller) error {
			_, err := s.UntagResource(ctx, c, &UntagResourceInput{KeyId: id, TagKeys: []string{"k"}})
			return err
		}, ErrAccessDenied},
		{"CreateAlias to it", func(c *Caller) error {
			_, err := s.CreateAlias(ctx, c, &AliasInput{AliasName: "alias/ebs-too", TargetKeyId: id})
			return err
		}, ErrAccessDenied},
		{"UpdateAlias to it", func(c *Caller) error {
			_, err := s.UpdateAlias(ctx, c, &AliasInput{AliasName: "alias/mine", TargetKeyId: id})
			return err
		}, ErrAccessDenied},
		{"CreateAlias alias/aws/", func(c *Caller) error {
			_, err := s.CreateAlias(ctx, c, &AliasInput{AliasName: "alias/aws/other", TargetKeyId: own.KeyMetadata.KeyId})
			return err
		}, ErrNotAuthorized},
		{"UpdateAlias alias/aws/", func(c *Caller) error {
			_, err := s.UpdateAlias(ctx, c, &AliasInput{AliasName: "alias/aws/ebs", TargetKeyId: own.KeyMetadata.KeyId})
			return err
		}, ErrNotAuthorized},
		{"DeleteAlias alias/aws/", func(c *Caller) error {
			_, err := s.DeleteAlias(ctx, c, &DeleteAliasInput{AliasName: "alias/aws/ebs"})
			return err
		}, ErrNotAuthorized},
	}
	// Through the service too: its statement allows use, not management.
	viaEC2 := *root
	if err := s.ActAs(ctx, &viaEC2, "ec2.us-east-1.amazonaws.com"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Caller{root, &viaEC2} {
		for _, tc := range calls {
			if err := tc.call(c); kindOfErr(err) != tc.want {
				t.Errorf("%s (via %q): %v, want %v", tc.name, c.viaService, err, tc.want)
			}
		}
	}
	// Defence in depth: a policy that allowed management would still meet
	// checkCustomerManaged's UnsupportedOperationException.
	r, err := s.loadKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkCustomerManaged(r); kindOfErr(err) != ErrUnsupportedOperation {
		t.Fatalf("checkCustomerManaged: %v", err)
	}
	// What the account may read directly.
	if _, err := s.GetKeyPolicy(ctx, root, &GetKeyPolicyInput{KeyId: id}); err != nil {
		t.Fatalf("GetKeyPolicy: %v", err)
	}
	st, err := s.GetKeyRotationStatus(ctx, root, &KeyIDInput{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	if !st.KeyRotationEnabled || st.RotationPeriodInDays != 365 {
		t.Fatalf("GetKeyRotationStatus = %+v, want enabled every 365 days", st)
	}
	after, err := s.DescribeKey(ctx, root, &KeyIDInput{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	if after.KeyMetadata.KeyState != StateEnabled || after.KeyMetadata.Description != d.KeyMetadata.Description {
		t.Fatalf("the refused calls changed the key: %+v", after.KeyMetadata)
	}
}

// TestManagedKeyPolicyUse: the key is usable through its service by the
// account's principals and refused to direct use, to use through another
// service, and to a principal not allowed to act for the service.
func TestManagedKeyPolicyUse(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	encrypt := func(c *Caller) (*EncryptOutput, error) {
		return s.Encrypt(ctx, c, &EncryptInput{KeyId: "alias/aws/s3", Plaintext: []byte("object")})
	}
	via := viaS3(t, s, root)
	ct, err := encrypt(via)
	if err != nil {
		t.Fatalf("Encrypt through S3: %v", err)
	}
	if _, err := s.Decrypt(ctx, via, &DecryptInput{CiphertextBlob: ct.CiphertextBlob}); err != nil {
		t.Fatalf("Decrypt through S3: %v", err)
	}
	if _, err := encrypt(root); kindOfErr(err) != ErrAccessDenied {
		t.Fatalf("direct Encrypt: %v, want AccessDeniedException", err)
	}
	if _, err := s.Decrypt(ctx, root, &DecryptInput{CiphertextBlob: ct.CiphertextBlob}); kindOfErr(err) != ErrAccessDenied {
		t.Fatalf("direct Decrypt: %v, want AccessDeniedException", err)
	}
	viaRDS := *root
	if err := s.ActAs(ctx, &viaRDS, "rds.us-east-1.amazonaws.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := encrypt(&viaRDS); kindOfErr(err) != ErrAccessDenied {
		t.Fatalf("Encrypt through RDS with aws/s3: %v, want AccessDeniedException", err)
	}

	// A user with no identity policy may not claim a service; once allowed
	// coffer:ActAs on service/s3 it may, and then uses the key through S3
	// with no kms permission of its own (the policy's Principal is "*").
	if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: "app"}); err != nil {
		t.Fatal(err)
	}
	app := &Caller{ARN: "arn:aws:iam::111122223333:user/app", Account: "111122223333"}
	claim := *app
	if err := s.ActAs(ctx, &claim, "s3.us-east-1.amazonaws.com"); kindOfErr(err) != ErrAccessDenied {
		t.Fatalf("ActAs without coffer:ActAs: %v, want AccessDeniedException", err)
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"coffer:ActAs","Resource":"arn:aws:iam::111122223333:service/s3"}]}`
	if _, err := s.PutUserPolicy(ctx, root, &UserPolicyInput{UserName: "app", PolicyName: "s3", PolicyDocument: doc}); err != nil {
		t.Fatal(err)
	}
	if err := s.ActAs(ctx, &claim, "ec2.us-east-1.amazonaws.com"); kindOfErr(err) != ErrAccessDenied {
		t.Fatalf("ActAs for ec2 with ActAs on s3 only: %v, want AccessDeniedException", err)
	}
	if err := s.ActAs(ctx, &claim, "s3.us-east-1.amazonaws.com"); err != nil {
		t.Fatalf("ActAs with coffer:ActAs: %v", err)
	}
	if _, err := encrypt(&claim); err != nil {
		t.Fatalf("Encrypt by a user through S3: %v", err)
	}
	if _, err := encrypt(app); kindOfErr(err) != ErrAccessDenied {
		t.Fatalf("Encrypt by the user directly: %v, want AccessDeniedException", err)
	}
	for _, bad := range []string{"s3", "s3.eu-west-1.amazonaws.com", "S3.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com.evil"} {
		if err := s.ActAs(ctx, &claim, bad); kindOfErr(err) != ErrValidation {
			t.Errorf("ActAs %q: %v, want ValidationException", bad, err)
		}
	}

	// The policy is AWS's for AWS managed keys.
	p, err := s.GetKeyPolicy(ctx, root, &GetKeyPolicyInput{KeyId: ct.KeyId})
	if err != nil {
		t.Fatal(err)
	}
	var doc2 struct {
		Statement []struct {
			Principal map[string]string
			Action    []string
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(p.Policy), &doc2); err != nil {
		t.Fatal(err)
	}
	if len(doc2.Statement) != 2 ||
		doc2.Statement[0].Principal["AWS"] != "*" ||
		doc2.Statement[0].Condition["StringEquals"]["kms:ViaService"] != "s3.us-east-1.amazonaws.com" ||
		doc2.Statement[0].Condition["StringEquals"]["kms:CallerAccount"] != "111122223333" ||
		doc2.Statement[1].Principal["AWS"] != "arn:aws:iam::111122223333:root" {
		t.Fatalf("managed key policy:\n%s", p.Policy)
	}
}

// TestManagedKeyNames: only alias/aws/<service> with a service name of
// lower-case letters, digits and dashes creates a key; another account's
// alias ARN never does.
func TestManagedKeyNames(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	for _, name := range []string{"alias/aws/S3", "alias/aws/s3_x", "alias/aws/a/b", "alias/aws/s3.x",
		"arn:aws:kms:us-east-1:444455556666:alias/aws/s3"} {
		if _, err := s.DescribeKey(ctx, root, &KeyIDInput{KeyId: name}); kindOfErr(err) != ErrNotFound {
			t.Errorf("DescribeKey %s: %v, want NotFoundException", name, err)
		}
	}
	keys, err := s.ListKeys(ctx, root, &ListInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) != 0 {
		t.Fatalf("keys created by refused names: %+v", keys.Keys)
	}
	if _, err := s.DescribeKey(ctx, root, &KeyIDInput{KeyId: "arn:aws:kms:us-east-1:111122223333:alias/aws/secretsmanager"}); err != nil {
		t.Fatalf("DescribeKey by the account's own alias ARN: %v", err)
	}
}

// TestManagedKeyRestartAndRotation: a new Service over the same store
// finds the same key, and the maintenance loop rotates it after a year.
func TestManagedKeyRestartAndRotation(t *testing.T) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	store := keystore.NewMemory()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	open := func() *Service {
		s, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: store, Root: root, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx := context.Background()
	c := &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}
	s1 := open()
	via := viaS3(t, s1, c)
	ct, err := s1.Encrypt(ctx, via, &EncryptInput{KeyId: "alias/aws/s3", Plaintext: []byte("kept")})
	if err != nil {
		t.Fatal(err)
	}
	s1.Close()

	s2 := open()
	defer s2.Close()
	via = viaS3(t, s2, c)
	d, err := s2.DescribeKey(ctx, c, &KeyIDInput{KeyId: "alias/aws/s3"})
	if err != nil {
		t.Fatal(err)
	}
	if d.KeyMetadata.Arn != ct.KeyId || d.KeyMetadata.KeyManager != ManagerAWS {
		t.Fatalf("after restart: %+v, want %s managed by AWS", d.KeyMetadata, ct.KeyId)
	}
	now.Add(int64(366 * 24 * time.Hour))
	rotated, _, err := s2.RunMaintenance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rotated != 1 {
		t.Fatalf("RunMaintenance a year on rotated %d keys, want the managed key", rotated)
	}
	pt, err := s2.Decrypt(ctx, via, &DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	if err != nil || string(pt.Plaintext) != "kept" {
		t.Fatalf("Decrypt of the old ciphertext after rotation: %v", err)
	}
	keys, err := s2.ListKeys(ctx, c, &ListInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) != 1 {
		t.Fatalf("keys after restart: %+v", keys.Keys)
	}
}
