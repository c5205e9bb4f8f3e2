package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bolt is the embedded bbolt store. Every Update is fsynced before it returns.
//
// A damaged file is refused, never served: OpenBolt checks the whole file
// (bbolt's Check, after a guarded walk of every page), and View and Update
// contain a panic or memory fault inside bbolt, returning an error that
// wraps ErrCorrupt.
type Bolt struct {
	db    *bolt.DB
	path  string
	check CheckStats
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating) the bbolt database at path with mode 0600. It
// refuses a file that is not a bbolt database, is cut short or fails the
// consistency check, with an error wrapping ErrCorrupt that names the file
// and the first problem. The check reads the whole file once (see
// CheckStats and DESIGN.md for its cost).
//
// While it is open the free-page list is kept in memory only (boltOptions);
// Close writes it. After a crash the file has none, and the writable open
// rebuilds it by walking the tree on a goroutine of bbolt's own, where a
// fault cannot be contained and an inconsistency makes bbolt panic while
// that goroutine still runs: such a file is walked under guard through a
// read-only handle first (walkBolt), and bbolt's Check runs on the
// writable handle, whose list is then built.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	reason, listSynced := cutShort(path)
	if reason != "" {
		return nil, &corruptError{path: path, reason: reason}
	}
	start := time.Now()
	var (
		st     CheckStats
		walked bool
	)
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 && !listSynced {
		if st, err = walkReadOnly(path); err != nil {
			return nil, err
		}
		walked = true
	}
	var db *bolt.DB
	err := guard(path, func() (err error) {
		db, err = bolt.Open(path, 0o600, boltOptions(false))
		return err
	})
	if err != nil {
		return nil, openError(path, err)
	}
	// From here on commits leave the list out (no transaction runs yet).
	db.NoFreelistSync = true
	if walked {
		err = checkTree(db, path)
	} else {
		st, err = checkBolt(db, path)
	}
	if err != nil {
		guard(path, db.Close)
		return nil, err
	}
	st.Duration = time.Since(start)
	return &Bolt{db: db, path: path, check: st}, nil
}

// boltOptions are the bbolt options of every handle on a store.
//
// bbolt otherwise writes its whole list of free pages at every commit
// (8 bytes a free page, and the array list merges the new frees into it),
// so that a store that once held much more than it holds now — a bulk
// load whose outbox was drained, a mass deletion; the file never shrinks —
// pays for that history on every write: 300 000 free pages cost 3.6 ms a
// commit against 0.34 ms (BenchmarkBoltUpdateFreePages). So a store opens
// with the list written (NoFreelistSync false: bbolt reads it, or rebuilds
// and writes it), runs without writing it (OpenBolt sets the DB's
// NoFreelistSync), and writes it once more at Close, so that a clean
// restart reads the list instead of walking the tree for it. The map list
// finds and merges a span without scanning the whole list.
func boltOptions(readOnly bool) *bolt.Options {
	return &bolt.Options{
		Timeout:      lockWait,
		ReadOnly:     readOnly,
		FreelistType: bolt.FreelistMapType,
	}
}

// walkReadOnly runs walkBolt on a read-only handle of the existing file
// at path, closed before it returns.
func walkReadOnly(path string) (CheckStats, error) {
	var db *bolt.DB
	err := guard(path, func() (err error) {
		db, err = bolt.Open(path, 0o600, boltOptions(true))
		return err
	})
	if err != nil {
		return CheckStats{}, openError(path, err)
	}
	st, err := walkBolt(db, path)
	if cerr := guard(path, db.Close); err == nil && cerr != nil {
		err = fmt.Errorf("keystore: close %s after its check: %w", path, cerr)
	}
	return st, err
}

// openError explains a failed bolt.Open: a file that bbolt does not
// recognise or that made it fault is corrupt; anything else (permissions,
// a lock held by another process) is returned as it is. When bolt.Open
// itself panicked, the file it opened stays open (and locked) until the
// process exits: it is refusing to start anyway.
func openError(path string, err error) error {
	var ce *corruptError
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return &LockedError{Path: path, PID: lockHolder(path)}
	case errors.As(err, &ce):
		if fi, serr := os.Stat(path); serr == nil && fi.Size()%int64(os.Getpagesize()) != 0 {
			ce.reason += fmt.Sprintf("; the file is %d bytes, not a whole number of pages: it was probably cut short", fi.Size())
		}
		return ce
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch),
		strings.Contains(err.Error(), "file size too small"):
		return &corruptError{path: path, reason: "not a readable bbolt database: " + err.Error()}
	}
	return fmt.Errorf("keystore: open %s: %w", path, err)
}

