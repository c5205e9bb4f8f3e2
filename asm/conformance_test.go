package asm

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// This file is the AEAD conformance suite: every property crypto/cipher.AEAD
// promises, checked on every kernel against crypto/cipher's AES-GCM.

var testKeys = map[string][]byte{
	"AES128": pattern(16, 1),
	"AES256": pattern(32, 2),
}

// boundaryLengths cross every block boundary and the 64-byte vector and
// 256-byte group boundaries the kernels are built around.
var boundaryLengths = []int{0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513, 767, 768, 769}

func TestLengths(t *testing.T) {
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		for keyName, key := range testKeys {
			a, ref := newAEAD(key), reference(t, key)
			nonce := pattern(nonceSize, 3)
			check := func(ptLen, aadLen int) {
				pt, aad := pattern(ptLen, byte(ptLen)), pattern(aadLen, byte(aadLen)+7)
				want := ref.Seal(nil, nonce, pt, aad)
				got := a.Seal(nil, nonce, pt, aad)
				if !bytes.Equal(got, want) {
					t.Fatalf("%s pt=%d aad=%d: Seal differs from crypto/cipher\n got %x\nwant %x", keyName, ptLen, aadLen, got, want)
				}
				opened, err := a.Open(nil, nonce, want, aad)
				if err != nil || !bytes.Equal(opened, pt) {
					t.Fatalf("%s pt=%d aad=%d: Open = %v", keyName, ptLen, aadLen, err)
				}
			}
			for ptLen := 0; ptLen <= 600; ptLen++ {
				for _, aadLen := range []int{0, 1, 13, 16, 17, 64, 255, 256, 257} {
					check(ptLen, aadLen)
				}
			}
			for aadLen := 0; aadLen <= 600; aadLen++ {
				for _, ptLen := range []int{0, 1, 16, 63, 256, 300} {
					check(ptLen, aadLen)
				}
			}
			for _, ptLen := range boundaryLengths {
				for _, aadLen := range boundaryLengths {
					check(ptLen+1024, aadLen+1024)
				}
			}
		}
	})
}

// TestLong crosses the 1 MiB piece size in which long inputs reach the
// assembly, for plaintext and for additional data.
func TestLong(t *testing.T) {
	if testing.Short() {
		t.Skip("long inputs")
	}
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		key := testKeys["AES256"]
		a, ref := newAEAD(key), reference(t, key)
		nonce := pattern(nonceSize, 5)
		big := pattern(3*chunkSize+4096, 9)
		for _, n := range []int{chunkSize - 1, chunkSize, chunkSize + 1, 2*chunkSize + 272, 3*chunkSize + 4095} {
			for _, aadLen := range []int{0, 13, chunkSize + 17} {
				pt, aad := big[:n], big[len(big)-aadLen:]
				want := ref.Seal(nil, nonce, pt, aad)
				if got := a.Seal(nil, nonce, pt, aad); !bytes.Equal(got, want) {
					t.Fatalf("pt=%d aad=%d: Seal differs from crypto/cipher", n, aadLen)
				}
				if got, err := a.Open(nil, nonce, want, aad); err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("pt=%d aad=%d: Open = %v", n, aadLen, err)
				}
			}
		}
	})
}

func TestSizes(t *testing.T) {
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		a := newAEAD(testKeys["AES128"])
		if a.NonceSize() != 12 || a.Overhead() != 16 {
			t.Fatalf("NonceSize, Overhead = %d, %d; want 12, 16", a.NonceSize(), a.Overhead())
		}
	})
}

func TestInPlace(t *testing.T) {
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		a := newAEAD(testKeys["AES256"])
		ref := reference(t, testKeys["AES256"])
		nonce, aad := pattern(nonceSize, 1), pattern(20, 2)
		for _, n := range boundaryLengths {
			pt := pattern(n, 4)
			want := ref.Seal(nil, nonce, pt, aad)

			buf := make([]byte, n, n+tagSize)
			copy(buf, pt)
			sealed := a.Seal(buf[:0], nonce, buf, aad)
			if !bytes.Equal(sealed, want) || &sealed[0] != &buf[:1][0] {
				t.Fatalf("n=%d: in-place Seal wrong or reallocated", n)
			}
			opened, err := a.Open(sealed[:0], nonce, sealed, aad)
			if err != nil || !bytes.Equal(opened, pt) {
				t.Fatalf("n=%d: in-place Open = %v", n, err)
			}
			if n > 0 && &opened[0] != &buf[0] {
				t.Fatalf("n=%d: in-place Open reallocated", n)
			}
		}
	})
}

