package kms

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/keystore"
)

var (
	flushKeys    = flag.Int("flush-keys", 100000, "BenchmarkUsageFlushMemory: keys with a stored counter and last use")
	flushTouched = flag.Int("flush-touched", 30000, "BenchmarkUsageFlushMemory: keys used between two flushes")
)

// BenchmarkUsageFlushMemory measures what one usage flush adds to the
// process's anonymous memory on bbolt, with the counters and last uses of
// -flush-keys keys stored and -flush-touched of them, drawn at random, used
// since the last flush: written in transactions of flushChunk keys, and in
// one transaction as before. A write transaction holds every page it
// changes until it commits; once the keys far outnumber the flush, each
// key's entry is on a page of its own.
//
//	go test -run '^$' -bench UsageFlushMemory -benchtime 3x ./kms -flush-keys 1000000
func BenchmarkUsageFlushMemory(b *testing.B) {
	s := boltBenchService(b, CacheConfig{})
	defer s.Close()
	ctx := context.Background()
	arn := func(i int) string { return "arn:aws:kms:us-east-1:111122223333:key/" + bulkKeyID(i) }
	n := *flushKeys
	for start := 0; start < n; start += 20000 {
		if err := s.store.Update(ctx, func(tx keystore.Tx) error {
			for i := start; i < min(n, start+20000); i++ {
				if err := putJSON(tx, bucketLastUsage, bulkKeyID(i), lastUse{Operation: "Encrypt", RequestID: "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"}); err != nil {
					return err
				}
				if err := putJSON(tx, bucketUsage, usageKey{"111122223333", arn(i), "Encrypt"}.storeKey(), uint64(1)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	for _, chunk := range []int{flushChunk, 1 << 30} {
		name := fmt.Sprint("chunk=", chunk)
		if chunk == 1<<30 {
			name = "chunk=all"
		}
		b.Run(name, func(b *testing.B) {
			defer func(n int) { flushChunk = n }(flushChunk)
			flushChunk = chunk
			var grew, heap float64
			for b.Loop() {
				b.StopTimer()
				for range *flushTouched {
					i := rand.IntN(n)
					s.RecordUsage("111122223333", arn(i), "Encrypt")
					s.RecordLastUsage([]string{arn(i)}, "Encrypt", "r", nil)
				}
				runtime.GC()
				debug.FreeOSMemory()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				rss0, sys0 := rssAnonKiB(b), ms.HeapSys
				b.StartTimer()
				if err := s.FlushUsage(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				runtime.ReadMemStats(&ms)
				grew += float64(rssAnonKiB(b)-rss0) / 1024
				heap += float64(int64(ms.HeapSys)-int64(sys0)) / (1 << 20)
				b.StartTimer()
			}
			b.ReportMetric(grew/float64(b.N), "MiB-anon/flush")
			b.ReportMetric(heap/float64(b.N), "MiB-heap/flush")
		})
	}
}

// rssAnonKiB is this process's anonymous resident memory (Linux).
func rssAnonKiB(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "RssAnon:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	b.Skip("no RssAnon")
	return 0
}
