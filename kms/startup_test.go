package kms

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// readCounter is a keystore.Store that counts what its transactions read:
// each Get and each record a Scan hands over, and the transactions.
type readCounter struct {
	keystore.Store
	reads, views, updates atomic.Int64
}

func (c *readCounter) View(ctx context.Context, fn func(keystore.Tx) error) error {
	c.views.Add(1)
	return c.Store.View(ctx, func(tx keystore.Tx) error { return fn(countingTx{tx, c}) })
}

func (c *readCounter) Update(ctx context.Context, fn func(keystore.Tx) error) error {
	c.updates.Add(1)
	return c.Store.Update(ctx, func(tx keystore.Tx) error { return fn(countingTx{tx, c}) })
}

type countingTx struct {
	keystore.Tx
	c *readCounter
}

func (t countingTx) Get(bucket, key string) ([]byte, error) {
	t.c.reads.Add(1)
	return t.Tx.Get(bucket, key)
}

func (t countingTx) Scan(bucket, prefix, after string, fn func(string, []byte) bool) error {
	return t.Tx.Scan(bucket, prefix, after, func(k string, v []byte) bool {
		t.c.reads.Add(1)
		return fn(k, v)
	})
}

// TestStartReadsBoundedByKeyCount holds a start to what `coffer serve`
// does before and just after it serves (New, Bootstrap, the outbox
// reconciliation's ClaimAudits, OwnAuditsPage and DrainAudits, then the first
// pass of Run: FlushUsage, FlushOutbox, maintainOnce) on a store of 30 keys
// and on one of 300, each key with an alias, used and its usage flushed:
// the start reads the same number of records at both sizes (issue 26: a
// start that grows with the key count is a scale defect).
func TestStartReadsBoundedByKeyCount(t *testing.T) {
	ctx := context.Background()
	start := func(n int) (reads, txs int64) {
		cfg, store := nodeConfig(t, "node-a")
		c := &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}
		// A first run: the store made, n keys with aliases, used; then stopped.
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.maintainOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.BulkCreateKeys(ctx, c.Account, "start", n, 100, nil); err != nil {
			t.Fatal(err)
		}
		// The keys' CreateKey records, as a server's start drains them
		// into its trail.
		for {
			page, _, err := s.OwnAuditsPage(ctx, "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			ids := make([]string, len(page))
			for i, e := range page {
				ids[i] = e.ID
			}
			if err := s.DrainAudits(ctx, ids); err != nil {
				t.Fatal(err)
			}
		}
		var ids []string
		for marker := ""; ; {
			out, err := s.ListKeys(ctx, c, &ListInput{Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range out.Keys {
				ids = append(ids, k.KeyId)
			}
			if !out.Truncated {
				break
			}
			marker = out.NextMarker
		}
		if len(ids) != n {
			t.Fatalf("%d keys listed, want %d", len(ids), n)
		}
		for i, id := range ids {
			if _, err := s.CreateAlias(ctx, c, &AliasInput{AliasName: fmt.Sprintf("alias/k%d", i), TargetKeyId: id}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: id, Plaintext: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		}
		s.Close() // flushes usage and last uses
		// The start measured.
		rc := &readCounter{Store: store}
		cfg.Store = rc
		s, err = New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ClaimAudits(ctx); err != nil {
			t.Fatal(err)
		}
		own, _, err := s.OwnAuditsPage(ctx, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(own) != 0 {
			t.Fatalf("%d outbox entries left by calls without an audit transport", len(own))
		}
		if err := s.DrainAudits(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.FlushUsage(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.FlushOutbox(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, ran, err := s.maintainOnce(ctx); err != nil || !ran {
			t.Fatalf("maintenance ran %v: %v", ran, err)
		}
		return rc.reads.Load(), rc.views.Load() + rc.updates.Load()
	}
	r30, tx30 := start(30)
	r300, tx300 := start(300)
	t.Logf("a start read %d records in %d transactions over 30 keys, %d in %d over 300", r30, tx30, r300, tx300)
	if r30 == 0 || tx30 == 0 {
		t.Fatal("the start read nothing: the counter counts nothing")
	}
	if r300 != r30 || tx300 != tx30 {
		t.Fatalf("a start over 300 keys read %d records in %d transactions, over 30 keys %d in %d: it grows with the key count", r300, tx300, r30, tx30)
	}
}

// TestDrainAuditsBatches: DrainAudits deletes a backlog drainBatch entries
// to a transaction, and every entry it names.
func TestDrainAuditsBatches(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	const n = 2*drainBatch + 5
	ids := make([]string, n)
	if err := e.s.store.Update(ctx, func(tx keystore.Tx) error {
		for i := range ids {
			ids[i] = fmt.Sprintf("req-%05d", i)
			if err := tx.Put(bucketOutbox, outboxName(e.s.node, ids[i]), []byte(`{}`)); err != nil {
				return err
			}
		}
		return tx.Put(bucketOutbox, outboxName(e.s.node, "kept"), []byte(`{}`))
	}); err != nil {
		t.Fatal(err)
	}
	rc := &readCounter{Store: e.s.store}
	e.s.store = rc
	if err := e.s.DrainAudits(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if got := rc.updates.Load(); got != 3 {
		t.Fatalf("draining %d entries ran %d transactions, want 3", n, got)
	}
	left, err := e.s.PendingAudits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].ID != "kept" {
		t.Fatalf("left in the outbox: %v, want only the entry not named", left)
	}
	if err := e.s.DrainAudits(ctx, []string{"a", ""}); err == nil {
		t.Fatal("an empty request ID drained")
	}
}

// TestKeyIndexBuildBatched: the one-time build of the key indexes on a
// store without them (an older release's, or one filled by BulkCreateKeys
// before any maintenance run) runs indexBuildBatch records to a
// transaction, and builds the same entries the writes made.
func TestKeyIndexBuildBatched(t *testing.T) {
	s, c := newFormsService(t)
	ctx := context.Background()
	const nKeys, nAliases = 2*indexBuildBatch + 100, indexBuildBatch + 100
	if err := s.BulkCreateKeys(ctx, c.Account, "build", nKeys-1, 500, nil); err != nil {
		t.Fatal(err)
	}
	k, err := s.CreateKey(ctx, c, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string // aliases of as many keys (AWS allows 50 a key)
	for marker := ""; len(ids) < nAliases; {
		out, err := s.ListKeys(ctx, c, &ListInput{Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Keys {
			ids = append(ids, e.KeyId)
		}
		marker = out.NextMarker
	}
	for i := range nAliases {
		if _, err := s.CreateAlias(ctx, c, &AliasInput{AliasName: fmt.Sprintf("alias/b%05d", i), TargetKeyId: ids[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ScheduleKeyDeletion(ctx, c, &ScheduleKeyDeletionInput{KeyId: k.KeyMetadata.KeyId, PendingWindowInDays: new(7)}); err != nil {
		t.Fatal(err)
	}
	indexes := []string{bucketKeysDue, bucketKeyDueOf, bucketKeysByStore, bucketAliasesByKey, bucketKeysByAccount}
	snapshot := func() map[string]string {
		m := map[string]string{}
		if err := s.store.View(ctx, func(tx keystore.Tx) error {
			for _, b := range indexes {
				prefix := "" // aliases-by-key and keys-by-account are read by account
				if b == bucketAliasesByKey || b == bucketKeysByAccount {
					prefix = c.Account + "/"
				}
				if err := tx.Scan(b, prefix, "", func(name string, v []byte) bool { m[b+"|"+name] = string(v); return true }); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	want := snapshot()
	if len(want) < nAliases+2 {
		t.Fatalf("%d index entries before, want at least %d", len(want), nAliases+2)
	}
	if err := s.store.Update(ctx, func(tx keystore.Tx) error {
		for name := range want {
			b, n, _ := strings.Cut(name, "|")
			if err := tx.Delete(b, n); err != nil {
				return err
			}
		}
		return tx.Delete(bucketMeta, s.keyIndexesMeta())
	}); err != nil {
		t.Fatal(err)
	}
	s.keyIdx.Store(false)
	s.acctIdx.Store(false)
	if got := snapshot(); len(got) != 0 {
		t.Fatalf("%d index entries left after taking them away", len(got))
	}
	rc := &readCounter{Store: s.store}
	s.store = rc
	if err := s.ensureKeyIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	// 3 batches of keys, 2 of aliases, the meta entry.
	if got := rc.updates.Load(); got != 6 {
		t.Fatalf("the build over %d keys and %d aliases ran %d transactions, want 6", nKeys, nAliases, got)
	}
	if got := snapshot(); !maps.Equal(got, want) {
		t.Fatalf("the build made %d index entries, the writes %d, or others", len(got), len(want))
	}
	if err := s.store.View(ctx, func(tx keystore.Tx) error {
		built, err := s.keyIndexesBuilt(tx)
		if err == nil && !built {
			err = errors.New("meta/key-indexes not set")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// A store whose indexes were built before keys-by-account (the entry
	// at "1"): the build indexes the keys again, not the aliases, and
	// makes the entries the writes made.
	s.store = rc.Store
	if err := s.store.Update(ctx, func(tx keystore.Tx) error {
		for name := range want {
			if b, n, _ := strings.Cut(name, "|"); b == bucketKeysByAccount {
				if err := tx.Delete(b, n); err != nil {
					return err
				}
			}
		}
		return tx.Put(bucketMeta, s.keyIndexesMeta(), []byte("1"))
	}); err != nil {
		t.Fatal(err)
	}
	s.keyIdx.Store(false)
	s.acctIdx.Store(false)
	if st, err := s.GetStatus(ctx, c, &Empty{}); err != nil || st.KeysByState[StateEnabled] != nKeys-1 || st.KeysByState[StatePendingDeletion] != 1 {
		t.Fatalf("GetStatus before the build (a scan): %v, %v", st, err)
	}
	rc = &readCounter{Store: s.store}
	s.store = rc
	if err := s.ensureKeyIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rc.updates.Load(); got != 4 { // 3 batches of keys, the meta entry
		t.Fatalf("the build over an index at version 1 ran %d transactions, want 4", got)
	}
	if got := snapshot(); !maps.Equal(got, want) {
		t.Fatalf("the build made %d index entries, the writes %d, or others", len(got), len(want))
	}
}

// TestClaimAuditsSkipsOwnBacklog: ClaimAudits reads the outbox around this
// node's own entries, not through them (a bulk creation leaves a million,
// which on PostgreSQL stay on its pages as dead rows after they are
// drained, until a vacuum): with 30 or 300 own entries it reads the same
// records, and still claims the entries of dead nodes whose names sort
// before and after its own, and nobody's service events.
func TestClaimAuditsSkipsOwnBacklog(t *testing.T) {
	ctx := context.Background()
	claim := func(n int) (reads int64, claimed []string) {
		cfg, store := nodeConfig(t, "node-m")
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.BulkCreateKeys(ctx, "111122223333", "own", n, 100, nil); err != nil {
			t.Fatal(err)
		}
		if own, _, err := s.OwnAuditsPage(ctx, "", 1000); err != nil || len(own) != n {
			t.Fatalf("own backlog: %d entries, %v; want %d", len(own), err, n)
		}
		// Other nodes' entries, and nobody's, through the Service's store:
		// records are authenticated.
		old := []byte(`{"eventVersion":"1.08","eventTime":"2026-03-01T11:00:00Z","eventName":"Encrypt"}`)
		others := []string{"node-a/req-1", "node-m-2/req-2", "node-z/req-3", ServiceEventPrefix + "x"}
		if err := s.store.Update(ctx, func(tx keystore.Tx) error {
			for _, name := range others {
				if err := tx.Put(bucketOutbox, name, old); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		rc := &readCounter{Store: store}
		cfg.Store = rc
		if s, err = New(cfg); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		rc.reads.Store(0)
		got, err := s.ClaimAudits(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got { // moved under this node's name
			claimed = append(claimed, e.ID)
		}
		slices.Sort(claimed)
		return rc.reads.Load(), claimed
	}
	r30, c30 := claim(30)
	r300, c300 := claim(300)
	want := "[req-1 req-2 req-3 " + ServiceEventPrefix + "x]" // from node-a, node-m-2, node-z and nobody
	if fmt.Sprint(c30) != want || fmt.Sprint(c300) != want {
		t.Fatalf("claimed %v and %v, want %s", c30, c300, want)
	}
	if r300 != r30 {
		t.Fatalf("ClaimAudits read %d records beside 300 own entries, %d beside 30: it reads the node's own backlog", r300, r30)
	}
}

// nodeConfig is the Config of a node with ID node on a fresh memory store
// (returned, to count its reads beneath the Service) and an in-memory
// software root, its clock fixed.
func nodeConfig(t *testing.T, node string) (Config, *keystore.Memory) {
	t.Helper()
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	store := keystore.NewMemory()
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	return Config{Region: "us-east-1", Account: "111122223333", Store: store, Root: root, Now: clock.Now, NodeID: node}, store
}
