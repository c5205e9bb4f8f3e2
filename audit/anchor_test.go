package audit

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Appenders run while the disk fills and empties twice: every record
// acknowledged is in the trail exactly once, records refused are at most
// once, Err follows, and the chain and its anchor verify, with no restart.
func TestTrailHealsUnderLoad(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	fl := &faults{}
	w := fl.open(t, Config{Dir: dir, Signer: key, DigestEvery: 50})
	var (
		mu      sync.Mutex
		acked   = map[string]int{}
		refused = map[string]bool{}
		wg      sync.WaitGroup
		stop    = make(chan struct{})
	)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := rec(g*100000 + i)
				err := w.Append(context.Background(), r)
				mu.Lock()
				if err == nil {
					acked[r.RequestID]++
				} else if errors.Is(err, ErrUnavailable) {
					refused[r.RequestID] = true
				} else {
					t.Errorf("append: %v", err)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	enospc := error(syscall.ENOSPC)
	for range 2 {
		time.Sleep(50 * time.Millisecond)
		fl.writeErr.Store(&enospc)
		time.Sleep(100 * time.Millisecond)
		if err := w.Err(); err == nil || err.Error() != "no space" {
			t.Errorf("Err while the disk is full: %v", err)
		}
		fl.writeErr.Store(nil)
		waitHealthy(t, w)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(refused) == 0 || len(acked) == 0 {
		t.Fatalf("%d acknowledged, %d refused: the faults did not bite", len(acked), len(refused))
	}
	mustVerify(t, dir, &key.PublicKey)
	seen := map[string]int{}
	for _, r := range all(t, dir) {
		if r.Digest == nil {
			seen[r.RequestID]++
		}
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Fatalf("acknowledged %s is in the trail %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 || (acked[id] == 0 && !refused[id]) {
			t.Fatalf("%s in the trail %d times, never appended", id, n)
		}
	}
	t.Logf("%d acknowledged, %d refused", len(acked), len(refused))
}

// Open refuses to start with less than the reserve free, and the Writer
// stops preallocating below it.
func TestReserve(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	var free int64 = 10 << 20
	space := func(string) (int64, error) { return free, nil }
	_, err := Open(Config{Dir: dir, Signer: key, freeSpace: space})
	if err == nil || !strings.Contains(err.Error(), "under the 64 MiB the trail keeps in reserve") {
		t.Fatalf("open with 10 MiB free: %v", err)
	}
	free = 66 << 20 // enough to start, not to preallocate 4 MiB
	w := mustOpen(t, Config{Dir: dir, Signer: key, freeSpace: space})
	if err := w.Append(context.Background(), rec(0)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(trail(t, dir)[0].path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() >= preallocChunk {
		t.Fatalf("preallocated %d bytes under the reserve", fi.Size())
	}
	w.Close()
	mustVerify(t, dir, &key.PublicKey)
}

// cutTrail makes a trail of several files, closed cleanly (anchored).
func cutTrail(t *testing.T) (Config, *ecdsa.PublicKey, []trailFile) {
	key := newKey(t)
	cfg := Config{Dir: t.TempDir(), Signer: key, DigestEvery: 4, MaxFileBytes: 2500}
	writeN(t, cfg, 0, 10)
	fs := trail(t, cfg.Dir)
	if len(fs) < 3 {
		t.Fatalf("%d files", len(fs))
	}
	return cfg, &key.PublicKey, fs
}

// A cut the anchor shows: Verify names it, Open refuses it (changing
// nothing), AcknowledgeGap records it, and both accept the trail after.
func checkCut(t *testing.T, cfg Config, pub *ecdsa.PublicKey, want string) {
	t.Helper()
	if bad := mustBreak(t, cfg.Dir, pub); !strings.Contains(bad.Reason, want) {
		t.Fatalf("verify: %+v, want %q", bad, want)
	}
	if _, err := Open(cfg); !errors.Is(err, ErrGap) {
		t.Fatalf("open a cut trail: %v", err)
	}
	if bad := mustBreak(t, cfg.Dir, pub); !strings.Contains(bad.Reason, want) {
		t.Fatalf("verify after the refused open: %+v", bad)
	}
	g, err := AcknowledgeGap(cfg, "disk replaced, tail lost", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AcknowledgeGap(cfg, "again", "alice"); err == nil {
		t.Fatal("acknowledged a gap twice")
	}
	writeN(t, cfg, 100, 3)
	rep := mustVerify(t, cfg.Dir, pub)
	if len(rep.Gaps) != 1 || rep.Gaps[0].Reason != "disk replaced, tail lost" || rep.Gaps[0].By != "alice" || rep.Gaps[0].FirstSeq != g.FirstSeq {
		t.Fatalf("gaps %+v", rep.Gaps)
	}
	if rep.Anchor == nil || rep.Anchor.Seq != rep.LastSeq {
		t.Fatalf("anchor %+v, last seq %d", rep.Anchor, rep.LastSeq)
	}
}

func TestAnchorCatchesADeletedTrail(t *testing.T) {
	cfg, pub, fs := cutTrail(t)
	for _, f := range fs {
		os.Remove(f.path)
	}
	checkCut(t, cfg, pub, "holds no records, but its anchor")
}

func TestAnchorCatchesACutTailAtARecordBoundary(t *testing.T) {
	cfg, pub, fs := cutTrail(t)
	last := fs[len(fs)-1].path
	l := fileLines(t, last)
	writeLines(t, last, l[:len(l)-2])
	checkCut(t, cfg, pub, "are missing (the tail was cut")
}

func TestAnchorCatchesACutTailMidRecord(t *testing.T) {
	cfg, pub, fs := cutTrail(t)
	last := fs[len(fs)-1].path
	fi, _ := os.Stat(last)
	if err := os.Truncate(last, fi.Size()-40); err != nil {
		t.Fatal(err)
	}
	checkCut(t, cfg, pub, "the newest file ends mid-record")
}

func TestAnchorCatchesDeletedNewestFile(t *testing.T) {
	cfg, pub, fs := cutTrail(t)
	os.Remove(fs[len(fs)-1].path)
	checkCut(t, cfg, pub, "are missing")
}

// A hole in the middle: Verify names the missing range and file.
func TestVerifyNamesAHole(t *testing.T) {
	cfg, pub, fs := cutTrail(t)
	os.Remove(fs[1].path)
	bad := mustBreak(t, cfg.Dir, pub)
	if !strings.Contains(bad.Reason, "missing") || !strings.Contains(bad.Reason, "file numbers jump from 000001 to 000003") {
		t.Fatalf("hole: %+v", bad)
	}
	// Records removed inside a file.
	dir, pub := sealedTrail(t, Config{})
	path := trail(t, dir)[0].path
	l := fileLines(t, path)
	writeLines(t, path, append(l[:1], l[3:]...))
	if bad := mustBreak(t, dir, pub); !strings.Contains(bad.Reason, "records 2..3 missing") || bad.Line != 2 {
		t.Fatalf("records removed: %+v", bad)
	}
}

// A file cut short under its writer and written past the cut holds a hole
// of zeros: Verify says so, not "longer than MaxLine".
func TestVerifyNamesAHoleOfZeros(t *testing.T) {
	cfg, pub, fs := cutTrail(t)
	path := fs[0].path
	raw, _ := os.ReadFile(path)
	l := fileLines(t, path)
	cut := len(l[0]) + 30 // inside record 2
	hole := make([]byte, MaxLine+100)
	writeLines(t, path, [][]byte{raw[:cut], hole, raw[len(l[0]):]})
	if bad := mustBreak(t, cfg.Dir, pub); !strings.Contains(bad.Reason, "hole of NUL bytes from byte 30") && !strings.Contains(bad.Reason, "hole of NUL bytes") {
		t.Fatalf("hole of zeros: %+v", bad)
	}
	writeLines(t, path, [][]byte{raw[:cut], make([]byte, 100), raw[len(l[0]):]})
	if bad := mustBreak(t, cfg.Dir, pub); !strings.Contains(bad.Reason, "hole of NUL bytes") || bad.Line != 2 {
		t.Fatalf("short hole of zeros: %+v", bad)
	}
}

// A trail from before anchors verifies as unanchored; Open anchors it.
func TestUnanchoredTrail(t *testing.T) {
	cfg, pub, _ := cutTrail(t)
	os.Remove(AnchorPath(cfg.Dir))
	if rep := mustVerify(t, cfg.Dir, pub); rep.Anchor != nil {
		t.Fatalf("anchor %+v", rep.Anchor)
	}
	writeN(t, cfg, 50, 1)
	if rep := mustVerify(t, cfg.Dir, pub); rep.Anchor == nil || rep.Anchor.Seq != rep.LastSeq {
		t.Fatalf("not anchored by Open: %+v", rep)
	}
	// A forged anchor is refused.
	if err := writeAnchor(AnchorPath(cfg.Dir), newKey(t), 3, &[32]byte{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(cfg.Dir, pub); !errors.Is(err, ErrBroken) {
		t.Fatalf("forged anchor: %v", err)
	}
	if _, err := Open(cfg); err == nil {
		t.Fatal("opened with a forged anchor")
	}
}

// The running Writer notices its file deleted or cut short at the next
// commit, refuses from then on, and anchors what it had written, so the
// restart sees the gap.
func TestLiveFileDeletedOrTruncated(t *testing.T) {
	for _, c := range []struct {
		name, want string
		do         func(path string) error
	}{
		{"deleted", "trail file deleted", os.Remove},
		{"truncated", "trail file truncated", func(p string) error { return os.Truncate(p, 100) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := newKey(t)
			cfg := Config{Dir: t.TempDir(), Signer: key, DigestEvery: 1000}
			w := mustOpen(t, cfg)
			for i := range 5 {
				if err := w.Append(context.Background(), rec(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.do(trail(t, cfg.Dir)[0].path); err != nil {
				t.Fatal(err)
			}
			if err := w.Append(context.Background(), rec(5)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("append after the file was %s: %v", c.name, err)
			}
			time.Sleep(3 * retryMin)
			if err := w.Err(); err == nil || err.Error() != c.want {
				t.Fatalf("Err: %v, want %q", err, c.want)
			}
			if err := w.Append(context.Background(), rec(6)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("the writer healed from a lost file: %v", err)
			}
			w.Close()
			if a, err := ReadAnchor(cfg.Dir, &key.PublicKey); err != nil || a == nil || a.Seq != 5 {
				t.Fatalf("anchor %+v, %v", a, err)
			}
			if _, err := Open(cfg); !errors.Is(err, ErrGap) {
				t.Fatalf("restart: %v", err)
			}
			if _, err := AcknowledgeGap(cfg, "file lost under the server", "bob"); err != nil {
				t.Fatal(err)
			}
			writeN(t, cfg, 10, 2)
			mustVerify(t, cfg.Dir, &key.PublicKey)
		})
	}
}

// TestIntervalAnchorCoversDigest: with SyncInterval a digest is written a
// while before it is durable, and the anchor a digest forces must wait for
// that: once Sync has made the digest durable the anchor names it (or a
// later head), without waiting AnchorInterval. Anchored when written, the
// anchor would name the head of the previous fdatasync, before the digest.
func TestIntervalAnchorCoversDigest(t *testing.T) {
	key := newKey(t)
	dir := t.TempDir()
	w := mustOpen(t, Config{Dir: dir, Signer: key, SyncInterval: time.Hour, AnchorInterval: time.Hour, DigestEvery: 5})
	defer w.Close()
	ctx := context.Background()
	for i := range 5 { // seq 1..5, the digest seq 6
		if err := w.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := ReadAnchor(dir, &key.PublicKey)
	if err != nil || a == nil {
		t.Fatalf("anchor: %v, %v", a, err)
	}
	if a.Seq < 6 {
		t.Errorf("after the digest (seq 6) was made durable the anchor records seq %d", a.Seq)
	}
}
