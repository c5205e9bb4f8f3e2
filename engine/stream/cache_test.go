package stream

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// countingProvider counts the calls that reach a real provider.
type countingProvider struct {
	KeyProvider
	generates, decrypts atomic.Int64
}

func (c *countingProvider) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) ([]byte, []byte, string, error) {
	c.generates.Add(1)
	return c.KeyProvider.GenerateDataKey(ctx, keyID, encCtx)
}

func (c *countingProvider) Decrypt(ctx context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	c.decrypts.Add(1)
	return c.KeyProvider.Decrypt(ctx, keyID, blob, encCtx)
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestCache(t *testing.T, cfg CacheConfig) (*Cache, *clock) {
	c, err := NewCache(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1e9, 0)}
	c.now = clk.now
	return c, clk
}

// writeN writes a stream of n bytes declared with Size and returns its
// data key's blob.
func writeN(t *testing.T, lp *LocalProvider, p KeyProvider, c *Cache, n int, encCtx map[string]string) []byte {
	t.Helper()
	stream := encrypt(t, p, Config{KeyID: lp.KeyID(), Cache: c, Size: int64(n), Context: encCtx}, randBytes(n), 0)
	h, _ := body(t, stream)
	got, err := decrypt(lp, Config{}, stream, 0)
	if err != nil || len(got) != n {
		t.Fatal(err)
	}
	return h.Blob
}

func TestCacheMessages(t *testing.T) {
	lp := newTestProvider(t)
	p := &countingProvider{KeyProvider: lp}
	c, _ := newTestCache(t, CacheConfig{MaxAge: time.Hour, MaxMessages: 3})
	var blobs []string
	for range 7 {
		blobs = append(blobs, string(writeN(t, lp, p, c, 100, testCtx)))
	}
	if p.generates.Load() != 3 { // keys for streams 1-3, 4-6, 7
		t.Fatalf("%d GenerateDataKey calls for 7 streams at 3 per key", p.generates.Load())
	}
	if blobs[0] != blobs[2] || blobs[2] == blobs[3] || blobs[3] != blobs[5] || blobs[5] == blobs[6] {
		t.Fatal("data keys not shared 3 by 3")
	}
	// Another context is another entry.
	writeN(t, lp, p, c, 100, map[string]string{"other": "ctx"})
	if p.generates.Load() != 4 {
		t.Fatal("a stream with another context reused a cached data key")
	}
}

func TestCacheBytes(t *testing.T) {
	lp := newTestProvider(t)
	p := &countingProvider{KeyProvider: lp}
	c, _ := newTestCache(t, CacheConfig{MaxAge: time.Hour, MaxBytes: 1000})
	writeN(t, lp, p, c, 600, nil)
	writeN(t, lp, p, c, 400, nil) // exactly 1000
	if p.generates.Load() != 1 {
		t.Fatalf("%d calls, want 1", p.generates.Load())
	}
	writeN(t, lp, p, c, 1, nil) // would be 1001
	if p.generates.Load() != 2 {
		t.Fatalf("%d calls, want 2: the byte bound was exceeded", p.generates.Load())
	}
	writeN(t, lp, p, c, 5000, nil) // larger than the bound: never cached
	writeN(t, lp, p, c, 1, nil)
	if p.generates.Load() != 3 {
		t.Fatalf("%d calls, want 3", p.generates.Load())
	}
	// A stream of unknown size bypasses the cache.
	encrypt(t, p, Config{KeyID: lp.KeyID(), Cache: c}, randBytes(10), 0)
	if p.generates.Load() != 4 {
		t.Fatal("a stream of undeclared size used the cache")
	}
}

func TestCacheAge(t *testing.T) {
	lp := newTestProvider(t)
	p := &countingProvider{KeyProvider: lp}
	c, clk := newTestCache(t, CacheConfig{MaxAge: time.Minute})
	writeN(t, lp, p, c, 10, nil)
	clk.t = clk.t.Add(59 * time.Second)
	writeN(t, lp, p, c, 10, nil)
	if p.generates.Load() != 1 {
		t.Fatal("a fresh entry was not reused")
	}
	ent := c.lru.Front().Value.(*cacheEntry)
	old := ent.dataKey
	clk.t = clk.t.Add(time.Second)
	writeN(t, lp, p, c, 10, nil)
	if p.generates.Load() != 2 {
		t.Fatal("an entry of MaxAge was reused")
	}
	if !isZero(old) {
		t.Fatal("an expired data key was not zeroed")
	}
}

