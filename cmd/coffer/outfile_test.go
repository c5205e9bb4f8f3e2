package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// An outFile passes writes in order and at offsets through to the file
// while it starts write-back on the way, and stop ends its goroutine.
func TestOutFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := make([]byte, 3*writebackEvery+12345)
	rand.Read(want)
	o := newOutFile(f)
	half := len(want) / 2
	if n, err := o.Write(want[:half]); err != nil || n != half {
		t.Fatal(n, err)
	}
	// The rest at offsets, last chunk first.
	rest := want[half:]
	const chunk = 1 << 20
	for off := (len(rest) - 1) / chunk * chunk; off >= 0; off -= chunk {
		end := min(off+chunk, len(rest))
		if n, err := o.WriteAt(rest[off:end], int64(half+off)); err != nil || n != end-off {
			t.Fatal(n, err)
		}
	}
	if pos, err := o.Seek(0, 1); err != nil || pos != int64(half) {
		t.Fatalf("offset %d, %v: WriteAt moved it", pos, err)
	}
	o.stop()
	if o.written.Load() != int64(len(want)) {
		t.Fatalf("counted %d bytes written, want %d", o.written.Load(), len(want))
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the file holds other bytes (%d of %d), %v", len(got), len(want), err)
	}
}
