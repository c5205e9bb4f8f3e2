package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client

	out := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{
		Description: aws.String("orders"),
		Tags:        []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("payments")}},
	}))
	md := out.KeyMetadata
	if md.KeyState != types.KeyStateEnabled || !md.Enabled || md.KeySpec != types.KeySpecSymmetricDefault ||
		md.KeyUsage != types.KeyUsageTypeEncryptDecrypt || md.Origin != types.OriginTypeAwsKms ||
		*md.AWSAccountId != testAccount || md.KeyManager != types.KeyManagerTypeCustomer {
		t.Fatalf("metadata: %+v", md)
	}
	id := *md.KeyId
	wantARN := "arn:aws:kms:us-east-1:111122223333:key/" + id
	if *md.Arn != wantARN {
		t.Fatalf("ARN %s", *md.Arn)
	}
	if d := time.Since(*md.CreationDate); d < -time.Minute || d > time.Minute {
		t.Fatalf("CreationDate %v", md.CreationDate)
	}

	must[*awskms.UpdateKeyDescriptionOutput](t)(c.UpdateKeyDescription(ctx, &awskms.UpdateKeyDescriptionInput{KeyId: &id, Description: aws.String("orders v2")}))
	d := must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id}))
	if *d.KeyMetadata.Description != "orders v2" {
		t.Fatalf("description %q", *d.KeyMetadata.Description)
	}

	must[*awskms.DisableKeyOutput](t)(c.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &id}))
	d = must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id}))
	if d.KeyMetadata.KeyState != types.KeyStateDisabled || d.KeyMetadata.Enabled {
		t.Fatalf("after DisableKey: %s", d.KeyMetadata.KeyState)
	}
	_, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x")})
	wantCode(t, err, "DisabledException")
	if !strings.Contains(apiMessage(err), wantARN+" is disabled.") {
		t.Fatalf("message %q", apiMessage(err))
	}
	must[*awskms.EnableKeyOutput](t)(c.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: &id}))

	sched := must[*awskms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &id, PendingWindowInDays: aws.Int32(7)}))
	if sched.KeyState != types.KeyStatePendingDeletion || *sched.PendingWindowInDays != 7 || *sched.KeyId != wantARN {
		t.Fatalf("ScheduleKeyDeletion: %+v", sched)
	}
	if want := e.clock.Now().Add(7 * 24 * time.Hour); sched.DeletionDate.Sub(want).Abs() > time.Second {
		t.Fatalf("DeletionDate %v, want %v", sched.DeletionDate, want)
	}
	d = must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id}))
	// botocore's KeyMetadata: PendingDeletionWindowInDays "is present only
	// when the KeyState of the KMS key is PendingReplicaDeletion"; a key
	// PendingDeletion shows its DeletionDate (seven days on) instead.
	if want := e.clock.Now().Add(7 * 24 * time.Hour); d.KeyMetadata.DeletionDate == nil || d.KeyMetadata.DeletionDate.Sub(want).Abs() > time.Second ||
		d.KeyMetadata.PendingDeletionWindowInDays != nil {
		t.Fatalf("pending deletion metadata: %+v", d.KeyMetadata)
	}
	_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x")})
	wantCode(t, err, "KMSInvalidStateException")
	_, err = c.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: &id})
	wantCode(t, err, "KMSInvalidStateException")
	_, err = c.UpdateKeyDescription(ctx, &awskms.UpdateKeyDescriptionInput{KeyId: &id, Description: aws.String("no")})
	wantCode(t, err, "KMSInvalidStateException")
	_, err = c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &id})
	wantCode(t, err, "KMSInvalidStateException")

	cancel := must[*awskms.CancelKeyDeletionOutput](t)(c.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: &id}))
	if *cancel.KeyId != wantARN {
		t.Fatalf("CancelKeyDeletion KeyId %s", *cancel.KeyId)
	}
	d = must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id}))
	if d.KeyMetadata.KeyState != types.KeyStateDisabled || d.KeyMetadata.DeletionDate != nil {
		t.Fatalf("after CancelKeyDeletion: %s", d.KeyMetadata.KeyState)
	}
	_, err = c.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: &id})
	wantCode(t, err, "KMSInvalidStateException")

	for _, days := range []int32{6, 31} {
		_, err = c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &id, PendingWindowInDays: aws.Int32(days)})
		wantCode(t, err, "ValidationException")
	}
}

