package kms

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/policy"
)

// What the service keeps in memory so that a request reads no store and
// calls no HSM on its hot path lives behind one type, caches, with one way
// in for every change: invalidate(kind, id), or dropAll. Every cache is
// bounded in entries and in age (on the service's clock), so memory does
// not grow with the number of keys or principals, and a change feed from
// other nodes (LISTEN/NOTIFY) can drive the same two methods.

// cacheKind names what a change invalidates.
type cacheKind uint8

const (
	// cacheKey: a key's record, its unwrapped material and its policy's
	// principal bindings (key-principals), by key ID.
	cacheKey cacheKind = iota
	// cacheGrants: a key's grants, by key ID.
	cacheGrants
	// cachePrincipal: a principal's compiled identity policies, by ARN.
	cachePrincipal
	// cacheAccessKey: an access key's unwrapped secret (or a role
	// session's), by access key ID.
	cacheAccessKey
	// cacheAlias: an alias's target, by "<account>/<alias name>".
	cacheAlias
)

// CacheConfig bounds the service's caches; zero values take the defaults.
type CacheConfig struct {
	// Entries bounds each cache (key records, key materials, grant lists,
	// identities, access keys, aliases) separately; default 10000.
	Entries int
	// TTL bounds the age of any entry; default 5 minutes. Unwrapped
	// material older than this is unwrapped again; records are read again.
	TTL time.Duration
	// UsageEntries bounds the usage counters and the last uses each held
	// in memory between flushes (usage.go, lastusage.go); default 65536.
	// Reaching it starts a flush in the background.
	UsageEntries int
}

// caches is the service's in-memory state.
type caches struct {
	keys       *bounded[string, *keyRecord]
	grants     *bounded[string, []*grantRecord]
	identities *bounded[string, identityEntry]
	accessKeys *bounded[string, accessKeyEntry]
	aliases    *bounded[string, string] // alias → target key ID
	// keyPrincipals are key policies' principal bindings (ARN → unique
	// ID), by key ID: read on every request to a key whose policy names IAM
	// users or roles. A key without bindings is cached as an empty map.
	keyPrincipals *bounded[string, map[string]string]
	materials     *materialCache
	flights       flights // unwraps in progress
}

func newCaches(cfg CacheConfig, now func() time.Time) *caches {
	if cfg.Entries <= 0 {
		cfg.Entries = 10000
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Minute
	}
	return &caches{
		keys:       newBounded[string, *keyRecord](cfg.Entries, cfg.TTL, now, nil),
		grants:     newBounded[string, []*grantRecord](cfg.Entries, cfg.TTL, now, nil),
		identities: newBounded[string, identityEntry](cfg.Entries, cfg.TTL, now, nil),
		// An evicted secret is zeroed; one replaced (a session's token
		// seen again) is left to the garbage collector. Callers never hold
		// the cached slice: they get copies (accessKeyEntry.export).
		accessKeys:    newBounded[string](cfg.Entries, cfg.TTL, now, func(e accessKeyEntry) { clear(e.secret) }),
		aliases:       newBounded[string, string](cfg.Entries, cfg.TTL, now, nil),
		keyPrincipals: newBounded[string, map[string]string](cfg.Entries, cfg.TTL, now, nil),
		materials:     newMaterialCache(cfg.Entries, cfg.TTL, now),
		flights:       flights{m: map[versionRef]*unwrapFlight{}},
	}
}

// compiledPolicies holds compiled key policies by their text, for every
// Service of the process. Most keys share a few policies (the default one
// of each account), and a key record read from the store — every request
// to a key not in the keys cache (the cold-key path, issue 26.5), every
// record a scan decodes — would otherwise parse its policy again: that
// parse was 60% of a cold key's load. A compiled policy is immutable and a
// function of its text alone, so an entry can never be stale and nothing
// invalidates it; it is bounded like every cache here (policyCacheEntries
// texts of at most policy.MaxSize bytes, and the same TTL).
var compiledPolicies = newBounded[string, *policy.Policy](policyCacheEntries, 5*time.Minute, time.Now, nil)

const policyCacheEntries = 256

// compileKeyPolicy returns doc compiled, from compiledPolicies or parsed
// and added to it; nil when doc does not parse.
func compileKeyPolicy(doc string) *policy.Policy {
	if p, ok := compiledPolicies.get(doc); ok {
		return p
	}
	p, err := policy.ParseStored([]byte(doc), policy.KeyPolicy)
	if err != nil {
		return nil
	}
	compiledPolicies.put(doc, p)
	return p
}

// invalidate drops what the caches hold of id, a thing of kind that
// changed. It is the one way a change reaches the caches.
func (c *caches) invalidate(kind cacheKind, id string) {
	switch kind {
	case cacheKey:
		c.keys.invalidate(id)
		c.keyPrincipals.invalidate(id)
		c.materials.dropKey(id)
	case cacheGrants:
		c.grants.invalidate(id)
	case cachePrincipal:
		c.identities.invalidate(id)
	case cacheAccessKey:
		c.accessKeys.invalidate(id)
	case cacheAlias:
		c.aliases.invalidate(id)
	default:
		panic("kms: internal error: unknown cache kind")
	}
}

