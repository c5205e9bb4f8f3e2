package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	mrand "math/rand/v2"
	"sync"
	"testing"
)

func TestReaderAtRanges(t *testing.T) {
	p := newTestProvider(t)
	for _, n := range []int{1, maxPayload, maxPayload + 1, 4*maxPayload - 3} {
		pt := randBytes(n)
		stream := encrypt(t, p, Config{}, pt, 0)
		for _, workers := range []int{1, 3} {
			ra, err := NewReaderAt(context.Background(), bytes.NewReader(stream), int64(len(stream)), p, Config{Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			if ra.Size() != int64(n) {
				t.Fatalf("Size %d, want %d", ra.Size(), n)
			}
			// Ranges starting and ending on, before and after every
			// package boundary.
			var points []int
			for k := 0; k <= n/maxPayload+1; k++ {
				for _, d := range []int{-1, 0, 1} {
					if x := k*maxPayload + d; x >= 0 && x <= n {
						points = append(points, x)
					}
				}
			}
			points = append(points, n)
			for _, off := range points {
				for _, end := range points {
					if end < off {
						continue
					}
					got := make([]byte, end-off)
					m, err := ra.ReadAt(got, int64(off))
					if m != end-off || (err != nil && !(err == io.EOF && end == n)) || !bytes.Equal(got, pt[off:end]) {
						t.Fatalf("size %d, [%d, %d): %d, %v", n, off, end, m, err)
					}
				}
			}
			// Past the end: a short read with io.EOF.
			buf := make([]byte, 10)
			if n >= 3 {
				if m, err := ra.ReadAt(buf, int64(n-3)); m != 3 || err != io.EOF || !bytes.Equal(buf[:3], pt[n-3:]) {
					t.Fatalf("read across the end: %d, %v", m, err)
				}
			}
			if m, err := ra.ReadAt(buf, int64(n)); m != 0 || err != io.EOF {
				t.Fatalf("read at the end: %d, %v", m, err)
			}
			if _, err := ra.ReadAt(buf, -1); err == nil {
				t.Fatal("negative offset accepted")
			}
		}
	}
}

// ReadAt is safe for concurrent use.
func TestReaderAtConcurrent(t *testing.T) {
	p := newTestProvider(t)
	pt := randBytes(10*maxPayload + 77)
	stream := encrypt(t, p, Config{}, pt, 0)
	ra, err := NewReaderAt(context.Background(), bytes.NewReader(stream), int64(len(stream)), p, Config{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				off := mrand.IntN(len(pt))
				end := off + mrand.IntN(len(pt)-off+1)
				got := make([]byte, end-off)
				if _, err := ra.ReadAt(got, int64(off)); (err != nil && err != io.EOF) || !bytes.Equal(got, pt[off:end]) {
					t.Errorf("[%d, %d): %v", off, end, err)
				}
			}
		})
	}
	wg.Wait()
}

// A damaged package in the middle fails the ranges that touch it, with n
// counting the bytes before it, and no others.
func TestReaderAtDamagedPackage(t *testing.T) {
	p := newTestProvider(t)
	pt := randBytes(6 * maxPayload)
	stream := encrypt(t, p, Config{}, pt, 0)
	_, b := body(t, stream)
	bad := flip(stream, len(stream)-len(b)+3*maxPackage+500)
	ra, err := NewReaderAt(context.Background(), bytes.NewReader(bad), int64(len(bad)), p, Config{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(pt))
	m, err := ra.ReadAt(got, 0)
	var pe *PackageError
	if !errors.As(err, &pe) || pe.Package != 3 || m != 3*maxPayload || !bytes.Equal(got[:m], pt[:m]) {
		t.Fatalf("ReadAt over package 3: %d, %v", m, err)
	}
	if m, err := ra.ReadAt(got[:maxPayload], 4*maxPayload); err != nil || m != maxPayload {
		t.Fatalf("ReadAt of package 4: %d, %v", m, err)
	}
}