func TestAppend(t *testing.T) {
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		a := newAEAD(testKeys["AES128"])
		nonce, aad, pt := pattern(nonceSize, 1), pattern(5, 2), pattern(70, 3)
		want := a.Seal(nil, nonce, pt, aad)
		prefix := []byte("prefix")
		for _, spare := range []int{0, len(pt) + tagSize - 1, len(pt) + tagSize, 1000} {
			dst := make([]byte, len(prefix), len(prefix)+spare)
			copy(dst, prefix)
			got := a.Seal(dst, nonce, pt, aad)
			if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], want) {
				t.Fatalf("spare=%d: Seal did not append", spare)
			}
			if reuse := spare >= len(pt)+tagSize; reuse != (&got[0] == &dst[0]) {
				t.Fatalf("spare=%d: Seal reused dst = %v, want %v", spare, !reuse, reuse)
			}
			dst = make([]byte, len(prefix), len(prefix)+spare)
			copy(dst, prefix)
			opened, err := a.Open(dst, nonce, want, aad)
			if err != nil || !bytes.Equal(opened[:len(prefix)], prefix) || !bytes.Equal(opened[len(prefix):], pt) {
				t.Fatalf("spare=%d: Open did not append: %v", spare, err)
			}
			if reuse := spare >= len(pt); reuse != (&opened[0] == &dst[0]) {
				t.Fatalf("spare=%d: Open reused dst = %v, want %v", spare, !reuse, reuse)
			}
		}
	})
}

func TestOverlapPanics(t *testing.T) {
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		a := newAEAD(testKeys["AES256"])
		nonce := pattern(nonceSize, 1)
		buf := make([]byte, 256)
		mustPanic(t, "Seal with dst one byte into plaintext", func() { a.Seal(buf[1:1], nonce, buf[:64], nil) })
		mustPanic(t, "Seal with plaintext one byte into dst", func() { a.Seal(buf[:0], nonce, buf[1:65], nil) })
		mustPanic(t, "Seal with dst over additional data", func() { a.Seal(buf[:0], nonce, buf[100:110], buf[20:30]) })
		mustPanic(t, "Seal with tag over additional data", func() { a.Seal(buf[:0], nonce, buf[:64], buf[70:90]) })

		sealed := a.Seal(nil, nonce, pattern(64, 2), nil)
		copy(buf, sealed)
		mustPanic(t, "Open with dst one byte into ciphertext", func() { a.Open(buf[1:1], nonce, buf[:len(sealed)], nil) })
		mustPanic(t, "Open with dst over additional data", func() { a.Open(buf[100:100], nonce, sealed, buf[120:130]) })

		// Exact overlap is allowed both ways, and so are additional data
		// and output that merely sit next to each other.
		copy(buf, sealed)
		if _, err := a.Open(buf[:0], nonce, buf[:len(sealed)], nil); err != nil {
			t.Fatalf("exact-overlap Open: %v", err)
		}
		a.Seal(buf[:0], nonce, buf[:64], buf[80:96])
	})
}

func TestNonceLengthPanics(t *testing.T) {
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		a := newAEAD(testKeys["AES128"])
		sealed := a.Seal(nil, make([]byte, 12), []byte("x"), nil)
		for _, n := range []int{0, 8, 11, 13, 16} {
			mustPanic(t, fmt.Sprintf("Seal with a %d-byte nonce", n), func() { a.Seal(nil, make([]byte, n), []byte("x"), nil) })
			mustPanic(t, fmt.Sprintf("Open with a %d-byte nonce", n), func() { a.Open(nil, make([]byte, n), sealed, nil) })
		}
	})
}

// TestTamper flips every bit of a message's nonce, additional data,
// ciphertext and tag in turn, and truncates and extends the ciphertext: each
// must fail with the one error, and the output must hold no plaintext.
func TestTamper(t *testing.T) {
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		a := newAEAD(testKeys["AES256"])
		nonce, aad, pt := pattern(nonceSize, 1), pattern(33, 2), pattern(300, 3)
		sealed := a.Seal(nil, nonce, pt, aad)
		dst := make([]byte, 0, 512)

		try := func(what string, nonce, sealed, aad []byte) {
			t.Helper()
			for i := range dst[:cap(dst)] {
				dst[:cap(dst)][i] = 0xa5
			}
			got, err := a.Open(dst, nonce, sealed, aad)
			if err == nil || got != nil {
				t.Fatalf("%s: Open = %d bytes, %v; want nil, error", what, len(got), err)
			}
			if err.Error() != errOpen.Error() || !errors.Is(err, errOpen) {
				t.Fatalf("%s: Open error %q is not the one opaque error", what, err)
			}
			if n := len(sealed) - tagSize; n > 0 && bytes.Contains(dst[:n], pt[:16]) {
				t.Fatalf("%s: plaintext left in dst", what)
			}
			if n := len(sealed) - tagSize; n > 0 && !bytes.Equal(dst[:n], make([]byte, n)) {
				t.Fatalf("%s: output not cleared", what)
			}
		}
		regions := []struct {
			name string
			b    []byte
		}{{"nonce", nonce}, {"additional data", aad}, {"ciphertext", sealed[:len(pt)]}, {"tag", sealed[len(pt):]}}
		for _, r := range regions {
			for i := range r.b {
				for bit := 0; bit < 8; bit++ {
					r.b[i] ^= 1 << bit
					try(fmt.Sprintf("%s byte %d bit %d", r.name, i, bit), nonce, sealed, aad)
					r.b[i] ^= 1 << bit
				}
			}
		}
		try("ciphertext one byte short", nonce, sealed[:len(sealed)-1], aad)
		try("ciphertext one byte long", nonce, append(sealed[:len(sealed):len(sealed)], 0), aad)
		try("additional data one byte short", nonce, sealed, aad[1:])
		try("additional data missing", nonce, sealed, nil)
		try("tag only", nonce, sealed[len(pt):], aad)
		for n := 0; n < tagSize; n++ {
			try(fmt.Sprintf("%d-byte ciphertext", n), nonce, sealed[:n], aad)
		}
		if got, err := a.Open(dst, nonce, sealed, aad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("untampered Open after the tampering: %v", err)
		}
	})
}

