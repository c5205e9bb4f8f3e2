package server_test

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

const otherRegion = "eu-west-1"

// newRegionsEnv is a server that serves testRegion and otherRegion, and a
// client of otherRegion.
func newRegionsEnv(t *testing.T) (*testEnv, *awskms.Client) {
	e := newEnv(t)
	e.configure = func(c *server.Config) {
		eu, err := c.Service.InRegion(otherRegion)
		if err != nil {
			t.Fatal(err)
		}
		c.Regions = []*kms.Service{eu}
	}
	e.restart()
	return e, e.clientIn(otherRegion)
}

func (e *testEnv) clientIn(region string) *awskms.Client {
	return awskms.New(awskms.Options{
		Region:           region,
		BaseEndpoint:     aws.String(e.url),
		Credentials:      credentials.NewStaticCredentialsProvider(e.creds.AccessKeyID, e.creds.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
	})
}

func TestRegionsArePerRegion(t *testing.T) {
	e, eu := newRegionsEnv(t)
	ctx := context.Background()
	us := e.client
	usKey := must[*awskms.CreateKeyOutput](t)(us.CreateKey(ctx, &awskms.CreateKeyInput{}))
	euKey := must[*awskms.CreateKeyOutput](t)(eu.CreateKey(ctx, &awskms.CreateKeyInput{}))
	if !strings.HasPrefix(*euKey.KeyMetadata.Arn, "arn:aws:kms:"+otherRegion+":") {
		t.Fatalf("eu key ARN %s", *euKey.KeyMetadata.Arn)
	}
	if !strings.HasPrefix(*usKey.KeyMetadata.Arn, "arn:aws:kms:"+testRegion+":") {
		t.Fatalf("us key ARN %s", *usKey.KeyMetadata.Arn)
	}
	list := func(c *awskms.Client) map[string]bool {
		out := must[*awskms.ListKeysOutput](t)(c.ListKeys(ctx, &awskms.ListKeysInput{}))
		m := map[string]bool{}
		for _, k := range out.Keys {
			m[*k.KeyId] = true
		}
		return m
	}
	if l := list(eu); !l[*euKey.KeyMetadata.KeyId] || l[*usKey.KeyMetadata.KeyId] {
		t.Fatalf("eu-west-1 lists %v", l)
	}
	if l := list(us); l[*euKey.KeyMetadata.KeyId] || !l[*usKey.KeyMetadata.KeyId] {
		t.Fatalf("us-east-1 lists %v", l)
	}
	// Another Region's key, by ARN or ID, is not found.
	_, err := eu.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: usKey.KeyMetadata.Arn})
	wantCode(t, err, "NotFoundException")
	_, err = eu.Encrypt(ctx, &awskms.EncryptInput{KeyId: usKey.KeyMetadata.KeyId, Plaintext: []byte("x")})
	wantCode(t, err, "NotFoundException")
	// Aliases are per Region: the same name in both.
	for _, c := range []struct {
		cl *awskms.Client
		id *string
	}{{us, usKey.KeyMetadata.KeyId}, {eu, euKey.KeyMetadata.KeyId}} {
		must[*awskms.CreateAliasOutput](t)(c.cl.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: c.id}))
		d := must[*awskms.DescribeKeyOutput](t)(c.cl.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String("alias/app")}))
		if *d.KeyMetadata.KeyId != *c.id {
			t.Fatalf("alias/app names %s, want %s", *d.KeyMetadata.KeyId, *c.id)
		}
	}
	// A Region not served is refused as AWS refuses a scope that does not
	// match the endpoint.
	_, err = e.clientIn("ap-south-1").ListKeys(ctx, &awskms.ListKeysInput{})
	wantCode(t, err, "InvalidSignatureException")
	if !strings.Contains(apiMessage(err), "Credential should be scoped to a valid region") {
		t.Fatalf("message %q", apiMessage(err))
	}
	// The audit trail names each call's Region; a restart keeps both.
	e.restart()
	eu = e.clientIn(otherRegion)
	if l := list(eu); !l[*euKey.KeyMetadata.KeyId] || l[*usKey.KeyMetadata.KeyId] {
		t.Fatalf("after restart eu-west-1 lists %v", l)
	}
	e.stop()
	trail := string(e.trailAndLogs())
	if !strings.Contains(trail, `"awsRegion":"`+otherRegion+`"`) {
		t.Fatalf("the trail has no %s record", otherRegion)
	}
}

