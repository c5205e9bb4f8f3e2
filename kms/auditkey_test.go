package kms

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// TestAuditSignerRewrap creates the audit signing key under one root, moves
// it with RewrapAll to another, and checks that only the new root opens it,
// that the same key comes back, and that a second run finds it moved.
func TestAuditSignerRewrap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, pubDir := filepath.Join(dir, AuditKeyFile), filepath.Join(dir, "audit")
	from, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	to, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	k, err := AuditSigner(ctx, from, path, pubDir)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := audit.ReadPublicKey(pubDir)
	if err != nil || !pub.Equal(&k.PublicKey) {
		t.Fatalf("public key: %v", err)
	}
	if again, err := AuditSigner(ctx, from, path, pubDir); err != nil || !again.Equal(k) {
		t.Fatalf("second load: %v", err)
	}

	store := keystore.NewMemory()
	st, err := RewrapAll(ctx, store, path, from, to)
	if err != nil || !st.AuditKey || st.AlreadyMoved != 0 {
		t.Fatalf("RewrapAll: %+v %v", st, err)
	}
	if _, err := AuditSigner(ctx, from, path, pubDir); !errors.Is(err, hsm.ErrUnwrap) {
		t.Fatalf("old root after the move: %v, want ErrUnwrap", err)
	}
	if moved, err := AuditSigner(ctx, to, path, pubDir); err != nil || !moved.Equal(k) {
		t.Fatalf("new root: %v", err)
	}
	st, err = RewrapAll(ctx, store, path, from, to)
	if err != nil || st.AuditKey || st.AlreadyMoved != 1 {
		t.Fatalf("second RewrapAll: %+v %v", st, err)
	}
	if st, err := RewrapAll(ctx, store, filepath.Join(dir, "none"), from, to); err != nil || st.AuditKey || st.AlreadyMoved != 0 {
		t.Fatalf("RewrapAll without an audit key: %+v %v", st, err)
	}
}
