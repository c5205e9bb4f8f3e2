package kms

import "sync/atomic"

// cacheCounters count a cache's lookups. They are plain atomics bumped on
// the hot path: one uncontended add per lookup, no lock, no allocation.
type cacheCounters struct {
	hits, misses atomic.Uint64
}

// CacheStat describes one of the service's caches, for metrics and status.
// It names no key, account or principal: only the cache's kind.
type CacheStat struct {
	Cache   string // keys, materials, grants, identities, accessKeys, aliases
	Entries int    // entries held now, fresh or not
	Hits    uint64 // lookups answered from the cache since start
	Misses  uint64 // lookups that had to read the store (or unwrap)
}

// CacheStats reports every cache of the service, in a fixed order.
func (s *Service) CacheStats() []CacheStat {
	c := s.cache
	m := c.materials
	m.mu.Lock()
	materials := len(m.entries)
	m.mu.Unlock()
	return []CacheStat{
		boundedStat("keys", c.keys),
		{Cache: "materials", Entries: materials, Hits: m.stats.hits.Load(), Misses: m.stats.misses.Load()},
		boundedStat("grants", c.grants),
		boundedStat("identities", c.identities),
		boundedStat("accessKeys", c.accessKeys),
		boundedStat("aliases", c.aliases),
	}
}

func boundedStat[K comparable, V any](name string, b *bounded[K, V]) CacheStat {
	return CacheStat{Cache: name, Entries: b.len(), Hits: b.stats.hits.Load(), Misses: b.stats.misses.Load()}
}
