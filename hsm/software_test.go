package hsm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSoftwareRootPersistsAndWraps(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "root.key")
	s, err := OpenSoftware(SoftwareConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("root key mode %v, want 0600", st.Mode().Perm())
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	aad := []byte("arn:aws:kms:us-east-1:111122223333:key/k#0")
	w, err := s.Wrap(ctx, secret, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w, secret) {
		t.Fatal("wrapped blob contains the plaintext")
	}
	s.Close()

	s2, err := OpenSoftware(SoftwareConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Unwrap(ctx, w, aad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("unwrap after reopen: %v", err)
	}
	if _, err := s2.Unwrap(ctx, w, []byte("other aad")); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("wrong aad: %v", err)
	}
	for i := range w {
		bad := bytes.Clone(w)
		bad[i] ^= 0x01
		if _, err := s2.Unwrap(ctx, bad, aad); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("flip byte %d: %v", i, err)
		}
	}
	if _, err := s2.Unwrap(ctx, w[:10], aad); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestSoftwareRootPassphrase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "root.key")
	s, err := OpenSoftware(SoftwareConfig{Path: path, Passphrase: []byte("correct horse")})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := s.Wrap(ctx, []byte("material"), nil)
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, s.key) {
		t.Fatal("passphrase-sealed file holds the raw key")
	}
	for _, pass := range [][]byte{nil, []byte("wrong")} {
		if _, err := OpenSoftware(SoftwareConfig{Path: path, Passphrase: pass}); !errors.Is(err, ErrSealed) {
			t.Fatalf("passphrase %q: %v", pass, err)
		}
	}
	s2, err := OpenSoftware(SoftwareConfig{Path: path, Passphrase: []byte("correct horse")})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Unwrap(ctx, w, nil); err != nil || string(got) != "material" {
		t.Fatalf("unwrap: %q %v", got, err)
	}
}

func TestSoftwareRootCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	if _, err := OpenSoftware(SoftwareConfig{Path: path}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	for _, bad := range [][]byte{raw[:20], append(bytes.Clone(raw[:10]), 0xff), []byte("garbage")} {
		os.Remove(path)
		os.WriteFile(path, bad, 0o600)
		if _, err := OpenSoftware(SoftwareConfig{Path: path}); !errors.Is(err, ErrSealed) {
			t.Fatalf("corrupt file accepted: %v", err)
		}
	}
	flipped := bytes.Clone(raw)
	flipped[8] ^= 1
	os.Remove(path)
	os.WriteFile(path, flipped, 0o600)
	if _, err := OpenSoftware(SoftwareConfig{Path: path}); !errors.Is(err, ErrSealed) {
		t.Fatalf("bit flip accepted: %v", err)
	}
}

func TestSoftwareCloseZeroes(t *testing.T) {
	s, err := OpenSoftware(SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	key := s.key
	s.Close()
	if !bytes.Equal(key, make([]byte, rootKeySize)) {
		t.Fatal("Close left the root key in memory")
	}
	if _, err := s.OpenSession(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("OpenSession after Close: %v", err)
	}
}