func TestKeySizes(t *testing.T) {
	for _, n := range []int{0, 1, 15, 17, 24, 31, 33, 64} {
		if _, err := New(make([]byte, n)); !errors.As(err, new(KeySizeError)) {
			t.Errorf("New with a %d-byte key: %v, want KeySizeError", n, err)
		}
		var g GCM
		if err := g.Init(make([]byte, n)); err == nil {
			t.Errorf("Init with a %d-byte key succeeded", n)
		}
		mustPanic(t, "Seal after a failed Init", func() { g.Seal(nil, make([]byte, 12), nil, nil) })
	}
	if _, err := NewKernel("no-such-kernel", make([]byte, 16)); !errors.Is(err, ErrKernelUnavailable) {
		t.Errorf("NewKernel(no-such-kernel): %v", err)
	}
}

func TestZeroValueAndReset(t *testing.T) {
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		var zero GCM
		mustPanic(t, "Seal on the zero GCM", func() { zero.Seal(nil, make([]byte, 12), nil, nil) })
		mustPanic(t, "Open on the zero GCM", func() { zero.Open(nil, make([]byte, 12), make([]byte, 16), nil) })

		g := newAEAD(testKeys["AES256"]).(*GCM)
		g.Reset()
		if *g != (GCM{}) {
			t.Fatal("Reset left state behind")
		}
		mustPanic(t, "Seal after Reset", func() { g.Seal(nil, make([]byte, 12), nil, nil) })
	})
}

// TestReinit proves a GCM can be set up again with another key, as the
// engine's context pool does.
func TestReinit(t *testing.T) {
	var g GCM
	nonce := make([]byte, 12)
	for _, key := range [][]byte{testKeys["AES256"], testKeys["AES128"], pattern(32, 9)} {
		if err := g.Init(key); err != nil {
			t.Fatal(err)
		}
		want := reference(t, key).Seal(nil, nonce, []byte("reused context"), nil)
		if got := g.Seal(nil, nonce, []byte("reused context"), nil); !bytes.Equal(got, want) {
			t.Fatalf("Seal after re-Init differs from crypto/cipher")
		}
	}
}

func TestConcurrent(t *testing.T) {
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		a, ref := newAEAD(testKeys["AES128"]), reference(t, testKeys["AES128"])
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					nonce, pt := pattern(12, byte(w)), pattern(i*7, byte(i))
					sealed := a.Seal(nil, nonce, pt, nonce)
					if !bytes.Equal(sealed, ref.Seal(nil, nonce, pt, nonce)) {
						t.Error("concurrent Seal differs")
						return
					}
					if got, err := a.Open(nil, nonce, sealed, nonce); err != nil || !bytes.Equal(got, pt) {
						t.Error("concurrent Open failed")
						return
					}
				}
			}(w)
		}
		wg.Wait()
	})
}

func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	forEachKernel(t, func(t *testing.T, newAEAD func([]byte) cipher.AEAD) {
		a := newAEAD(testKeys["AES256"])
		nonce, aad, pt := pattern(12, 1), pattern(16, 2), pattern(1024, 3)
		sealed := a.Seal(nil, nonce, pt, aad)
		dst := make([]byte, 0, len(sealed))
		if n := testing.AllocsPerRun(100, func() { a.Seal(dst, nonce, pt, aad) }); n != 0 {
			t.Errorf("Seal allocates %v times", n)
		}
		if n := testing.AllocsPerRun(100, func() { a.Open(dst, nonce, sealed, aad) }); n != 0 {
			t.Errorf("Open allocates %v times", n)
		}
		sealed[0] ^= 1
		if n := testing.AllocsPerRun(100, func() { a.Open(dst, nonce, sealed, aad) }); n != 0 {
			t.Errorf("failing Open allocates %v times", n)
		}
		if g := a.(*GCM); g.kernel != kernelStdlib {
			var ctx GCM
			key := testKeys["AES256"]
			if n := testing.AllocsPerRun(100, func() { ctx.init(key, g.kernel) }); n != 0 {
				t.Errorf("Init allocates %v times", n)
			}
		}
	})
}