func TestMultiRegionKeys(t *testing.T) {
	e, eu := newRegionsEnv(t)
	ctx := context.Background()
	us := e.client
	created := must[*awskms.CreateKeyOutput](t)(us.CreateKey(ctx, &awskms.CreateKeyInput{MultiRegion: aws.Bool(true), Description: aws.String("primary")}))
	id := *created.KeyMetadata.KeyId
	if !regexp.MustCompile(`^mrk-[0-9a-f]{32}$`).MatchString(id) || !aws.ToBool(created.KeyMetadata.MultiRegion) {
		t.Fatalf("multi-Region key %s, MultiRegion %v", id, created.KeyMetadata.MultiRegion)
	}
	mrc := created.KeyMetadata.MultiRegionConfiguration
	if mrc == nil || mrc.MultiRegionKeyType != types.MultiRegionKeyTypePrimary || *mrc.PrimaryKey.Region != testRegion || len(mrc.ReplicaKeys) != 0 {
		t.Fatalf("MultiRegionConfiguration %+v", mrc)
	}
	before := must[*awskms.EncryptOutput](t)(us.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("before")}))

	rep := must[*awskms.ReplicateKeyOutput](t)(us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: aws.String(id),
		ReplicaRegion: aws.String(otherRegion), Description: aws.String("replica"), Tags: tags("side", "eu")}))
	wantARN := "arn:aws:kms:" + otherRegion + ":" + testAccount + ":key/" + id
	if *rep.ReplicaKeyMetadata.Arn != wantARN || *rep.ReplicaKeyMetadata.KeyId != id || rep.ReplicaKeyMetadata.KeyState != types.KeyStateEnabled ||
		len(rep.ReplicaTags) != 1 || rep.ReplicaPolicy == nil {
		t.Fatalf("ReplicateKey answered %+v", rep.ReplicaKeyMetadata)
	}
	_, err := us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(otherRegion)})
	wantCode(t, err, "AlreadyExistsException")
	_, err = us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String("ap-south-1")})
	wantCode(t, err, "UnsupportedOperationException")
	// Only a primary key is replicated.
	_, err = eu.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String("eu-central-1")})
	wantCode(t, err, "UnsupportedOperationException")

	describe := func(c *awskms.Client) *types.KeyMetadata {
		t.Helper()
		return must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(id)})).KeyMetadata
	}
	check := func(primary, replica string) {
		t.Helper()
		for _, side := range []struct {
			c      *awskms.Client
			region string
		}{{us, testRegion}, {eu, otherRegion}} {
			m := describe(side.c)
			want := types.MultiRegionKeyTypeReplica
			if side.region == primary {
				want = types.MultiRegionKeyTypePrimary
			}
			c := m.MultiRegionConfiguration
			if !aws.ToBool(m.MultiRegion) || c == nil || c.MultiRegionKeyType != want || *c.PrimaryKey.Region != primary ||
				len(c.ReplicaKeys) != 1 || *c.ReplicaKeys[0].Region != replica {
				t.Fatalf("%s: %+v", side.region, c)
			}
		}
	}
	check(testRegion, otherRegion)
	if d := describe(eu); *d.Description != "replica" || *d.Arn != wantARN {
		t.Fatalf("replica %+v", d)
	}

	roundTrip := func(enc, dec *awskms.Client, msg string) {
		t.Helper()
		ct := must[*awskms.EncryptOutput](t)(enc.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte(msg)}))
		pt := must[*awskms.DecryptOutput](t)(dec.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct.CiphertextBlob}))
		if string(pt.Plaintext) != msg {
			t.Fatalf("decrypted %q", pt.Plaintext)
		}
	}
	pt := must[*awskms.DecryptOutput](t)(eu.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: before.CiphertextBlob, KeyId: aws.String(wantARN)}))
	if string(pt.Plaintext) != "before" {
		t.Fatalf("eu-west-1 decrypted %q", pt.Plaintext)
	}
	roundTrip(us, eu, "us to eu")
	roundTrip(eu, us, "eu to us")

	// Rotation: the replica refuses it, the primary's reaches the replica.
	_, err = eu.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	wantCode(t, err, "UnsupportedOperationException")
	must[*awskms.RotateKeyOnDemandOutput](t)(us.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: aws.String(id)}))
	if a, b := describe(us).CurrentKeyMaterialId, describe(eu).CurrentKeyMaterialId; a == nil || b == nil || *a != *b {
		t.Fatalf("current material %v in %s, %v in %s", a, testRegion, b, otherRegion)
	}
	roundTrip(us, eu, "rotated")
	roundTrip(eu, us, "rotated back")

	// A restart (new Services over the same store) keeps everything.
	e.restart()
	us, eu = e.client, e.clientIn(otherRegion)
	check(testRegion, otherRegion)
	roundTrip(us, eu, "after restart")
	pt = must[*awskms.DecryptOutput](t)(eu.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: before.CiphertextBlob}))
	if string(pt.Plaintext) != "before" {
		t.Fatalf("after restart eu-west-1 decrypted %q", pt.Plaintext)
	}

	// UpdatePrimaryRegion swaps the roles; rotation follows the primary.
	must[*awskms.UpdatePrimaryRegionOutput](t)(us.UpdatePrimaryRegion(ctx, &awskms.UpdatePrimaryRegionInput{KeyId: aws.String(id), PrimaryRegion: aws.String(otherRegion)}))
	check(otherRegion, testRegion)
	_, err = us.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	wantCode(t, err, "UnsupportedOperationException")
	must[*awskms.RotateKeyOnDemandOutput](t)(eu.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: aws.String(id)}))
	roundTrip(eu, us, "new primary")
}

