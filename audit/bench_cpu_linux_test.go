package audit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAppendCPU is BenchmarkAppend's load (one Writer, N goroutines
// appending at once, on a real file in t.TempDir) under both commit
// policies, reporting the process's CPU time per record (cpu-ns/op,
// getrusage): what a server spends on the audit path per request —
// encoding, the hand-off to the writer goroutine and back, the chain's
// hash, the write(2) of each group — beside wall time, which on a shared
// machine swings with the load. params=typed gives the record's parameters
// as Params rather than as JSON (RequestParameters), the same bytes.
func BenchmarkAppendCPU(b *testing.B) {
	for _, mode := range []struct {
		name     string
		interval time.Duration
	}{{"interval", 10 * time.Millisecond}, {"commit", 0}} {
		for _, c := range []struct {
			par   int
			typed bool // the parameters as Params, as the server gives the hot operations'
		}{{1, false}, {64, false}, {1, true}, {64, true}} {
			par, name := c.par, fmt.Sprintf("sync=%s/parallel=%d", mode.name, c.par)
			if c.typed {
				name += "/params=typed"
			}
			b.Run(name, func(b *testing.B) {
				w := mustOpen(b, Config{Dir: b.TempDir(), Signer: newKey(b), SyncInterval: mode.interval})
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := processCPU()
				var next atomic.Int64
				var wg sync.WaitGroup
				for range par {
					wg.Go(func() {
						r := rec(1)
						if c.typed { // the same bytes in the line
							r.RequestParameters = nil
							r.Params = &Params{KeyID: "alias/app", EncryptionContext: map[string]string{"tenant": "acme"}, EncryptionAlgorithm: "SYMMETRIC_DEFAULT"}
						}
						for next.Add(1) <= int64(b.N) {
							r.Seq = 0
							if err := w.Append(context.Background(), r); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
				st := w.Stats()
				b.ReportMetric(float64(st.Records)/float64(st.Batches), "records/write")
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAnchorWrite is one anchor written the two ways the Writer
// writes it: the file replaced whole (temporary file, fsync, rename,
// directory fsync: what Open does, and what every anchor did before the
// slots) and one slot written in place (pwrite, fdatasync), with the
// process's CPU time per anchor beside wall time.
func BenchmarkAnchorWrite(b *testing.B) {
	key := newKey(b)
	var head [32]byte
	for _, way := range []string{"replace", "slot"} {
		b.Run(way, func(b *testing.B) {
			path := AnchorPath(b.TempDir())
			if err := writeAnchor(path, key, 1, &head, time.Now()); err != nil {
				b.Fatal(err)
			}
			cpu0 := processCPU()
			i := 0
			for b.Loop() {
				i++
				var err error
				if way == "replace" {
					err = writeAnchor(path, key, uint64(i), &head, time.Now())
				} else {
					var slot []byte // signed in the loop, as replace's is
					if slot, err = encodeAnchor(key, uint64(i), &head, time.Now()); err == nil {
						err = writeAnchorSlot(path, i%anchorSlots, slot)
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
