package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// logicalSize is where the records of path end: its first NUL byte, or its
// size.
func logicalSize(t *testing.T, path string) (records, size int64) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexByte(raw, 0); i >= 0 {
		return int64(i), int64(len(raw))
	}
	return int64(len(raw)), int64(len(raw))
}

// The live file ends in preallocated zeros; every reader stops at them,
// and Close cuts them off.
func TestPreallocatedTailIsInvisible(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w := mustOpen(t, Config{Dir: dir, Signer: key, DigestEvery: 1 << 30})
	for i := range 5 {
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	path := trail(t, dir)[0].path
	records, size := logicalSize(t, path)
	if size != preallocChunk || records >= size {
		t.Fatalf("live file: %d bytes of records in a file of %d, want preallocation to %d", records, size, preallocChunk)
	}
	if got := len(fileLines(t, path)); got != 5 {
		t.Fatalf("%d lines before the zeros, want 5", got)
	}
	rep, err := Verify(dir, &key.PublicKey)
	if err != nil || rep.Records != 5 || rep.TornTail {
		t.Fatalf("verify of the live trail: %+v, %v", rep, err)
	}
	if end, err := endOfLastLine(path); err != nil || end != records {
		t.Fatalf("end of the last line: %d, %v; want %d", end, err, records)
	}
	n := 0
	if err := Query(dir, Filter{}, func(*Record) error { n++; return nil }); err != nil || n != 5 {
		t.Fatalf("query saw %d records (%v), want 5", n, err)
	}

	// Tail started now passes exactly what comes next.
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 10)
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- tail(ctx, dir, time.Millisecond, ready, func(r *Record) error { got <- r.RequestID; return nil })
	}()
	<-ready
	for i := 5; i < 8; i++ {
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 5; i < 8; i++ {
		if id, want := <-got, fmt.Sprintf("req-%06d", i); id != want {
			t.Fatalf("tail gave %s, want %s", id, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	records, size = logicalSize(t, path)
	if records != size {
		t.Fatalf("closed file: %d bytes of records, %d in the file: zeros left behind", records, size)
	}
	// Reopened, the Writer preallocates again and the chain goes on.
	writeN(t, Config{Dir: dir, Signer: key, DigestEvery: 1 << 30}, 8, 2)
	if rep, err := Verify(dir, &key.PublicKey); err != nil || rep.Records-rep.Digests != 10 {
		t.Fatalf("verify after reopening: %+v, %v", rep, err)
	}
}

// Blanking records out with zeros, or leaving zeros at the end of a file
// that is not the newest, is caught.
func TestVerifyCatchesZeros(t *testing.T) {
	t.Run("blanked records", func(t *testing.T) {
		dir, key := t.TempDir(), newKey(t)
		w := mustOpen(t, Config{Dir: dir, Signer: key, DigestEvery: 1 << 30})
		defer w.Close()
		for i := range 6 {
			if err := w.Append(context.Background(), rec(i)); err != nil {
				t.Fatal(err)
			}
		}
		path := trail(t, dir)[0].path
		lines := fileLines(t, path)
		raw, _ := os.ReadFile(path)
		off := len(bytes.Join(lines[:2], nil))
		blank := len(bytes.Join(lines[2:4], nil))
		copy(raw[off:off+blank], make([]byte, blank))
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(dir, &key.PublicKey)
		if err == nil || rep.Bad == nil || rep.Bad.Line != 3 || !strings.Contains(rep.Bad.Reason, "blanked out") {
			t.Fatalf("verify: %+v, %v; want line 3 named as blanked out", rep, err)
		}
	})
	t.Run("zeros in an older file", func(t *testing.T) {
		dir, key := t.TempDir(), newKey(t)
		writeN(t, Config{Dir: dir, Signer: key, MaxFileBytes: 1500, DigestEvery: 1 << 30}, 0, 6)
		fs := trail(t, dir)
		if len(fs) < 2 {
			t.Fatalf("%d files, want rotation", len(fs))
		}
		f, err := os.OpenFile(fs[0].path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(make([]byte, 100))
		f.Close()
		rep, err := Verify(dir, &key.PublicKey)
		if err == nil || rep.Bad == nil || !strings.Contains(rep.Bad.Reason, "not the newest") {
			t.Fatalf("verify: %+v, %v; want the older file's zeros named", rep, err)
		}
	})
}
