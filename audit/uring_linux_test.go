package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func ringOrSkip(t *testing.T) *syncRing {
	t.Helper()
	r, err := newSyncRing()
	if err != nil {
		t.Skipf("io_uring unavailable here (%v): the Writer falls back to fdatasync", err)
	}
	t.Cleanup(r.close)
	return r
}

// The ring's fdatasync makes data durable and reports the kernel's errors.
func TestSyncRingFdatasync(t *testing.T) {
	r := ringOrSkip(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 100 { // many submissions: the ring's indices wrap
		if _, err := f.Write([]byte("record\n")); err != nil {
			t.Fatal(err)
		}
		if err := r.fdatasync(f); err != nil {
			t.Fatalf("submission %d: %v", i, err)
		}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if err := r.fdatasync(pw); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("fdatasync of a pipe: %v, want EINVAL as fdatasync(2) gives", err)
	}
	if err := r.fdatasync(f); err != nil { // still usable after a failure
		t.Fatal(err)
	}
}

// The Writer syncs through the ring where there is one, and directly when
// told to; both keep the trail verifiable.
func TestWriterSyncPaths(t *testing.T) {
	ringOrSkip(t)
	for _, direct := range []bool{false, true} {
		dir, key := t.TempDir(), newKey(t)
		w := mustOpen(t, Config{Dir: dir, Signer: key, DirectSync: direct})
		if (w.ring == nil) != direct {
			t.Fatalf("DirectSync %v: ring %v", direct, w.ring != nil)
		}
		for i := range 20 {
			if err := w.Append(context.Background(), rec(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if rep, err := Verify(dir, &key.PublicKey); err != nil || rep.Records-rep.Digests != 20 {
			t.Fatalf("DirectSync %v: %+v, %v", direct, rep, err)
		}
	}
}
