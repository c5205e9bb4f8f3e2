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
			a, b := fewestAllocs(c.short), fewestAllocs(c.long)
			// Per stream, a worker may start once more than in the short
			// stream (a short stream's second package can be submitted
			// after its first worker waits, and that worker takes it),
			// and a start costs workerStartAllocs; per package, nothing.
			if b-a > workerStartAllocs {
				t.Errorf("%d workers, %s: %.1f allocations for 2 packages, %.1f for 66", workers, c.name, a, b)
			}
			t.Logf("%d workers, %s: %.1f allocations for 2 packages, %.1f for 66", workers, c.name, a, b)
		}
	}
}

// workerStartAllocs is what starting a ring worker allocates: the go
// statement's closure, and the idle timer (time.NewTimer: the timer and
// its channel) once it waits.
const workerStartAllocs = 3

// fewestAllocs is the fewest allocations per run of f in three rounds of
// testing.AllocsPerRun. A collection during a round empties the package
// buffers' sync.Pool, and the stream that follows allocates the buffers its
// ring fills (up to 16 for 2 workers, more for a long stream than a short
// one); in a package run whose earlier tests left a large heap that happens
// in some rounds. An allocation per package happens in every round.
func fewestAllocs(f func()) float64 {
	n := testing.AllocsPerRun(20, f)
	for range 2 {
		n = min(n, testing.AllocsPerRun(20, f))
	}
	return n
}