// TestMultiRegionDeletion: a primary with replicas scheduled for deletion
// is PendingReplicaDeletion, with the waiting period and no deletion date
// (ScheduleKeyDeletion's response and DescribeKey, as AWS shows them),
// refused for use and cancellable; a restart keeps the state; when the
// maintenance loop deletes the last replica, no record of the family lists
// it, the primary is PendingDeletion with its waiting period starting
// then, and the Region can have a replica again.
func TestMultiRegionDeletion(t *testing.T) {
	e, eu := newRegionsEnv(t)
	ctx := context.Background()
	us := e.client
	id := *must[*awskms.CreateKeyOutput](t)(us.CreateKey(ctx, &awskms.CreateKeyInput{MultiRegion: aws.Bool(true)})).KeyMetadata.KeyId
	replicate := func() {
		t.Helper()
		must[*awskms.ReplicateKeyOutput](t)(us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(otherRegion)}))
	}
	replicate()
	describe := func(c *awskms.Client) *types.KeyMetadata {
		t.Helper()
		return must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(id)})).KeyMetadata
	}
	ct := must[*awskms.EncryptOutput](t)(us.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("kept")}))

	schedule := func() {
		t.Helper()
		out := must[*awskms.ScheduleKeyDeletionOutput](t)(us.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}))
		if out.KeyState != types.KeyStatePendingReplicaDeletion || out.DeletionDate != nil || aws.ToInt32(out.PendingWindowInDays) != 7 {
			t.Fatalf("ScheduleKeyDeletion of a primary with a replica: state %s, date %v, window %v", out.KeyState, out.DeletionDate, out.PendingWindowInDays)
		}
	}
	schedule()
	pending := func() {
		t.Helper()
		m := describe(us)
		if m.KeyState != types.KeyStatePendingReplicaDeletion || m.DeletionDate != nil || aws.ToInt32(m.PendingDeletionWindowInDays) != 7 || m.Enabled {
			t.Fatalf("DescribeKey: state %s, date %v, window %v, enabled %v", m.KeyState, m.DeletionDate, m.PendingDeletionWindowInDays, m.Enabled)
		}
	}
	pending()
	// Not usable, not replicable (the key-state table's [2]), not
	// scheduled twice ([3]); the replica goes on.
	_, err := us.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
	wantCode(t, err, "DisabledException")
	if !strings.Contains(apiMessage(err), "is pending replica deletion") {
		t.Fatalf("message %q", apiMessage(err))
	}
	_, err = us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String("ap-south-1")})
	wantCode(t, err, "DisabledException")
	_, err = us.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(id)})
	wantCode(t, err, "KMSInvalidStateException")
	_, err = us.UpdateKeyDescription(ctx, &awskms.UpdateKeyDescriptionInput{KeyId: aws.String(id), Description: aws.String("x")})
	wantCode(t, err, "KMSInvalidStateException")
	if pt := must[*awskms.DecryptOutput](t)(eu.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})); string(pt.Plaintext) != "kept" {
		t.Fatalf("the replica decrypted %q", pt.Plaintext)
	}
	// CancelKeyDeletion works from it, to Disabled.
	must[*awskms.CancelKeyDeletionOutput](t)(us.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: aws.String(id)}))
	if m := describe(us); m.KeyState != types.KeyStateDisabled || m.PendingDeletionWindowInDays != nil {
		t.Fatalf("after CancelKeyDeletion: %s, window %v", m.KeyState, m.PendingDeletionWindowInDays)
	}
	must[*awskms.EnableKeyOutput](t)(us.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: aws.String(id)}))
	schedule()
	e.restart()
	us, eu = e.client, e.clientIn(otherRegion)
	pending()

	// The replica's own deletion: 7 days, then the maintenance loop of its
	// Region. The primary's waiting period has not started meanwhile.
	must[*awskms.ScheduleKeyDeletionOutput](t)(eu.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}))
	euSvc, err := e.svc.InRegion(otherRegion)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(6 * 24 * time.Hour)
	if _, d, err := euSvc.RunMaintenance(ctx); d != 0 || err != nil {
		t.Fatalf("day 6: %d deleted, %v", d, err)
	}
	e.clock.Advance(2 * 24 * time.Hour)
	if _, d, err := e.svc.RunMaintenance(ctx); d != 0 || err != nil {
		t.Fatalf("day 8, the primary's Region: %d deleted, %v", d, err)
	}
	if _, d, err := euSvc.RunMaintenance(ctx); d != 1 || err != nil {
		t.Fatalf("day 8, the replica's Region: %d deleted, %v", d, err)
	}
	deletedAt := e.clock.Now()
	_, err = eu.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(id)})
	wantCode(t, err, "NotFoundException")
	m := describe(us)
	if m.KeyState != types.KeyStatePendingDeletion || m.DeletionDate == nil || m.DeletionDate.Sub(deletedAt.Add(7*24*time.Hour)).Abs() > time.Second {
		t.Fatalf("after the last replica's deletion: state %s, date %v (want %v)", m.KeyState, m.DeletionDate, deletedAt.Add(7*24*time.Hour))
	}
	if c := m.MultiRegionConfiguration; c == nil || len(c.ReplicaKeys) != 0 || c.MultiRegionKeyType != types.MultiRegionKeyTypePrimary {
		t.Fatalf("the primary's MultiRegionConfiguration after its replica's deletion: %+v", c)
	}

	// Cancelled, the primary is replicated into the Region again.
	must[*awskms.CancelKeyDeletionOutput](t)(us.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: aws.String(id)}))
	must[*awskms.EnableKeyOutput](t)(us.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: aws.String(id)}))
	replicate()
	if c := describe(eu).MultiRegionConfiguration; c == nil || len(c.ReplicaKeys) != 1 || *c.ReplicaKeys[0].Region != otherRegion {
		t.Fatalf("the new replica's MultiRegionConfiguration: %+v", c)
	}
	if pt := must[*awskms.DecryptOutput](t)(eu.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})); string(pt.Plaintext) != "kept" {
		t.Fatalf("the new replica decrypted %q", pt.Plaintext)
	}

	// A primary without replicas goes straight to PendingDeletion.
	single := *must[*awskms.CreateKeyOutput](t)(us.CreateKey(ctx, &awskms.CreateKeyInput{MultiRegion: aws.Bool(true)})).KeyMetadata.KeyId
	out := must[*awskms.ScheduleKeyDeletionOutput](t)(us.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(single), PendingWindowInDays: aws.Int32(7)}))
	if out.KeyState != types.KeyStatePendingDeletion || out.DeletionDate == nil {
		t.Fatalf("a primary without replicas: %s, %v", out.KeyState, out.DeletionDate)
	}
}