// dropAll empties every cache, zeroing the secrets it held: what a node
// does when it may have missed changes (a lost change feed) or stops.
func (c *caches) dropAll() {
	c.keys.clear()
	c.grants.clear()
	c.identities.clear()
	c.accessKeys.clear()
	c.aliases.clear()
	c.keyPrincipals.clear()
	c.materials.purge()
}

// publishKey replaces key id's cached record with r, the snapshot this node
// has just committed (nil: the key is gone), so that its next request needs
// no read; its unwrapped material goes unless the key can still use it.
func (c *caches) publishKey(id string, r *keyRecord) {
	if r == nil {
		c.invalidate(cacheKey, id)
		return
	}
	c.keys.publish(id, r)
	c.keyPrincipals.invalidate(id) // the policy, and so its bindings, may have changed with it
	if r.State != StateEnabled {
		c.materials.dropKey(id)
	}
}

// bounded is a map bounded in entries and age. Eviction is CLOCK (second
// chance): a hit sets an entry's reference bit under a read lock, and an
// insertion into a full map sweeps the ring for an entry not referenced
// since the last sweep. A generation counter, bumped by every invalidation
// and publication, keeps a fill that read the store before a change from
// storing what the change replaced.
type bounded[K comparable, V any] struct {
	mu      sync.RWMutex
	size    int
	ttl     time.Duration
	now     func() time.Time
	m       map[K]*slot[K, V]
	ring    []*slot[K, V]
	hand    int
	gen     atomic.Uint64
	onEvict func(V) // called for entries evicted, expired or invalidated
	stats   cacheCounters
}

type slot[K comparable, V any] struct {
	key     K
	val     V
	expires int64 // Unix nanoseconds
	at      int   // index in ring
	ref     atomic.Bool
}

func newBounded[K comparable, V any](size int, ttl time.Duration, now func() time.Time, onEvict func(V)) *bounded[K, V] {
	return &bounded[K, V]{size: size, ttl: ttl, now: now, m: map[K]*slot[K, V]{}, onEvict: onEvict}
}

// get returns k's value if it is cached and fresh.
func (b *bounded[K, V]) get(k K) (V, bool) { return b.getAt(k, b.now()) }

// getAt is get at time now (requestTime's: a request reads the clock once).
func (b *bounded[K, V]) getAt(k K, now time.Time) (V, bool) {
	var val V
	var expires int64
	b.mu.RLock()
	s, ok := b.m[k]
	if ok { // publish and put change a slot in place, under the write lock
		val, expires = s.val, s.expires
	}
	b.mu.RUnlock()
	var zero V
	if !ok {
		b.stats.misses.Add(1)
		return zero, false
	}
	if now.UnixNano() >= expires {
		b.mu.Lock()
		if b.m[k] == s {
			b.removeLocked(s, true)
		}
		b.mu.Unlock()
		b.stats.misses.Add(1)
		return zero, false
	}
	s.ref.Store(true)
	b.stats.hits.Add(1)
	return val, true
}

// view calls fn with k's value if it is cached and fresh, under the read
// lock: an eviction, which holds the write lock, cannot run meanwhile, so fn
// may copy out what an onEvict would clear.
func (b *bounded[K, V]) view(k K, fn func(*V)) bool { return b.viewAt(k, b.now(), fn) }

// viewAt is view at time now (requestTime's).
func (b *bounded[K, V]) viewAt(k K, now time.Time, fn func(*V)) bool {
	b.mu.RLock()
	s, ok := b.m[k]
	if ok && now.UnixNano() < s.expires {
		s.ref.Store(true)
		fn(&s.val)
		b.mu.RUnlock()
		b.stats.hits.Add(1)
		return true
	}
	b.mu.RUnlock()
	if ok {
		b.getAt(k, now) // drops the expired entry, and counts the miss
	} else {
		b.stats.misses.Add(1)
	}
	return false
}

// generation is the value to pass to fill for a read that starts now.
func (b *bounded[K, V]) generation() uint64 { return b.gen.Load() }

// fill caches v, read from the store since generation gen, unless
// something changed since (then the read may be stale and is not kept) or
// another fill got there first (its value is returned instead).
func (b *bounded[K, V]) fill(k K, v V, gen uint64) V {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur, ok := b.m[k]; ok {
		return cur.val
	}
	if b.gen.Load() == gen {
		b.insertLocked(k, v)
	}
	return v
}

// publish caches v, the newest value of k, in place of what was there.
func (b *bounded[K, V]) publish(k K, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen.Add(1)
	if s, ok := b.m[k]; ok {
		s.val, s.expires = v, b.now().Add(b.ttl).UnixNano()
		return
	}
	b.insertLocked(k, v)
}

