package kms

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/keystore"
)

// randomKey is a key record with the fields the maintenance loop reads
// drawn at random around base.
func randomKey(rng *rand.Rand, id string, base time.Time) *keyRecord {
	at := func() time.Time {
		if rng.IntN(8) == 0 {
			return time.Time{}
		}
		return base.Add(time.Duration(rng.IntN(200)-100) * time.Hour)
	}
	r := &keyRecord{ID: id, Account: "111122223333", Region: "us-east-1", Usage: "ENCRYPT_DECRYPT", Spec: "SYMMETRIC_DEFAULT",
		Origin: OriginAWSKMS, Manager: "CUSTOMER", Versions: []keyVersion{{Wrapped: []byte{1}}}}
	r.State = []string{StateEnabled, StateDisabled, StatePendingDeletion, StatePendingImport, StateUnavailable}[rng.IntN(5)]
	if r.State == StatePendingDeletion {
		r.DeletionDate = at()
	}
	if rng.IntN(2) == 0 {
		r.RotationEnabled, r.NextRotation = true, at()
	}
	if rng.IntN(3) == 0 { // imported material, each with its own expiry (import.go)
		v := &r.Versions[0]
		r.Origin, v.ExpirationModel, v.ValidTo = OriginExternal, ExpirationExpires, at()
		if rng.IntN(4) == 0 {
			v.ExpirationModel = ExpirationDoesNotExpire
		}
		if rng.IntN(4) == 0 {
			v.Wrapped = nil // material deleted
		}
		if rng.IntN(3) == 0 { // material pending rotation, which expires too
			r.PendingMaterial = &keyVersion{Wrapped: []byte{2}, ExpirationModel: ExpirationExpires, ValidTo: at()}
		}
	}
	if rng.IntN(4) == 0 {
		r.CustomKeyStoreID = fmt.Sprintf("cks-%d", rng.IntN(3))
	}
	return r
}

