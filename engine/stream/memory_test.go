package stream

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// A stream of any length holds at most slotsFor(workers) package buffers,
// on the way in and on the way out, whether fed by Write or io.Copy.
func TestMemoryBound(t *testing.T) {
	p := newTestProvider(t)
	const size = 16 << 20 // 256 packages
	pt := randBytes(size)
	for _, workers := range []int{2, 4, 16} {
		bound := slotsFor(workers)
		var enc bytes.Buffer
		w, err := NewWriter(context.Background(), &enc, p, Config{KeyID: p.KeyID(), Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, bytes.NewReader(pt)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if w.ring.peak > bound || w.ring.live != 0 {
			t.Fatalf("%d workers: writer held %d buffers at peak (bound %d), %d after Close", workers, w.ring.peak, bound, w.ring.live)
		}

		r, err := NewReader(context.Background(), bytes.NewReader(enc.Bytes()), p, Config{Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := io.Copy(&out, r); err != nil || !bytes.Equal(out.Bytes(), pt) {
			t.Fatalf("%d workers: %v", workers, err)
		}
		if r.ring.peak > bound || r.ring.live != 0 {
			t.Fatalf("%d workers: reader held %d buffers at peak (bound %d), %d at EOF", workers, r.ring.peak, bound, r.ring.live)
		}
		t.Logf("%d workers: %d packages through %d buffers (%d KiB)", workers, size/maxPayload, r.ring.peak, r.ring.peak*maxPackage>>10)
	}
}

// A reader abandoned half way releases and zeroes its buffers on Close.
func TestReaderCloseEarly(t *testing.T) {
	p := newTestProvider(t)
	stream := encrypt(t, p, Config{}, randBytes(20*maxPayload), 0)
	r, err := NewReader(context.Background(), bytes.NewReader(stream), p, Config{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 3*maxPayload)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if r.ring.live != 0 {
		t.Fatalf("%d buffers held after Close", r.ring.live)
	}
	if _, err := r.Read(make([]byte, 1)); err != ErrClosed {
		t.Fatalf("Read after Close: %v", err)
	}
}