// put caches v under k, replacing without eviction what was there.
func (b *bounded[K, V]) put(k K, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.m[k]; ok {
		s.val, s.expires = v, b.now().Add(b.ttl).UnixNano()
		return
	}
	b.insertLocked(k, v)
}

func (b *bounded[K, V]) invalidate(k K) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen.Add(1)
	if s, ok := b.m[k]; ok {
		b.removeLocked(s, true)
	}
}

func (b *bounded[K, V]) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen.Add(1)
	for _, s := range b.ring {
		if b.onEvict != nil {
			b.onEvict(s.val)
		}
	}
	b.m, b.ring, b.hand = map[K]*slot[K, V]{}, nil, 0
}

// len is the number of entries, fresh or not.
func (b *bounded[K, V]) len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.m)
}

func (b *bounded[K, V]) insertLocked(k K, v V) {
	for len(b.ring) >= b.size {
		b.evictOneLocked()
	}
	s := &slot[K, V]{key: k, val: v, expires: b.now().Add(b.ttl).UnixNano(), at: len(b.ring)}
	b.m[k] = s
	b.ring = append(b.ring, s)
}

// evictOneLocked advances the clock hand to an entry not referenced since
// the hand last passed it and evicts it; at most two turns of the ring.
func (b *bounded[K, V]) evictOneLocked() {
	for {
		if b.hand >= len(b.ring) {
			b.hand = 0
		}
		s := b.ring[b.hand]
		if s.ref.Swap(false) {
			b.hand++
			continue
		}
		b.removeLocked(s, true)
		return
	}
}

func (b *bounded[K, V]) removeLocked(s *slot[K, V], evicted bool) {
	delete(b.m, s.key)
	last := len(b.ring) - 1
	b.ring[s.at] = b.ring[last]
	b.ring[s.at].at = s.at
	b.ring[last] = nil
	b.ring = b.ring[:last]
	if evicted && b.onEvict != nil {
		b.onEvict(s.val)
	}
}

// materialCache holds unwrapped key versions, bounded by count and age.
// Entries are reference-counted: an evicted entry is zeroed only once its
// last user releases it, so eviction never corrupts an operation in flight.
type materialCache struct {
	mu      sync.Mutex
	size    int
	ttl     time.Duration
	now     func() time.Time
	entries map[versionRef]*materialEntry
	byKey   map[string]map[versionRef]struct{}
	stats   cacheCounters
}

// versionRef names one version of one key.
type versionRef struct {
	id string
	v  int
}

type materialEntry struct {
	key     *engine.Key
	keyID   string
	expires time.Time
	refs    int
	evicted bool
}

func newMaterialCache(size int, ttl time.Duration, now func() time.Time) *materialCache {
	if now == nil {
		now = time.Now
	}
	return &materialCache{size: size, ttl: ttl, now: now, entries: map[versionRef]*materialEntry{}, byKey: map[string]map[versionRef]struct{}{}}
}

func (c *materialCache) get(id string, v int) (*engine.Key, *materialEntry, bool) {
	return c.getAt(id, v, c.now())
}

// getAt is get at time now (requestTime's).
func (c *materialCache) getAt(id string, v int, now time.Time) (*engine.Key, *materialEntry, bool) {
	k := versionRef{id, v}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		c.stats.misses.Add(1)
		return nil, nil, false
	}
	if now.After(e.expires) {
		c.evictLocked(k, e)
		c.stats.misses.Add(1)
		return nil, nil, false
	}
	e.refs++
	c.stats.hits.Add(1)
	return e.key, e, true
}

// put caches key (which the cache now owns) and returns it acquired once.
func (c *materialCache) put(id string, v int, key *engine.Key) (*engine.Key, *materialEntry) {
	k := versionRef{id, v}
	expires := c.now().Add(c.ttl)
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
	e := &materialEntry{key: key, keyID: id, expires: expires, refs: 1}
	c.entries[k] = e
	if c.byKey[id] == nil {
		c.byKey[id] = map[versionRef]struct{}{}
	}
	c.byKey[id][k] = struct{}{}
	return key, e
}

// release ends one use of an entry returned by get or put; the last use of
// an evicted entry zeroes its material.
func (c *materialCache) release(e *materialEntry) {
	c.mu.Lock()
	e.refs--
	if e.refs == 0 && e.evicted {
		e.key.Zero()
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
		e.key.Zero()
	}
}

// dropKey evicts every version of key id: used when a key is disabled,
// rotated, scheduled for deletion or deleted.
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

// flights are unwraps in progress that other callers wait for.
type flights struct {
	mu sync.Mutex
	m  map[versionRef]*unwrapFlight
}

// unwrapFlight is an unwrap in progress.
type unwrapFlight struct {
	done chan struct{}
	err  error // set before done closes
}
