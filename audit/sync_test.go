package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// With SyncInterval, Append acknowledges a record once it is written into
// the file, before any fdatasync; the anchor waits for the fdatasync (Sync
// here) and never names a record that is not durable.
func TestIntervalAcknowledgesWrittenRecords(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w := mustOpen(t, Config{Dir: dir, Signer: key, SyncInterval: time.Hour, AnchorInterval: time.Nanosecond})
	defer w.Close()
	for i := range 10 {
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(recordLines(t, dir)); n != 10 {
		t.Fatalf("%d records written, want 10", n)
	}
	if s := w.Stats(); s.Syncs != 0 || s.Records != 10 {
		t.Fatalf("before Sync: %+v", s)
	}
	if a := anchorOf(t, dir, key); a.Seq != 0 {
		t.Fatalf("the anchor names seq %d before any fdatasync", a.Seq)
	}
	if err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.Syncs != 1 || s.LastCommit.IsZero() {
		t.Fatalf("after Sync: %+v", s)
	}
	if a := anchorOf(t, dir, key); a.Seq != 10 {
		t.Fatalf("after Sync the anchor names seq %d, want 10", a.Seq)
	}
	if err := w.Sync(context.Background()); err != nil || w.Stats().Syncs != 1 {
		t.Fatalf("a Sync with nothing new: %v, %d fdatasyncs", err, w.Stats().Syncs)
	}
}

// The interval's fdatasync runs by itself.
func TestIntervalSyncsInTheBackground(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w := mustOpen(t, Config{Dir: dir, Signer: key, SyncInterval: time.Millisecond})
	defer w.Close()
	if err := w.Append(context.Background(), rec(0)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); w.Stats().Syncs == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no fdatasync in 10 s with a 1 ms interval")
		}
	}
	if w.durableSeq.Load() != 1 {
		t.Fatalf("durable seq %d after the fdatasync, want 1", w.durableSeq.Load())
	}
}

// A failed fdatasync fails the Writer (the records it acknowledged may not
// be durable); the retry writes them again and heals it, and Sync then
// succeeds.
func TestIntervalFailedSyncIsRetried(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	fl := &faults{}
	w := fl.open(t, Config{Dir: dir, Signer: key, SyncInterval: time.Hour})
	for i := range 3 {
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	e := error(syscall.EIO)
	fl.syncErr.Store(&e)
	if err := w.Sync(context.Background()); !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync over a failing fdatasync: %v", err)
	}
	if err := w.Append(context.Background(), rec(3)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append while the trail is failing: %v", err)
	}
	fl.syncErr.Store(nil)
	for deadline := time.Now().Add(10 * time.Second); w.Err() != nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the Writer did not heal")
		}
	}
	if err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.durableSeq.Load() != 3 {
		t.Fatalf("durable seq %d, want 3", w.durableSeq.Load())
	}
	if err := w.Append(context.Background(), rec(3)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, dir, &key.PublicKey); rep.LastSeq != 4+uint64(rep.Digests) || rep.Unsealed != 0 {
		t.Fatalf("report %+v", rep)
	}
}