// TestMultiRegionRotationStatus: a replica reports its primary's automatic
// rotation and refuses to change it, as AWS's does; after
// UpdatePrimaryRegion the new primary holds it.
func TestMultiRegionRotationStatus(t *testing.T) {
	e, eu := newRegionsEnv(t)
	ctx := context.Background()
	us := e.client
	id := *must[*awskms.CreateKeyOutput](t)(us.CreateKey(ctx, &awskms.CreateKeyInput{MultiRegion: aws.Bool(true)})).KeyMetadata.KeyId
	must[*awskms.ReplicateKeyOutput](t)(us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(otherRegion)}))
	status := func(c *awskms.Client) *awskms.GetKeyRotationStatusOutput {
		t.Helper()
		return must[*awskms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: aws.String(id)}))
	}
	if s := status(eu); s.KeyRotationEnabled || s.RotationPeriodInDays != nil {
		t.Fatalf("replica before: %+v", s)
	}
	must[*awskms.EnableKeyRotationOutput](t)(us.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(120)}))
	p, r := status(us), status(eu)
	if !r.KeyRotationEnabled || aws.ToInt32(r.RotationPeriodInDays) != 120 || r.NextRotationDate == nil || !r.NextRotationDate.Equal(*p.NextRotationDate) {
		t.Fatalf("replica reports %+v; primary %+v", r, p)
	}
	if *r.KeyId != "arn:aws:kms:"+otherRegion+":"+testAccount+":key/"+id {
		t.Fatalf("replica's KeyId %s", *r.KeyId)
	}
	for _, call := range []func() error{
		func() error {
			_, err := eu.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: aws.String(id)})
			return err
		},
		func() error {
			_, err := eu.DisableKeyRotation(ctx, &awskms.DisableKeyRotationInput{KeyId: aws.String(id)})
			return err
		},
	} {
		wantCode(t, call(), "UnsupportedOperationException")
	}
	must[*awskms.UpdatePrimaryRegionOutput](t)(us.UpdatePrimaryRegion(ctx, &awskms.UpdatePrimaryRegionInput{KeyId: aws.String(id), PrimaryRegion: aws.String(otherRegion)}))
	if s := status(us); !s.KeyRotationEnabled || aws.ToInt32(s.RotationPeriodInDays) != 120 || !s.NextRotationDate.Equal(*p.NextRotationDate) {
		t.Fatalf("the old primary, now a replica, reports %+v", s)
	}
	must[*awskms.DisableKeyRotationOutput](t)(eu.DisableKeyRotation(ctx, &awskms.DisableKeyRotationInput{KeyId: aws.String(id)}))
	if s := status(us); s.KeyRotationEnabled {
		t.Fatalf("after the new primary's DisableKeyRotation the replica reports %+v", s)
	}
}