// CheckStats reports the consistency check OpenBolt ran.
func (b *Bolt) CheckStats() CheckStats { return b.check }

// View implements Store. A panic or fault inside bbolt fails it with an
// error wrapping ErrCorrupt.
func (b *Bolt) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return guard(b.path, func() error {
		return b.db.View(func(tx *bolt.Tx) error { return b.run(tx, fn) })
	})
}

// Update implements Store. A panic or fault inside bbolt fails it, and
// nothing it did is kept, with an error wrapping ErrCorrupt.
func (b *Bolt) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return guard(b.path, func() error {
		return b.db.Update(func(tx *bolt.Tx) error { return b.run(tx, fn) })
	})
}

// run calls the caller's fn outside the guard: its own panics are its own.
// A corruption a Tx method met fails the transaction even if fn ignored
// the error.
func (b *Bolt) run(tx *bolt.Tx, fn func(Tx) error) error {
	t := &boltTx{tx: tx, path: b.path}
	var err error
	unguarded(func() bool { err = fn(t); return true })
	if t.corrupt != nil {
		return t.corrupt
	}
	return err
}

// Close implements Store. It writes the free-page list first (see
// boltOptions), in two transactions of its own so that both meta pages
// name a list (the first holds the writer's lock while it turns the DB's
// NoFreelistSync off).
func (b *Bolt) Close() error {
	err := guard(b.path, func() error {
		if err := b.db.Update(func(*bolt.Tx) error { b.db.NoFreelistSync = false; return nil }); err != nil {
			return err
		}
		return b.db.Update(func(*bolt.Tx) error { return nil })
	})
	if errors.Is(err, ErrCorrupt) {
		// bbolt faulted or panicked in the commit, which may leave its
		// writer's lock held, and db.Close would wait for it: the file
		// stays open until the process exits (as when bolt.Open panics).
		return err
	}
	if err != nil {
		err = fmt.Errorf("keystore: write the free-page list of %s: %w", b.path, err)
	}
	return errors.Join(err, guard(b.path, b.db.Close))
}

// boltTx runs each bbolt call under guard, so that a damaged page fails
// the call (and the transaction) instead of the process.
type boltTx struct {
	tx      *bolt.Tx
	path    string
	corrupt error // the first corruption met
}

func (t *boltTx) guard(fn func() error) error {
	err := guard(t.path, fn)
	if errors.Is(err, ErrCorrupt) && t.corrupt == nil {
		t.corrupt = err
	}
	return err
}

func (t *boltTx) Get(bucket, key string) (out []byte, err error) {
	err = t.guard(func() error {
		bk := t.tx.Bucket([]byte(bucket))
		if bk == nil {
			return nil
		}
		if v := bk.Get([]byte(key)); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	return out, err
}

func (t *boltTx) Put(bucket, key string, value []byte) error {
	if !t.tx.Writable() {
		return ErrReadOnly
	}
	if err := checkSizes(bucket, key, value); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	return t.guard(func() error {
		bk, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return bk.Put([]byte(key), value)
	})
}

func (t *boltTx) Delete(bucket, key string) error {
	if !t.tx.Writable() {
		return ErrReadOnly
	}
	return t.guard(func() error {
		bk := t.tx.Bucket([]byte(bucket))
		if bk == nil {
			return nil
		}
		return bk.Delete([]byte(key))
	})
}

func (t *boltTx) Scan(bucket, prefix, after string, fn func(string, []byte) bool) error {
	return t.guard(func() error {
		bk := t.tx.Bucket([]byte(bucket))
		if bk == nil {
			return nil
		}
		c := bk.Cursor()
		start := prefix
		if after > start {
			start = after
		}
		k, v := c.Seek([]byte(start))
		for ; k != nil; k, v = c.Next() {
			if !bytes.HasPrefix(k, []byte(prefix)) {
				return nil
			}
			if after != "" && string(k) <= after {
				continue
			}
			key, val := string(k), bytes.Clone(v)
			if !unguarded(func() bool { return fn(key, val) }) {
				return nil
			}
		}
		return nil
	})
}
