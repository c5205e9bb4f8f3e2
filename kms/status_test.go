package kms

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/keystore"
)

// TestGetStatus: coffer:GetStatus is an identity-policy action like any
// other, and the key counts are the caller's account's by state.
func TestGetStatus(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: "ops"}); err != nil {
		t.Fatal(err)
	}
	ops := chainUser("ops")
	if _, err := s.GetStatus(ctx, ops, &Empty{}); !isAccessDenied(err) {
		t.Fatalf("GetStatus without coffer:GetStatus: %v, want AccessDeniedException", err)
	}
	if _, err := s.PutUserPolicy(ctx, root, &UserPolicyInput{UserName: "ops", PolicyName: "status", PolicyDocument: `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"coffer:GetStatus","Resource":"*"}]}`}); err != nil {
		t.Fatal(err)
	}
	before, err := s.GetStatus(ctx, ops, &Empty{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.CreateKey(ctx, root, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DisableKey(ctx, root, &KeyIDInput{KeyId: k.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.GetStatus(ctx, ops, &Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if st.KeysByState[StateDisabled] != before.KeysByState[StateDisabled]+1 {
		t.Errorf("keys by state %v after disabling one more than %v", st.KeysByState, before.KeysByState)
	}
	if st.LastMaintenance == nil || st.LastMaintenance.Error != "" {
		t.Errorf("last maintenance %+v", st.LastMaintenance)
	}
	if len(st.Caches) != 6 || st.Region == "" {
		t.Errorf("caches %v region %q", st.Caches, st.Region)
	}
}

// TestKeysByStateIndexMatchesScan holds GetStatus's counts, read from the
// keys-by-account index, to a scan and decode of every key record of the
// Region, in two Regions and two accounts, after creations (CreateKey,
// BulkCreateKeys, EXTERNAL, a multi-Region primary and its replica), state
// changes (disable, enable, schedule and cancel deletion, the primary
// waiting for its replica's deletion) and deletions (a replica and a key at
// the end of their waiting periods); and shows that a call reads only the
// caller's account's entries, not the other account's hundreds of keys.
func TestKeysByStateIndexMatchesScan(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	svcs, c := newMRKServices(t, clock, "us-east-1", "eu-west-1")
	us, eu := svcs[0], svcs[1]
	ctx := context.Background()
	const other = "444455556666"
	scan := func(s *Service, account string) map[string]int {
		t.Helper()
		counts := map[string]int{}
		if err := s.store.View(ctx, func(tx keystore.Tx) error {
			return tx.Scan(bucketKeys, "", "", func(id string, raw []byte) bool {
				r, err := decodeKey(id, raw)
				if err != nil {
					t.Fatal(err)
				}
				if r.Account == account {
					counts[r.State]++
				}
				return true
			})
		}); err != nil {
			t.Fatal(err)
		}
		return counts
	}
	// ListKeys pages the caller's keys from the same index: the entries,
	// IDs and ARNs, a scan of every key finds, in the same order, across
	// pages of 2.
	listScan := func(s *Service, account string) []KeyListEntry {
		t.Helper()
		out := []KeyListEntry{}
		if err := s.store.View(ctx, func(tx keystore.Tx) error {
			return tx.Scan(bucketKeys, "", "", func(id string, raw []byte) bool {
				if r, err := decodeKey(id, raw); err == nil && r.Account == account {
					out = append(out, KeyListEntry{KeyId: r.ID, KeyArn: r.arn()})
				}
				return true
			})
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	checkList := func(when string) {
		t.Helper()
		for _, s := range svcs {
			got := []KeyListEntry{}
			for marker, pages := "", 0; ; pages++ {
				out, err := s.ListKeys(ctx, c, &ListInput{Limit: new(2), Marker: marker})
				if err != nil || pages > 100 {
					t.Fatalf("%s, %s: ListKeys: %v after %d pages", when, s.region, err, pages)
				}
				got = append(got, out.Keys...)
				if !out.Truncated {
					break
				}
				marker = out.NextMarker
			}
			if want := listScan(s, c.Account); !slices.Equal(got, want) {
				t.Fatalf("%s, %s: ListKeys %v, a scan %v", when, s.region, got, want)
			}
		}
	}
	check := func(when string) {
		t.Helper()
		checkList(when)
		for _, s := range svcs {
			st, err := s.GetStatus(ctx, c, &Empty{})
			if err != nil {
				t.Fatal(err)
			}
			if want := scan(s, c.Account); !maps.Equal(st.KeysByState, want) {
				t.Fatalf("%s, %s: GetStatus %v, a scan %v", when, s.region, st.KeysByState, want)
			}
			for _, account := range []string{c.Account, other} {
				var got map[string]int
				if err := s.store.View(ctx, func(tx keystore.Tx) (err error) {
					got, err = s.keysByState(tx, account)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if want := scan(s, account); !maps.Equal(got, want) {
					t.Fatalf("%s, %s, account %s: the index %v, a scan %v", when, s.region, account, got, want)
				}
			}
		}
	}
	if err := us.BulkCreateKeys(ctx, other, "other", 300, 100, nil); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 4 {
		k, err := us.CreateKey(ctx, c, &CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.KeyMetadata.KeyId)
	}
	if _, err := us.CreateKey(ctx, c, &CreateKeyInput{Origin: OriginExternal}); err != nil {
		t.Fatal(err)
	}
	mrk, err := us.CreateKey(ctx, c, &CreateKeyInput{MultiRegion: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := us.ReplicateKey(ctx, c, &ReplicateKeyInput{KeyId: mrk.KeyMetadata.KeyId, ReplicaRegion: "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	if err := eu.BulkCreateKeys(ctx, c.Account, "eu", 3, 2, nil); err != nil {
		t.Fatal(err)
	}
	check("after creations")
	if st, err := us.GetStatus(ctx, c, &Empty{}); err != nil || st.KeysByState[StateEnabled] != 5 || st.KeysByState[StatePendingImport] != 1 {
		t.Fatalf("GetStatus in us-east-1: %+v, %v", st, err)
	}
	week := new(7)
	if _, err := us.DisableKey(ctx, c, &KeyIDInput{KeyId: ids[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.DisableKey(ctx, c, &KeyIDInput{KeyId: ids[1]}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.EnableKey(ctx, c, &KeyIDInput{KeyId: ids[1]}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[2:] {
		if _, err := us.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: week}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := us.CancelKeyDeletion(ctx, c, &KeyIDInput{KeyId: ids[3]}); err != nil {
		t.Fatal(err)
	}
	// The primary waits for its replica (PendingReplicaDeletion), whose
	// own window runs.
	for _, s := range []*Service{us, eu} {
		if _, err := s.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: mrk.KeyMetadata.KeyId, PendingWindowInDays: week}); err != nil {
			t.Fatal(err)
		}
	}
	check("after state changes")
	clock.advance(8 * 24 * time.Hour)
	for _, s := range svcs {
		if _, _, err := s.RunMaintenance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check("after the replica's and a key's deletion")
	if st, err := eu.GetStatus(ctx, c, &Empty{}); err != nil || st.KeysByState[StatePendingDeletion] != 0 || st.KeysByState[StateEnabled] != 3 {
		t.Fatalf("GetStatus in eu-west-1 after its replica's deletion: %+v, %v", st, err)
	}

	// One call reads the caller's account's entries (and nothing of the
	// other account's 300 keys).
	mine := 0
	for _, n := range scan(us, c.Account) {
		mine += n
	}
	rc := &readCounter{Store: us.store}
	us.store = rc
	defer func() { us.store = rc.Store }()
	if _, err := us.GetStatus(ctx, c, &Empty{}); err != nil {
		t.Fatal(err)
	}
	if got := rc.reads.Load(); got > int64(mine)+2 {
		t.Fatalf("GetStatus over %d keys of the account (and 300 of another) read %d records", mine, got)
	}
}
