// Package keystore persists Coffer's state: key metadata and wrapped key
// material, aliases, principals and access keys. It offers one small
// contract — ordered buckets of byte values under serialisable
// transactions — implemented by bbolt (the embedded default) and by memory
// (for throw-away dev servers); keystore/postgres implements it on
// PostgreSQL for several nodes sharing one database.
//
// A Store never sees plaintext key material: the kms package wraps it under
// the hsm root before it is put. An Update that returns nil is durable.
package keystore

import (
	"context"
	"errors"
)

// Store is a transactional, ordered key-value store of named buckets.
type Store interface {
	// View runs fn in a read-only transaction with a consistent snapshot.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction. If fn returns an error
	// nothing it did is kept; if Update returns nil every change is durable.
	// fn may be called more than once (a backend may retry a transaction
	// that conflicted); it must not have effects outside tx.
	Update(ctx context.Context, fn func(Tx) error) error
	// Close releases the store.
	Close() error
}

// Tx is one transaction. Values passed to callbacks and returned by Get are
// the caller's to keep.
type Tx interface {
	// Get returns the value of key, or nil when it is absent.
	Get(bucket, key string) ([]byte, error)
	// Put stores value under key. It returns ErrReadOnly in a View.
	Put(bucket, key string, value []byte) error
	// Delete removes key; removing an absent key is not an error.
	Delete(bucket, key string) error
	// Scan calls fn for each key of bucket that starts with prefix and sorts
	// after after ("" = from the first), in byte order, until fn returns false.
	Scan(bucket, prefix, after string, fn func(key string, value []byte) bool) error
}

var (
	// ErrReadOnly reports a write in a View transaction.
	ErrReadOnly = errors.New("keystore: write in a read-only transaction")
	// ErrClosed reports use of a closed store.
	ErrClosed = errors.New("keystore: store is closed")
	// ErrUnavailable is wrapped by the failures of a store that lives
	// elsewhere (keystore/postgres) to answer in time: the connection
	// lost or refused, the database shutting down, the store's timeout.
	// kms answers them as AWS answers a dependency that did not answer
	// (DependencyTimeoutException), not as its own fault.
	ErrUnavailable = errors.New("keystore: store unavailable")
)

// Limits on what a store accepts, so that no caller can grow a record without bound.
const (
	MaxKeySize   = 1024
	MaxValueSize = 4 << 20
)

// ErrTooLarge reports a key or value over the limits.
var ErrTooLarge = errors.New("keystore: key or value too large")

func checkSizes(bucket, key string, value []byte) error {
	if bucket == "" || key == "" {
		return errors.New("keystore: empty bucket or key")
	}
	if len(key) > MaxKeySize || len(value) > MaxValueSize {
		return ErrTooLarge
	}
	return nil
}

// Locker is implemented by stores that several processes share
// (keystore/postgres): TryLock takes the cluster-wide lock name without
// waiting. ok is false when another holder has it; otherwise unlock
// releases it (a holder that dies releases it too). Work done under the
// lock must still be safe without it — a holder whose connection is lost
// loses the lock while it runs — so the lock saves duplicated work, it
// does not guard correctness: that is each transaction's.
type Locker interface {
	TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error)
}

// TryLock implements Locker for a store one process owns: there is no
// one else to exclude, so it always succeeds.
func (b *Bolt) TryLock(context.Context, string) (func(), bool, error) { return func() {}, true, nil }

// TryLock implements Locker for a store one process owns: it always succeeds.
func (m *Memory) TryLock(context.Context, string) (func(), bool, error) { return func() {}, true, nil }

var (
	_ Locker = (*Bolt)(nil)
	_ Locker = (*Memory)(nil)
)
