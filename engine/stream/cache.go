package stream

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
)

// CacheConfig bounds a data-key cache the way the AWS Encryption SDK's
// caching materials manager does. A data key is reused for a new stream only
// while it is younger than MaxAge, has served fewer than MaxMessages streams
// and, counting the new stream's declared size, no more than MaxBytes of
// plaintext.
type CacheConfig struct {
	MaxAge      time.Duration // required, > 0
	MaxMessages uint64        // streams per data key; 0 means 2^32
	MaxBytes    uint64        // plaintext bytes per data key; 0 means 2^63-1
	Capacity    int           // entries kept; 0 means 1000
}

// Cache keeps data keys so that many small streams do not each cost a KMS
// call. It is off unless a Config names one, and it is safe for concurrent
// use by any number of writers and readers.
//
// Writers use it only when Config.Size declares the plaintext length (as the
// Encryption SDK bypasses its cache for streams of unknown length): the size
// is reserved against MaxBytes before the stream starts and the writer
// refuses to exceed it. Writers share a data key per KMS key ID and
// encryption context. Readers cache unwrapped data keys per wrapped-key
// blob (with the key ID asked for and the context), bounded by MaxAge and
// Capacity: a pipeline reading thousands of streams under one data key
// calls the KMS's Decrypt once. Entries are found by the xxhash of their
// identifying bytes and a hit is confirmed by comparing those bytes in full,
// in constant time. They are zeroed when they expire, are evicted, or the
// cache is purged.
//
// An entry holds the data key, not a cipher: every stream derives its own
// header and body keys from the data key and its random message ID, so no
// cipher context outlives one stream. Those come from a pool of zeroed asm
// contexts, so a stream served from the cache allocates none.
type Cache struct {
	cfg CacheConfig
	now func() time.Time

	mu      sync.Mutex
	entries map[uint64]*list.Element // by xxhash of cacheEntry.ident
	lru     list.List                // of *cacheEntry, most recently used first
}

type cacheEntry struct {
	hash     uint64
	ident    []byte // what the entry is for: see encryptIdent, decryptIdent
	dataKey  []byte
	blob     []byte
	keyARN   string
	created  time.Time
	messages uint64
	bytes    uint64
}

// NewCache returns an empty cache.
func NewCache(cfg CacheConfig) (*Cache, error) {
	if cfg.MaxAge <= 0 {
		return nil, errors.New("stream: cache: MaxAge must be positive")
	}
	if cfg.MaxMessages == 0 || cfg.MaxMessages > 1<<32 {
		cfg.MaxMessages = 1 << 32
	}
	if cfg.MaxBytes == 0 || cfg.MaxBytes > math.MaxInt64 {
		cfg.MaxBytes = math.MaxInt64
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 1000
	}
	return &Cache{cfg: cfg, now: time.Now, entries: make(map[uint64]*list.Element)}, nil
}

// Len is the number of entries held, expired ones included until touched.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Purge zeroes and drops every entry.
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.remove(c.lru.Back())
	}
}

func (c *Cache) remove(e *list.Element) {
	ent := c.lru.Remove(e).(*cacheEntry)
	if c.entries[ent.hash] == e {
		delete(c.entries, ent.hash)
	}
	clear(ent.dataKey)
}

// lookup returns the entry for ident, whose xxhash is h, or nil. Another
// entry under the same hash (a collision) is not a hit.
func (c *Cache) lookup(h uint64, ident []byte) *list.Element {
	e, ok := c.entries[h]
	if !ok || !constantTimeEqual(e.Value.(*cacheEntry).ident, ident) {
		return nil
	}
	return e
}

func (c *Cache) insert(ent *cacheEntry) {
	if old, ok := c.entries[ent.hash]; ok {
		c.remove(old) // the same ident, or a collision: the newer wins
	}
	for c.lru.Len() >= c.cfg.Capacity {
		c.remove(c.lru.Back())
	}
	c.entries[ent.hash] = c.lru.PushFront(ent)
}

// encryptIdent identifies a writer's data key: the KMS key ID and the
// canonical encryption context.
func encryptIdent(keyID string, encCtx map[string]string) []byte {
	b := append([]byte("e\x00"), keyID...)
	return appendContext(append(b, 0), encCtx)
}

// decryptIdent identifies an unwrapped data key: the key ID asked for, the
// wrapped-key blob and the canonical encryption context.
func decryptIdent(keyID string, blob []byte, encCtx map[string]string) []byte {
	b := append([]byte("d\x00"), keyID...)
	b = binary.BigEndian.AppendUint32(append(b, 0), uint32(len(blob)))
	b = append(b, blob...)
	return appendContext(b, encCtx)
}

// generate returns a data key for a stream of size bytes, from the cache
// when an entry has room for it, else from p (and caches that key).
func (c *Cache) generate(ctx context.Context, p KeyProvider, keyID string, encCtx map[string]string, size uint64) ([]byte, []byte, string, error) {
	if size > c.cfg.MaxBytes {
		return p.GenerateDataKey(ctx, keyID, encCtx) // could never share a key
	}
	ident := encryptIdent(keyID, encCtx)
	h := xxhash.Sum64(ident)
	c.mu.Lock()
	if e := c.lookup(h, ident); e != nil {
		ent := e.Value.(*cacheEntry)
		switch {
		case c.now().Sub(ent.created) >= c.cfg.MaxAge:
			c.remove(e)
		case ent.messages < c.cfg.MaxMessages && size <= c.cfg.MaxBytes-ent.bytes:
			ent.messages++
			ent.bytes += size
			c.lru.MoveToFront(e)
			dk, blob, arn := append([]byte(nil), ent.dataKey...), ent.blob, ent.keyARN
			c.mu.Unlock()
			return dk, blob, arn, nil
		default:
			c.remove(e) // used up: the next stream needs a new key
		}
	}
	c.mu.Unlock()

	dk, blob, arn, err := p.GenerateDataKey(ctx, keyID, encCtx)
	if err != nil {
		return nil, nil, "", err
	}
	if len(dk) == DataKeySize {
		c.mu.Lock()
		c.insert(&cacheEntry{hash: h, ident: ident, dataKey: append([]byte(nil), dk...), blob: blob, keyARN: arn,
			created: c.now(), messages: 1, bytes: size})
		c.mu.Unlock()
	}
	return dk, blob, arn, nil
}

// decrypt returns the data key in blob, from the cache or from p.
func (c *Cache) decrypt(ctx context.Context, p KeyProvider, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	ident := decryptIdent(keyID, blob, encCtx)
	h := xxhash.Sum64(ident)
	c.mu.Lock()
	if e := c.lookup(h, ident); e != nil {
		ent := e.Value.(*cacheEntry)
		if c.now().Sub(ent.created) < c.cfg.MaxAge {
			c.lru.MoveToFront(e)
			dk := append([]byte(nil), ent.dataKey...)
			c.mu.Unlock()
			return dk, nil
		}
		c.remove(e)
	}
	c.mu.Unlock()

	dk, err := p.Decrypt(ctx, keyID, blob, encCtx)
	if err != nil {
		return nil, err
	}
	if len(dk) == DataKeySize {
		c.mu.Lock()
		c.insert(&cacheEntry{hash: h, ident: ident, dataKey: append([]byte(nil), dk...), created: c.now()})
		c.mu.Unlock()
	}
	return dk, nil
}
