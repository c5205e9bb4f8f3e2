package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Config configures a Writer. Dir and Signer are required.
type Config struct {
	Dir    string
	Signer crypto.Signer // ECDSA P-256
	// MaxFileBytes and MaxFileAge rotate files (defaults 64 MiB and 24 h).
	MaxFileBytes int64
	MaxFileAge   time.Duration
	// DigestEvery and DigestInterval seal the chain every N records or T
	// (defaults 1000 and 60 s).
	DigestEvery    int
	DigestInterval time.Duration
	// QueueSize bounds the records waiting to be written (default 4096);
	// Append blocks, honouring its context, when the queue is full.
	QueueSize int
	// MaxBatch bounds the records written per fsync (default 1024).
	MaxBatch int
	Now      func() time.Time
}

// Writer appends records with group commit: one goroutine writes all
// queued records and fsyncs once, then acknowledges every one of them.
type Writer struct {
	cfg   Config
	queue chan *pending
	stop  chan struct{}
	done  chan struct{}

	mu     sync.Mutex // guards failed and stats
	failed error
	stats  Stats

	// Owned by the writer goroutine.
	f         *os.File
	fileBytes int64
	fileStart time.Time
	fileSeq   int
	seq       uint64 // of the last record written
	prevHash  string
	sealedSeq uint64 // last record covered by a digest
	lastSeal  time.Time
	buf       []byte
}

// Stats describes the writer's work.
type Stats struct {
	Records, Batches, Digests uint64
	QueueDepth                int
	Failed                    bool
}

