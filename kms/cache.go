package kms

import (
	"sync"
	"time"

	"github.com/coffer-kms/coffer/engine"
)

// materialCache holds unwrapped key versions, bounded by count and age.
// Entries are reference-counted: an evicted entry is zeroed only once its
// last user releases it, so eviction never corrupts an operation in flight.
type materialCache struct {
	mu      sync.Mutex
	size    int
	ttl     time.Duration
	entries map[versionRef]*materialEntry
	byKey   map[string]map[versionRef]struct{}
}

// versionRef names one version of one key.
type versionRef struct {
	id string
	v  int
}

type materialEntry struct {
	m       engine.Material
	keyID   string
	expires time.Time
	refs    int
	evicted bool
}

func newMaterialCache(size int, ttl time.Duration) *materialCache {
	return &materialCache{size: size, ttl: ttl, entries: map[versionRef]*materialEntry{}, byKey: map[string]map[versionRef]struct{}{}}
}

func (c *materialCache) get(id string, v int) (engine.Material, *materialEntry, bool) {
	k := versionRef{id, v}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return nil, nil, false
	}
	if time.Now().After(e.expires) {
		c.evictLocked(k, e)
		return nil, nil, false
	}
	e.refs++
	return e.m, e, true
}

// put caches m (which the cache now owns) and returns it acquired once.
func (c *materialCache) put(id string, v int, m engine.Material) (engine.Material, *materialEntry) {
	k := versionRef{id, v}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[k]; ok {
		c.evictLocked(k, old)
	}
	for len(c.entries) >= c.size {
		for ok, oe := range c.entries { // map order is random: random eviction
			c.evictLocked(ok, oe)
			break
		}
	}
	e := &materialEntry{m: m, keyID: id, expires: time.Now().Add(c.ttl), refs: 1}
	c.entries[k] = e
	if c.byKey[id] == nil {
		c.byKey[id] = map[versionRef]struct{}{}
	}
	c.byKey[id][k] = struct{}{}
	return m, e
}

// release ends one use of an entry returned by get or put; the last use of
// an evicted entry zeroes its material.
func (c *materialCache) release(e *materialEntry) {
	c.mu.Lock()
	e.refs--
	if e.refs == 0 && e.evicted {
		e.m.Zero()
	}
	c.mu.Unlock()
}

func (c *materialCache) evictLocked(k versionRef, e *materialEntry) {
	delete(c.entries, k)
	if ks := c.byKey[e.keyID]; ks != nil {
		delete(ks, k)
		if len(ks) == 0 {
			delete(c.byKey, e.keyID)
		}
	}
	e.evicted = true
	if e.refs == 0 {
		e.m.Zero()
	}
}

// dropKey evicts every version of key id: used when a key is disabled,
// scheduled for deletion or deleted.
func (c *materialCache) dropKey(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.byKey[id] {
		c.evictLocked(k, c.entries[k])
	}
}

func (c *materialCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		c.evictLocked(k, e)
	}
}
