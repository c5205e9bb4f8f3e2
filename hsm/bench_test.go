package hsm

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
)

// Benchmarks unwrap 32-byte CMK material, the call the kms package makes
// on a material-cache miss. Run with:
//
//	go test -run '^$' -bench 'Unwrap' -benchmem -count 6 ./hsm/ | benchstat -
func BenchmarkUnwrap(b *testing.B) {
	software := func(b *testing.B) *Software {
		s, err := OpenSoftware(SoftwareConfig{InMemory: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	pool := func(b *testing.B, sb SessionBackend) *Pool {
		p, err := NewPool(sb, PoolConfig{Workers: 4})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		return p
	}
	b.Run("backend=software", func(b *testing.B) { benchUnwrap(b, software(b)) })
	b.Run("backend=pkcs11", func(b *testing.B) { benchUnwrap(b, openPKCS11(b, "bench")) })
	b.Run("backend=software/parallel", func(b *testing.B) { benchUnwrapParallel(b, software(b), false) })
	b.Run("backend=pkcs11/parallel", func(b *testing.B) { benchUnwrapParallel(b, openPKCS11(b, "bench"), false) })
	b.Run("pool=software/parallel", func(b *testing.B) { benchUnwrapParallel(b, pool(b, software(b)), false) })
	b.Run("pool=pkcs11/parallel", func(b *testing.B) { benchUnwrapParallel(b, pool(b, openPKCS11(b, "bench")), false) })
}

// BenchmarkUnwrapCoalescing shows what coalescing saves when many callers
// miss the cache for the same key version at once (keys=same) against the
// same load over distinct versions (keys=distinct). calls/op is backend
// calls per request.
func BenchmarkUnwrapCoalescing(b *testing.B) {
	for _, same := range []bool{false, true} {
		name := map[bool]string{false: "distinct", true: "same"}[same]
		b.Run("pool=pkcs11/keys="+name, func(b *testing.B) {
			p, err := NewPool(openPKCS11(b, "bench"), PoolConfig{Workers: 4})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.SetParallelism(8)
			benchUnwrapParallel(b, p, same)
		})
	}
}

const benchBlobs = 256

func benchBlobSet(b *testing.B, be Backend) (blobs, aads [][]byte) {
	material := make([]byte, 32)
	for i := range benchBlobs {
		aad := []byte(fmt.Sprintf("arn:aws:kms:us-east-1:111122223333:key/%d#0", i))
		w, err := be.Wrap(context.Background(), material, aad)
		if err != nil {
			b.Fatal(err)
		}
		blobs, aads = append(blobs, w), append(aads, aad)
	}
	return blobs, aads
}

func benchUnwrap(b *testing.B, be Backend) {
	ctx := context.Background()
	blobs, aads := benchBlobSet(b, be)
	b.SetBytes(32)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		pt, err := be.Unwrap(ctx, blobs[i%benchBlobs], aads[i%benchBlobs])
		if err != nil {
			b.Fatal(err)
		}
		clear(pt)
	}
}

// benchUnwrapParallel gives each goroutine its own blob (or all the same
// one), so coalescing happens only when asked for.
func benchUnwrapParallel(b *testing.B, be Backend, same bool) {
	ctx := context.Background()
	blobs, aads := benchBlobSet(b, be)
	var next atomic.Int64
	p, _ := be.(*Pool)
	var before PoolStats
	if p != nil {
		before = p.Stats()
	}
	b.SetBytes(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) % benchBlobs
		if same {
			i = 0
		}
		for pb.Next() {
			pt, err := be.Unwrap(ctx, blobs[i], aads[i])
			if err != nil {
				b.Error(err)
				return
			}
			clear(pt)
		}
	})
	if p != nil {
		b.ReportMetric(float64(p.Stats().Calls-before.Calls)/float64(b.N), "calls/op")
	}
}

// BenchmarkPoolColdKeys measures, in one run, the two rates: one
// PKCS#11 session unwrapping in a loop (raw=session, the HSM's own rate
// with no pool), and the pool under 256 concurrent requests for distinct
// cold keys (every request is an HSM call: calls/op is 1). The ratio of
// their ns/op is the pool's efficiency.
func BenchmarkPoolColdKeys(b *testing.B) {
	b.Run("raw=session", func(b *testing.B) {
		be := openPKCS11(b, "bench")
		s, err := be.OpenSession(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchUnwrap(b, sessionBackend{s})
	})
	for _, w := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("pool/workers=%d/concurrency=256", w), func(b *testing.B) {
			p, err := NewPool(openPKCS11(b, "bench"), PoolConfig{Workers: w})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.SetParallelism((256 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			benchUnwrapParallel(b, p, false)
		})
	}
}

// sessionBackend lets benchUnwrap drive one bare Session.
type sessionBackend struct{ Session }

func (sessionBackend) Name() string { return "session" }
