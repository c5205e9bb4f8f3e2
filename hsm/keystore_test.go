//go:build cgo

package hsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

// runKeyStoreConformance holds a KeyStoreBackend to its contract. Labels
// carry the test name, so runs over the backend and over a pool on the
// same token do not meet.
func runKeyStoreConformance(t *testing.T, ks KeyStoreBackend, rootLabel string) {
	ctx := context.Background()
	label := func(s string) string { return fmt.Sprintf("%s/%s", t.Name(), s) }
	aad := []byte("aws:kms:encryption-context")

	if err := ks.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	id, err := ks.GenerateKey(ctx, label("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.GenerateKey(ctx, label("a")); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("duplicate label: %v, want ErrKeyExists", err)
	}
	other, err := ks.GenerateKey(ctx, label("b"))
	if err != nil {
		t.Fatal(err)
	}

	for _, n := range []int{0, 1, 32, 4096} {
		pt := bytes.Repeat([]byte{0x5a}, n)
		blob, err := ks.Encrypt(ctx, id, pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ks.Decrypt(ctx, id, blob, aad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	blob, err := ks.Encrypt(ctx, id, []byte("secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Decrypt(ctx, id, blob, []byte("other")); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("wrong aad: %v", err)
	}
	if _, err := ks.Decrypt(ctx, other, blob, aad); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("wrong key: %v", err)
	}
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x10
		if _, err := ks.Decrypt(ctx, id, bad, aad); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	if _, err := ks.Encrypt(ctx, id, make([]byte, MaxPlaintext+1), nil); err == nil {
		t.Fatal("oversized plaintext accepted")
	}

	// The root key is out of reach: an encryption oracle under it would
	// forge wrapped root blobs.
	if _, err := ks.Encrypt(ctx, rootLabel, []byte("x"), nil); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("encrypt under the root key: %v, want ErrKeyNotFound", err)
	}
	if err := ks.DestroyKey(ctx, rootLabel); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("destroy the root key: %v, want ErrKeyNotFound", err)
	}
	for _, bad := range []string{"", "new\nline", string(make([]byte, MaxLabel+1))} {
		if _, err := ks.GenerateKey(ctx, bad); err == nil {
			t.Fatalf("label %q accepted", bad)
		}
	}

	for _, n := range []int{1, 32, 1024, MaxRandom} {
		r, err := ks.GenerateRandom(ctx, n)
		if err != nil || len(r) != n {
			t.Fatalf("GenerateRandom(%d): %d bytes, %v", n, len(r), err)
		}
	}
	for _, n := range []int{-1, 0, MaxRandom + 1} {
		if _, err := ks.GenerateRandom(ctx, n); err == nil {
			t.Fatalf("GenerateRandom(%d) accepted", n)
		}
	}

	if err := ks.DestroyKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Decrypt(ctx, id, blob, aad); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("decrypt after destroy: %v, want ErrKeyNotFound", err)
	}
	if err := ks.DestroyKey(ctx, id); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("second destroy: %v, want ErrKeyNotFound", err)
	}
	if err := ks.DestroyKey(ctx, other); err != nil {
		t.Fatal(err)
	}
}

func TestKeyStore(t *testing.T) {
	t.Run("backend=pkcs11", func(t *testing.T) {
		b := openPKCS11(t, "keystore-root")
		runKeyStoreConformance(t, b, "keystore-root")
	})
	t.Run("pool=pkcs11", func(t *testing.T) {
		p := newTestPool(t, openPKCS11(t, "keystore-root"), PoolConfig{Workers: 2})
		runKeyStoreConformance(t, p, "keystore-root")
	})
}

func TestKeyStoreKeyNeverLeaves(t *testing.T) {
	b := openPKCS11(t, "keystore-attrs-root")
	id, err := b.GenerateKey(context.Background(), "keystore-attrs")
	if err != nil {
		t.Fatal(err)
	}
	checkKeyAttributes(t, b, id)
}
