package kms

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// boundedUsageService is a Service whose usage counters and last uses are
// bounded to bound entries each.
func boundedUsageService(t *testing.T, bound int) *Service {
	t.Helper()
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: keystore.NewMemory(), Root: root,
		Cache: CacheConfig{UsageEntries: bound}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitUsageFlushes waits until no flush started by the bound runs.
func waitUsageFlushes(s *Service) {
	for s.usage.flushing.Load() {
		time.Sleep(time.Millisecond)
	}
}

func usageLens(s *Service) (counters, lastUses int) {
	s.usage.mu.RLock()
	counters = len(s.usage.m)
	s.usage.mu.RUnlock()
	s.last.mu.Lock()
	lastUses = len(s.last.m)
	s.last.mu.Unlock()
	return
}

// requireCounts fails t unless the store holds keys counters of calls each.
func requireCounts(t *testing.T, s *Service, keys int, calls uint64) {
	t.Helper()
	all, err := s.AllUsage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != keys {
		t.Fatalf("%d counters, want %d", len(all), keys)
	}
	for _, e := range all {
		if e.Calls != calls {
			t.Fatalf("%s: %d calls counted, want %d", e.KeyArn, e.Calls, calls)
		}
	}
}

func bulkKeyID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// TestUsageBoundFlushes calls many more keys than the bound, one at a time:
// the call that finds a map full starts a flush, so a map never holds more
// than the bound and the one counter that tripped it, and once that flush
// is done it holds no more than the bound. Every call is counted exactly,
// in the store after the last flush, and every key's last use is stored.
func TestUsageBoundFlushes(t *testing.T) {
	const bound, keys, calls = 16, 400, 2000
	s := boundedUsageService(t, bound)
	ctx := context.Background()
	for i := range calls {
		id := bulkKeyID(i % keys)
		s.RecordUsage("111122223333", "arn:aws:kms:us-east-1:111122223333:key/"+id, "Encrypt")
		s.RecordLastUsage([]string{"arn:aws:kms:us-east-1:111122223333:key/" + id}, "Encrypt", fmt.Sprint("req-", i), nil)
		if c, l := usageLens(s); c > bound+1 || l > bound+1 {
			t.Fatalf("call %d: %d counters, %d last uses held, bound %d", i, c, l, bound)
		}
		waitUsageFlushes(s)
		if c, l := usageLens(s); c > bound || l > bound {
			t.Fatalf("call %d, after the flush it started: %d counters, %d last uses held, bound %d", i, c, l, bound)
		}
	}
	// Before the final flush, most counts are already in the store.
	var stored int
	if err := s.store.View(ctx, func(tx keystore.Tx) error {
		return tx.Scan(bucketLastUsage, "", "", func(string, []byte) bool { stored++; return true })
	}); err != nil {
		t.Fatal(err)
	}
	if stored < keys-bound {
		t.Fatalf("%d last uses stored before the final flush, want at least %d", stored, keys-bound)
	}
	if err := s.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	requireCounts(t, s, keys, calls/keys)
	stored = 0
	if err := s.store.View(ctx, func(tx keystore.Tx) error {
		return tx.Scan(bucketLastUsage, "", "", func(id string, _ []byte) bool {
			stored++
			u, err := getLastUse(tx, id)
			// Each key's last call is the last of calls/keys, made by
			// request calls-keys+i of key i.
			var i int
			fmt.Sscanf(id[len(id)-12:], "%d", &i)
			if err != nil || u.RequestID != fmt.Sprint("req-", calls-keys+i) {
				t.Errorf("key %s: last use %+v (%v)", id, u, err)
			}
			return true
		})
	}); err != nil {
		t.Fatal(err)
	}
	if stored != keys {
		t.Fatalf("%d last uses stored, want %d", stored, keys)
	}
}

// TestUsageBoundConcurrentExact counts calls from many goroutines over many
// more keys than the bound while periodic flushes run beside the ones the
// bound starts: the totals in the store equal the calls made, exactly.
func TestUsageBoundConcurrentExact(t *testing.T) {
	const bound, keys, workers, per = 8, 300, 6, 3000
	s := boundedUsageService(t, bound)
	ctx := context.Background()
	stop := make(chan struct{})
	periodic := make(chan error, 1)
	go func() {
		var err error
		for {
			select {
			case <-stop:
				periodic <- err
				return
			default:
			}
			if e := s.FlushUsage(ctx); e != nil {
				err = e
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				k := (w*per + i) % keys
				arn := "arn:aws:kms:us-east-1:111122223333:key/" + bulkKeyID(k)
				s.RecordUsage("111122223333", arn, "Decrypt")
				s.RecordLastUsage([]string{arn}, "Decrypt", "r", nil)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-periodic; err != nil {
		t.Fatal(err)
	}
	waitUsageFlushes(s)
	if err := s.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	if c, l := usageLens(s); c != 0 || l != 0 {
		t.Fatalf("after the final flush %d counters and %d last uses held", c, l)
	}
	all, err := s.AllUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, e := range all {
		if e.Calls != workers*per/keys {
			t.Fatalf("%s: %d calls counted, want %d", e.KeyArn, e.Calls, workers*per/keys)
		}
		total += e.Calls
	}
	if len(all) != keys || total != workers*per {
		t.Fatalf("%d counters totalling %d calls, want %d totalling %d", len(all), total, keys, workers*per)
	}
}

// usageOf reads only the account's stored counters (a prefix of the usage
// bucket) and only its unflushed ones: another account's never appear.
func TestUsageOfOneAccount(t *testing.T) {
	s, _ := newFormsService(t)
	ctx := context.Background()
	keys := []usageKey{
		{account: "111122223333", op: "Encrypt", key: "arn:aws:kms:us-east-1:111122223333:key/a"},
		{account: "444455556666", op: "Encrypt", key: "arn:aws:kms:us-east-1:444455556666:key/b"},
		{account: "1111222233334", op: "Decrypt", key: "arn:aws:kms:us-east-1:1111222233334:key/c"}, // shares the prefix but for the '|'
	}
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		for i, k := range keys {
			if err := putJSON(tx, bucketUsage, k.storeKey(), uint64(i+1)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.usageOf(ctx, "111122223333")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].KeyArn != keys[0].key || got[0].Calls != 1 {
		t.Fatalf("usage of 111122223333: %+v", got)
	}
	if all, err := s.AllUsage(ctx); err != nil || len(all) != len(keys) {
		t.Fatalf("every account's usage: %+v, %v", all, err)
	}
}

// chunkStore counts what each write transaction puts in each bucket, and
// fails write transaction number failAt (from 1) after its function ran,
// so that nothing of it is committed.
type chunkStore struct {
	keystore.Store
	mu      sync.Mutex
	updates int
	failAt  int
	most    map[string]int // the most puts to a bucket in one transaction
}

func (c *chunkStore) Update(ctx context.Context, fn func(keystore.Tx) error) error {
	puts := map[string]int{}
	err := c.Store.Update(ctx, func(tx keystore.Tx) error {
		clear(puts) // fn may run more than once
		if err := fn(putCountTx{tx, puts}); err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.updates++; c.updates == c.failAt {
			return errInjected
		}
		return nil
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		for b, n := range puts {
			c.most[b] = max(c.most[b], n)
		}
	}
	return err
}

type putCountTx struct {
	keystore.Tx
	puts map[string]int
}

func (t putCountTx) Put(bucket, key string, value []byte) error {
	t.puts[bucket]++
	return t.Tx.Put(bucket, key, value)
}

// A flush writes its counters and last uses in transactions of at most
// flushChunk keys each, so that what a write transaction holds in memory
// does not grow with the number of keys; a transaction that fails puts
// back only what was not committed: the next flush leaves every count
// exact and every last use stored.
func TestUsageFlushInChunks(t *testing.T) {
	defer func(n int) { flushChunk = n }(flushChunk)
	flushChunk = 3
	const keys, calls = 10, 4
	for _, failAt := range []int{0, 1, 2, 5, 6} { // none; the first, second chunk of last uses; of counters
		t.Run(fmt.Sprint("failAt=", failAt), func(t *testing.T) {
			root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
			if err != nil {
				t.Fatal(err)
			}
			store := &chunkStore{Store: keystore.NewMemory(), most: map[string]int{}}
			s, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: store, Root: root})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			store.mu.Lock()
			store.updates, store.failAt = 0, failAt
			store.mu.Unlock()
			for i := range keys * calls {
				arn := "arn:aws:kms:us-east-1:111122223333:key/" + bulkKeyID(i%keys)
				s.RecordUsage("111122223333", arn, "Encrypt")
				s.RecordLastUsage([]string{arn}, "Encrypt", fmt.Sprint("req-", i), nil)
			}
			err = s.FlushUsage(ctx)
			if (failAt > 0) != (err != nil) {
				t.Fatalf("flush: %v", err)
			}
			if err := s.FlushUsage(ctx); err != nil {
				t.Fatal(err)
			}
			for _, b := range []string{bucketUsage, bucketLastUsage} {
				if n := store.most[b]; n == 0 || n > flushChunk {
					t.Errorf("at most %d puts to %s in one transaction, want 1..%d", n, b, flushChunk)
				}
			}
			requireCounts(t, s, keys, calls)
			if err := s.store.View(ctx, func(tx keystore.Tx) error {
				for i := range keys {
					u, err := getLastUse(tx, bulkKeyID(i))
					if want := fmt.Sprint("req-", (calls-1)*keys+i); err != nil || u == nil || u.RequestID != want {
						t.Errorf("key %d: last use %+v (%v), want request %s", i, u, err, want)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
