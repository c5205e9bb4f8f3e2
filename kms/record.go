package kms

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"log/slog"
	"strings"
	"sync"

	"github.com/coffer-kms/coffer/keystore"
)

// Stored records are authenticated: every value kms puts in the store is
// sealed as
//
//	format (1 byte, recordFormat) | tag (32 bytes) | value
//
// where tag is HMAC-SHA-256, under the record key, of
//
//	len|"coffer/record/v1" | schema version (uint32) | len|bucket | len|store key | len|value
//
// each len an 8-byte big-endian length of what follows, so that no two
// inputs encode alike. The schema version is the one the record was written
// at (schemaVersion), except for the schema-version entry itself, which
// binds versionOfVersion so that any release can read it (schema.go). A record edited in place, moved to another key,
// bucket or Region, or copied from another data dir (another record key) no
// longer verifies and is refused: the reader gets errRecordAuth, an internal
// error whose cause is logged and never served. A record deleted, or put
// back as it was before a later write, is not detected: the tag binds where
// a record is, not when.
//
// The record key is 32 random bytes made once per store, kept in the meta
// bucket wrapped under the root (its AEAD and []byte(labelRecordKey) authenticate it)
// and unwrapped once when the Service starts; see schema.go.
const (
	recordFormat  byte = 1
	recordTagSize      = sha256.Size
	recordKeySize      = 32
)

// errRecordAuth is what a reader gets for a record that does not verify.
// Its message is fixed: which record failed, and how, goes to the log.
func errRecordAuth(bucket, key, why string) error {
	slog.Error("kms: a stored record failed authentication and was refused", "bucket", bucket, "key", key, "reason", why)
	return &Error{Kind: ErrInternal, Message: "An internal error occurred.",
		cause: fmt.Errorf("kms: stored record %s/%q failed authentication: %s", bucket, key, why)}
}

// recordKey is the key that authenticates stored records.
type recordKey struct {
	key  []byte
	macs sync.Pool // of hash.Hash: HMAC-SHA-256 under key, each used by one caller at a time
}

func newRecordKey(key []byte) (*recordKey, error) {
	if len(key) != recordKeySize {
		return nil, fmt.Errorf("kms: the record key is %d bytes, not %d", len(key), recordKeySize)
	}
	k := &recordKey{key: key}
	k.macs.New = func() any { return hmac.New(sha256.New, k.key) }
	return k, nil
}

// tag is the MAC of value stored under key in bucket at schema version:
// HMAC-SHA-256 of field(labelRecord) || version || field(bucket) ||
// field(key) || field(value), each field its 8-byte big-endian length and
// its bytes. Every read and write of a record computes one, so the keyed
// state is pooled (a Reset restores it) and everything before the value
// goes in one Write.
func (k *recordKey) tag(dst []byte, version uint32, bucket, key string, value []byte) []byte {
	h := k.macs.Get().(hash.Hash)
	defer k.macs.Put(h)
	h.Reset()
	var stack [256]byte
	head := appendField(stack[:0], labelRecord)
	head = binary.BigEndian.AppendUint32(head, version)
	head = appendField(head, bucket)
	head = appendField(head, key)
	head = binary.BigEndian.AppendUint64(head, uint64(len(value)))
	h.Write(head)
	h.Write(value)
	return h.Sum(dst)
}

// appendField appends b's 8-byte big-endian length and b.
func appendField(dst []byte, b string) []byte {
	return append(binary.BigEndian.AppendUint64(dst, uint64(len(b))), b...)
}

// seal returns value as stored under key in bucket.
func (k *recordKey) seal(bucket, key string, value []byte) []byte {
	return k.sealAt(schemaVersion, bucket, key, value)
}

// open verifies a record read from key in bucket and returns its value.
func (k *recordKey) open(bucket, key string, stored []byte) ([]byte, error) {
	return k.openAt(schemaVersion, bucket, key, stored)
}

func (k *recordKey) sealAt(version uint32, bucket, key string, value []byte) []byte {
	out := make([]byte, 1, 1+recordTagSize+len(value))
	out[0] = recordFormat
	out = k.tag(out, version, bucket, key, value)
	return append(out, value...)
}

