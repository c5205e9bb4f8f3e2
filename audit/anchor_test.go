package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"io/fs"
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

// slotSeqs reads the seq each slot of the anchor file verifies with (-1:
// empty, -2: does not verify; -3 both: no file of two slots).
func slotSeqs(t *testing.T, dir string, pub *ecdsa.PublicKey) [anchorSlots]int {
	t.Helper()
	raw, err := os.ReadFile(AnchorPath(dir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if len(raw) != anchorBytes {
		return [anchorSlots]int{-3, -3}
	}
	var out [anchorSlots]int
	for i := range out {
		a, err := readSlot(raw[i*anchorSlot:(i+1)*anchorSlot], pub)
		switch {
		case err != nil:
			out[i] = -2
		case a == nil:
			out[i] = -1
		default:
			out[i] = int(a.Seq)
		}
	}
	return out
}

// waitSlots waits for the Writer, which anchors right after it
// acknowledges a commit, to leave the anchor file's slots at want.
func waitSlots(t *testing.T, dir string, pub *ecdsa.PublicKey, want [anchorSlots]int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := slotSeqs(t, dir, pub)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slots %v, want %v", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// The Writer replaces the anchor file whole at Open (slot 0, slot 1
// empty), then writes the slots in turn, in place: each anchor leaves the
// one before it in the other slot.
func TestAnchorSlotsInTurn(t *testing.T) {
	key := newKey(t)
	pub := &key.PublicKey
	dir := t.TempDir()
	w := mustOpen(t, Config{Dir: dir, Signer: key, DigestEvery: 2, AnchorInterval: time.Hour})
	if got := slotSeqs(t, dir, pub); got != [2]int{0, -1} {
		t.Fatalf("after Open: slots %v", got)
	}
	ctx := context.Background()
	prev := [2]int{0, -1}
	for i := range 6 {
		if err := w.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // no digest yet: no anchor
			if got := slotSeqs(t, dir, pub); got != prev {
				t.Fatalf("record %d: slots %v, were %v", i+1, got, prev)
			}
			continue
		}
		// Records 2, 4, 6 each end with a digest (seq 3, 6, 9) the anchor covers.
		head := 3 * (i + 1) / 2
		want := [2]int{prev[0], head}
		if (i+1)/2%2 == 0 {
			want = [2]int{head, prev[1]}
		}
		waitSlots(t, dir, pub, want)
		if a, err := ReadAnchor(dir, pub); err != nil || a.Seq != uint64(head) || a.Damaged != "" {
			t.Fatalf("ReadAnchor: %+v, %v", a, err)
		}
		prev = want
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, dir, pub)
}

// A slot a write cut short (or any damage to one slot) leaves the other:
// ReadAnchor, Open and Verify take the slot that verifies, name the other,
// and still catch a tail cut before it. Both slots damaged is an error.
func TestAnchorTornSlot(t *testing.T) {
	key := newKey(t)
	pub := &key.PublicKey
	cfg := Config{Dir: t.TempDir(), Signer: key, DigestEvery: 2, AnchorInterval: time.Hour}
	w := mustOpen(t, cfg)
	for i := range 4 { // digests at seq 3 (slot 1) and 6 (slot 0)
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close() // nothing after the last digest: the anchor stays at seq 6
	if got := slotSeqs(t, cfg.Dir, pub); got != [2]int{6, 3} {
		t.Fatalf("slots %v", got)
	}
	path := AnchorPath(cfg.Dir)
	orig, _ := os.ReadFile(path)
	tear := func(slot, at int, with []byte) {
		t.Helper()
		raw := bytes.Clone(orig)
		copy(raw[slot*anchorSlot+at:], with)
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The newer slot torn (its first bytes written, the rest still the old
	// anchor's): the older one is the anchor.
	tear(0, 20, bytes.Repeat([]byte{'7'}, 30))
	a, err := ReadAnchor(cfg.Dir, pub)
	if err != nil || a.Seq != 3 || !strings.Contains(a.Damaged, "slot 0") {
		t.Fatalf("newer slot torn: %+v, %v", a, err)
	}
	rep := mustVerify(t, cfg.Dir, pub)
	if rep.Anchor == nil || rep.Anchor.Seq != 3 || rep.Anchor.Damaged == "" {
		t.Fatalf("verify: anchor %+v", rep.Anchor)
	}
	// The older slot zeroed past its line's start: the newer one holds.
	tear(1, 5, make([]byte, 40))
	if a, err := ReadAnchor(cfg.Dir, pub); err != nil || a.Seq != 6 || !strings.Contains(a.Damaged, "slot 1") {
		t.Fatalf("older slot torn: %+v, %v", a, err)
	}
	// A cut the surviving slot covers is still caught.
	tear(0, 20, bytes.Repeat([]byte{'7'}, 30))
	last := trail(t, cfg.Dir)[len(trail(t, cfg.Dir))-1].path
	l := fileLines(t, last)
	saved, _ := os.ReadFile(last)
	writeLines(t, last, l[:len(l)-5]) // records 2.. gone: before the slot's seq 3
	if _, err := Open(cfg); !errors.Is(err, ErrGap) {
		t.Fatalf("open a trail cut before the surviving slot: %v", err)
	}
	if err := os.WriteFile(last, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	// Both slots damaged: no anchor, an error.
	raw := bytes.Clone(orig)
	raw[30], raw[anchorSlot+30] = 'x', 'x'
	os.WriteFile(path, raw, 0o600)
	if _, err := ReadAnchor(cfg.Dir, pub); err == nil || !strings.Contains(err.Error(), "slot 0") || !strings.Contains(err.Error(), "slot 1") {
		t.Fatalf("both slots damaged: %v", err)
	}
	if _, err := Open(cfg); err == nil {
		t.Fatal("opened with both slots of the anchor damaged")
	}
	// A file longer than two slots, and a slot of two lines.
	long := append(bytes.Clone(orig), 0)
	os.WriteFile(path, long, 0o600)
	if _, err := ReadAnchor(cfg.Dir, pub); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("a file longer than two slots: %v", err)
	}
	twoLines := bytes.Clone(orig)
	end := bytes.IndexByte(twoLines, '\n')
	copy(twoLines[end+1:], "{}\n")
	os.WriteFile(path, twoLines, 0o600)
	if a, err := ReadAnchor(cfg.Dir, pub); err != nil || a.Seq != 3 || !strings.Contains(a.Damaged, "not one line") {
		t.Fatalf("two lines in slot 0: %+v, %v", a, err)
	}
	// Restored, the trail opens and the Writer goes on from the slots.
	os.WriteFile(path, orig, 0o600)
	writeN(t, cfg, 10, 1)
	mustVerify(t, cfg.Dir, pub)
}

// An anchor file of one line (written before slots) reads as slot 0; the
// next Open replaces it with the slot file.
func TestAnchorOfOneLine(t *testing.T) {
	cfg, pub, a := anchoredTrail(t)
	writeOneLine(t, cfg.Dir, a)
	if b, err := ReadAnchor(cfg.Dir, pub); err != nil || b.Seq != a.Seq || b.HeadHash != a.HeadHash || b.Damaged != "" {
		t.Fatalf("one line: %+v, %v (was %+v)", b, err, a)
	}
	writeN(t, cfg, 3, 1)
	if got := slotSeqs(t, cfg.Dir, pub); got[0] < int(a.Seq) {
		t.Fatalf("slots %v after Open", got)
	}
	mustVerify(t, cfg.Dir, pub)
}

// The anchor file removed, or replaced by another of a different size,
// under a running Writer: its next anchor replaces the file whole.
func TestAnchorFileReplacedUnderTheWriter(t *testing.T) {
	key := newKey(t)
	pub := &key.PublicKey
	dir := t.TempDir()
	w := mustOpen(t, Config{Dir: dir, Signer: key, DigestEvery: 1, AnchorInterval: time.Hour})
	defer w.Close()
	ctx := context.Background()
	for i, change := range []func(){
		func() { os.Remove(AnchorPath(dir)) },
		func() { os.WriteFile(AnchorPath(dir), []byte("{}\n"), 0o600) },
	} {
		if err := w.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
		waitSlots(t, dir, pub, [2]int{4 * i, 4*i + 2}) // in place, in slot 1
		change()
		if err := w.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
		// Each record is followed by its digest: the head is at 4i+4.
		waitSlots(t, dir, pub, [2]int{4*i + 4, -1})
	}
}

// The anchor's signature covers the head's bytes, not how its hex is
// spelled: an anchor with the head in capitals verifies, and must not make
// Open see a replaced record (found by FuzzAnchor).
func TestAnchorHeadInCapitals(t *testing.T) {
	cfg, pub, a := anchoredTrail(t)
	upper := *a
	upper.HeadHash = strings.ToUpper(a.HeadHash)
	writeOneLine(t, cfg.Dir, &upper)
	if b, err := ReadAnchor(cfg.Dir, pub); err != nil || b.HeadHash != a.HeadHash {
		t.Fatalf("read %+v, %v; want the head %s", b, err, a.HeadHash)
	}
	writeN(t, cfg, 3, 1) // Open checks the anchored record
	mustVerify(t, cfg.Dir, pub)
}

// anchoredTrail is a trail of three records, closed, and its anchor.
func anchoredTrail(t *testing.T) (Config, *ecdsa.PublicKey, *Anchor) {
	t.Helper()
	key := newKey(t)
	cfg := Config{Dir: t.TempDir(), Signer: key}
	writeN(t, cfg, 0, 3)
	a, err := ReadAnchor(cfg.Dir, &key.PublicKey)
	if err != nil || a == nil || a.Seq == 0 {
		t.Fatal(a, err)
	}
	return cfg, &key.PublicKey, a
}

// writeOneLine replaces the anchor file of dir with a as one line, the
// file as it was before slots.
func writeOneLine(t *testing.T, dir string, a *Anchor) {
	t.Helper()
	line, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(AnchorPath(dir), append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
}