func TestDeletionWindowExpires(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	doomed := e.createKey("doomed")
	kept := e.createKey("kept")
	must[*awskms.CreateAliasOutput](t)(c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: &doomed}))
	must[*awskms.CreateAliasOutput](t)(c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/kept"), TargetKeyId: &kept}))
	enc := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &doomed, Plaintext: []byte("gone soon")}))
	must[*awskms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &doomed, PendingWindowInDays: aws.Int32(7)}))

	e.clock.Advance(7*24*time.Hour - time.Minute)
	if _, deleted, err := e.svc.RunMaintenance(ctx); err != nil || deleted != 0 {
		t.Fatalf("deleted %d before the window ended (%v)", deleted, err)
	}
	must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &doomed}))

	e.clock.Advance(2 * time.Minute)
	if _, deleted, err := e.svc.RunMaintenance(ctx); err != nil || deleted != 1 {
		t.Fatalf("deleted %d after the window (%v)", deleted, err)
	}
	_, err := c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &doomed})
	wantCode(t, err, "NotFoundException")
	_, err = c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String("alias/doomed")})
	wantCode(t, err, "NotFoundException")
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	wantCode(t, err, "AccessDeniedException") // its key no longer exists, as AWS answers
	aliases := must[*awskms.ListAliasesOutput](t)(c.ListAliases(ctx, &awskms.ListAliasesInput{}))
	if len(aliases.Aliases) != 1 || *aliases.Aliases[0].AliasName != "alias/kept" {
		t.Fatalf("aliases after deletion: %+v", aliases.Aliases)
	}
	keys := must[*awskms.ListKeysOutput](t)(c.ListKeys(ctx, &awskms.ListKeysInput{}))
	if len(keys.Keys) != 1 || *keys.Keys[0].KeyId != kept {
		t.Fatalf("keys after deletion: %d", len(keys.Keys))
	}
}

func TestListKeysPaging(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 7 {
		want[e.createKey(fmt.Sprint(i))] = true
	}
	got := map[string]bool{}
	var marker *string
	pages := 0
	for {
		out := must[*awskms.ListKeysOutput](t)(e.client.ListKeys(ctx, &awskms.ListKeysInput{Limit: aws.Int32(3), Marker: marker}))
		pages++
		if len(out.Keys) > 3 {
			t.Fatalf("page of %d keys with Limit 3", len(out.Keys))
		}
		for _, k := range out.Keys {
			if got[*k.KeyId] {
				t.Fatalf("key %s listed twice", *k.KeyId)
			}
			got[*k.KeyId] = true
			if *k.KeyArn != "arn:aws:kms:us-east-1:111122223333:key/"+*k.KeyId {
				t.Fatalf("KeyArn %s", *k.KeyArn)
			}
		}
		if !out.Truncated {
			if out.NextMarker != nil {
				t.Fatal("NextMarker on the last page")
			}
			break
		}
		marker = out.NextMarker
	}
	if pages != 3 || len(got) != len(want) {
		t.Fatalf("%d pages, %d keys; want 3 pages, %d keys", pages, len(got), len(want))
	}
	// The SDK's paginator walks the same pages.
	p := awskms.NewListKeysPaginator(e.client, &awskms.ListKeysInput{Limit: aws.Int32(2)})
	n := 0
	for p.HasMorePages() {
		page := must[*awskms.ListKeysOutput](t)(p.NextPage(ctx))
		n += len(page.Keys)
	}
	if n != 7 {
		t.Fatalf("paginator saw %d keys", n)
	}
	_, err := e.client.ListKeys(ctx, &awskms.ListKeysInput{Marker: aws.String("bogus")})
	wantCode(t, err, "InvalidMarkerException")
	for _, l := range []int32{0, 1001} {
		_, err = e.client.ListKeys(ctx, &awskms.ListKeysInput{Limit: aws.Int32(l)})
		wantCode(t, err, "ValidationException")
	}
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	id := e.createKey("tagged")
	tag := func(k, v string) types.Tag { return types.Tag{TagKey: aws.String(k), TagValue: aws.String(v)} }
	must[*awskms.TagResourceOutput](t)(c.TagResource(ctx, &awskms.TagResourceInput{KeyId: &id, Tags: []types.Tag{tag("b", "2"), tag("a", "1"), tag("c", "3")}}))
	must[*awskms.TagResourceOutput](t)(c.TagResource(ctx, &awskms.TagResourceInput{KeyId: &id, Tags: []types.Tag{tag("a", "one")}}))
	must[*awskms.UntagResourceOutput](t)(c.UntagResource(ctx, &awskms.UntagResourceInput{KeyId: &id, TagKeys: []string{"c", "absent"}}))
	list := must[*awskms.ListResourceTagsOutput](t)(c.ListResourceTags(ctx, &awskms.ListResourceTagsInput{KeyId: &id, Limit: aws.Int32(1)}))
	if len(list.Tags) != 1 || *list.Tags[0].TagKey != "a" || *list.Tags[0].TagValue != "one" || !list.Truncated {
		t.Fatalf("first page: %+v", list)
	}
	list = must[*awskms.ListResourceTagsOutput](t)(c.ListResourceTags(ctx, &awskms.ListResourceTagsInput{KeyId: &id, Marker: list.NextMarker}))
	if len(list.Tags) != 1 || *list.Tags[0].TagKey != "b" || list.Truncated {
		t.Fatalf("second page: %+v", list)
	}
	_, err := c.TagResource(ctx, &awskms.TagResourceInput{KeyId: &id, Tags: []types.Tag{tag("aws:reserved", "x")}})
	wantCode(t, err, "TagException")
	_, err = c.TagResource(ctx, &awskms.TagResourceInput{KeyId: &id, Tags: []types.Tag{tag(strings.Repeat("k", 129), "x")}})
	wantCode(t, err, "ValidationException")
	many := make([]types.Tag, 49)
	for i := range many {
		many[i] = tag(fmt.Sprintf("t%02d", i), "v")
	}
	_, err = c.TagResource(ctx, &awskms.TagResourceInput{KeyId: &id, Tags: many})
	wantCode(t, err, "LimitExceededException")
	list = must[*awskms.ListResourceTagsOutput](t)(c.ListResourceTags(ctx, &awskms.ListResourceTagsInput{KeyId: &id}))
	if len(list.Tags) != 2 {
		t.Fatalf("a refused TagResource changed tags: %d", len(list.Tags))
	}
}

