package keystore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrCorrupt is wrapped by the error of an Open, View or Update that met a
// damaged database file: one that fails bbolt's consistency check at open,
// or whose pages made bbolt panic or fault while a transaction read or
// wrote them. The store refuses it rather than serve what it read; the
// request fails as an internal error and the process stays up. The remedy
// is to restore the file from a backup.
var ErrCorrupt = errors.New("keystore: database corrupt")

// corruptError names the file and what was wrong with it.
type corruptError struct {
	path   string
	reason string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("keystore: %s is corrupt: %s — restore it from a backup", filepath.Base(e.path), e.reason)
}

func (e *corruptError) Unwrap() error { return ErrCorrupt }

// guard runs fn, which calls into bbolt, and turns a panic or a memory
// fault inside it into an error wrapping ErrCorrupt. bbolt reads the file
// through a memory mapping: a page cut off by a truncation raises SIGBUS, a
// damaged page number can point outside the mapping (SIGSEGV), and neither
// can be recovered unless the goroutine asked the runtime to turn faults
// into panics (debug.SetPanicOnFault, which is per goroutine: it is set
// here, around the call, and restored).
//
// Only panics raised inside bbolt are contained: fn must not run the
// caller's code except through a callback that calls out of the guard
// (see boltTx.Scan), so that a bug in the caller still crashes loudly.
func guard(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if cp, ok := r.(callerPanic); ok {
				panic(cp.v) // not bbolt's: the caller's own bug
			}
			err = &corruptError{path: path, reason: panicReason(r)}
		}
	}()
	return fn()
}

// callerPanic carries a panic raised by the caller's code out through a
// guard unchanged.
type callerPanic struct{ v any }

// unguarded runs the caller's fn from inside a guard: a panic in it is the
// caller's and is let through; faults are the caller's too.
func unguarded(fn func() bool) (ok bool) {
	old := debug.SetPanicOnFault(false)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			panic(callerPanic{r})
		}
	}()
	return fn()
}

func panicReason(r any) string {
	var addr interface{ Addr() uintptr }
	if e, ok := r.(error); ok && errors.As(e, &addr) {
		return fmt.Sprintf("a memory fault at %#x reading the memory-mapped file (a page is missing or a page number is damaged)", addr.Addr())
	}
	if e, ok := r.(runtime.Error); ok {
		return "bbolt failed: " + e.Error()
	}
	return fmt.Sprintf("bbolt failed: %v", r)
}

// CheckStats describes the consistency check OpenBolt ran.
type CheckStats struct {
	Duration time.Duration
	Pages    int64 // the file's size in pages
	Keys     int   // keys read, in every bucket
}

// checkBolt refuses a database that is shorter than its pages, whose tree
// cannot be walked, or that fails bbolt's Check: walkBolt, then
// checkTree. It reads the whole file.
func checkBolt(db *bolt.DB, path string) (CheckStats, error) {
	start := time.Now()
	st, err := walkBolt(db, path)
	if err == nil {
		err = checkTree(db, path)
	}
	st.Duration = time.Since(start)
	return st, err
}

// walkBolt refuses a database that is shorter than its pages or whose tree
// cannot be walked: in one read transaction, under guard, it reads every
// key and value of every bucket. It comes before anything of bbolt's that
// walks the tree in a goroutine of its own (tx.Check; the writable open's
// rebuilding of the free-page list), where a fault on a damaged page
// would kill the process: those run only once every page of the tree has
// been read here without one.
func walkBolt(db *bolt.DB, path string) (st CheckStats, err error) {
	start := time.Now()
	defer func() { st.Duration = time.Since(start) }()
	fi, err := os.Stat(path)
	if err != nil {
		return st, err
	}
	err = guard(path, func() error {
		return db.View(func(tx *bolt.Tx) error {
			pageSize := int64(db.Info().PageSize)
			st.Pages = fi.Size() / pageSize
			if need := tx.Size(); fi.Size() < need {
				return &corruptError{path: path, reason: fmt.Sprintf("the file is %d bytes but its pages reach %d: it was cut short", fi.Size(), need)}
			}
			if err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b, &st.Keys) }); err != nil {
				return &corruptError{path: path, reason: err.Error()}
			}
			return nil
		})
	})
	return st, err
}

// checkTree runs bbolt's tx.Check (page references, the free-page list,
// key order) and refuses the database on the first problem it reports.
func checkTree(db *bolt.DB, path string) error {
	return guard(path, func() error {
		return db.View(func(tx *bolt.Tx) error {
			var first error
			n := 0
			for e := range tx.Check() { // drained to the end: Check's goroutine blocks otherwise
				if first == nil {
					first = e
				}
				n++
			}
			if first != nil {
				more := ""
				if n > 1 {
					more = fmt.Sprintf(" (and %d more problems)", n-1)
				}
				return &corruptError{path: path, reason: first.Error() + more}
			}
			return nil
		})
	})
}

