// Under -race, sync.Pool drops a random share of what is put in it, so
// allocation counts mean nothing there.

//go:build !race

package engine

import (
	"testing"

	"github.com/coffer-kms/coffer/asm"
)

// TestSealOpenAllocations holds Seal and Open to no allocation of their
// own when dst has room: their working state is pooled (message), and an
// array that escapes again (through rand.Read, hash.Hash or asm.GCM) would
// cost an allocation per call without a word.
//
// With asm's kernels only: on the standard library's AES-GCM (the purego
// build, a CPU without VAES, arm64) the additional data and nonce pass
// through a cipher.AEAD interface and escape there.
func TestSealOpenAllocations(t *testing.T) {
	if k := asm.Kernel(); k == "stdlib" {
		t.Skipf("asm runs the standard library's AES-GCM here (%s)", k)
	}
	m := testMaterial(t)
	var id KeyID
	pt := make([]byte, 1024)
	ec := map[string]string{"purpose": "allocs"}
	blob, err := Seal(nil, m, id, 0, pt, ec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseBlob(blob)
	if err != nil {
		t.Fatal(err)
	}
	sealed := make([]byte, 0, len(blob))
	opened := make([]byte, 0, len(pt))
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Seal(sealed[:0], m, id, 0, pt, ec); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Seal: %.0f allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Open(opened[:0], m, b, ec); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Open: %.0f allocations, want 0", n)
	}
}
