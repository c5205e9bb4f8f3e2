package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRootMarker: the first start records the root kind durably; later
// starts refuse another kind, and a marker that says nothing readable is
// named as such (not as a "created with the  root" mismatch).
func TestRootMarker(t *testing.T) {
	dir := t.TempDir()
	b, _, err := openRoot(dir, rootOptions{kind: "software"})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	marker := filepath.Join(dir, "root-backend")
	if raw, err := os.ReadFile(marker); err != nil || string(raw) != "software\n" {
		t.Fatalf("marker %q, %v", raw, err)
	}
	if fi, err := os.Stat(marker); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("marker mode %v, %v", fi.Mode(), err)
	}
	if _, _, err := openRoot(dir, rootOptions{kind: "pkcs11"}); err == nil || !strings.Contains(err.Error(), "created with the software root of trust, not pkcs11") {
		t.Fatalf("another kind: %v", err)
	}
	for _, bad := range []string{"", "\n", "softw", "\x00\x00\x00"} {
		if err := os.WriteFile(marker, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := openRoot(dir, rootOptions{kind: "software"})
		if err == nil || !strings.Contains(err.Error(), "is unreadable") {
			t.Errorf("marker %q: %v", bad, err)
		}
	}
}