// walk reads every key and value of b and of the buckets in it, and checks
// that the keys come in order: a key or value whose position a flipped bit
// moved off the file faults here, under guard, rather than in bbolt's Check,
// which compares them on a goroutine of its own where a fault cannot be
// contained. (A branch page's keys are not read by a cursor's walk; Check
// still reads those.)
func walk(b *bolt.Bucket, keys *int) error {
	c := b.Cursor()
	var prev []byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		*keys++
		_ = sum(k)
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return errors.New("the keys of a bucket are out of order")
		}
		prev = k
		if v == nil { // a nested bucket
			if nb := b.Bucket(k); nb != nil {
				if err := walk(nb, keys); err != nil {
					return err
				}
			}
			continue
		}
		_ = sum(v)
	}
	return nil
}

// sum touches every page v spans, so that a value on a missing page faults
// here, under guard, rather than later.
func sum(v []byte) (s byte) {
	for i := 0; i < len(v); i += 512 {
		s ^= v[i]
	}
	if len(v) > 0 {
		s ^= v[len(v)-1]
	}
	return s
}

// cutShort reads the meta pages of the bbolt file at path and, when the
// newer valid one says the file's pages reach past its end, says so: a
// truncated file is then refused before it is memory-mapped. It returns
// "" when the file looks whole or the meta pages cannot be read (Open
// then explains). The layout is bbolt's (internal/common/meta.go and
// page.go), native byte order; a meta page counts when its magic and its
// checksum (FNV-1a of what precedes it) hold, as bbolt checks them.
//
// It also checks the header of the free-page list's page that a valid
// meta page names, which bbolt trusts: a damaged count of overflow pages
// there sends bbolt's Check, on a goroutine of its own, through billions
// of pages. listSynced reports whether both meta pages name a list (see
// boltOptions): false for a new file, and after a crash.
func cutShort(path string) (reason string, listSynced bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return "", false
	}
	const (
		pageHeader   = 16
		magic        = 0xED0CDAED
		noList       = 1<<64 - 1 // bbolt's PgidNoFreelist
		freelistPage = 0x10      // bbolt's FreelistPageFlag
	)
	var need int64
	var txid uint64
	synced := 0
	buf := make([]byte, 128)
	pageSize := int64(0)
	for off := int64(0); off < 2; off++ {
		// meta0 is at 0; meta1 one page further, and the page size is in meta0.
		pos := int64(0)
		if off == 1 {
			ps := binary.NativeEndian.Uint32(buf[pageHeader+8:])
			if ps < 512 || ps > 1<<20 {
				break
			}
			pos = int64(ps)
		}
		if n, _ := f.ReadAt(buf, pos); n < len(buf) {
			break
		}
		m := buf[pageHeader:]
		h := fnv.New64a()
		h.Write(m[:56])
		if binary.NativeEndian.Uint32(m[0:]) != magic || h.Sum64() != binary.NativeEndian.Uint64(m[56:]) {
			continue
		}
		pageSize = int64(binary.NativeEndian.Uint32(m[8:]))
		list, pgid := binary.NativeEndian.Uint64(m[32:]), binary.NativeEndian.Uint64(m[40:])
		if list != noList {
			synced++
			var ph [pageHeader]byte
			if list < 2 || list >= pgid || pgid >= 1<<40 {
				return fmt.Sprintf("a meta page names page %d of %d as the free-page list", list, pgid), false
			}
			if n, _ := f.ReadAt(ph[:], int64(list)*pageSize); n == len(ph) {
				id, flags := binary.NativeEndian.Uint64(ph[0:]), binary.NativeEndian.Uint16(ph[8:])
				overflow := uint64(binary.NativeEndian.Uint32(ph[12:]))
				if id != list || flags != freelistPage || list+overflow >= pgid {
					return fmt.Sprintf("the free-page list's page %d is damaged (id %d, flags %#x, %d overflow pages of %d)", list, id, flags, overflow, pgid), false
				}
			}
		}
		if t := binary.NativeEndian.Uint64(m[48:]); t >= txid && pgid < 1<<40 {
			txid, need = t, int64(pgid)*pageSize
		}
	}
	if need > fi.Size() {
		return fmt.Sprintf("the file is %d bytes but its pages reach %d: it was cut short", fi.Size(), need), false
	}
	return "", synced == 2
}
