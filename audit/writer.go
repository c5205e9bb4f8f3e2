package audit

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-kms/coffer/internal/atomicfile"
)

// Config configures a Writer. Dir and Signer are required; every other zero
// value means the default in its comment.
type Config struct {
	Dir    string        // the audit directory, created 0700 if missing
	Signer crypto.Signer // the audit signing key, ECDSA P-256

	MaxFileBytes int64         // rotate before a file grows past this (64 MiB)
	MaxFileAge   time.Duration // rotate files older than this (24 h)

	DigestEvery    int           // seal the chain every this many records (1000)
	DigestInterval time.Duration // and when records have waited this long unsealed (60 s)

	QueueSize int // records waiting for the writer before Append blocks (4096)
	MaxBatch  int // records per write and fsync (1024)

	// SyncInterval is the commit policy (coffer serve's --audit-sync).
	// Zero (commit): Append returns once its record is durable, after the
	// group commit's fdatasync. Positive (interval): Append returns once
	// its record is written into the trail file (write(2): a crash of the
	// process loses nothing), and the Writer makes what it wrote durable
	// every SyncInterval (and as soon as maxUnsynced bytes wait), so a
	// power loss or a kernel crash loses at most the records of the last
	// SyncInterval, all from the end of the trail.
	// Either way the anchor names only durable records (see Anchor), and
	// Sync waits for what was acknowledged to be durable.
	SyncInterval time.Duration

	// DirectSync calls fdatasync directly rather than through io_uring
	// (see syncRing; without io_uring it is direct anyway).
	DirectSync bool

	// MinFree is the free space the Writer leaves on the trail's file
	// system: it does not preallocate below it, and Open refuses to start
	// below it (64 MiB; negative: no reserve). Records are still written
	// when less is free, without preallocation, until the disk is full.
	MinFree int64

	// AnchorInterval bounds how long a committed record may stay past the
	// anchor (see Anchor): the Writer rewrites it when it is this old, at
	// every digest and on Close (1 s).
	AnchorInterval time.Duration

	// Logger receives one line per change of the Writer's health (failing,
	// healthy again) and Open's warnings (slog.Default()).
	Logger *slog.Logger

	Now func() time.Time // the clock (time.Now)

	freeSpace func(dir string) (int64, error) // statfs; tests replace it
	gapAck    *gapAck                         // set by AcknowledgeGap
}

