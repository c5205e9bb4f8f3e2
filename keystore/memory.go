package keystore

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
)

// Memory is a throw-away in-memory store for dev servers and tests of
// callers. It has the same transactional semantics as Bolt, without
// durability.
type Memory struct {
	mu      sync.RWMutex
	buckets map[string]map[string][]byte
	closed  bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{buckets: map[string]map[string][]byte{}} }

// View implements Store.
func (m *Memory) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return fn(&memTx{m: m})
}

// Update implements Store: changes go to an overlay that is applied only
// when fn succeeds.
func (m *Memory) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	tx := &memTx{m: m, writes: map[string]map[string][]byte{}}
	if err := fn(tx); err != nil {
		return err
	}
	for b, kv := range tx.writes {
		dst := m.buckets[b]
		if dst == nil {
			dst = map[string][]byte{}
			m.buckets[b] = dst
		}
		for k, v := range kv {
			if v == nil {
				delete(dst, k)
			} else {
				dst[k] = v
			}
		}
	}
	return nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.buckets = nil
	return nil
}

type memTx struct {
	m      *Memory
	writes map[string]map[string][]byte // nil value marks a deletion
}

func (t *memTx) lookup(bucket, key string) ([]byte, bool) {
	if w, ok := t.writes[bucket][key]; ok {
		return w, w != nil
	}
	v, ok := t.m.buckets[bucket][key]
	return v, ok
}

func (t *memTx) Get(bucket, key string) ([]byte, error) {
	v, ok := t.lookup(bucket, key)
	if !ok {
		return nil, nil
	}
	return bytes.Clone(v), nil
}

func (t *memTx) set(bucket, key string, v []byte) {
	w := t.writes[bucket]
	if w == nil {
		w = map[string][]byte{}
		t.writes[bucket] = w
	}
	w[key] = v
}

func (t *memTx) Put(bucket, key string, value []byte) error {
	if t.writes == nil {
		return ErrReadOnly
	}
	if err := checkSizes(bucket, key, value); err != nil {
		return err
	}
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	t.set(bucket, key, v)
	return nil
}

func (t *memTx) Delete(bucket, key string) error {
	if t.writes == nil {
		return ErrReadOnly
	}
	t.set(bucket, key, nil)
	return nil
}

func (t *memTx) Scan(bucket, prefix, after string, fn func(string, []byte) bool) error {
	var keys []string
	for k := range t.m.buckets[bucket] {
		keys = append(keys, k)
	}
	for k := range t.writes[bucket] {
		if _, ok := t.m.buckets[bucket][k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || (after != "" && k <= after) {
			continue
		}
		v, ok := t.lookup(bucket, k)
		if !ok {
			continue
		}
		if !fn(k, bytes.Clone(v)) {
			return nil
		}
	}
	return nil
}
