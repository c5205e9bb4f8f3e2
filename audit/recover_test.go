package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// crash stops w as a crash would: no final digest; what was acknowledged is
// on disk.
func crash(t *testing.T, w *Writer, fl *faults) {
	t.Helper()
	e := error(syscall.EIO)
	fl.writeErr.Store(&e)
	w.Close()
}

func TestRecoveryDropsATornLine(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	writeN(t, Config{Dir: dir, Signer: key, MaxFileBytes: 2000}, 0, 20)
	fs := trail(t, dir)
	last := fs[len(fs)-1].path
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"eventVersion":"1.08","eventTi`)
	f.Close()
	w := mustOpen(t, Config{Dir: dir, Signer: key, MaxFileBytes: 2000})
	if got := w.Stats().TornBytes; got != 31 {
		t.Fatalf("dropped %d bytes, want 31", got)
	}
	for i := range 5 {
		w.Append(context.Background(), rec(20+i))
	}
	w.Close()
	rep := mustVerify(t, dir, &key.PublicKey)
	if rep.Records != 25+rep.Digests || rep.Unsealed != 0 || rep.TornTail {
		t.Fatalf("report %+v", rep)
	}
}

// Blocks of zeros a crash left at the end of the newest file are torn
// writes too, whether or not a newline follows them.
func TestRecoveryDropsZeroedBlocks(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	writeN(t, Config{Dir: dir, Signer: key}, 0, 3)
	path := trail(t, dir)[0].path
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("\x00\x00\x00\x00\"seq\":6}\n\x00\x00\x00")
	f.Close()
	w := mustOpen(t, Config{Dir: dir, Signer: key})
	if got := w.Stats().TornBytes; got != 16 {
		t.Fatalf("dropped %d bytes, want 16", got)
	}
	w.Append(context.Background(), rec(3))
	w.Close()
	if rep := mustVerify(t, dir, &key.PublicKey); rep.LastSeq != 6 || rep.Unsealed != 0 {
		t.Fatalf("report %+v", rep)
	}
}

// A crash right after a rotation leaves an empty newest file: the chain
// goes on from the last record of the file before.
func TestRecoveryAfterAnEmptyNewestFile(t *testing.T) {
	dir, key, clk := t.TempDir(), newKey(t), newClock()
	writeN(t, Config{Dir: dir, Signer: key, Now: clk.Now}, 0, 3)
	clk.Add(time.Hour)
	empty := filepath.Join(dir, fileName(clk.Now(), 2))
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	writeN(t, Config{Dir: dir, Signer: key, Now: clk.Now}, 3, 3)
	if rep := mustVerify(t, dir, &key.PublicKey); rep.Files != 2 || rep.LastSeq != 8 || rep.Unsealed != 0 {
		t.Fatalf("report %+v", rep)
	}
	if n := len(fileLines(t, empty)); n != 4 {
		t.Fatalf("the empty file got %d lines, want 4", n)
	}
}

// After a crash the next digest starts where the last one ended, even when
// that digest is in an older file.
func TestRecoveryContinuesTheDigestRange(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	cfg := Config{Dir: dir, Signer: key, DigestEvery: 3, MaxFileBytes: 1200}
	fl := &faults{}
	w := fl.open(t, cfg)
	for i := range 5 { // a digest after 3, then 2 records unsealed, in a later file
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, w, fl)
	if rep := mustVerify(t, dir, &key.PublicKey); rep.Unsealed != 2 || rep.Files < 2 {
		t.Fatalf("before recovery: %+v", rep)
	}
	writeN(t, cfg, 5, 4)
	if rep := mustVerify(t, dir, &key.PublicKey); rep.Unsealed != 0 || rep.Records != 9+rep.Digests {
		t.Fatalf("after recovery: %+v", rep)
	}
}

// When the last complete record is unreadable the chain cannot go on: Open
// refuses and changes nothing.
func TestRecoveryRefusesACorruptLastRecord(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	writeN(t, Config{Dir: dir, Signer: key}, 0, 3)
	path := trail(t, dir)[0].path
	l := fileLines(t, path)
	l[len(l)-1] = []byte("garbage\n")
	writeLines(t, path, l)
	before, _ := os.ReadFile(path)
	if _, err := Open(Config{Dir: dir, Signer: key}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open over a corrupt record: %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("open changed the trail it refused")
	}
}
