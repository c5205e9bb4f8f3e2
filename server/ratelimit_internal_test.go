package server

import (
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/coffer-kms/coffer/kms"
)

// BenchmarkLimiterAllow is the whole cost throttling adds to a request: the
// account's buckets looked up and one token taken.
func BenchmarkLimiterAllow(b *testing.B) {
	l, err := newLimiter(RateLimits{Default: map[string]float64{kms.QuotaCryptographic: 1e12}}, "us-east-1", metrics.NewSet())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !l.allow("111122223333", 0, "Encrypt") {
			b.Fatal("throttled")
		}
	}
}

// TestBucketRefills: a bucket gives a second's worth at once, then one
// token per interval.
func TestBucketRefills(t *testing.T) {
	var bk bucket
	bk.init(10) // 100 ms a token, 10 at once
	now := int64(5e9)
	for i := range 10 {
		if !bk.take(now) {
			t.Fatalf("token %d of the burst refused", i)
		}
	}
	if bk.take(now) {
		t.Fatal("an 11th token in the same instant")
	}
	if !bk.take(now + 100e6) {
		t.Fatal("no token 100 ms later")
	}
	if bk.take(now + 100e6) {
		t.Fatal("two tokens 100 ms later")
	}
}