// TestMultiRegionResponsesConsistent: Coffer shows neither Creating nor
// Updating (mrk.go says why), so what ReplicateKey answers is what
// DescribeKey answers after it in the replica's Region, and after
// UpdatePrimaryRegion both keys are Enabled with one primary between them.
func TestMultiRegionResponsesConsistent(t *testing.T) {
	e, eu := newRegionsEnv(t)
	ctx := context.Background()
	us := e.client
	id := *must[*awskms.CreateKeyOutput](t)(us.CreateKey(ctx, &awskms.CreateKeyInput{MultiRegion: aws.Bool(true)})).KeyMetadata.KeyId
	rep := must[*awskms.ReplicateKeyOutput](t)(us.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: aws.String(id),
		ReplicaRegion: aws.String(otherRegion), Description: aws.String("replica")})).ReplicaKeyMetadata
	got := must[*awskms.DescribeKeyOutput](t)(eu.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(id)})).KeyMetadata
	same := func(what string, a, b any) {
		t.Helper()
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: ReplicateKey answered %v, DescribeKey %v", what, a, b)
		}
	}
	same("Arn", *rep.Arn, *got.Arn)
	same("KeyState", rep.KeyState, got.KeyState)
	same("Enabled", rep.Enabled, got.Enabled)
	same("CreationDate", rep.CreationDate.Unix(), got.CreationDate.Unix())
	same("CurrentKeyMaterialId", aws.ToString(rep.CurrentKeyMaterialId), aws.ToString(got.CurrentKeyMaterialId))
	same("Description", *rep.Description, *got.Description)
	mrc := func(m *types.KeyMetadata) string {
		c := m.MultiRegionConfiguration
		s := string(c.MultiRegionKeyType) + " " + *c.PrimaryKey.Arn
		for _, r := range c.ReplicaKeys {
			s += " " + *r.Arn
		}
		return s
	}
	same("MultiRegionConfiguration", mrc(rep), mrc(got))
	if rep.KeyState != types.KeyStateEnabled || !rep.Enabled {
		t.Fatalf("the replica is %s", rep.KeyState)
	}
	must[*awskms.UpdatePrimaryRegionOutput](t)(us.UpdatePrimaryRegion(ctx, &awskms.UpdatePrimaryRegionInput{KeyId: aws.String(id), PrimaryRegion: aws.String(otherRegion)}))
	primaries := 0
	for _, c := range []*awskms.Client{us, eu} {
		m := must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(id)})).KeyMetadata
		if m.KeyState != types.KeyStateEnabled {
			t.Fatalf("%s after UpdatePrimaryRegion: %s", *m.Arn, m.KeyState)
		}
		if m.MultiRegionConfiguration.MultiRegionKeyType == types.MultiRegionKeyTypePrimary {
			primaries++
		}
	}
	if primaries != 1 {
		t.Fatalf("%d primaries after UpdatePrimaryRegion", primaries)
	}
}
