package kms

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// newMRKServices returns the Services of regions (the first is the home
// one) over one in-memory store, on clock, and the account root.
func newMRKServices(t *testing.T, clock *testClock, regions ...string) ([]*Service, *Caller) {
	t.Helper()
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	home, err := New(Config{Region: regions[0], Account: matrixAccount, Store: keystore.NewMemory(), Root: root, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { home.Close() })
	out := []*Service{home}
	for _, r := range regions[1:] {
		s, err := home.InRegion(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out, &Caller{ARN: matrixRoot, Account: matrixAccount}
}

// TestReplicaDeletionWithThreeRegions: deleting one of two replicas takes
// its Region out of every other record of the family (the other replica's
// too) and leaves the primary PendingReplicaDeletion; deleting the last
// starts the primary's waiting period, after which its own Region's
// maintenance deletes it.
func TestReplicaDeletionWithThreeRegions(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	svcs, c := newMRKServices(t, clock, "us-east-1", "eu-west-1", "ap-south-1")
	us, eu, ap := svcs[0], svcs[1], svcs[2]
	ctx := context.Background()
	created, err := us.CreateKey(ctx, c, &CreateKeyInput{MultiRegion: true})
	if err != nil {
		t.Fatal(err)
	}
	id := created.KeyMetadata.KeyId
	for _, r := range []string{"eu-west-1", "ap-south-1"} {
		if _, err := us.ReplicateKey(ctx, c, &ReplicateKeyInput{KeyId: id, ReplicaRegion: r}); err != nil {
			t.Fatal(err)
		}
	}
	describe := func(s *Service) *KeyMetadata {
		t.Helper()
		out, err := s.DescribeKey(ctx, c, &KeyIDInput{KeyId: id})
		if err != nil {
			t.Fatalf("%s: %v", s.Region(), err)
		}
		return out.KeyMetadata
	}
	replicas := func(m *KeyMetadata) []string {
		var out []string
		for _, k := range m.MultiRegionConfiguration.ReplicaKeys {
			out = append(out, k.Region)
		}
		return out
	}
	sched, err := us.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: ptr(10)})
	if err != nil || sched.KeyState != StatePendingReplicaDeletion || sched.DeletionDate != nil {
		t.Fatalf("ScheduleKeyDeletion: %+v, %v", sched, err)
	}
	for _, s := range []*Service{eu, ap} {
		if _, err := s.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: ptr(7)}); err != nil {
			t.Fatal(err)
		}
		if s == eu {
			clock.advance(3 * 24 * time.Hour) // ap's window ends 3 days after eu's
		}
	}
	clock.advance(5 * 24 * time.Hour) // eu's window is over, ap's is not
	for _, s := range []*Service{us, ap, eu} {
		if _, _, err := s.RunMaintenance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eu.DescribeKey(ctx, c, &KeyIDInput{KeyId: id}); err == nil {
		t.Fatal("the eu-west-1 replica outlived its window")
	}
	// Its index entries went with it (keyindex.go): no keys-due or
	// key-due-of entry of eu-west-1 (its Service reads its Region's) names the key.
	err = eu.store.View(ctx, func(tx keystore.Tx) error {
		for _, b := range []string{bucketKeysDue, bucketKeyDueOf} {
			err := tx.Scan(b, "", "", func(name string, _ []byte) bool {
				if strings.Contains(name, id) {
					t.Errorf("%s still holds %s after the replica's deletion", b, name)
				}
				return true
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The deletion committed with its DeleteKey service event's record.
	pending, err := us.PendingAudits(ctx)
	if err != nil || len(pending) != 1 || !strings.Contains(string(pending[0].Record), `"DeleteKey"`) ||
		!strings.Contains(string(pending[0].Record), "arn:aws:kms:eu-west-1:"+matrixAccount+":key/"+id) {
		t.Fatalf("outbox after the replica's deletion: %d entries, %v", len(pending), err)
	}
	for _, s := range []*Service{us, ap} {
		if got := replicas(describe(s)); !slices.Equal(got, []string{"ap-south-1"}) {
			t.Fatalf("%s lists replicas %v", s.Region(), got)
		}
	}
	if m := describe(us); m.KeyState != StatePendingReplicaDeletion || m.DeletionDate != nil || m.PendingDeletionWindowInDays != 10 {
		t.Fatalf("the primary with one replica left: %s, %v, %d", m.KeyState, m.DeletionDate, m.PendingDeletionWindowInDays)
	}
	clock.advance(3 * 24 * time.Hour)
	if _, d, err := ap.RunMaintenance(ctx); d != 1 || err != nil {
		t.Fatalf("ap-south-1: %d deleted, %v", d, err)
	}
	start := clock.Now()
	m := describe(us)
	if m.KeyState != StatePendingDeletion || m.DeletionDate == nil || !m.DeletionDate.Equal(start.Add(10*24*time.Hour)) || len(replicas(m)) != 0 {
		t.Fatalf("the primary after its last replica: %s, %v, %v", m.KeyState, m.DeletionDate, replicas(m))
	}
	clock.advance(10*24*time.Hour - time.Minute)
	if _, d, _ := us.RunMaintenance(ctx); d != 0 {
		t.Fatal("the primary was deleted before its window ended")
	}
	clock.advance(time.Minute)
	if _, d, err := us.RunMaintenance(ctx); d != 1 || err != nil {
		t.Fatalf("the primary: %d deleted, %v", d, err)
	}
}

// TestReplicaOfDeletedPrimary: a replica whose family has no primary record
// (a store written when a primary with replicas could be deleted first) is
// still deleted when its window ends.
func TestReplicaOfDeletedPrimary(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	svcs, c := newMRKServices(t, clock, "us-east-1", "eu-west-1")
	us, eu := svcs[0], svcs[1]
	ctx := context.Background()
	created, err := us.CreateKey(ctx, c, &CreateKeyInput{MultiRegion: true})
	if err != nil {
		t.Fatal(err)
	}
	id := created.KeyMetadata.KeyId
	if _, err := us.ReplicateKey(ctx, c, &ReplicateKeyInput{KeyId: id, ReplicaRegion: "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	if err := us.store.Update(ctx, func(tx keystore.Tx) error { return tx.Delete(bucketKeys, id) }); err != nil {
		t.Fatal(err)
	}
	us.cache.invalidate(cacheKey, id)
	if _, err := eu.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	clock.advance(7 * 24 * time.Hour)
	if _, d, err := eu.RunMaintenance(ctx); d != 1 || err != nil {
		t.Fatalf("%d deleted, %v", d, err)
	}
	if _, err := eu.DescribeKey(ctx, c, &KeyIDInput{KeyId: id}); err == nil {
		t.Fatal("the replica outlived its window")
	}
}

// replicaDeletionDisabled are the key-state table's rows that read "✗[2/3]"
// in its PendingDeletion / PendingReplicaDeletion column (reference §1.4):
// a primary pending replica deletion is DisabledException there ([2]), as
// KeyMember.ReplicaDeletionDisabled says. DeriveSharedSecret is newer than
// the table and a cryptographic operation like Sign (matrix_asym_test.go).
var replicaDeletionDisabled = map[string]bool{
	"Encrypt": true, "Decrypt": true, "ReEncrypt/source": true, "ReEncrypt/destination": true,
	"GenerateDataKey": true, "GenerateDataKeyWithoutPlaintext": true, "GenerateDataKeyPair": true,
	"GenerateDataKeyPairWithoutPlaintext": true, "GenerateMac": true, "VerifyMac": true, "Sign": true,
	"Verify": true, "GetPublicKey": true, "CreateGrant": true, "DeriveSharedSecret": true,
}

// TestStateMatrixPendingReplicaDeletion runs every row of the state matrix
// on a multi-Region primary key pending replica deletion. AWS's table has
// one column for PendingDeletion and PendingReplicaDeletion, so each cell
// expects the PendingDeletion cell's answer, except that the "✗[2/3]" rows
// answer DisabledException ([2]). ReplicateKey and UpdatePrimaryRegion
// ("✗[2/3]" too) are checked after them.
func TestStateMatrixPendingReplicaDeletion(t *testing.T) {
	s, c := newMatrixService(t)
	if _, err := s.InRegion("eu-west-1"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	col := slices.Index(matrixStates[:], StatePendingDeletion)
	for _, row := range stateRows {
		t.Run(row.op, func(t *testing.T) {
			k := newReplicaDeletionCell(t, s, c, row.kind)
			want := row.want[col]
			if want == ErrInvalidState && replicaDeletionDisabled[row.op] {
				want = ErrDisabled
			}
			checkCell(t, row.call(ctx, s, c, k), want, row.knownDeviation[StatePendingDeletion])
			// The catalogue row's States say the same, where the answer is
			// about the state (not the key's origin or store, [9]).
			stateAnswer := want == success || want == ErrInvalidState || want == ErrDisabled
			if m := catalogueMember(row.op); m != nil && stateAnswer && slices.Contains(m.States, StatePendingReplicaDeletion) != (want == success) {
				t.Errorf("%s's States %v, but the table's answer in PendingReplicaDeletion is %s", row.op, m.States, kindName(want))
			}
		})
	}
	k := newReplicaDeletionCell(t, s, c, specUsage{})
	_, err := s.ReplicateKey(ctx, c, &ReplicateKeyInput{KeyId: k.id, ReplicaRegion: "ap-south-1"})
	checkCell(t, err, ErrDisabled, "")
	_, err = s.UpdatePrimaryRegion(ctx, c, &UpdatePrimaryRegionInput{KeyId: k.id, PrimaryRegion: "eu-west-1"})
	checkCell(t, err, ErrDisabled, "")
}

// newReplicaDeletionCell is newCellOf with the key under test a
// multi-Region primary (of kind), replicated into eu-west-1 and scheduled
// for deletion: PendingReplicaDeletion.
func newReplicaDeletionCell(t *testing.T, s *Service, c *Caller, kind specUsage) *cell {
	t.Helper()
	ctx := context.Background()
	k := newCell(t, s, c) // the other key and its alias and ciphertext
	in := &CreateKeyInput{MultiRegion: true, Tags: []Tag{{TagKey: "k1", TagValue: "v1"}}}
	if kind != (specUsage{}) {
		in.KeySpec, in.KeyUsage = kind.spec, kind.usage
	}
	out, err := s.CreateKey(ctx, c, in)
	if err != nil {
		t.Fatal(err)
	}
	k.id = out.KeyMetadata.KeyId
	switch kind.usage {
	case UsageSignVerify:
		sig, err := s.Sign(ctx, c, &SignInput{KeyId: k.id, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_256"})
		if err != nil {
			t.Fatal(err)
		}
		k.sig = sig.Signature
	case UsageGenerateVerifyMAC:
		mac, err := s.GenerateMac(ctx, c, &GenerateMacInput{KeyId: k.id, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_256"})
		if err != nil {
			t.Fatal(err)
		}
		k.mac = mac.Mac
	case "":
		enc, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: k.id, Plaintext: []byte("matrix")})
		if err != nil {
			t.Fatal(err)
		}
		k.blob = enc.CiphertextBlob
		g, err := s.CreateGrant(ctx, c, &CreateGrantInput{KeyId: k.id, GranteePrincipal: "arn:aws:iam::111122223333:user/grantee",
			RetiringPrincipal: matrixRoot, Operations: []string{"Decrypt"}})
		if err != nil {
			t.Fatal(err)
		}
		k.grantID, k.grantToken = g.GrantId, g.GrantToken
	}
	k.alias = "alias/r-" + k.id
	if _, err := s.CreateAlias(ctx, c, &AliasInput{AliasName: k.alias, TargetKeyId: k.id}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReplicateKey(ctx, c, &ReplicateKeyInput{KeyId: k.id, ReplicaRegion: "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	sched, err := s.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: k.id, PendingWindowInDays: ptr(7)})
	if err != nil || sched.KeyState != StatePendingReplicaDeletion {
		t.Fatalf("ScheduleKeyDeletion: %+v, %v", sched, err)
	}
	return k
}

// catalogueMember is the key member of the catalogue row that a state
// matrix row (op, or op/role) exercises; nil when the row names no key
// member (UpdateAlias/source: the alias's old target is no member).
func catalogueMember(rowOp string) *KeyMember {
	name, role, _ := strings.Cut(rowOp, "/")
	o, ok := LookupOperation(APIKMS, name)
	if !ok || len(o.Keys) == 0 {
		return nil
	}
	switch {
	case name == "ReEncrypt" && role == "destination":
		return o.Key("DestinationKeyId")
	case name == "UpdateAlias" && role == "source":
		return nil
	}
	return &o.Keys[0]
}

// TestFamilyForgetsDeletedReplicas: a store written before replica
// deletion updated the family lists a replica whose record is gone. Such a
// replica does not hold its primary in PendingReplicaDeletion, does not
// stop ReplicateKey into its Region, and the next change of the family
// takes it out of every record.
func TestFamilyForgetsDeletedReplicas(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	svcs, c := newMRKServices(t, clock, "us-east-1", "eu-west-1", "ap-south-1")
	us, eu, ap := svcs[0], svcs[1], svcs[2]
	ctx := context.Background()
	newFamily := func(regions ...string) string {
		t.Helper()
		created, err := us.CreateKey(ctx, c, &CreateKeyInput{MultiRegion: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range regions {
			if _, err := us.ReplicateKey(ctx, c, &ReplicateKeyInput{KeyId: created.KeyMetadata.KeyId, ReplicaRegion: r}); err != nil {
				t.Fatal(err)
			}
		}
		return created.KeyMetadata.KeyId
	}
	// dropRecord deletes s's record of id as the old maintenance did: the
	// rest of the family still lists s's Region.
	dropRecord := func(s *Service, id string) {
		t.Helper()
		if err := s.store.Update(ctx, func(tx keystore.Tx) error { return tx.Delete(bucketKeys, id) }); err != nil {
			t.Fatal(err)
		}
		s.cache.invalidate(cacheKey, id)
	}
	replicas := func(s *Service, id string) []string {
		t.Helper()
		d, err := s.DescribeKey(ctx, c, &KeyIDInput{KeyId: id})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range d.KeyMetadata.MultiRegionConfiguration.ReplicaKeys {
			out = append(out, k.Region)
		}
		return out
	}

	// Only a ghost: the primary is scheduled as a key without replicas.
	id := newFamily("eu-west-1")
	dropRecord(eu, id)
	sched, err := us.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: ptr(7)})
	if err != nil || sched.KeyState != StatePendingDeletion || sched.DeletionDate == nil {
		t.Fatalf("ScheduleKeyDeletion with a deleted replica listed: %+v, %v", sched, err)
	}
	if _, err := us.CancelKeyDeletion(ctx, c, &KeyIDInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.EnableKey(ctx, c, &KeyIDInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	// Replicated into the ghost's Region again.
	if _, err := us.ReplicateKey(ctx, c, &ReplicateKeyInput{KeyId: id, ReplicaRegion: "eu-west-1"}); err != nil {
		t.Fatalf("ReplicateKey into a deleted replica's Region: %v", err)
	}
	for _, s := range []*Service{us, eu} {
		if got := replicas(s, id); !slices.Equal(got, []string{"eu-west-1"}) {
			t.Fatalf("%s lists replicas %v", s.Region(), got)
		}
	}

	// A ghost and a live replica: the live one holds the primary; its
	// deletion forgets both and starts the primary's waiting period.
	id = newFamily("eu-west-1", "ap-south-1")
	dropRecord(eu, id)
	sched, err = us.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: ptr(7)})
	if err != nil || sched.KeyState != StatePendingReplicaDeletion {
		t.Fatalf("ScheduleKeyDeletion with a live replica: %+v, %v", sched, err)
	}
	if _, err := ap.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	clock.advance(7 * 24 * time.Hour)
	if _, d, err := ap.RunMaintenance(ctx); d != 1 || err != nil {
		t.Fatalf("%d deleted, %v", d, err)
	}
	d, err := us.DescribeKey(ctx, c, &KeyIDInput{KeyId: id})
	if err != nil || d.KeyMetadata.KeyState != StatePendingDeletion || len(d.KeyMetadata.MultiRegionConfiguration.ReplicaKeys) != 0 {
		t.Fatalf("the primary after its live replica's deletion: %+v, %v", d.KeyMetadata, err)
	}
}