type pending struct {
	rec  *Record
	done chan error
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// Open opens (creating) the audit directory, recovers the chain from the
// last file (dropping a torn final line a crash left) and starts writing.
func Open(cfg Config) (*Writer, error) {
	if cfg.Dir == "" || cfg.Signer == nil {
		return nil, errors.New("audit: Dir and Signer are required")
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = 64 << 20
	}
	if cfg.MaxFileAge <= 0 {
		cfg.MaxFileAge = 24 * time.Hour
	}
	if cfg.DigestEvery <= 0 {
		cfg.DigestEvery = 1000
	}
	if cfg.DigestInterval <= 0 {
		cfg.DigestInterval = time.Minute
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1024
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	w := &Writer{cfg: cfg, queue: make(chan *pending, cfg.QueueSize), stop: make(chan struct{}), done: make(chan struct{})}
	if err := w.recover(); err != nil {
		return nil, err
	}
	w.lastSeal = cfg.Now()
	go w.loop()
	return w, nil
}

// files lists the audit files in order.
func files(dir string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// fileName sorts by time, then by a sequence within the second.
func (w *Writer) fileName(t time.Time) string {
	w.fileSeq++
	return filepath.Join(w.cfg.Dir, fmt.Sprintf("audit-%s-%06d.jsonl", t.UTC().Format("20060102T150405Z"), w.fileSeq))
}

func (w *Writer) recover() error {
	names, err := files(w.cfg.Dir)
	if err != nil || len(names) == 0 {
		return err
	}
	last := names[len(names)-1]
	fmt.Sscanf(filepath.Base(last)[len("audit-20060102T150405Z-"):], "%06d", &w.fileSeq)
	raw, err := os.ReadFile(last)
	if err != nil {
		return err
	}
	// Keep the complete lines; a torn final line was never acknowledged.
	good := len(raw)
	if i := bytes.LastIndexByte(raw, '\n'); i != len(raw)-1 {
		good = i + 1
	}
	lines := bytes.Split(raw[:good], []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if len(lines[i]) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(lines[i], &r); err != nil {
			return fmt.Errorf("audit: last file %s ends with a corrupt record: %w", last, err)
		}
		sum := sha256.Sum256(lines[i])
		w.seq, w.prevHash = r.Seq, hex.EncodeToString(sum[:])
		break
	}
	// The next digest starts where the last one ended: find it, searching
	// back through the files when the last has none.
	w.sealedSeq = lastDigest(raw[:good])
	for i := len(names) - 2; i >= 0 && w.sealedSeq == 0; i-- {
		if older, err := os.ReadFile(names[i]); err == nil {
			w.sealedSeq = lastDigest(older)
		}
	}
	if good != len(raw) {
		if err := os.Truncate(last, int64(good)); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, _ := f.Stat()
	w.f, w.fileBytes, w.fileStart = f, st.Size(), st.ModTime()
	return nil
}

// Append queues r and returns once it is written and fsynced. A nil error
// means the record is durable. When the audit cannot be written, every
// Append returns ErrUnavailable.
func (w *Writer) Append(ctx context.Context, r *Record) error {
	if err := w.err(); err != nil {
		return err
	}
	p := pendingPool.Get().(*pending)
	p.rec = r
	select {
	case w.queue <- p:
	case <-ctx.Done():
		pendingPool.Put(p)
		return ctx.Err()
	case <-w.stop:
		pendingPool.Put(p)
		return ErrUnavailable
	}
	// Once queued the record will be written or fail; wait for which,
	// because the caller may not answer before it is durable.
	err := <-p.done
	p.rec = nil
	pendingPool.Put(p)
	return err
}

func (w *Writer) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return ErrUnavailable
	}
	return nil
}

func (w *Writer) fail(err error) {
	w.mu.Lock()
	if w.failed == nil {
		w.failed = err
		w.stats.Failed = true
	}
	w.mu.Unlock()
}

// Stats reports the writer's counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.QueueDepth = len(w.queue)
	return s
}

func (w *Writer) loop() {
	defer close(w.done)
	tick := time.NewTicker(w.cfg.DigestInterval / 4)
	defer tick.Stop()
	batch := make([]*pending, 0, w.cfg.MaxBatch)
	for {
		select {
		case p := <-w.queue:
			w.writeBatch(w.gather(append(batch[:0], p)))
		case <-tick.C:
			if w.seq > w.sealedSeq && w.cfg.Now().Sub(w.lastSeal) >= w.cfg.DigestInterval && w.err() == nil {
				if err := w.flushWith(nil, true); err != nil {
					w.fail(err)
				}
			}
		case <-w.stop:
			for {
				select {
				case p := <-w.queue:
					w.writeBatch([]*pending{p})
					continue
				default:
				}
				break
			}
			if w.err() == nil && w.seq > w.sealedSeq {
				if err := w.flushWith(nil, true); err != nil {
					w.fail(err)
				}
			}
			if w.f != nil {
				w.f.Close()
			}
			return
		}
	}
}

// gather collects the records queued behind the first. Before committing
// it yields, so that request goroutines already running (on a server with
// few CPUs they cannot run while this one works) add their records to the
// same fsync; it stops as soon as a yield brings nothing new.
func (w *Writer) gather(batch []*pending) []*pending {
	for len(batch) < w.cfg.MaxBatch {
		grown := false
	drain:
		for len(batch) < w.cfg.MaxBatch {
			select {
			case p := <-w.queue:
				batch = append(batch, p)
				grown = true
			default:
				break drain
			}
		}
		if !grown && len(batch) > 1 {
			return batch
		}
		before := len(w.queue)
		runtime.Gosched()
		if len(w.queue) == before && !grown {
			return batch
		}
	}
	return batch
}

func (w *Writer) writeBatch(batch []*pending) {
	err := w.err()
	if err == nil {
		recs := make([]*Record, len(batch))
		for i, p := range batch {
			recs[i] = p.rec
		}
		due := w.seq+uint64(len(recs))-w.sealedSeq >= uint64(w.cfg.DigestEvery)
		if err = w.flushWith(recs, due); err != nil {
			w.fail(err)
			err = ErrUnavailable
		}
	}
	for _, p := range batch {
		p.done <- err
	}
}

// flushWith writes recs (and a digest when seal) with one write and one
// fsync, rotating the file first when it is due.
func (w *Writer) flushWith(recs []*Record, seal bool) error {
	now := w.cfg.Now()
	if w.f == nil || w.fileBytes >= w.cfg.MaxFileBytes || now.Sub(w.fileStart) >= w.cfg.MaxFileAge {
		if err := w.rotate(now); err != nil {
			return err
		}
	}
	w.buf = w.buf[:0]
	for _, r := range recs {
		if err := w.appendRecord(r); err != nil {
			return err
		}
	}
	if seal {
		d := &Digest{FirstSeq: w.sealedSeq + 1, LastSeq: w.seq, HeadHash: w.prevHash}
		sum := sha256.Sum256(d.signedBytes())
		sig, err := w.cfg.Signer.Sign(rand.Reader, sum[:], crypto.SHA256)
		if err != nil {
			return fmt.Errorf("audit: sign digest: %w", err)
		}
		d.Signature = sig
		rec := &Record{EventVersion: "1.08", EventTime: now.UTC().Format(time.RFC3339), EventSource: "kms.amazonaws.com",
			EventName: "Digest", EventType: EventTypeDigest, ReadOnly: true, Digest: d}
		if err := w.appendRecord(rec); err != nil {
			return err
		}
		w.sealedSeq, w.lastSeal = w.seq, now
	}
	if _, err := w.f.Write(w.buf); err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("audit: fsync: %w", err)
	}
	w.fileBytes += int64(len(w.buf))
	w.mu.Lock()
	w.stats.Records += uint64(len(recs))
	w.stats.Batches++
	if seal {
		w.stats.Digests++
	}
	w.mu.Unlock()
	return nil
}

// appendRecord links r into the chain and appends its line to the buffer.
func (w *Writer) appendRecord(r *Record) error {
	w.seq++
	r.Seq, r.PrevHash = w.seq, w.prevHash
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(line)
	w.prevHash = hex.EncodeToString(sum[:])
	w.buf = append(append(w.buf, line...), '\n')
	return nil
}

func (w *Writer) rotate(now time.Time) error {
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(w.fileName(now), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: new file: %w", err)
	}
	if d, err := os.Open(w.cfg.Dir); err == nil {
		d.Sync()
		d.Close()
	}
	w.f, w.fileBytes, w.fileStart = f, 0, now
	return nil
}

// Close writes what is queued, seals the chain with a final digest and
// closes the file.
func (w *Writer) Close() error {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	for { // anything queued while stopping is refused, never left waiting
		select {
		case p := <-w.queue:
			p.done <- ErrUnavailable
			continue
		default:
		}
		break
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// lastDigest returns the sequence number of the last digest record in a
// file's contents (0 when there is none).
func lastDigest(raw []byte) uint64 {
	lines := bytes.Split(raw, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if !bytes.Contains(lines[i], []byte(`"digest":`)) {
			continue
		}
		var r Record
		if json.Unmarshal(lines[i], &r) == nil && r.Digest != nil {
			return r.Seq
		}
	}
	return 0
}