// fullScanWork is what the maintenance loop did before the index: every
// key record read and asked.
func fullScanWork(t *testing.T, s *Service, now time.Time) map[string]work {
	t.Helper()
	out := map[string]work{}
	err := s.store.View(context.Background(), func(tx keystore.Tx) error {
		return tx.Scan(bucketKeys, "", "", func(id string, raw []byte) bool {
			r, err := decodeKey(id, raw)
			if err != nil {
				t.Fatal(err)
			}
			if w := maintenanceWork(r, now); w != workNone {
				out[id] = w
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// indexWork is the same question answered by the keys-due index, batch by
// batch as RunMaintenance reads it.
func indexWork(t *testing.T, s *Service, now time.Time) map[string]work {
	t.Helper()
	out := map[string]work{}
	for after := ""; ; {
		ids, kinds, next, more, err := s.dueKeys(context.Background(), now, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > maintenanceBatch {
			t.Fatalf("a batch of %d keys, over %d", len(ids), maintenanceBatch)
		}
		for i, id := range ids {
			if _, dup := out[id]; dup {
				t.Fatalf("key %s twice", id)
			}
			out[id] = kinds[i]
		}
		if !more {
			return out
		}
		after = next
	}
}

// The keys-due index answers what a scan of every key answers, at any
// instant, after creations, rewrites and deletions of keys in every state
// the loop looks at, and across batches.
func TestDueIndexMatchesFullScan(t *testing.T) {
	s, _ := newFormsService(t)
	ctx := context.Background()
	if err := s.ensureKeyIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(26, 2))
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	const n = 3*maintenanceBatch + 500
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		for i := range n {
			if err := putKeyTx(tx, randomKey(rng, fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), base)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite a third with new fields (the old entries must go) and
	// delete a tenth through updateKey.
	for i := 0; i < n; i += 3 {
		id := fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)
		_, err := s.updateKey(ctx, id, func(_ keystore.Tx, r *keyRecord) (*keyRecord, error) {
			if i%10 == 0 {
				return nil, nil
			}
			return randomKey(rng, id, base), nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	due := 0
	for _, h := range []int{-200, -100, -50, -1, 0, 1, 30, 99, 100, 200} {
		now := base.Add(time.Duration(h) * time.Hour)
		want, got := fullScanWork(t, s, now), indexWork(t, s, now)
		if len(want) != len(got) {
			t.Errorf("at %+dh: the index finds %d keys with work, a full scan %d", h, len(got), len(want))
		}
		for id, w := range want {
			if got[id] != w {
				t.Errorf("at %+dh: key %s: index says %d, full scan %d", h, id, got[id], w)
			}
		}
		due = max(due, len(want))
	}
	if due <= maintenanceBatch {
		t.Fatalf("at most %d keys due: the batches were not exercised", due)
	}
	// No stray entries: one keys-due entry per key that may ever be due.
	entries, indexed := 0, 0
	err = s.store.View(ctx, func(tx keystore.Tx) error {
		if err := tx.Scan(bucketKeysDue, "", "", func(string, []byte) bool { entries++; return true }); err != nil {
			return err
		}
		return tx.Scan(bucketKeys, "", "", func(id string, raw []byte) bool {
			r, _ := decodeKey(id, raw)
			if _, ok := dueAt(r); ok {
				indexed++
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if entries != indexed {
		t.Errorf("%d keys-due entries for %d keys with a due instant", entries, indexed)
	}
}

// The keys-by-store index answers what a scan of every key answers.
func TestStoreIndexMatchesFullScan(t *testing.T) {
	s, _ := newFormsService(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(26, 3))
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		for i := range 300 {
			if err := putKeyTx(tx, randomKey(rng, fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), base)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i += 7 { // deleted keys leave their store's index
		if _, err := s.updateKey(ctx, fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), func(keystore.Tx, *keyRecord) (*keyRecord, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
	}
	storeKeysOf := func(store string, limit int) []string {
		var ids []string
		err := s.store.View(ctx, func(tx keystore.Tx) (err error) {
			ids, err = s.storeKeys(tx, store, limit)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	var scanned [3][]string
	for i := range scanned {
		scanned[i] = storeKeysOf(fmt.Sprintf("cks-%d", i), -1) // the indexes are not built yet: a scan
	}
	if err := s.ensureKeyIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range scanned {
		store := fmt.Sprintf("cks-%d", i)
		if got := storeKeysOf(store, -1); !slices.Equal(got, scanned[i]) || len(got) == 0 {
			t.Errorf("%s: index %v, scan %v", store, got, scanned[i])
		}
		if got := storeKeysOf(store, 1); len(got) != 1 {
			t.Errorf("%s with max 1: %v", store, got)
		}
	}
}

// aliasesByScan is the aliases of key id as every alias of the account
// filtered, the answer before the index.
func aliasesByScan(t *testing.T, s *Service, account, id string) []string {
	t.Helper()
	var out []string
	err := s.store.View(context.Background(), func(tx keystore.Tx) error {
		return scanAliases(tx, account, "", func(a *aliasRecord) bool {
			if a.Target == id {
				out = append(out, a.Name)
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The aliases-by-key index follows CreateAlias, UpdateAlias, DeleteAlias
// and the deletion of a key, and answers ListAliases with KeyId, the
// per-key count and kms:ResourceAliases as a scan of every alias does;
// a store from before the index gets it at its first maintenance run.
func TestAliasIndexMatchesScan(t *testing.T) {
	s, c := newFormsService(t)
	ctx := context.Background()
	var keys []string
	for range 4 {
		k, err := s.CreateKey(ctx, c, &CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.KeyMetadata.KeyId)
	}
	rng := rand.New(rand.NewPCG(26, 4))
	for i := range 60 {
		name := fmt.Sprintf("alias/a%02d/%d", i, rng.IntN(100))
		if _, err := s.CreateAlias(ctx, c, &AliasInput{AliasName: name, TargetKeyId: keys[rng.IntN(len(keys))]}); err != nil {
			t.Fatal(err)
		}
		switch rng.IntN(4) {
		case 0:
			if _, err := s.UpdateAlias(ctx, c, &AliasInput{AliasName: name, TargetKeyId: keys[rng.IntN(len(keys))]}); err != nil {
				t.Fatal(err)
			}
		case 1:
			if _, err := s.DeleteAlias(ctx, c, &DeleteAliasInput{AliasName: name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(when string) {
		t.Helper()
		for _, id := range keys {
			want := aliasesByScan(t, s, c.Account, id)
			got, err := s.aliasesOf(ctx, c.Account, id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: aliases of %s: %v, a scan finds %v", when, id, got, want)
			}
			// ListAliases with KeyId, two at a time through the markers.
			var listed []string
			for marker := ""; ; {
				out, err := s.ListAliases(ctx, c, &ListAliasesInput{KeyId: id, ListInput: ListInput{Limit: new(2), Marker: marker}})
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range out.Aliases {
					listed = append(listed, a.AliasName)
				}
				if !out.Truncated {
					break
				}
				marker = out.NextMarker
			}
			if !slices.Equal(listed, want) {
				t.Errorf("%s: ListAliases of %s: %v, a scan finds %v", when, id, listed, want)
			}
		}
	}
	check("before the first maintenance run (scans)")
	if _, _, err := s.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	check("indexed")
	// A deleted key takes its aliases and their entries with it.
	victim := keys[0]
	if len(aliasesByScan(t, s, c.Account, victim)) == 0 {
		t.Fatal("the key to delete has no alias: the test proves nothing")
	}
	clock := time.Now().Add(8 * 24 * time.Hour)
	if _, err := s.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: victim, PendingWindowInDays: new(7)}); err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return clock }
	if _, deleted, err := s.RunMaintenance(ctx); err != nil || deleted != 1 {
		t.Fatalf("maintenance deleted %d keys, err %v", deleted, err)
	}
	n := 0
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		return tx.Scan(bucketAliasesByKey, c.Account+"/"+victim+"/", "", func(string, []byte) bool { n++; return true })
	})
	if err != nil || n != 0 {
		t.Errorf("%d index entries left for the deleted key (err %v)", n, err)
	}
	keys = keys[1:]
	check("after the deletion")
}

// A store written before the indexes (none of their entries, no meta
// entry) is indexed by its first maintenance run, which then finds what
// is due.
func TestKeyIndexesBuiltForOlderStore(t *testing.T) {
	s, c := newFormsService(t)
	ctx := context.Background()
	k, err := s.CreateKey(ctx, c, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAlias(ctx, c, &AliasInput{AliasName: "alias/old", TargetKeyId: k.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: k.KeyMetadata.KeyId, PendingWindowInDays: new(7)}); err != nil {
		t.Fatal(err)
	}
	// Take the indexes away, as a store from an earlier release has them.
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		for _, b := range []string{bucketKeysDue, bucketKeyDueOf, bucketKeysByStore} {
			var names []string
			if err := tx.Scan(b, "", "", func(name string, _ []byte) bool { names = append(names, name); return true }); err != nil {
				return err
			}
			for _, n := range names {
				if err := tx.Delete(b, n); err != nil {
					return err
				}
			}
		}
		if err := tx.Delete(bucketAliasesByKey, aliasIndexName(c.Account, k.KeyMetadata.KeyId, "alias/old")); err != nil {
			return err
		}
		return tx.Delete(bucketMeta, s.keyIndexesMeta())
	})
	if err != nil {
		t.Fatal(err)
	}
	s.keyIdx.Store(false)
	if got, err := s.aliasesOf(ctx, c.Account, k.KeyMetadata.KeyId); err != nil || !slices.Equal(got, []string{"alias/old"}) {
		t.Fatalf("before the build: aliases %v, err %v", got, err)
	}
	clock := time.Now().Add(8 * 24 * time.Hour)
	s.now = func() time.Time { return clock }
	if _, deleted, err := s.RunMaintenance(ctx); err != nil || deleted != 1 {
		t.Fatalf("the first run on the older store deleted %d keys, err %v", deleted, err)
	}
	if aliases := aliasesByScan(t, s, c.Account, k.KeyMetadata.KeyId); len(aliases) != 0 {
		t.Errorf("the deleted key's aliases are left: %v", aliases)
	}
}

// Every cache stays within its bound however many keys are used: keys,
// materials, aliases and grants of three times as many keys as a cache
// holds, each described, used and named.
func TestCachesStayBoundedOverManyKeys(t *testing.T) {
	s, c := newFormsService(t)
	s.cacheCfg = CacheConfig{Entries: 16}
	s.cache = newCaches(s.cacheCfg, s.now)
	ctx := context.Background()
	for i := range 3 * 16 {
		k, err := s.CreateKey(ctx, c, &CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		id := k.KeyMetadata.KeyId
		alias := fmt.Sprintf("alias/bounded-%d", i)
		if _, err := s.CreateAlias(ctx, c, &AliasInput{AliasName: alias, TargetKeyId: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: alias, Plaintext: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DescribeKey(ctx, c, &KeyIDInput{KeyId: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ListGrants(ctx, c, &ListGrantsInput{KeyId: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range s.CacheStats() {
		if st.Entries > 16 {
			t.Errorf("cache %s holds %d entries, over its bound of 16", st.Cache, st.Entries)
		}
		if st.Entries == 0 && (st.Cache == "keys" || st.Cache == "materials" || st.Cache == "aliases") {
			t.Errorf("cache %s is empty: the test did not go through it", st.Cache)
		}
	}
}

// Key records with the same policy text share one compiled policy, the
// cache of compiled policies stays within its bound however many
// distinct policies pass, and a record's compiled policy is its own text's.
func TestCompiledPoliciesSharedAndBounded(t *testing.T) {
	s, c := newFormsService(t)
	ctx := context.Background()
	a, err := s.CreateKey(ctx, c, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateKey(ctx, c, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	load := func(id string) *keyRecord {
		var r *keyRecord
		err := s.store.View(ctx, func(tx keystore.Tx) (err error) {
			r, err = getKeyTx(tx, id)
			return err
		})
		if err != nil || r == nil {
			t.Fatal(err)
		}
		return r
	}
	ra, rb := load(a.KeyMetadata.KeyId), load(b.KeyMetadata.KeyId)
	if ra.compiledPolicy() == nil || ra.compiledPolicy() != rb.compiledPolicy() {
		t.Fatalf("two keys with the default policy: compiled %p and %p, want one shared", ra.compiledPolicy(), rb.compiledPolicy())
	}
	for i := range 2 * policyCacheEntries {
		doc := fmt.Sprintf(`{"Version":"2012-10-17","Id":"p%d","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`, i)
		p := compileKeyPolicy(doc)
		if p == nil {
			t.Fatalf("policy %d does not compile", i)
		}
		if p2 := compileKeyPolicy(doc); p2 != p {
			t.Fatalf("policy %d compiled twice in a row: not cached", i)
		}
		if n := compiledPolicies.len(); n > policyCacheEntries {
			t.Fatalf("%d compiled policies cached, over the bound of %d", n, policyCacheEntries)
		}
	}
	// Evicted or not, a record's policy decides as its own text says.
	if out, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: a.KeyMetadata.KeyId, Plaintext: []byte("x")}); err != nil || out == nil {
		t.Fatalf("Encrypt after the churn: %v", err)
	}
}
