package stream

import (
	"bytes"
	"testing"
)

// Lengths around every package boundary, with write and read step sizes
// that do and do not divide the package size, on both paths.
func TestRoundTripBoundaries(t *testing.T) {
	p := newTestProvider(t)
	lengths := []int{0, 1, 2, 1000}
	for _, k := range []int{1, 2, 3} {
		for _, d := range []int{-2, -1, 0, 1, 2} {
			lengths = append(lengths, k*maxPayload+d)
		}
	}
	steps := []int{1 << 20, maxPayload, maxPayload - 1, maxPayload + 1, 4095, 0}
	for _, m := range modes {
		for _, n := range lengths {
			pt := randBytes(n)
			for _, ws := range steps {
				if ws == 1 && n > 4*maxPayload {
					continue
				}
				stream := encrypt(t, p, m.cfg(Config{Context: testCtx}), pt, ws)
				if m.workers != 1 {
					// The same, written at offsets after a prefix.
					at := encryptAt(t, p, m.cfg(Config{Context: testCtx}), pt, []byte("prefix"), ws)
					if len(at) != len(stream) {
						t.Fatalf("%s write step %d, len %d: %d bytes written at offsets, %d in order", m.name, ws, n, len(at), len(stream))
					}
					if got, err := decrypt(p, Config{}, at, 0); err != nil || !bytes.Equal(got, pt) {
						t.Fatalf("%s write step %d, len %d, written at offsets: %v, equal=%v", m.name, ws, n, err, bytes.Equal(got, pt))
					}
				}
				for _, rm := range modes {
					for i, rs := range []int{1 << 20, maxPayload, 1000, 0} {
						// The copies into files and buffers read no step,
						// and streams written with any step have packages of
						// the same lengths: once per path and length is enough.
						dec := decryptReads
						if i == 0 && ws == steps[0] {
							dec = decrypt
						}
						got, err := dec(p, rm.cfg(Config{}), stream, rs)
						if err != nil || !bytes.Equal(got, pt) {
							t.Fatalf("%s write step %d, %s read step %d, len %d: %v, equal=%v",
								m.name, ws, rm.name, rs, n, err, bytes.Equal(got, pt))
						}
					}
				}
			}
		}
	}
}
