package stream

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// Sealing and opening packages allocates nothing in steady state, on every
// path that has no minio/sio inside: a stream of 66 packages costs no more
// allocations than a stream of 2 (the rest is per stream: the data key, the
// header, the ring). Without -race only: under it sync.Pool drops items at
// random (make test runs it so).
func TestPackageAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	if viaSIO(&Config{}, AES256GCM) {
		t.Skip("no asm kernel: the sequential path is minio/sio's")
	}
	p := newTestProvider(t)
	short, long := randBytes(2*maxPayload), randBytes(66*maxPayload)
	var out bytes.Buffer
	out.Grow(len(long) + len(long)/maxPayload*32 + 4096)
	shortStream := encrypt(t, p, Config{}, short, 0)
	longStream := encrypt(t, p, Config{}, long, 0)
	for _, workers := range []int{1, 2} {
		cfg := Config{KeyID: p.KeyID(), Workers: workers, Suite: AES256GCM}
		enc := func(pt []byte) func() {
			return func() {
				out.Reset()
				w, err := NewWriter(context.Background(), &out, p, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write(pt); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
		}
		dec := func(stream []byte) func() {
			src := bytes.NewReader(stream)
			return func() {
				out.Reset()
				src.Reset(stream)
				r, err := NewReader(context.Background(), src, p, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(&out, r); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, c := range []struct {
			name        string
			short, long func()
		}{
			{"encrypt", enc(short), enc(long)},
			{"decrypt", dec(shortStream), dec(longStream)},
		} {
			a := testing.AllocsPerRun(20, c.short)
			b := testing.AllocsPerRun(20, c.long)
			// Per stream, a worker may start once more than in the short
			// stream; per package, nothing.
			if b-a > 2 {
				t.Errorf("%d workers, %s: %.1f allocations for 2 packages, %.1f for 66", workers, c.name, a, b)
			}
			t.Logf("%d workers, %s: %.1f allocations for 2 packages, %.1f for 66", workers, c.name, a, b)
		}
	}
}