func TestKeyPolicies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	id := e.createKey("p")
	got := must[*awskms.GetKeyPolicyOutput](t)(c.GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: &id}))
	if !strings.Contains(*got.Policy, `"arn:aws:iam::111122223333:root"`) || !strings.Contains(*got.Policy, `"kms:*"`) || *got.PolicyName != "default" {
		t.Fatalf("default policy: %s", *got.Policy)
	}
	names := must[*awskms.ListKeyPoliciesOutput](t)(c.ListKeyPolicies(ctx, &awskms.ListKeyPoliciesInput{KeyId: &id}))
	if len(names.PolicyNames) != 1 || names.PolicyNames[0] != "default" {
		t.Fatalf("ListKeyPolicies: %v", names.PolicyNames)
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/admin"},"Action":"kms:*","Resource":"*"}]}`
	must[*awskms.PutKeyPolicyOutput](t)(c.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: &id, Policy: &doc}))
	got = must[*awskms.GetKeyPolicyOutput](t)(c.GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: &id, PolicyName: aws.String("default")}))
	if *got.Policy != doc {
		t.Fatalf("policy not stored verbatim: %s", *got.Policy)
	}
	for _, bad := range []string{"{", `"just a string"`, `{"Version":"2012-10-17"}`} {
		_, err := c.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: &id, Policy: aws.String(bad)})
		wantCode(t, err, "MalformedPolicyDocumentException")
	}
	_, err := c.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: &id, Policy: aws.String(`{"Statement":[],"Pad":"` + strings.Repeat("x", 33000) + `"}`)})
	wantCode(t, err, "LimitExceededException")
	_, err = c.GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: &id, PolicyName: aws.String("other")})
	wantCode(t, err, "NotFoundException")
	withPolicy := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{Policy: &doc}))
	got = must[*awskms.GetKeyPolicyOutput](t)(c.GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: withPolicy.KeyMetadata.KeyId}))
	if *got.Policy != doc {
		t.Fatal("CreateKey did not store its Policy")
	}
	if got := must[*awskms.GetKeyPolicyOutput](t)(c.GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{KeyId: &id})); !bytes.Equal([]byte(*got.Policy), []byte(doc)) {
		t.Fatal("a refused PutKeyPolicy changed the policy")
	}
}
