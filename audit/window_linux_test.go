package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Under the interval policy records are written through a shared mapping
// of the current file's preallocated space: it follows the file as it
// grows and rotates, what it writes is what read(2) sees (the page cache),
// and the chain verifies.
func TestIntervalWritesThroughTheMapping(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w := mustOpen(t, Config{Dir: dir, Signer: key, SyncInterval: time.Hour, MaxFileBytes: 64 << 10})
	mapped := 0
	for i := range 400 { // about 7 files of 64 KiB
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
		w.wmu.Lock()
		end := w.win.off + int64(len(w.win.b))
		if w.win.b != nil && w.win.off <= w.fileBytes && w.fileBytes <= end && end == w.allocated {
			mapped++
			// The last line written, as the mapping holds it and as the
			// file does.
			got := make([]byte, 64)
			if _, err := w.f.(*dataSyncFile).ReadAt(got, w.fileBytes-int64(len(got))); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, w.win.b[w.fileBytes-w.win.off-64:w.fileBytes-w.win.off]) || got[63] != '\n' {
				t.Fatalf("record %d: the file reads %q where the mapping holds the line's end", i, got)
			}
		}
		w.wmu.Unlock()
	}
	if mapped < 390 {
		t.Fatalf("%d of 400 records were written with the current file mapped", mapped)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, dir, &key.PublicKey); rep.LastSeq != 400+uint64(rep.Digests) || rep.Files < 5 {
		t.Fatalf("report %+v", rep)
	}
}

// A trail file cut short by someone else under the mapping makes the copy
// fault: the Writer fails (a restart is needed, as for any truncated
// trail) and the process does not crash. The clock stands still, so that
// the once-a-millisecond check of the file does not find the cut first.
func TestIntervalTruncatedUnderTheMapping(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	now := time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)
	w := mustOpen(t, Config{Dir: dir, Signer: key, SyncInterval: time.Hour, Now: func() time.Time { return now }})
	for i := range 3 {
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"+fileSuffix))
	if err != nil || len(files) != 1 {
		t.Fatalf("trail files %v (%v)", files, err)
	}
	if err := os.Truncate(files[0], 0); err != nil {
		t.Fatal(err)
	}
	err = w.Append(context.Background(), rec(3))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errFileTruncated) {
		t.Fatalf("Append into a file cut under the mapping: %v", err)
	}
	if err := w.Append(context.Background(), rec(4)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append after the fault: %v", err)
	}
	w.Close()
}