func (c *Config) setDefaults() {
	if c.MaxFileBytes <= 0 {
		c.MaxFileBytes = 64 << 20
	}
	if c.MaxFileAge <= 0 {
		c.MaxFileAge = 24 * time.Hour
	}
	if c.DigestEvery <= 0 {
		c.DigestEvery = 1000
	}
	if c.DigestInterval <= 0 {
		c.DigestInterval = time.Minute
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 4096
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1024
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MinFree == 0 {
		c.MinFree = 64 << 20
	}
	if c.AnchorInterval <= 0 {
		c.AnchorInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.freeSpace == nil {
		c.freeSpace = freeSpace
	}
}

// Retrying a failed trail: the first attempt this long after the failure,
// doubling up to retryMax.
const (
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
)

// Stats describes a Writer's work since Open.
type Stats struct {
	Records      uint64    // records acknowledged, digests not counted
	Batches      uint64    // write (and, committing, fsync) rounds: one per group commit, one more per rotation inside one
	Syncs        uint64    // fdatasyncs that made acknowledged records durable: one per group commit, or (SyncInterval) one per interval that wrote any
	Digests      uint64    // digest records written
	LargestBatch int       // most records acknowledged by one group commit
	QueueDepth   int       // records waiting for the writer now
	Failed       bool      // the Writer refuses every Append now (see Err)
	TornBytes    int64     // what Open cut from the end of the newest file, in bytes: a torn final line, zeros, and what followed a hole (kept aside)
	LastCommit   time.Time // when acknowledged records were last made durable (zero: none since Open)
}

// Writer appends records to the trail with group commit. Its methods are
// safe for concurrent use.
type Writer struct {
	cfg    Config
	create func(path string, fresh bool) (file, error)

	queue chan *pending
	stop  chan struct{} // closed by Close once no Append can queue
	// syncReq carries Sync's requests to the writer goroutine.
	syncReq chan chan error
	// The seq of the last record written and of the last durable one,
	// for Sync without the writer goroutine.
	writtenSeq, durableSeq atomic.Uint64
	done                   chan struct{} // closed when the writer goroutine has finished

	// Append holds closeMu shared while it queues, Close exclusively to
	// set closed: after that the queue only drains.
	closeMu sync.RWMutex
	closed  bool

	// state is nil while the Writer is healthy, and the failure while it
	// refuses Appends; only the writer goroutine (and Open) store it.
	state atomic.Pointer[failure]

	mu    sync.Mutex // guards stats
	stats Stats

	// Owned by the writer goroutine (and by Open before it starts).
	f         file
	fileSeq   uint64
	fileBytes int64 // written records
	allocated int64 // the file's size: fileBytes, then preallocated zeros
	dropped   int64 // the end of the last range whose cached pages were dropped
	fileStart time.Time
	seq       uint64   // of the last line written
	prev      [32]byte // SHA-256 of the last line written
	hasPrev   bool
	sealed    uint64 // seq of the last digest
	lastSeal  time.Time
	written   chainState // the chain as far as it is written (acknowledged)
	durable   chainState // the chain as far as it is durable (anchored)
	// synced is the end of what is durable in the current file; unsynced,
	// with SyncInterval, a copy of what was written since (fileBytes -
	// synced bytes), which a retry writes again after a failed fdatasync:
	// the kernel may have dropped those pages unwritten.
	synced   int64
	unsynced []byte
	// dirty is the end of what a failed write may have left past fileBytes:
	// retry rewrites it with zeros before any record goes there.
	dirty    int64
	backoff  time.Duration // before the next retry, while failing
	anchor   string        // AnchorPath(cfg.Dir)
	anchored uint64        // seq the anchor file records
	anchorAt time.Time     // when it was written
	lowSpace time.Time     // when free space was last found under MinFree
	buf      []byte        // the lines of the write being built; with SyncInterval in unsynced's spare capacity (resetBuf)
	batch    []*pending
	ring     *syncRing // nil: fdatasync directly

	// anchorWrites counts the anchors written since the Writer last replaced
	// the anchor file whole: at 0 it replaces it, else it writes slot
	// anchorWrites%anchorSlots in place (see anchorSlot).
	anchorWrites int
}

// chainState is the part of the Writer a failed commit rolls back.
type chainState struct {
	seq      uint64
	prev     [32]byte
	hasPrev  bool
	sealed   uint64
	lastSeal time.Time
}

func (w *Writer) chain() chainState {
	return chainState{w.seq, w.prev, w.hasPrev, w.sealed, w.lastSeal}
}

func (w *Writer) setChain(c chainState) {
	w.seq, w.prev, w.hasPrev, w.sealed, w.lastSeal = c.seq, c.prev, c.hasPrev, c.sealed, c.lastSeal
}

// file is what the Writer needs of an *os.File. Sync need only make the
// data durable (fdatasync): the Writer overwrites zeros it preallocated and
// made durable itself, so the file's size and blocks do not change.
type file interface {
	WriteAt(b []byte, off int64) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// Preallocation: the Writer extends the current file with zeros, made
// durable, preallocChunk bytes at a time, and writes records over them.
// A record's fsync then writes its data blocks and nothing else — on this
// kind of machine that halves what each group commit costs — and readers
// take the first NUL byte where a line should start as the end of the
// trail. Rotation and Close cut the file back to its records.
const preallocChunk = 4 << 20

var zeros [64 << 10]byte

// Page-cache recycling: once records are durable the Writer has no use for
// their cached pages, and the trail's readers are rare. Left cached, the
// trail takes a fresh page from the kernel for every 4 KiB it grows, and on
// a virtual machine whose free memory the host has taken back each such
// page costs a fault in the host: measured here (bench/pagecache), 4 MiB of
// preallocation took 10–15 ms instead of 1.3–1.7 ms when the host had taken
// memory back, about 3 µs per audited request (BENCHMARKS.md, issue 9). Dropped, the durable pages go back to the allocator and come
// straight back as the next preallocated ones.
//
// Every dropChunk bytes of records the Writer asks the kernel to drop the
// pages wholly below the page the next record starts in (an overwrite of
// part of an uncached page would read it from disk first). It asks from the
// start of the file each time: the kernel keeps a large folio that reaches
// past the range, and the next, longer range takes it.
const dropChunk = 256 << 10

// cacheDropper is the optional part of file that drops durable pages.
type cacheDropper interface {
	DropCache(off, n int64)
}

// pending is a record between Append and its acknowledgement.
type pending struct {
	line []byte // the record body; the writer adds the chain members
	seq  uint64
	done chan error
}

const (
	chainRoom     = 128      // room for the chain members and the newline
	maxPooledLine = 64 << 10 // larger buffers are not kept
)

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

func putPending(p *pending) {
	if cap(p.line) <= maxPooledLine {
		pendingPool.Put(p)
	}
}

var errClosed = fmt.Errorf("%w: the writer is closed", ErrUnavailable)

// Open opens the trail in cfg.Dir (creating the directory), recovers the
// chain where a previous Writer left it, dropping a torn final line a crash
// left, and starts the writer goroutine. It fails, wrapping ErrCorrupt, when
// the last complete record is unreadable.
func Open(cfg Config) (*Writer, error) {
	return openWith(cfg, createFile)
}

func createFile(path string, fresh bool) (file, error) {
	flag := os.O_WRONLY
	if fresh {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, err
	}
	return &dataSyncFile{File: f}, nil
}

// dataSyncFile is an *os.File whose Sync is fdatasync where there is one,
// through the Writer's io_uring when it has one.
type dataSyncFile struct {
	*os.File
	ring *syncRing
}

// DropCache drops the cached pages of [off, off+n), already durable.
func (f *dataSyncFile) DropCache(off, n int64) { dropCache(f.File, off, n) }

func (f *dataSyncFile) Sync() error {
	if f.ring != nil {
		return f.ring.fdatasync(f.File)
	}
	return datasync(f.File)
}

// open opens a trail file with w.create, giving it w's ring.
func (w *Writer) open(path string, fresh bool) (file, error) {
	f, err := w.create(path, fresh)
	if d, ok := f.(*dataSyncFile); ok && err == nil {
		d.ring = w.ring
	}
	return f, err
}

func openWith(cfg Config, create func(string, bool) (file, error)) (*Writer, error) {
	if cfg.Dir == "" || cfg.Signer == nil {
		return nil, errors.New("audit: Config.Dir and Config.Signer are required")
	}
	if _, err := signerKey(cfg.Signer); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	if cfg.MinFree > 0 {
		if free, err := cfg.freeSpace(cfg.Dir); err == nil && free < cfg.MinFree {
			return nil, fmt.Errorf("audit: %s has %d MiB free, under the %d MiB the trail keeps in reserve: free some space first",
				cfg.Dir, free>>20, cfg.MinFree>>20)
		}
	}
	w := &Writer{
		cfg:     cfg,
		create:  create,
		queue:   make(chan *pending, cfg.QueueSize),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		batch:   make([]*pending, 0, cfg.MaxBatch),
		syncReq: make(chan chan error),
		anchor:  AnchorPath(cfg.Dir),
		backoff: retryMin,
	}
	if !cfg.DirectSync {
		w.ring, _ = newSyncRing() // nil when io_uring is unavailable
	}
	fail := func(err error) (*Writer, error) {
		if w.f != nil {
			w.f.Close()
		}
		if w.ring != nil {
			w.ring.close()
		}
		return nil, err
	}
	gapLast, err := w.recoverTrail()
	if err != nil {
		return fail(err)
	}
	w.lastSeal = cfg.Now()
	w.written = w.chain()
	w.markDurable()
	if gapLast > 0 {
		if w.f == nil {
			if err := w.rotate(cfg.Now()); err != nil {
				return fail(err)
			}
		}
		w.resetBuf()
		if err := w.appendGap(gapLast, cfg.gapAck); err != nil {
			return fail(err)
		}
		if err := w.flush(); err != nil {
			return fail(fmt.Errorf("audit: write the gap record: %w", err))
		}
		if err := w.syncWritten(); err != nil { // before the anchor moves past the gap
			return fail(fmt.Errorf("audit: write the gap record: %w", err))
		}
	}
	// The anchor is written now: a trail from before anchors gets one, and
	// a start is recorded even if nothing is appended.
	if err := w.writeAnchor(); err != nil {
		return fail(fmt.Errorf("audit: %w", err))
	}
	go w.loop()
	return w, nil
}

// Append links r into the chain and returns once its line is written and
// fsynced: nil means the record is durable (with SyncInterval: written
// into the trail file, and durable within SyncInterval). Empty EventVersion, EventTime,
// EventSource and EventType are filled in, and r.Seq is set on success.
//
// When the queue is full Append waits for room until ctx ends, returning
// ctx's error: the record was then not acknowledged (it may still be
// written). Once the trail cannot be written, Append returns an error
// wrapping ErrUnavailable; a record that cannot be encoded gives one
// wrapping ErrInvalidRecord.
func (w *Writer) Append(ctx context.Context, r *Record) error {
	if err := w.err(); err != nil {
		return err
	}
	if r.Digest != nil {
		return fmt.Errorf("%w: only the Writer writes digests", ErrInvalidRecord)
	}
	r.fillDefaults(w.cfg.Now)
	p := pendingPool.Get().(*pending)
	var err error
	if p.line, err = r.appendBody(p.line[:0]); err != nil {
		putPending(p)
		return err
	}
	if n := len(p.line) + chainRoom; n > MaxLine {
		putPending(p)
		return fmt.Errorf("%w: %d bytes, more than MaxLine", ErrInvalidRecord, n)
	}

	w.closeMu.RLock()
	if w.closed {
		w.closeMu.RUnlock()
		putPending(p)
		return errClosed
	}
	if ctx.Done() == nil { // cannot end: plain channel operations, no select
		w.queue <- p
		w.closeMu.RUnlock()
		err := <-p.done
		r.Seq = p.seq
		putPending(p)
		return err
	}
	select {
	case w.queue <- p:
	case <-ctx.Done():
		w.closeMu.RUnlock()
		putPending(p)
		return ctx.Err()
	}
	w.closeMu.RUnlock()

	select {
	case err := <-p.done:
		r.Seq = p.seq
		putPending(p)
		return err
	case <-ctx.Done():
		return ctx.Err() // p now belongs to the writer and is not reused
	}
}

func (w *Writer) err() error {
	if f := w.state.Load(); f != nil {
		return f.err
	}
	return nil
}

// Stats reports the Writer's counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	s := w.stats
	w.mu.Unlock()
	s.QueueDepth = len(w.queue)
	s.Failed = w.state.Load() != nil
	return s
}

// Sync returns once every record Append has acknowledged is durable: at
// once without SyncInterval, else after an fdatasync if one is due. It
// returns an error wrapping ErrUnavailable when that cannot be done (the
// trail is failing, or the Writer closed with records not durable).
func (w *Writer) Sync(ctx context.Context) error {
	if w.durableSeq.Load() >= w.writtenSeq.Load() {
		return nil
	}
	ch := make(chan error, 1)
	w.closeMu.RLock()
	if w.closed {
		w.closeMu.RUnlock()
		if err := w.err(); err != nil {
			return err
		}
		return errClosed
	}
	select {
	case w.syncReq <- ch:
	case <-ctx.Done():
		w.closeMu.RUnlock()
		return ctx.Err()
	}
	w.closeMu.RUnlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes every queued record, seals the chain with a final digest,
// anchors it and closes the file. Appends after Close return an error
// wrapping ErrUnavailable. Close returns the error the Writer is failing
// with, if it still is (having tried once more).
func (w *Writer) Close() error {
	w.closeMu.Lock()
	first := !w.closed
	w.closed = true
	w.closeMu.Unlock()
	if first {
		close(w.stop)
	}
	<-w.done
	return w.err()
}

func (w *Writer) loop() {
	defer close(w.done)
	if w.ring != nil {
		defer w.ring.close()
	}
	tick := time.NewTicker(max(min(w.cfg.DigestInterval/4, w.cfg.AnchorInterval/2), time.Millisecond))
	defer tick.Stop()
	var syncTick <-chan time.Time // the interval policy's fdatasyncs
	if w.cfg.SyncInterval > 0 {
		t := time.NewTicker(w.cfg.SyncInterval)
		defer t.Stop()
		syncTick = t.C
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	armed := false
	for {
		if f := w.state.Load(); f != nil && !f.fatal && !armed {
			retry.Reset(w.backoff)
			armed = true
		}
		select {
		case p := <-w.queue:
			w.commit(w.gather(append(w.batch[:0], p)), false)
		case <-tick.C:
			if w.state.Load() != nil {
				break
			}
			if w.seq > w.sealed && w.cfg.Now().Sub(w.lastSeal) >= w.cfg.DigestInterval {
				w.commit(nil, true)
			} else {
				w.anchorDue(false)
			}
		case <-syncTick:
			if w.state.Load() == nil {
				w.backgroundSync()
			}
		case ch := <-w.syncReq:
			if err := w.err(); err != nil {
				ch <- err
			} else {
				ch <- w.backgroundSync()
			}
		case <-retry.C:
			armed = false
			w.retry()
		case <-w.stop:
			// No Append can queue any more: drain, seal, anchor, close.
			for {
				batch := w.drain(w.batch[:0])
				if len(batch) == 0 {
					break
				}
				w.commit(batch, false)
			}
			if f := w.state.Load(); f != nil && !f.fatal {
				w.retry()
			}
			if w.state.Load() == nil && w.seq > w.sealed {
				w.commit(nil, true)
			}
			if w.state.Load() == nil {
				w.backgroundSync()
			}
			if w.state.Load() == nil {
				w.anchorDue(true)
			}
			if w.f != nil {
				if err := w.closeFile(); err != nil {
					w.fail(err)
					w.f.Close()
					w.f = nil
				}
			}
			return
		}
	}
}

func (w *Writer) drain(batch []*pending) []*pending {
	for len(batch) < w.cfg.MaxBatch {
		select {
		case p := <-w.queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// gather collects the records queued behind the first. It yields before
// committing, so that request goroutines already running (which, on a
// machine with few CPUs, cannot run while this one does) add their records
// to the same fsync, and stops as soon as a yield brings nothing new.
func (w *Writer) gather(batch []*pending) []*pending {
	for len(batch) < w.cfg.MaxBatch {
		n := len(batch)
		batch = w.drain(batch)
		grown := len(batch) > n
		if !grown && n > 1 {
			return batch
		}
		before := len(w.queue)
		runtime.Gosched()
		if !grown && len(w.queue) == before {
			return batch
		}
	}
	return batch
}

// commit writes batch (and a digest when seal, or when one is due) and
// acknowledges every record in it with the outcome.
//
// While the Writer is failing it refuses the batch without trying: the
// retry timer (see retry) finds when the trail can be written again. When
// the write fails, the chain goes back to where it is durable, so the next
// records take the sequence numbers of the refused ones.
func (w *Writer) commit(batch []*pending, seal bool) {
	err := w.err()
	if err == nil {
		if werr := w.write(batch, seal); werr != nil {
			w.setChain(w.written)
			w.resetBuf()
			err = w.fail(werr)
		}
	}
	if err == nil {
		w.mu.Lock()
		w.stats.Records += uint64(len(batch))
		w.stats.LargestBatch = max(w.stats.LargestBatch, len(batch))
		if w.cfg.SyncInterval == 0 {
			w.stats.LastCommit = time.Now()
		}
		w.mu.Unlock()
	}
	for i, p := range batch {
		p.done <- err
		batch[i] = nil
	}
	if err == nil {
		w.anchorDue(false)
	}
}

// write appends the batch's lines to the current file with one write and
// one fsync (two when the file rotates part way; none with SyncInterval).
func (w *Writer) write(batch []*pending, seal bool) error {
	now := w.cfg.Now()
	if w.f != nil {
		if err := w.checkFile(); err != nil {
			return err
		}
	}
	if w.f == nil || now.Sub(w.fileStart) >= w.cfg.MaxFileAge {
		if err := w.rotate(now); err != nil {
			return err
		}
	}
	w.resetBuf()
	for _, p := range batch {
		if err := w.room(len(p.line)+chainRoom, now); err != nil {
			return err
		}
		w.seq++
		p.seq = w.seq
		w.appendLine(p.line)
		if w.seq-w.sealed >= uint64(w.cfg.DigestEvery) {
			if err := w.appendDigest(now); err != nil {
				return err
			}
		}
	}
	if w.seq > w.sealed && (seal || now.Sub(w.lastSeal) >= w.cfg.DigestInterval) {
		if err := w.appendDigest(now); err != nil {
			return err
		}
	}
	return w.flush()
}

// appendLine closes body with the chain members for w.seq and buffers the
// line.
func (w *Writer) appendLine(body []byte) {
	start := len(w.buf)
	w.buf = append(w.buf, body...)
	w.buf = appendChainHash(w.buf, w.seq, &w.prev, w.hasPrev)
	w.prev, w.hasPrev = sha256.Sum256(w.buf[start:]), true
	w.buf = append(w.buf, '\n')
}

// appendDigest seals the records since the last digest.
func (w *Writer) appendDigest(now time.Time) error {
	d := &Digest{FirstSeq: w.sealed + 1, LastSeq: w.seq, HeadHash: hex.EncodeToString(w.prev[:])}
	eventTime := now.UTC().Format(time.RFC3339)
	if err := d.sign(w.cfg.Signer, eventTime); err != nil {
		return fmt.Errorf("sign digest: %w", err)
	}
	r := Record{
		EventVersion: EventVersion,
		EventTime:    eventTime,
		EventSource:  EventSource,
		EventName:    EventNameDigest,
		EventID:      NewEventID(),
		ReadOnly:     true,
		EventType:    EventTypeDigest,
		Digest:       d,
	}
	body, err := r.appendBody(nil)
	if err != nil {
		return err
	}
	if err := w.room(len(body)+chainRoom, now); err != nil {
		return err
	}
	w.seq++
	w.appendLine(body)
	w.sealed, w.lastSeal = w.seq, now
	w.mu.Lock()
	w.stats.Digests++
	w.mu.Unlock()
	return nil
}

// room makes room for n more bytes in the current file, flushing what is
// buffered and rotating when the file would outgrow MaxFileBytes. A line
// longer than MaxFileBytes gets a file of its own.
func (w *Writer) room(n int, now time.Time) error {
	used := w.fileBytes + int64(len(w.buf))
	if used == 0 || used+int64(n) <= w.cfg.MaxFileBytes {
		return nil
	}
	if err := w.flush(); err != nil {
		return err
	}
	return w.rotate(now)
}

// maxUnsynced bounds what SyncInterval leaves written but not durable, and
// so the copy kept for a retry (unsynced): past it the next write waits for
// an fdatasync first. A variable for tests.
var maxUnsynced = 8 << 20

// flush writes what is buffered, and without SyncInterval fsyncs it.
func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if len(w.unsynced) >= maxUnsynced {
		if err := w.syncWritten(); err != nil {
			return err
		}
	}
	if err := w.reserve(w.fileBytes + int64(len(w.buf))); err != nil {
		return err
	}
	w.dirty = max(w.dirty, w.fileBytes+int64(len(w.buf)))
	if _, err := w.f.WriteAt(w.buf, w.fileBytes); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if w.cfg.SyncInterval == 0 {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("fsync: %w", err)
		}
	} else {
		w.keepUnsynced()
	}
	w.fileBytes += int64(len(w.buf))
	w.resetBuf()
	w.written = w.chain()
	w.writtenSeq.Store(w.seq)
	w.mu.Lock()
	w.stats.Batches++
	if w.cfg.SyncInterval == 0 {
		w.stats.Syncs++
	}
	w.mu.Unlock()
	if w.cfg.SyncInterval == 0 {
		w.markDurable()
	}
	return nil
}

// resetBuf empties the buffer lines are built in. With SyncInterval the
// buffer is the spare capacity of unsynced, so that keepUnsynced finds the
// lines flush wrote already in place.
func (w *Writer) resetBuf() {
	if w.cfg.SyncInterval > 0 {
		w.buf = w.unsynced[len(w.unsynced):]
	} else {
		w.buf = w.buf[:0]
	}
}

// keepUnsynced adds the lines flush wrote to unsynced: without a copy when
// they were built in its spare capacity (resetBuf), with one when the
// buffer outgrew it or unsynced was emptied since (an fdatasync, a
// rotation).
func (w *Writer) keepUnsynced() {
	n := len(w.unsynced)
	if len(w.buf) > 0 && cap(w.unsynced)-n >= len(w.buf) && &w.unsynced[:n+1][n] == &w.buf[0] {
		w.unsynced = w.unsynced[:n+len(w.buf)]
		return
	}
	w.unsynced = append(w.unsynced, w.buf...)
}

// markDurable records that everything written is durable: after an
// fdatasync of the current file (any: the preallocation's too) or of the
// file closed before it.
func (w *Writer) markDurable() {
	w.durable = w.written
	w.synced = w.fileBytes
	w.unsynced = w.unsynced[:0]
	w.durableSeq.Store(w.durable.seq)
	if w.f != nil {
		w.dropDurable()
	}
}

// syncWritten makes what is written durable, when it is not yet.
func (w *Writer) syncWritten() error {
	if w.written.seq == w.durable.seq {
		return nil
	}
	if w.f != nil && w.synced < w.fileBytes {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("fsync: %w", err)
		}
		w.mu.Lock()
		w.stats.Syncs++
		w.stats.LastCommit = time.Now()
		w.mu.Unlock()
	}
	w.markDurable()
	return nil
}

// backgroundSync is the interval policy's fdatasync (and Sync's): it makes
// what is written durable and moves the anchor when it is due. A failure
// fails the Writer; the retry writes the unsynced bytes again (probe).
func (w *Writer) backgroundSync() error {
	if err := w.syncWritten(); err != nil {
		return w.fail(err)
	}
	w.anchorDue(false)
	return nil
}

// dropDurable drops the cached pages below the last durable record's page
// once dropChunk more bytes of records are durable.
func (w *Writer) dropDurable() {
	d, ok := w.f.(cacheDropper)
	if !ok {
		return
	}
	end := w.synced &^ int64(pageSize-1)
	if end-w.dropped >= dropChunk {
		d.DropCache(0, end)
		w.dropped = end
	}
}

var pageSize = os.Getpagesize()

// rotate starts a new file; the chain goes on across it.
func (w *Writer) rotate(now time.Time) error {
	if w.f != nil {
		if err := w.closeFile(); err != nil {
			return err
		}
	}
	path := filepath.Join(w.cfg.Dir, fileName(now, w.fileSeq+1))
	f, err := w.open(path, true)
	if err != nil {
		return fmt.Errorf("new file: %w", err)
	}
	if err := atomicfile.SyncDir(w.cfg.Dir); err != nil {
		f.Close()
		os.Remove(path) // empty; a retry makes it again
		return fmt.Errorf("fsync directory: %w", err)
	}
	w.f, w.fileSeq, w.fileBytes, w.allocated, w.dropped, w.dirty, w.fileStart = f, w.fileSeq+1, 0, 0, 0, 0, now
	w.synced = 0
	return nil
}

// reserve makes sure the current file holds at least size bytes of durable
// zeros or records, preallocating in chunks (never far past MaxFileBytes).
func (w *Writer) reserve(size int64) error {
	if size <= w.allocated {
		return nil
	}
	target := max(size, min(w.allocated+preallocChunk, w.cfg.MaxFileBytes))
	if !w.roomToPreallocate(target - w.allocated) {
		return nil // the records extend the file as they go
	}
	for off := w.allocated; off < target; {
		n := int(min(int64(len(zeros)), target-off))
		if _, err := w.f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("preallocate: %w", err)
		}
		off += int64(n)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("fsync preallocated space: %w", err)
	}
	w.allocated = target
	w.markDurable() // the fdatasync made the records written before durable too
	return nil
}

// closeFile cuts the current file back to its records, makes that durable
// and closes it: only the newest file ever ends in preallocated zeros.
//
// A failure leaves the file open and current, so that a retry cuts it
// again rather than leave zeros at the end of a file that is not the newest.
// A file someone else deleted or cut short is closed as it is.
func (w *Writer) closeFile() error {
	f := w.f
	if st := w.state.Load(); st == nil || !st.fatal {
		cut := max(w.allocated, w.dirty) > w.fileBytes
		if cut {
			if err := f.Truncate(w.fileBytes); err != nil {
				return fmt.Errorf("truncate preallocated space: %w", err)
			}
		}
		if cut || w.synced < w.fileBytes {
			if st != nil { // a failed fdatasync may have dropped the pages
				if err := w.rewriteUnsynced(); err != nil {
					return err
				}
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("fsync: %w", err)
			}
			w.allocated, w.dirty = w.fileBytes, 0
			w.markDurable()
		}
	}
	w.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}
