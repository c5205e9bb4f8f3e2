package hsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// runConformance holds a Backend to the contract in hsm.go. open returns a
// fresh backend (closed by the caller's cleanup or by the Close subtest).
func runConformance(t *testing.T, open func(t *testing.T) Backend) {
	ctx := context.Background()
	aad := []byte("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab#0")

	t.Run("RoundTrip", func(t *testing.T) {
		b := open(t)
		for _, n := range []int{0, 1, 15, 16, 17, 32, 64, 4096} {
			for _, a := range [][]byte{nil, {0}, aad, bytes.Repeat([]byte{0xa5}, 1000)} {
				pt := bytes.Repeat([]byte{byte(n)}, n)
				w, err := b.Wrap(ctx, pt, a)
				if err != nil {
					t.Fatalf("wrap %d bytes: %v", n, err)
				}
				if len(w) != n+blobOverhead {
					t.Fatalf("wrap %d bytes: blob of %d bytes, want %d", n, len(w), n+blobOverhead)
				}
				if n >= 4 && bytes.Contains(w, pt) {
					t.Fatalf("wrap %d bytes: blob holds the plaintext", n)
				}
				got, err := b.Unwrap(ctx, w, a)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("unwrap %d bytes, aad %d bytes: %v", n, len(a), err)
				}
			}
		}
	})

	t.Run("WrapsDiffer", func(t *testing.T) {
		b := open(t)
		pt := []byte("the same material, wrapped twice")
		w1, err1 := b.Wrap(ctx, pt, aad)
		w2, err2 := b.Wrap(ctx, pt, aad)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(w1[1:1+gcmNonceSize], w2[1:1+gcmNonceSize]) || bytes.Equal(w1, w2) {
			t.Fatal("two wraps share a nonce")
		}
	})

	t.Run("AADBinding", func(t *testing.T) {
		b := open(t)
		w, err := b.Wrap(ctx, []byte("material"), aad)
		if err != nil {
			t.Fatal(err)
		}
		for _, other := range [][]byte{nil, aad[:len(aad)-1], append(bytes.Clone(aad), 0), []byte("arn:aws:kms:us-east-1:111122223333:key/other#0")} {
			if _, err := b.Unwrap(ctx, w, other); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("aad %q: %v, want ErrUnwrap", other, err)
			}
		}
	})

	t.Run("TamperEveryByte", func(t *testing.T) {
		b := open(t)
		w, err := b.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"), aad)
		if err != nil {
			t.Fatal(err)
		}
		for i := range w {
			for _, bit := range []byte{0x01, 0x80} {
				bad := bytes.Clone(w)
				bad[i] ^= bit
				if pt, err := b.Unwrap(ctx, bad, aad); !errors.Is(err, ErrUnwrap) || pt != nil {
					t.Fatalf("byte %d ^ %#x: %v, want ErrUnwrap", i, bit, err)
				}
			}
		}
		for n := range len(w) {
			if _, err := b.Unwrap(ctx, w[:n], aad); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("truncated to %d bytes: %v, want ErrUnwrap", n, err)
			}
		}
		if _, err := b.Unwrap(ctx, append(bytes.Clone(w), 0), aad); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("extended: %v, want ErrUnwrap", err)
		}
		// The blob still opens: no failure above left the backend broken.
		if _, err := b.Unwrap(ctx, w, aad); err != nil {
			t.Fatalf("after tampering: %v", err)
		}
	})

	t.Run("ForeignBlobs", func(t *testing.T) {
		b := open(t)
		for name, w := range foreignBlobs(t, aad) {
			if _, err := b.Unwrap(ctx, w, aad); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("blob from %s: %v, want ErrUnwrap", name, err)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		b := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					pt := []byte(fmt.Sprintf("goroutine %d, material %d", g, i))
					a := []byte(fmt.Sprintf("aad %d", i%3))
					w, err := b.Wrap(ctx, pt, a)
					if err != nil {
						errs <- err
						return
					}
					got, err := b.Unwrap(ctx, w, a)
					if err != nil || !bytes.Equal(got, pt) {
						errs <- fmt.Errorf("unwrap: %q %v", got, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})

	t.Run("ContextCancelled", func(t *testing.T) {
		b := open(t)
		w, err := b.Wrap(ctx, []byte("material"), aad)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := b.Wrap(cctx, []byte("material"), aad); !errors.Is(err, context.Canceled) {
			t.Fatalf("wrap: %v, want context.Canceled", err)
		}
		if pt, err := b.Unwrap(cctx, w, aad); !errors.Is(err, context.Canceled) || pt != nil {
			t.Fatalf("unwrap: %v, want context.Canceled", err)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		b := open(t)
		if _, err := b.Wrap(ctx, make([]byte, MaxPlaintext+1), aad); err == nil {
			t.Fatal("oversized plaintext accepted")
		}
		for _, w := range [][]byte{nil, {}, {0}, {wrapVersion}, {wrapVersionPKCS11}, bytes.Repeat([]byte{0xff}, 100)} {
			if _, err := b.Unwrap(ctx, w, aad); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("unwrap %x: %v, want ErrUnwrap", w, err)
			}
		}
	})

	t.Run("Close", func(t *testing.T) {
		b := open(t)
		w, err := b.Wrap(ctx, []byte("material"), aad)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Wrap(ctx, []byte("material"), aad); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("wrap after Close: %v, want ErrClosed", err)
		}
		if _, err := b.Unwrap(ctx, w, aad); !errors.Is(err, ErrClosed) {
			t.Fatalf("unwrap after Close: %v, want ErrClosed", err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// foreignBlobs returns blobs that other roots wrapped under aad: none may
// unwrap anywhere else.
func foreignBlobs(t *testing.T, aad []byte) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := make(map[string][]byte)
	other, err := OpenSoftware(SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if out["another software root"], err = other.Wrap(ctx, []byte("material"), aad); err != nil {
		t.Fatal(err)
	}
	if p := tryPKCS11(t, "foreign-root"); p != nil {
		if out["another pkcs11 root"], err = p.Wrap(ctx, []byte("material"), aad); err != nil {
			t.Fatal(err)
		}
		// A custom-key-store blob is no wrapped root blob, even with its
		// version byte rewritten.
		if _, err := p.GenerateKey(ctx, "foreign-cks"); err != nil && !errors.Is(err, ErrKeyExists) {
			t.Fatal(err)
		}
		blob, err := p.Encrypt(ctx, "foreign-cks", []byte("material"), aad)
		if err != nil {
			t.Fatal(err)
		}
		out["a custom-key-store key"] = blob
		for _, v := range []byte{wrapVersion, wrapVersionPKCS11} {
			relabelled := bytes.Clone(blob)
			relabelled[0] = v
			out[fmt.Sprintf("a custom-key-store key, version byte %d", v)] = relabelled
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	software := func(t *testing.T) *Software {
		s, err := OpenSoftware(SoftwareConfig{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	pool := func(t *testing.T, b SessionBackend) *Pool {
		p, err := NewPool(b, PoolConfig{Workers: 2, Batch: 4, Queue: 64})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	t.Run("backend=software", func(t *testing.T) {
		runConformance(t, func(t *testing.T) Backend { return software(t) })
	})
	t.Run("backend=pkcs11", func(t *testing.T) {
		runConformance(t, func(t *testing.T) Backend { return openPKCS11(t, "conformance") })
	})
	t.Run("pool=software", func(t *testing.T) {
		runConformance(t, func(t *testing.T) Backend { return pool(t, software(t)) })
	})
	t.Run("pool=pkcs11", func(t *testing.T) {
		runConformance(t, func(t *testing.T) Backend { return pool(t, openPKCS11(t, "conformance")) })
	})
}