func (k *recordKey) openAt(version uint32, bucket, key string, stored []byte) ([]byte, error) {
	if len(stored) < 1+recordTagSize {
		return nil, errRecordAuth(bucket, key, "too short to be a record")
	}
	if stored[0] != recordFormat {
		return nil, errRecordAuth(bucket, key, fmt.Sprintf("unknown record format %d", stored[0]))
	}
	tag, value := stored[1:1+recordTagSize], stored[1+recordTagSize:]
	var buf [recordTagSize]byte
	if !hmac.Equal(tag, k.tag(buf[:0], version, bucket, key, value)) {
		return nil, errRecordAuth(bucket, key, "the MAC does not verify")
	}
	return value, nil
}

// records is the store as kms sees it: it places each record under its
// store key (the Region added where the record belongs to one, see
// bucketScopes), seals what is put and verifies what is read, so that the
// rest of the package names records by key ID, alias or grant as it always
// has. The entries that bootstrap it (metaRecordKey, metaSchemaVersion) are
// not reachable through it.
type records struct {
	store keystore.Store
	key   *recordKey
	place placer
}

var _ keystore.Store = (*records)(nil)

// View implements keystore.Store.
func (r *records) View(ctx context.Context, fn func(keystore.Tx) error) error {
	return r.store.View(ctx, func(tx keystore.Tx) error { return fn(recordTx{tx, r}) })
}

// Update implements keystore.Store.
// A transaction made for a call with a PendingAudit in its context also
// puts the call's record in the outbox (outbox.go).
func (r *records) Update(ctx context.Context, fn func(keystore.Tx) error) error {
	fn, pending := withOutbox(ctx, fn)
	err := r.store.Update(ctx, func(tx keystore.Tx) error { return fn(recordTx{tx, r}) })
	if err == nil && pending != nil {
		pending.Committed()
	}
	return err
}

// Close implements keystore.Store: it closes the underlying store.
func (r *records) Close() error { return r.store.Close() }

// recordTx is a transaction of records.
type recordTx struct {
	tx keystore.Tx
	r  *records
}

// reserved reports the meta entries that bootstrap records.
func reserved(bucket, key string) bool {
	return bucket == bucketMeta && (key == metaRecordKey || key == metaSchemaVersion)
}

func (t recordTx) storeKey(bucket, key string) (string, error) {
	k, err := t.r.place(bucket, key)
	if err == nil && reserved(bucket, k) {
		err = fmt.Errorf("kms: internal error: %s/%s is not a record", bucket, key)
	}
	return k, err
}

func (t recordTx) Get(bucket, key string) ([]byte, error) {
	k, err := t.storeKey(bucket, key)
	if err != nil {
		return nil, err
	}
	raw, err := t.tx.Get(bucket, k)
	if err != nil || raw == nil {
		return nil, err
	}
	return t.r.key.open(bucket, k, raw)
}

func (t recordTx) Put(bucket, key string, value []byte) error {
	k, err := t.storeKey(bucket, key)
	if err != nil {
		return err
	}
	return t.tx.Put(bucket, k, t.r.key.seal(bucket, k, value))
}

func (t recordTx) Delete(bucket, key string) error {
	k, err := t.storeKey(bucket, key)
	if err != nil {
		return err
	}
	return t.tx.Delete(bucket, k)
}

// Scan implements keystore.Tx. The keys passed to fn are the caller's
// names, prefix and all: the Region the store keys carry is taken off.
// The first record that does not verify ends the scan with its error.
func (t recordTx) Scan(bucket, prefix, after string, fn func(string, []byte) bool) error {
	p, err := t.r.place(bucket, prefix)
	if err != nil {
		return err
	}
	if after != "" {
		if after, err = t.r.place(bucket, after); err != nil {
			return err
		}
	}
	var openErr error
	err = t.tx.Scan(bucket, p, after, func(k string, raw []byte) bool {
		if reserved(bucket, k) {
			return true
		}
		v, err := t.r.key.open(bucket, k, raw)
		if err != nil {
			openErr = err
			return false
		}
		name, ok := strings.CutPrefix(k, p)
		if !ok { // the store broke its contract
			openErr = fmt.Errorf("kms: internal error: scan of %s with prefix %q returned %q", bucket, p, k)
			return false
		}
		return fn(prefix+name, v)
	})
	if err != nil {
		return err
	}
	return openErr
}
