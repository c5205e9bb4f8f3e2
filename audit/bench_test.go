package audit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkAppend measures durable appends (write + fsync on a real file in
// t.TempDir) from N goroutines at once; ns/op is per record. records/fsync
// shows group commit at work.
func BenchmarkAppend(b *testing.B) {
	for _, par := range []int{1, 8, 64, 256} {
		b.Run(fmt.Sprintf("parallel=%d", par), func(b *testing.B) {
			w := mustOpen(b, Config{Dir: b.TempDir(), Signer: newKey(b)})
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range par {
				wg.Go(func() {
					r := rec(1)
					for next.Add(1) <= int64(b.N) {
						if err := w.Append(context.Background(), r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			st := w.Stats()
			b.ReportMetric(float64(st.Records)/float64(st.Batches), "records/fsync")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkVerify measures replaying a sealed trail; ns/op is per record.
func BenchmarkVerify(b *testing.B) {
	dir, key := b.TempDir(), newKey(b)
	w := mustOpen(b, Config{Dir: dir, Signer: key})
	const n = 4000
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range n / 16 {
				w.Append(context.Background(), rec(g*n+i))
			}
		})
	}
	wg.Wait()
	w.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(dir, &key.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}