func TestCacheCapacityAndPurge(t *testing.T) {
	lp := newTestProvider(t)
	c, _ := newTestCache(t, CacheConfig{MaxAge: time.Hour, Capacity: 2})
	for _, v := range []string{"a", "b", "c"} {
		writeN(t, lp, lp, c, 10, map[string]string{"k": v})
	}
	if c.Len() != 2 {
		t.Fatalf("%d entries, capacity 2", c.Len())
	}
	var keys [][]byte
	for e := c.lru.Front(); e != nil; e = e.Next() {
		keys = append(keys, e.Value.(*cacheEntry).dataKey)
	}
	c.Purge()
	if c.Len() != 0 || !isZero(keys[0]) || !isZero(keys[1]) {
		t.Fatal("Purge left entries or key bytes")
	}
}

func TestCacheDecrypt(t *testing.T) {
	lp := newTestProvider(t)
	p := &countingProvider{KeyProvider: lp}
	c, clk := newTestCache(t, CacheConfig{MaxAge: time.Minute})
	stream := encrypt(t, lp, Config{}, randBytes(10), 0)
	for range 3 {
		if _, err := decrypt(p, Config{Cache: c}, stream, 0); err != nil {
			t.Fatal(err)
		}
	}
	clk.t = clk.t.Add(time.Minute)
	if _, err := decrypt(p, Config{Cache: c}, stream, 0); err != nil {
		t.Fatal(err)
	}
	if p.decrypts.Load() != 2 {
		t.Fatalf("%d Decrypt calls, want 2 (one, then one after expiry)", p.decrypts.Load())
	}
	// A cached key still goes through the header MAC: a forged header
	// fails as before.
	if _, err := decrypt(p, Config{Cache: c}, flip(stream, 20), 0); !errors.Is(err, ErrHeaderAuth) {
		t.Fatalf("forged header with a cached key: %v", err)
	}
}

func TestCacheConfig(t *testing.T) {
	if _, err := NewCache(CacheConfig{}); err == nil {
		t.Fatal("a cache without MaxAge")
	}
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// An entry is found by the xxhash of what it is for, but a hit needs the
// whole identity: another entry under the same hash (a collision, forced
// here) is a miss, and the provider is asked.
func TestCacheHashCollision(t *testing.T) {
	lp := newTestProvider(t)
	p := &countingProvider{KeyProvider: lp}
	c, _ := newTestCache(t, CacheConfig{MaxAge: time.Hour})
	stream := encrypt(t, lp, Config{}, randBytes(10), 0)
	if _, err := decrypt(p, Config{Cache: c}, stream, 0); err != nil {
		t.Fatal(err)
	}
	ent := c.lru.Front().Value.(*cacheEntry)
	ent.ident = append([]byte(nil), ent.ident...)
	ent.ident[len(ent.ident)-1] ^= 1 // same hash, another identity
	if _, err := decrypt(p, Config{Cache: c}, stream, 0); err != nil {
		t.Fatal(err)
	}
	if p.decrypts.Load() != 2 {
		t.Fatalf("%d Decrypt calls, want 2: an entry with another identity under the same hash was a hit", p.decrypts.Load())
	}
	if c.Len() != 1 {
		t.Fatalf("%d entries: the colliding entry should have been replaced", c.Len())
	}
}

// A pipeline that writes many small objects under one cached data key and
// reads them back through a decrypt cache calls the KMS once each way, on
// every path.
func TestCacheManyObjectsOneKMSCall(t *testing.T) {
	lp := newTestProvider(t)
	for _, m := range modes {
		p := &countingProvider{KeyProvider: lp}
		enc, _ := newTestCache(t, CacheConfig{MaxAge: time.Hour})
		dec, _ := newTestCache(t, CacheConfig{MaxAge: time.Hour})
		const objects = 1000
		streams := make([][]byte, objects)
		pts := make([][]byte, objects)
		for i := range streams {
			pts[i] = randBytes(1 + i%300)
			streams[i] = encrypt(t, p, m.cfg(Config{KeyID: lp.KeyID(), Cache: enc, Size: int64(len(pts[i])), Context: testCtx}), pts[i], 0)
		}
		for i, s := range streams {
			got, err := decryptFrom(p, m.cfg(Config{Cache: dec, Context: testCtx}), bytes.NewReader(s), 0)
			if err != nil || !bytes.Equal(got, pts[i]) {
				t.Fatalf("%s: object %d: %v", m.name, i, err)
			}
		}
		if g, d := p.generates.Load(), p.decrypts.Load(); g != 1 || d != 1 {
			t.Fatalf("%s: %d objects: %d GenerateDataKey and %d Decrypt calls, want 1 and 1", m.name, objects, g, d)
		}
	}
}