// TestIntervalPowerLoss: a power loss with SyncInterval loses what was
// written after the last fdatasync, from the end: the newest file is cut
// at any point after what was durable, or (its space preallocated) reads
// as zeros from that point. Verify accepts every such trail as it is — the
// anchor is never past what was durable — reporting a record cut in two as
// a torn tail; Open drops the torn part and continues the chain, and every
// record that was durable is there.
func TestIntervalPowerLoss(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	pub := &key.PublicKey
	cfg := Config{Dir: dir, Signer: key, SyncInterval: time.Hour, AnchorInterval: time.Nanosecond, DigestEvery: 7}
	w := mustOpen(t, cfg)
	for i := range 20 {
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	durable := recordLines(t, dir)
	for i := range 30 { // acknowledged, not durable
		if err := w.Append(context.Background(), rec(20+i)); err != nil {
			t.Fatal(err)
		}
	}
	// What the page cache holds now is what a crash of the process leaves.
	fs := trail(t, dir)
	if len(fs) != 1 {
		t.Fatalf("%d files", len(fs))
	}
	name := filepath.Base(fs[0].path)
	cached, err := os.ReadFile(fs[0].path)
	if err != nil {
		t.Fatal(err)
	}
	anchor, err := os.ReadFile(AnchorPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	syncedEnd := 0
	for _, r := range durable {
		syncedEnd += len(r)
	}
	end := bytes.IndexByte(cached, 0) // the preallocated zeros start after the records
	if end < 0 || end <= syncedEnd || !bytes.Equal(cached[:syncedEnd], bytes.Join(durable, nil)) {
		t.Fatalf("records end at %d, the durable ones at %d", end, syncedEnd)
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	cuts := []int{syncedEnd, end}
	for range 30 {
		cuts = append(cuts, syncedEnd+rng.IntN(end-syncedEnd))
	}
	for _, cut := range cuts {
		for _, zeroed := range []bool{false, true} {
			t.Run(fmt.Sprintf("cut=%d/zeroed=%v", cut, zeroed), func(t *testing.T) {
				lost := t.TempDir() + "/audit"
				if err := os.Mkdir(lost, 0o700); err != nil {
					t.Fatal(err)
				}
				file := cached[:cut]
				if zeroed {
					file = append(append([]byte(nil), cached[:cut]...), make([]byte, len(cached)-cut)...)
				}
				if err := os.WriteFile(filepath.Join(lost, name), file, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(AnchorPath(lost), anchor, 0o600); err != nil {
					t.Fatal(err)
				}
				whole := cut == syncedEnd || cached[cut-1] == '\n'
				rep, err := Verify(lost, pub)
				if err != nil {
					t.Fatalf("after the power loss: %v", err)
				}
				if rep.TornTail == whole || rep.LastSeq < rep.Anchor.Seq || rep.Anchor.Seq < uint64(len(durable)) {
					t.Fatalf("after the power loss: %+v (anchor %+v)", rep, rep.Anchor)
				}
				w := mustOpen(t, Config{Dir: lost, Signer: key})
				if err := w.Append(context.Background(), rec(-1)); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				after := mustVerify(t, lost, pub)
				if after.TornTail || after.Unsealed != 0 || after.LastSeq <= rep.LastSeq {
					t.Fatalf("after recovery: %+v", after)
				}
				got := recordLines(t, lost)
				for i, r := range durable {
					if !bytes.Equal(got[i], r) {
						t.Fatalf("durable record %d is not there after recovery", i+1)
					}
				}
			})
		}
	}
}

// recordLines are the lines of the trail in dir, newlines kept.
func recordLines(t *testing.T, dir string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, f := range trail(t, dir) {
		raw, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.IndexByte(raw, 0); i >= 0 {
			raw = raw[:i]
		}
		out = append(out, bytes.SplitAfter(raw, []byte("\n"))[:bytes.Count(raw, []byte("\n"))]...)
	}
	return out
}

func anchorOf(t *testing.T, dir string, key *ecdsa.PrivateKey) *Anchor {
	t.Helper()
	a, err := ReadAnchor(dir, &key.PublicKey)
	if err != nil || a == nil {
		t.Fatalf("anchor: %v %v", a, err)
	}
	return a
}

// TestIntervalPowerLossHole: between two fdatasyncs the disk may keep a
// later block of what was written and lose an earlier one. Open keeps what
// follows the zeros beside the trail (a file readers ignore), goes on from
// the last record before them, and the trail verifies with every durable
// record in it.
func TestIntervalPowerLossHole(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	pub := &key.PublicKey
	w := mustOpen(t, Config{Dir: dir, Signer: key, SyncInterval: time.Hour, AnchorInterval: time.Nanosecond})
	for i := range 20 {
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	durable := recordLines(t, dir)
	for i := range 30 {
		if err := w.Append(context.Background(), rec(20+i)); err != nil {
			t.Fatal(err)
		}
	}
	path := trail(t, dir)[0].path
	cached, _ := os.ReadFile(path)
	anchor, _ := os.ReadFile(AnchorPath(dir))
	w.Close()
	syncedEnd := len(bytes.Join(durable, nil))
	end := bytes.IndexByte(cached, 0)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for range 20 {
		a := syncedEnd + rng.IntN(end-syncedEnd-200)
		b := a + 1 + rng.IntN(min(end-a-100, 600)) // records follow the hole
		t.Run(fmt.Sprintf("hole=%d-%d", a, b), func(t *testing.T) {
			lost := t.TempDir() + "/audit"
			os.Mkdir(lost, 0o700)
			holed := append([]byte(nil), cached...)
			clear(holed[a:b])
			name := filepath.Join(lost, filepath.Base(path))
			if err := os.WriteFile(name, holed, 0o600); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(AnchorPath(lost), anchor, 0o600)
			if _, err := Verify(lost, pub); err == nil {
				t.Fatal("Verify passed a trail with a hole")
			}
			w := mustOpen(t, Config{Dir: lost, Signer: key})
			if err := w.Append(context.Background(), rec(-1)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if rep := mustVerify(t, lost, pub); rep.TornTail || rep.Unsealed != 0 {
				t.Fatalf("after recovery: %+v", rep)
			}
			got := recordLines(t, lost)
			for i, r := range durable {
				if !bytes.Equal(got[i], r) {
					t.Fatalf("durable record %d is not there after recovery", i+1)
				}
			}
			start := bytes.LastIndexByte(holed[:a], '\n') + 1
			kept, err := filepath.Glob(filepath.Join(lost, "*.lost"))
			if err != nil || len(kept) != 1 {
				t.Fatalf("kept aside: %v %v", kept, err)
			}
			if raw, _ := os.ReadFile(kept[0]); !bytes.Equal(raw, holed[start:end]) {
				t.Fatalf("kept aside %d bytes, want the %d after the last record before the hole", len(raw), end-start)
			}
		})
	}
}

// What SyncInterval leaves unsynced is bounded: past maxUnsynced the next
// write waits for an fdatasync.
func TestIntervalUnsyncedIsBounded(t *testing.T) {
	defer func(n int) { maxUnsynced = n }(maxUnsynced)
	maxUnsynced = 2 << 10
	dir, key := t.TempDir(), newKey(t)
	w := mustOpen(t, Config{Dir: dir, Signer: key, SyncInterval: time.Hour})
	for i := range 40 { // about 20 KiB
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if s := w.Stats(); s.Syncs < 5 {
		t.Fatalf("%d fdatasyncs for %d records with a 2 KiB bound", s.Syncs, s.Records)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, dir, &key.PublicKey)
}

// lossyFile loses what was written since its last fdatasync when one
// fails, as a kernel that marks the dirty pages clean unwritten would:
// the range reads as zeros afterwards.
type lossyFile struct {
	file
	fail   *atomic.Bool
	mu     sync.Mutex
	lo, hi int64 // the range written since the last fdatasync
}

func (f *lossyFile) WriteAt(b []byte, off int64) (int, error) {
	n, err := f.file.WriteAt(b, off)
	f.mu.Lock()
	if f.hi == 0 || off < f.lo {
		f.lo = off
	}
	f.hi = max(f.hi, off+int64(n))
	f.mu.Unlock()
	return n, err
}

func (f *lossyFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail.Load() {
		if f.hi > f.lo {
			if _, err := f.file.WriteAt(make([]byte, f.hi-f.lo), f.lo); err != nil {
				return err
			}
		}
		f.lo, f.hi = 0, 0
		return syscall.EIO
	}
	f.lo, f.hi = 0, 0
	return f.file.Sync()
}

// The copy of what SyncInterval wrote but has not made durable (unsynced,
// which lines are built in) holds exactly the bytes written: after failed
// fdatasyncs that lose them, across groups from many appenders, files
// rotated and writes that wait for an fdatasync (maxUnsynced), the retry
// writes them again and the whole trail verifies.
func TestIntervalRetryRewritesWhatWasLost(t *testing.T) {
	defer func(n int) { maxUnsynced = n }(maxUnsynced)
	maxUnsynced = 16 << 10
	dir, key := t.TempDir(), newKey(t)
	var fail atomic.Bool
	w, err := openWith(Config{Dir: dir, Signer: key, SyncInterval: time.Hour, MaxFileBytes: 256 << 10, DigestEvery: 97},
		func(path string, fresh bool) (file, error) {
			f, err := createFile(path, fresh)
			if err != nil {
				return nil, err
			}
			return &lossyFile{file: f, fail: &fail}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	const rounds, perRound, appenders = 5, 400, 16
	for round := range rounds {
		var wg sync.WaitGroup
		for g := range appenders {
			wg.Go(func() {
				for i := range perRound / appenders {
					if err := w.Append(context.Background(), rec(round*perRound+g*100+i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		fail.Store(true)
		if err := w.Sync(context.Background()); !errors.Is(err, syscall.EIO) {
			t.Fatalf("round %d: Sync over a failing fdatasync: %v", round, err)
		}
		fail.Store(false)
		for deadline := time.Now().Add(10 * time.Second); w.Err() != nil; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the Writer did not heal")
			}
		}
		if err := w.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir, &key.PublicKey)
	if got := rep.LastSeq - uint64(rep.Digests); got != rounds*perRound || rep.Unsealed != 0 {
		t.Fatalf("%d records (report %+v), want %d", got, rep, rounds*perRound)
	}
}
